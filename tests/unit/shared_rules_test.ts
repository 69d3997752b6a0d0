/**
 * static/shared/: the rules the server and the page share (mentions, reply quotes, room names and
 * default rules). One definition each; these tests pin what it says and that both sides use it.
 * @module
 */
import assert from "node:assert/strict";
import { mentionCandidates } from "../../static/shared/mentions.js";
import { QUOTE_MAX_CHARS, quoteOf } from "../../static/shared/quote.js";
import { DEFAULT_RULES, MAX_TOPIC_CHARS, ROOM_NAME_RE } from "../../static/shared/rooms.js";
import * as protocol from "../../lib/protocol.ts";
import { DEFAULT_RULES as ENGINE_DEFAULT_RULES } from "../../lib/engine.ts";
import { canonicalName } from "../../lib/names.ts";
import { normalizeRoom } from "../../static/chat-client.js";

Deno.test("mentionCandidates() finds each @name not inside a word, with its trailing punctuation as a second try", () => {
  const cases: [string, string[][]][] = [
    ["hi bob", []],
    ["hey @bob", [["bob"]]],
    ["thanks @bob.", [["bob.", "bob"]]],
    ["@a.b-_ and @c", [["a.b-_", "a.b"], ["c"]]],
    ["mail bob@example.com", []],
    ["@@bob x.@bob", []],
    ["(@bob) @ alone", [["bob"]]],
    ["@_", [["_"]]],
  ];
  for (const [text, want] of cases) assert.deepEqual(mentionCandidates(text), want, text);
});

Deno.test("mentionCandidates() cuts the trailing punctuation after canonicalising, as the server does", () => {
  // U+2488 "⒈" is a digit for the pattern and NFKC makes it "1.": the cut applies to the canonical form.
  assert.deepEqual(mentionCandidates("@bob⒈", canonicalName), [["bob1.", "bob1"]]);
  assert.deepEqual(mentionCandidates("@ｂｏｂ!", canonicalName), [["bob"]]);
  assert.deepEqual(mentionCandidates("@ｂｏｂ!"), [["ｂｏｂ"]], "as written without a canonical form");
});

Deno.test("quoteOf() keeps the first line, cut to QUOTE_MAX_CHARS code points, never inside a surrogate pair", () => {
  assert.equal(quoteOf("one\ntwo"), "one");
  assert.equal(quoteOf("one\r\ntwo"), "one");
  assert.equal(quoteOf("x".repeat(150)), "x".repeat(QUOTE_MAX_CHARS));
  const astral = "😀".repeat(120);
  assert.equal(quoteOf(astral), "😀".repeat(QUOTE_MAX_CHARS));
  assert.equal(quoteOf("a" + astral).length, 1 + (QUOTE_MAX_CHARS - 1) * 2);
});

Deno.test("the server's protocol module uses the shared quote, room-name pattern and topic limit", () => {
  assert.equal(protocol.quoteOf, quoteOf);
  assert.equal(protocol.QUOTE_MAX_CHARS, QUOTE_MAX_CHARS);
  assert.equal(protocol.MAX_TOPIC_CHARS, MAX_TOPIC_CHARS);
  const rooms = ["lobby", "Team-1.x_y", "ünïcode", "a".repeat(64), "a".repeat(65), "no spaces", "", "a/b"];
  for (const room of rooms) {
    const page = normalizeRoom(room);
    let server: string | undefined;
    try {
      server = protocol.normalizeRoom(room);
    } catch { /* refused */ }
    assert.equal(page, server, room);
    assert.equal(ROOM_NAME_RE.test(room), server !== undefined, room);
  }
});

Deno.test("the shared default room rules are the engine's", () => {
  assert.deepEqual({ ...DEFAULT_RULES }, { ...ENGINE_DEFAULT_RULES });
  assert.ok(Object.isFrozen(DEFAULT_RULES));
});

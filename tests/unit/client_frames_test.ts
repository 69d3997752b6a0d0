import assert from "node:assert/strict";
import { normalizeRoom, parseClientFrame, ProtocolError, utf8Length } from "../../lib/protocol.ts";

const limits = { maxTextChars: 100, maxFrameBytes: 1000 };
const parse = (v: unknown) => parseClientFrame(typeof v === "string" ? v : JSON.stringify(v), limits);
const code = (c: string) => (e: unknown) => e instanceof ProtocolError && e.code === c;

Deno.test("parseClientFrame() accepts every client message type", () => {
  assert.deepEqual(parse({ type: "join", room: "Lobby" }), { type: "join", room: "lobby" });
  assert.deepEqual(parse({ type: "join", room: "a", since: 5 }), { type: "join", room: "a", since: 5 });
  assert.deepEqual(parse({ type: "join", room: "a", since: 5, epoch: "E_1-x" }), {
    type: "join",
    room: "a",
    since: 5,
    epoch: "E_1-x",
  });
  assert.deepEqual(parse({ type: "leave", room: "a" }), { type: "leave", room: "a" });
  assert.deepEqual(parse({ type: "send", room: "a", text: "hi", cid: "x-1" }), {
    type: "send",
    room: "a",
    text: "hi",
    cid: "x-1",
  });
  assert.deepEqual(parse({ type: "send", to: "bob", text: "psst" }), {
    type: "send",
    to: "bob",
    text: "psst",
  });
  assert.deepEqual(parse({ type: "typing", room: "a" }), { type: "typing", room: "a" });
  assert.deepEqual(parse({ type: "nick", name: "zoë" }), { type: "nick", name: "zoë" });
  assert.deepEqual(parse({ type: "history", room: "a", before: 10, limit: 5 }), {
    type: "history",
    room: "a",
    before: 10,
    limit: 5,
  });
  assert.deepEqual(parse({ type: "ping" }), { type: "ping" });
});

Deno.test("parseClientFrame() takes a non-JSON frame as raw text for the current room", () => {
  assert.deepEqual(parse("hello there\n"), { type: "raw", text: "hello there" });
  assert.throws(() => parse("   "), code("bad_message"));
});

Deno.test("parseClientFrame() refuses malformed JSON, non-objects and unknown types with stable codes", () => {
  assert.throws(() => parse("{nope"), code("bad_json"));
  assert.throws(() => parse("[1,2]"), code("bad_json"));
  assert.throws(() => parse('"str"'), code("bad_json"));
  assert.throws(() => parse({ type: "explode" }), code("bad_message"));
  assert.throws(() => parse({ room: "a" }), code("bad_message"));
});

Deno.test("parseClientFrame() refuses wrong field types with a sentence naming the field", () => {
  assert.throws(() => parse({ type: "send", room: "a", text: 5 }), (e: Error) => /"text"/.test(e.message));
  assert.throws(() => parse({ type: "join", room: 7 }), code("bad_message"));
  assert.throws(() => parse({ type: "join", room: "a", since: -1 }), code("bad_message"));
  assert.throws(() => parse({ type: "join", room: "a", since: 1.5 }), code("bad_message"));
  assert.throws(() => parse({ type: "history", room: "a", limit: 0 }), code("bad_message"));
  assert.throws(() => parse({ type: "history", room: "a", limit: -3 }), code("bad_message"));
  assert.deepEqual(parse({ type: "history", room: "a", before: 0, limit: 1 }), {
    type: "history",
    room: "a",
    before: 0,
    limit: 1,
  });
  assert.throws(() => parse({ type: "send", room: "a", text: "x", cid: "has space" }), code("bad_message"));
  assert.throws(() => parse({ type: "send", room: "a", to: "b", text: "x" }), code("bad_message"));
  assert.throws(() => parse({ type: "send", room: "a", text: "  " }), code("bad_message"));
});

Deno.test("parseClientFrame() enforces text length and frame size (1009)", () => {
  assert.throws(() => parse({ type: "send", room: "a", text: "x".repeat(101) }), code("text_too_long"));
  parse({ type: "send", room: "a", text: "x".repeat(100) });
  try {
    parse("x".repeat(1001));
    assert.fail("no error");
  } catch (e) {
    assert.ok(e instanceof ProtocolError);
    assert.equal(e.code, "frame_too_big");
    assert.equal(e.closeCode, 1009);
  }
  // 300 three-byte characters are 900 bytes: under the limit although length * 3 is not over it either.
  parse({ type: "send", room: "a", text: "€".repeat(90) });
});

Deno.test("room and name rules: letters, digits, _ - . within their lengths", () => {
  assert.equal(normalizeRoom("Dev.Ops-2"), "dev.ops-2");
  assert.throws(() => normalizeRoom(""), code("bad_room"));
  assert.throws(() => normalizeRoom("a b"), code("bad_room"));
  assert.throws(() => normalizeRoom("x".repeat(65)), code("bad_room"));
  assert.throws(() => parse({ type: "nick", name: "x".repeat(33) }), code("bad_name"));
  // 32 is counted in code points: 32 astral ideographs (64 UTF-16 units) are a name, 33 are not.
  parse({ type: "nick", name: "\u{20000}".repeat(32) });
  assert.throws(() => parse({ type: "nick", name: "\u{20000}".repeat(33) }), code("bad_name"));
  assert.throws(() => parse({ type: "nick", name: "<script>" }), code("bad_name"));
  assert.throws(() => parse({ type: "send", to: "a b", text: "x" }), code("bad_name"));
});

Deno.test("utf8Length() counts UTF-8 bytes including surrogate pairs", () => {
  for (const s of ["", "abc", "é", "€", "😀", "a😀é€"]) {
    assert.equal(utf8Length(s), new TextEncoder().encode(s).length, s);
  }
});

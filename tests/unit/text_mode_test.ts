/**
 * Text mode's line for every server message type, in the order a connection could get them (the lines
 * depend on who you are and which room you joined last). docs/protocol.md shows each of these lines.
 */
import assert from "node:assert/strict";
import { TextMode } from "../../lib/text_mode.ts";
import type { ServerMessage } from "../../lib/server_messages.ts";

type Sample = ServerMessage | { type: "error"; code: string; message: string };
const limits = {
  textChars: 4000,
  frameBytes: 65536,
  roomsPerConnection: 20,
  messagesPerSecond: 10,
  burst: 30,
  historyPage: 200,
  editSeconds: 900,
  searchQueryChars: 256,
  searchPage: 20,
};
const welcome = (name: string, notice?: string): Sample => ({
  type: "welcome",
  id: 1,
  name,
  uid: "u1",
  role: "member",
  guest: true,
  rooms: [],
  limits,
  version: 1,
  release: "0.1.0",
  ...(notice ? { notice } : {}),
});
const joined = (room: string, members: string[]): Sample => ({
  type: "joined",
  room,
  members,
  messages: [],
  lastSeq: 0,
  truncated: false,
  epoch: "e",
});
const msg = (room: string, from: string, text: string, more = {}): Sample => ({
  type: "message",
  room,
  seq: 3,
  from,
  text,
  ts: 1,
  ...more,
});
const direct = (from: string, to: string, text: string): Sample => ({
  type: "message",
  conv: "@AAAAAAAAAAAAAAAAAAAAAA",
  seq: 1,
  to,
  from,
  text,
  ts: 1,
});
const item = (who: string, unread: number) => ({
  conv: "@AAAAAAAAAAAAAAAAAAAAAA",
  with: who,
  uid: "u2",
  lastSeq: 1,
  lastTs: 1,
  last: null,
  lastRead: 0,
  unread,
  mentions: 0,
});

/** What one connection receives, with the line text mode makes of each (null: none). */
const conversation: [Sample, string | null][] = [
  [welcome("alice"), "* Hello, welcome: you are alice"],
  [{ type: "conversations", items: [], complete: true }, "* no direct conversations"],
  [joined("lobby", ["alice", "bob"]), "* you joined lobby (2 here: alice, bob)"],
  [msg("lobby", "bob", "hello"), "bob: hello"],
  [{ type: "ack", cid: "c1", seq: 4, ts: 1, room: "lobby" }, null],
  [{ type: "read", room: "lobby", seq: 4 }, null],
  [{ type: "typing", room: "lobby", name: "bob" }, null],
  [{ type: "presence", room: "lobby", event: "join", name: "carol" }, "* carol joined lobby"],
  [{ type: "presence", room: "lobby", event: "leave", name: "carol" }, "* carol left lobby"],
  [
    { type: "presence", room: "lobby", event: "join", name: "Ada_Lovelace", display: "Ada Lovelace" },
    "* Ada Lovelace (@Ada_Lovelace) joined lobby",
  ],
  [msg("lobby", "Ada_Lovelace", "hi all", { display: "Ada Lovelace" }), "Ada Lovelace: hi all"],
  [
    { type: "nick", old: "Ada_Lovelace", name: "Ada_Lovelace", display: "Ada King" },
    "* Ada_Lovelace is now Ada King (@Ada_Lovelace)",
  ],
  [joined("dev", ["alice"]), "* you joined dev (1 here: alice)"],
  [msg("dev", "alice", "hi"), "alice: hi"],
  [msg("lobby", "bob", "hello again"), "[lobby] bob: hello again"],
  [direct("bob", "alice", "psst"), "[@bob] bob: psst"],
  [direct("alice", "bob", "yes?"), "[@bob] alice: yes?"],
  [msg("dev", "bob", "two\nlines"), "bob: two ↵ lines"],
  [msg("dev", "bob", "fixed", { editedTs: 2 }), "bob: fixed (edited)"],
  [msg("dev", "bob", "", { deleted: true }), "bob: (deleted)"],
  [{ type: "left", room: "dev" }, "* you left dev"],
  [msg("lobby", "bob", "back here"), "bob: back here"],
  [{ type: "nick", old: "bob", name: "robert" }, "* bob is now robert"],
  [{ type: "nick", old: "alice", name: "alicia" }, "* you are now alicia"],
  [direct("alicia", "robert", "hi robert"), "[@robert] alicia: hi robert"],
  [
    { type: "history", room: "lobby", messages: [], complete: true },
    "* 0 earlier messages of lobby (from the start)",
  ],
  [
    {
      type: "history",
      conv: "@AAAAAAAAAAAAAAAAAAAAAA",
      messages: [direct("robert", "alicia", "old") as never],
      complete: false,
      lastSeq: 1,
    },
    "* 1 earlier message of the conversation",
  ],
  [{ type: "pong", ts: 1 }, "* pong"],
  [
    {
      type: "rooms",
      q: "",
      items: [{ room: "dev", topic: "Builds", members: 3 }, { room: "lobby", topic: "", members: 1 }],
      next: "lobby",
    },
    "* rooms: dev (3 here: Builds), lobby (1 here), …",
  ],
  [{ type: "rooms", q: "zz", items: [] }, "* no rooms starting with zz"],
  [
    { type: "reactions", room: "lobby", seq: 3, counts: { "👍": 1 }, by: "robert", emoji: "👍", on: true },
    "* robert reacted 👍 to #3 in lobby",
  ],
  [
    { type: "reactions", room: "lobby", seq: 3, counts: {}, by: "robert", emoji: "👍", on: false },
    "* robert took back 👍 on #3 in lobby",
  ],
  [{ type: "deleted", room: "lobby", seq: 3, by: "mod", rev: 1 }, "* mod deleted #3 in lobby"],
  [
    { type: "edited", room: "lobby", seq: 4, text: "new text", editedTs: 2, rev: 2 },
    "* #4 in lobby now reads: new text",
  ],
  [
    {
      type: "moderation",
      room: "lobby",
      action: "mute",
      name: "robert",
      uid: "u2",
      by: "mod",
      until: Date.UTC(2027, 0, 1),
      reason: "spam",
    },
    "* mod muted robert in lobby until 2027-01-01T00:00:00.000Z: spam",
  ],
  [
    { type: "moderation", room: "lobby", action: "ban", name: "robert", uid: "u2", by: "mod" },
    "* mod banned robert from lobby",
  ],
  [
    { type: "room", room: "lobby", topic: "Welcome", private: true, readOnly: true, slowModeSeconds: 10 },
    '* lobby rules: topic "Welcome", private, read-only, slow mode 10 s',
  ],
  [
    { type: "room", room: "lobby", topic: "", private: false, readOnly: false, slowModeSeconds: 0 },
    "* lobby rules: open to all",
  ],
  [
    { type: "audit", room: "lobby", entries: [{ ts: 1, action: "ban", by: "u3" }], complete: true },
    "* 1 audit entry of lobby (from the start)",
  ],
  [
    { type: "conversations", items: [item("robert", 2), item("carol", 0)], complete: false },
    "* direct conversations: robert (2 unread), carol, …",
  ],
  [{ type: "authed", name: "alicia", role: "member", uid: "u1", exp: 2 }, "* signed in as alicia"],
  [
    {
      type: "error",
      code: "rate_limited",
      message: "Slow down: at most 10 messages a second (bursts of 30)",
    },
    "! rate_limited: Slow down: at most 10 messages a second (bursts of 30)",
  ],
  [{ type: "kicked", room: "lobby", reason: "kicked" }, "* you were kicked out of lobby"],
  [{ type: "kicked", room: "lobby", reason: "banned" }, "* you are banned from lobby"],
  [{ type: "kicked", room: "lobby", reason: "forbidden" }, "* you may no longer be in lobby"],
  [{ type: "disconnected", reason: "removed by the host site" }, "* disconnected: removed by the host site"],
  [
    { type: "search", q: "cafe", results: [], next: "1000" },
    '* 0 messages found for "cafe", more after them',
  ],
  [{ type: "count", room: "hall", members: 700 }, null],
  [
    { type: "members", room: "hall", names: ["ann", "bob"], next: "bob", count: 700, prefix: "a" },
    "* 700 in hall, starting with a: ann, bob, …",
  ],
];

Deno.test("TextMode.line() makes one line of every server message type, or none for ack, read and typing", () => {
  const text = new TextMode();
  for (const [m, line] of conversation) {
    assert.equal(text.line(JSON.stringify(m)) ?? null, line, JSON.stringify(m));
  }
  // The samples cover every type: a new server message type needs a line here (and in the docs).
  const covered = new Set(conversation.map(([m]) => m.type));
  const every: Record<Sample["type"], true> = {
    welcome: true,
    authed: true,
    joined: true,
    left: true,
    kicked: true,
    message: true,
    ack: true,
    conversations: true,
    read: true,
    presence: true,
    count: true,
    members: true,
    typing: true,
    nick: true,
    history: true,
    pong: true,
    rooms: true,
    search: true,
    reactions: true,
    deleted: true,
    edited: true,
    moderation: true,
    room: true,
    audit: true,
    disconnected: true,
    error: true,
  };
  assert.deepEqual([...covered].sort(), Object.keys(every).sort());
});

Deno.test("TextMode.line() shows the welcome's notice and names at most 20 members", () => {
  const text = new TextMode();
  assert.equal(
    text.line(JSON.stringify(welcome("alice-2", 'The name "alice" is taken; you are "alice-2"'))),
    '* Hello, welcome: you are alice-2 (The name "alice" is taken; you are "alice-2")',
  );
  const many = Array.from({ length: 23 }, (_, i) => `p${String(i).padStart(2, "0")}`);
  assert.equal(
    text.line(JSON.stringify(joined("big", many))),
    `* you joined big (23 here: ${many.slice(0, 20).join(", ")}, … 3 more)`,
  );
});

Deno.test("TextMode.line() keeps every line one line: breaks in texts, reasons and errors become ↵", () => {
  const text = new TextMode();
  const lines = [
    text.line(JSON.stringify(msg("lobby", "bob", "a\r\nb\rc\u2028d"))),
    text.line(JSON.stringify({ type: "error", code: "bad_message", message: "x\ny" })),
    text.line(JSON.stringify({ type: "disconnected", reason: "a\nb" })),
  ];
  assert.deepEqual(lines, ["[lobby] bob: a ↵ b ↵ c ↵ d", "! bad_message: x ↵ y", "* disconnected: a ↵ b"]);
});

Deno.test("docs/protocol.md shows every text mode line exactly", async () => {
  const doc = await Deno.readTextFile(new URL("../../docs/protocol.md", import.meta.url));
  const missing = conversation.flatMap(([, line]) => line === null || doc.includes(line) ? [] : [line]);
  assert.deepEqual(missing, []);
});

/**
 * Unit tests of `Chat` with fake connections: the write path (send, ack, cid de-duplication), replies,
 * mentions, raw frames, and what a bad or too eager client gets (errors, rate limit, strikes).
 */
import assert from "node:assert/strict";
import { type Appended, type Draft, UnavailableError } from "../../lib/engine.ts";
import { EmbeddedEngine } from "../../lib/engine_embedded.ts";
import { CloseCode } from "../../lib/protocol.ts";
import { SYSTEM_ACTOR } from "../../lib/moderation.ts";
import type { Msg } from "../helpers/fake_peer.ts";
import { testChat } from "../helpers/chat_harness.ts";

Deno.test("Chat: a send reaches every member including the sender; the ack with its seq goes to the sender only", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  const b = await t.connect({ name: "bob", room: "r" });
  const c = await t.connect({ name: "carol", room: "other" });
  for (let i = 1; i <= 3; i++) a.frame({ type: "send", room: "r", text: `m${i}`, cid: `c${i}` });
  for (const peer of [a, b]) {
    for (let i = 1; i <= 3; i++) {
      assert.deepEqual(await peer.next("message"), {
        type: "message",
        room: "r",
        seq: i,
        from: "alice",
        text: `m${i}`,
        ts: t.clock.now(),
        cid: `c${i}`,
      });
    }
  }
  const acks = [await a.next("ack"), await a.next("ack"), await a.next("ack")];
  assert.deepEqual(
    acks,
    [1, 2, 3].map((i) => ({ type: "ack", cid: `c${i}`, seq: i, ts: t.clock.now(), room: "r" })),
  );
  await t.settle();
  assert.equal(b.all("ack").length, 0);
  assert.equal(c.all("message").length, 0);
});

Deno.test("Chat: a send without cid is delivered and not acked", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  a.frame({ type: "send", room: "r", text: "fire and forget" });
  const m = await a.next("message");
  assert.deepEqual([m.seq, m.text, m.cid], [1, "fire and forget", undefined]);
  await t.settle();
  assert.equal(a.all("ack").length, 0);
});

Deno.test("Chat: a send to a room not joined is not_member, naming the cid and the room", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  a.frame({ type: "send", room: "other", text: "hi", cid: "x1" });
  const e = await a.error("not_member");
  assert.deepEqual([e.cid, e.room, e.message], ["x1", "other", 'Cannot send to room "other": join it first']);
});

Deno.test("Chat: the same cid sent again after its ack gets the same seq and ts, and is not delivered again", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  const b = await t.connect({ name: "bob", room: "r" });
  a.frame({ type: "send", room: "r", text: "once", cid: "same" });
  const first = await a.next("ack");
  t.clock.advance(5000);
  a.frame({ type: "send", room: "r", text: "once", cid: "same" });
  const again = await a.next("ack");
  assert.deepEqual(again, first);
  a.frame({ type: "send", room: "r", text: "next", cid: "other" });
  assert.equal((await a.next("ack")).seq, 2, "no seq was used by the repeat");
  await t.settle();
  assert.deepEqual(b.all("message").map((m) => m.text), ["once", "next"]);
});

Deno.test("Chat: a cid re-sent while its first send is being written gets the same ack, from one stored message", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  const { token } = a.all("welcome")[0];
  const tab = await t.connect({ token, room: "r" });
  // Same turn: the first is still pending when the others come (one from the person's other tab).
  a.frame({ type: "send", room: "r", text: "hello", cid: "dup" });
  a.frame({ type: "send", room: "r", text: "hello", cid: "dup" });
  tab.frame({ type: "send", room: "r", text: "hello", cid: "dup" });
  assert.equal(t.chat.pendingCount, 1);
  const [x, y, z] = [await a.next("ack"), await a.next("ack"), await tab.next("ack")];
  assert.deepEqual([x.seq, y.seq, z.seq], [1, 1, 1]);
  await t.settle();
  assert.equal(a.all("message").length, 1);
  assert.equal(t.chat.pendingCount, 0);
});

Deno.test("Chat: two people may use the same cid: two messages", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  const b = await t.connect({ name: "bob", room: "r" });
  a.frame({ type: "send", room: "r", text: "from a", cid: "c1" });
  b.frame({ type: "send", room: "r", text: "from b", cid: "c1" });
  assert.deepEqual([(await a.next("ack")).seq, (await b.next("ack")).seq], [1, 2]);
});

Deno.test("Chat: a raw (non-JSON) frame is a send to the room joined last; with no room it is not_member", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "tutorial" });
  a.frame("hello from websocat");
  assert.deepEqual([(await a.next("message")).room, a.all("message")[0].text], [
    "tutorial",
    "hello from websocat",
  ]);
  a.frame({ type: "join", room: "second" });
  await a.next("joined", (j) => j.room === "second");
  a.frame("  padded  ");
  const m = await a.next("message");
  assert.deepEqual([m.room, m.text], ["second", "padded"]);
  a.frame({ type: "leave", room: "second" });
  await a.next("left");
  a.frame("back to the first");
  assert.equal((await a.next("message")).room, "tutorial");
  const none = await t.connect({ name: "nobody", room: "" });
  none.frame("hello?");
  assert.equal(
    (await none.error("not_member")).message,
    "Join a room before sending text (for example /ws?room=lobby)",
  );
});

Deno.test("Chat: a reply carries the quote of the first line of the message it answers, live and in history", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  const b = await t.connect({ name: "bob", room: "r" });
  a.frame({ type: "send", room: "r", text: "lunch at noon?\nor later", cid: "a1" });
  const first = await a.next("ack");
  b.frame({ type: "send", room: "r", text: "noon works", cid: "b1", replyTo: first.seq });
  await b.next("ack");
  const quote = { seq: first.seq, from: "alice", text: "lunch at noon?" };
  assert.deepEqual((await a.next("message", (m) => m.cid === "b1")).replyTo, quote);
  a.frame({ type: "history", room: "r" });
  const h = await a.next("history");
  assert.deepEqual(h.messages.map((m: Msg) => m.replyTo), [undefined, quote]);
});

Deno.test("Chat: a reply's quote is cut to 100 code points", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  a.frame({ type: "send", room: "r", text: "😀".repeat(150), cid: "a1" });
  await a.next("ack");
  a.frame({ type: "send", room: "r", text: "re", cid: "a2", replyTo: 1 });
  const m = await a.next("message", (x) => x.cid === "a2");
  assert.equal(m.replyTo.text, "😀".repeat(100));
});

Deno.test("Chat: a reply to a missing or deleted message is message_not_found, and nothing is stored", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  a.frame({ type: "send", room: "r", text: "one", cid: "a1" });
  a.frame({ type: "send", room: "r", text: "two", cid: "a2" });
  await a.next("ack", (x) => x.cid === "a2");
  a.frame({ type: "delete", room: "r", seq: 2 });
  await a.next("deleted");
  for (const [cid, replyTo] of [["r1", 999], ["r2", 2]] as const) {
    a.frame({ type: "send", room: "r", text: "re", cid, replyTo });
    const e = await a.error("message_not_found", (x) => x.cid === cid);
    assert.deepEqual([e.room, e.message], [
      "r",
      `Room "r" has no message ${replyTo} to reply to (or it was deleted)`,
    ]);
  }
  a.frame({ type: "send", room: "r", text: "three", cid: "a3", replyTo: 1 });
  assert.equal((await a.next("ack", (x) => x.cid === "a3")).seq, 3, "the refused replies used no seq");
});

Deno.test("Chat: @name of a person here is a mention (names as they are held); not an email, a stranger or oneself", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  await t.connect({ name: "bob", room: "" });
  await t.connect({ name: "Carol", room: "" });
  const cases: [string, string[] | undefined][] = [
    ["hi @bob", ["bob"]],
    ["@BOB and @carol, and @nobody", ["bob", "Carol"]],
    ["mail me at alice@bob.example", undefined],
    ["@alice talking to myself", undefined],
    ["thanks @bob.", ["bob"]],
    ["@bob @bob @bob", ["bob"]],
    ["no at sign at all", undefined],
  ];
  for (const [i, [text, want]] of cases.entries()) {
    a.frame({ type: "send", room: "r", text, cid: `m${i}` });
    assert.deepEqual((await a.next("message", (m) => m.cid === `m${i}`)).mentions, want, text);
  }
});

Deno.test("Chat: a mention is counted for the person: their joined says how many since their read position", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  const bob = await t.connect({ name: "bob", room: "" });
  const { token } = bob.all("welcome")[0];
  for (const [i, text] of ["@bob one", "plain", "@bob two"].entries()) {
    a.frame({ type: "send", room: "r", text, cid: `m${i}` });
  }
  await a.next("ack", (x) => x.cid === "m2");
  bob.frame({ type: "join", room: "r" });
  assert.deepEqual(pick(await bob.next("joined"), "mentions", "unread"), { mentions: 2, unread: 3 });
  bob.frame({ type: "read", room: "r", seq: 1 });
  await bob.next("read");
  const tab = await t.connect({ token, room: "r" });
  assert.deepEqual(pick(tab.all("joined")[0], "mentions", "unread", "lastRead"), {
    mentions: 1,
    unread: 2,
    lastRead: 1,
  });
});

Deno.test("Chat: at most maxMentions names are recorded per message", async () => {
  await using t = testChat({ maxMentions: 3 });
  const a = await t.connect({ name: "alice", room: "r" });
  for (const n of ["p1", "p2", "p3", "p4", "p5"]) await t.connect({ name: n, room: "" });
  a.frame({ type: "send", room: "r", text: "@p1 @p2 @p3 @p4 @p5", cid: "c1" });
  assert.deepEqual((await a.next("message")).mentions, ["p1", "p2", "p3"]);
});

Deno.test("Chat: a person who is away, known to the directory, is mentioned", async () => {
  await using t = testChat({ nameHoldSeconds: 1 });
  const dana = await t.connect({ name: "dana", room: "" });
  const { token } = dana.all("welcome")[0];
  dana.hangUp();
  t.clock.advance(1000);
  const a = await t.connect({ name: "alice", room: "r" });
  a.frame({ type: "send", room: "r", text: "@dana are you around?", cid: "m1" });
  assert.deepEqual((await a.next("message")).mentions, ["dana"]);
  const back = await t.connect({ token, room: "r" });
  assert.equal(back.all("joined")[0].mentions, 1);
});

Deno.test("Chat: frames past the burst are rate_limited and not handled", async () => {
  await using t = testChat({ messagesPerSecond: 1, burst: 3, maxStrikes: 100 });
  const a = await t.connect({ name: "alice", room: "r" });
  // The connect's join took no token: frames only.
  for (let i = 0; i < 6; i++) a.frame({ type: "send", room: "r", text: `m${i}`, cid: `c${i}` });
  const e = await a.error("rate_limited");
  assert.equal(e.message, "Slow down: at most 1 messages a second (bursts of 3)");
  await t.settle();
  assert.deepEqual(a.all("message").map((m) => m.text), ["m0", "m1", "m2"]);
  assert.equal(a.all("error").length, 3);
});

Deno.test("Chat: bad frames get an error with a stable code each, and the connection carries on", async () => {
  await using t = testChat({ maxTextChars: 100 });
  const a = await t.connect({ name: "alice", room: "r" });
  const bad: [string, string][] = [
    ["{not json", "bad_json"],
    ["[1,2,3]", "bad_json"],
    [JSON.stringify({ type: "explode" }), "bad_message"],
    [JSON.stringify({ type: "send", room: "r", text: 42 }), "bad_message"],
    [JSON.stringify({ type: "send", room: "r", text: "x".repeat(101) }), "text_too_long"],
    [JSON.stringify({ type: "join", room: "no spaces" }), "bad_room"],
    [JSON.stringify({ type: "send", room: "r", text: "hi", replyTo: 0 }), "bad_message"],
    [JSON.stringify({ type: "nick", name: "no spaces" }), "bad_name"],
  ];
  for (const [frame, code] of bad) {
    a.frame(frame);
    const e = await a.next("error");
    assert.equal(e.code, code, frame.slice(0, 40));
    assert.ok(e.message.length > 10);
  }
  a.binary(3);
  assert.equal(
    (await a.error("bad_message")).message,
    "Binary frames are not part of this protocol; send JSON text",
  );
  assert.equal(t.metrics.errors.get("bad_json"), 2);
  a.frame({ type: "send", room: "r", text: "still here", cid: "ok" });
  assert.equal((await a.next("ack")).cid, "ok");
  assert.equal(a.closedWith, undefined);
});

Deno.test("Chat: more than maxStrikes bad frames close the connection with 1008", async () => {
  await using t = testChat({ maxStrikes: 3 });
  const a = await t.connect({ name: "alice", room: "r" });
  const b = await t.connect({ name: "bob", room: "r" });
  for (let i = 0; i < 3; i++) a.frame("{");
  await t.settle();
  assert.equal(a.closedWith, undefined, "maxStrikes strikes are allowed");
  a.frame("{");
  assert.deepEqual(await a.closed(), { code: CloseCode.POLICY, reason: "too many bad frames" });
  assert.equal(a.all("error").length, 4);
  assert.deepEqual(await b.next("presence"), { type: "presence", room: "r", event: "leave", name: "alice" });
  assert.equal(t.chat.connectionCount, 1);
});

Deno.test("Chat: a frame over frameBytes closes with 1009, text or binary", async () => {
  await using t = testChat({ maxFrameBytes: 1024 });
  const a = await t.connect({ name: "alice", room: "r" });
  a.frame("x".repeat(5000));
  assert.equal((await a.error("frame_too_big")).message, "Frames are at most 1024 bytes, got 5000");
  assert.deepEqual(await a.closed(), { code: CloseCode.TOO_BIG, reason: "frame_too_big" });
  const b = await t.connect({ name: "bob", room: "r" });
  b.binary(2000);
  await b.error("frame_too_big");
  assert.equal((await b.closed()).code, CloseCode.TOO_BIG);
});

/** The embedded engine with writes that fail while `failing` is set (a full disk, or Redis down). */
function failingWrites(failure: () => Error | undefined) {
  return class extends EmbeddedEngine {
    override append(batch: readonly Draft[]): Promise<Appended[]> {
      const e = failure();
      return e ? Promise.reject(e) : super.append(batch);
    }
  };
}

Deno.test("Chat: a failed write answers store_failed to its senders (no strike); the next write works again", async () => {
  let failing: Error | undefined = new Error("database or disk is full");
  await using t = testChat({ maxStrikes: 1 }, { engineClass: failingWrites(() => failing) });
  const a = await t.connect({ name: "alice", room: "r" });
  for (let i = 0; i < 3; i++) a.frame({ type: "send", room: "r", text: "hi", cid: `f${i}` });
  for (let i = 0; i < 3; i++) {
    const e = await a.error("store_failed", (x) => x.cid === `f${i}`);
    assert.deepEqual([e.room, e.message], [
      "r",
      "The message could not be stored and was not delivered; send it again",
    ]);
  }
  assert.equal(a.closedWith, undefined, "the server's fault is never a strike");
  assert.equal(t.chat.problem, "store failing");
  assert.equal(t.logs.filter((l) => l.includes('msg="store write failed"')).length, 1, "logged once");
  failing = undefined;
  a.frame({ type: "send", room: "r", text: "again", cid: "f0" });
  assert.equal((await a.next("ack")).seq, 1);
  assert.equal(t.chat.problem, undefined);
  assert.ok(t.logs.some((l) => l.includes('msg="store recovered"')));
});

Deno.test("Chat: a write that finds the engine out of reach answers unavailable", async () => {
  await using t = testChat({}, { engineClass: failingWrites(() => new UnavailableError("redis down")) });
  const a = await t.connect({ name: "alice", room: "r" });
  a.frame({ type: "send", room: "r", text: "hi", cid: "u1" });
  const e = await a.error("unavailable");
  assert.deepEqual([e.cid, e.room], ["u1", "r"]);
  assert.match(e.message, /out of reach/);
});

Deno.test("Chat: post() stores and delivers a message from the host application, with no connection", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "news" });
  const m = await t.chat.post(SYSTEM_ACTOR, "news", "maintenance at noon", "p1");
  assert.deepEqual([m.seq, m.from, m.text, m.cid], [1, "system", "maintenance at noon", "p1"]);
  assert.equal((await a.next("message")).text, "maintenance at noon");
  const again = await t.chat.post(SYSTEM_ACTOR, "news", "maintenance at noon", "p1");
  assert.equal(again.seq, 1, "a repeated cid is the message stored then");
  assert.equal(t.metrics.messagesStored, 1);
});

function pick(m: Msg, ...fields: string[]): Msg {
  return Object.fromEntries(fields.map((f) => [f, m[f]]));
}

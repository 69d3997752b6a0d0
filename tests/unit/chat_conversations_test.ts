/** Unit tests of `Chat` with fake connections: direct messages, the conversation list, read positions. */
import assert from "node:assert/strict";
import type { FakePeer, Msg } from "../helpers/fake_peer.ts";
import { type TestChat, testChat } from "../helpers/chat_harness.ts";

/** Sends a DM and waits for its ack. */
async function dm(from: FakePeer, to: string, text: string, cid: string): Promise<Msg> {
  from.frame({ type: "send", to, text, cid });
  return await from.next("ack", (a) => a.cid === cid);
}

/** A person connected to no room, with their welcome's token. */
async function person(t: TestChat, name: string): Promise<FakePeer> {
  return await t.connect({ name, room: "" });
}

const tokenOf = (p: FakePeer): string => p.all("welcome")[0].token;

Deno.test("Chat: a direct message is acked with its conv and reaches every connection of both people, no one else", async () => {
  await using t = testChat();
  const a = await person(t, "alice");
  const a2 = await t.connect({ token: tokenOf(a), room: "" });
  const b = await person(t, "bob");
  const c = await person(t, "carol");
  a.frame({ type: "send", to: "BOB", text: "psst", cid: "d1" });
  const ack = await a.next("ack");
  assert.match(ack.conv, /^@[A-Za-z0-9_-]{22}$/);
  assert.deepEqual(ack, { type: "ack", cid: "d1", seq: 1, ts: t.clock.now(), conv: ack.conv, to: "bob" });
  for (const p of [a, a2, b]) {
    assert.deepEqual(await p.next("message"), {
      type: "message",
      conv: ack.conv,
      seq: 1,
      to: "bob",
      from: "alice",
      text: "psst",
      ts: t.clock.now(),
      cid: "d1",
    });
  }
  b.frame({ type: "send", to: "alice", text: "yes?", cid: "b1" });
  const back = await b.next("ack");
  assert.deepEqual([back.conv, back.seq, back.to], [ack.conv, 2, "alice"]);
  await t.settle();
  assert.equal(c.all("message").length, 0);
  assert.equal(b.all("ack").length, 1);
});

Deno.test("Chat: a direct message re-sent with its cid gets the first ack and is not delivered again", async () => {
  await using t = testChat();
  const a = await person(t, "alice");
  const b = await person(t, "bob");
  const first = await dm(a, "bob", "psst", "d1");
  t.clock.advance(100);
  const again = await dm(a, "bob", "psst", "d1");
  assert.deepEqual(again, first);
  await t.settle();
  assert.equal(b.all("message").length, 1);
});

Deno.test("Chat: a direct message to no one is user_not_found, to oneself bad_message, both with the cid", async () => {
  await using t = testChat();
  const a = await person(t, "alice");
  a.frame({ type: "send", to: "nobody", text: "hello?", cid: "n1" });
  const e = await a.error("user_not_found");
  assert.deepEqual([e.cid, e.message], ["n1", 'No one is called "nobody"']);
  a.frame({ type: "send", to: "ALICE", text: "me", cid: "n2" });
  const self = await a.error("bad_message");
  assert.deepEqual([self.cid, self.message], ["n2", "You cannot send a direct message to yourself"]);
  a.frame({ type: "conversations" });
  assert.deepEqual((await a.next("conversations", (m) => m.items !== undefined)).items, []);
});

Deno.test("Chat: a direct message to someone away reaches them by the directory; the list counts it unread", async () => {
  await using t = testChat({ nameHoldSeconds: 1 });
  const bob = await person(t, "bob");
  const token = tokenOf(bob);
  bob.frame({ type: "nick", name: "robert" });
  await bob.next("nick");
  bob.hangUp();
  t.clock.advance(1000); // past the name hold: only the directory knows robert now
  const a = await person(t, "alice");
  const ack = await dm(a, "robert", "are you there?", "d1");
  assert.equal(ack.to, "robert");
  t.clock.advance(10);
  await dm(a, "robert", "second", "d2");
  const back = t.open({ token, room: "" });
  const list = await back.next("conversations");
  assert.equal(list.complete, true);
  assert.deepEqual(
    list.items.map((i: Msg) => pick(i, "conv", "with", "lastSeq", "lastTs", "lastRead", "unread")),
    [{ conv: ack.conv, with: "alice", lastSeq: 2, lastTs: t.clock.now(), lastRead: 0, unread: 2 }],
  );
  assert.deepEqual(pick(list.items[0].last, "type", "conv", "seq", "from", "text"), {
    type: "message",
    conv: ack.conv,
    seq: 2,
    from: "alice",
    text: "second",
  });
  a.frame({ type: "conversations" });
  const mine = (await a.next("conversations", (m) => m.items.length === 1)).items[0];
  assert.deepEqual([mine.with, mine.unread], ["robert", 0], "one's own messages are read");
});

Deno.test("Chat: conversations page newest first with before, capped by limit", async () => {
  await using t = testChat();
  const me = await person(t, "me");
  for (let i = 0; i < 3; i++) {
    await person(t, `p${i}`);
    await dm(me, `p${i}`, `to p${i}`, `c${i}`);
    t.clock.advance(5);
  }
  me.frame({ type: "conversations", limit: 2 });
  const first = await me.next("conversations", (m) => m.items.length === 2);
  assert.deepEqual([first.items.map((i: Msg) => i.with), first.complete], [["p2", "p1"], false]);
  me.frame({ type: "conversations", before: first.items[1].lastTs, limit: 2 });
  const second = await me.next("conversations", (m) => m.items.length === 1);
  assert.deepEqual([second.items[0].with, second.complete], ["p0", true]);
  const api = await t.chat.conversationsOf(me.all("welcome")[0].uid, Number.MAX_SAFE_INTEGER, 10);
  assert.deepEqual(api.items.map((i) => i.with), ["p2", "p1", "p0"]);
});

Deno.test("Chat: history {conv} reads older than before or newer than after; a stranger is not_member", async () => {
  await using t = testChat();
  const a = await person(t, "alice");
  const b = await person(t, "bob");
  const c = await person(t, "carol");
  for (let i = 1; i <= 3; i++) await dm(a, "bob", `m${i}`, `c${i}`);
  const { conv } = a.all("ack")[0];
  b.frame({ type: "history", conv });
  const h = await b.next("history");
  assert.deepEqual(
    [h.conv, h.messages.map((m: Msg) => [m.seq, m.text, m.to, m.room]), h.complete, h.lastSeq],
    [
      conv,
      [[1, "m1", undefined, undefined], [2, "m2", undefined, undefined], [3, "m3", undefined, undefined]],
      true,
      3,
    ],
  );
  b.frame({ type: "history", conv, after: 1, limit: 1 });
  const forward = await b.next("history");
  assert.deepEqual([forward.messages.map((m: Msg) => m.seq), forward.complete, forward.lastSeq], [
    [2],
    false,
    3,
  ]);
  b.frame({ type: "history", conv, before: 3, limit: 1 });
  assert.deepEqual((await b.next("history")).messages.map((m: Msg) => m.seq), [2]);
  c.frame({ type: "history", conv });
  const e = await c.error("not_member");
  assert.deepEqual([e.conv, e.message], [conv, `You are not in conversation "${conv}"`]);
});

Deno.test("Chat: read {conv} is stored per person, clamped, never backwards, and told to the person's other connections", async () => {
  await using t = testChat();
  const a = await person(t, "alice");
  const b = await person(t, "bob");
  const b2 = await t.connect({ token: tokenOf(b), room: "" });
  const c = await person(t, "carol");
  for (let i = 1; i <= 3; i++) await dm(a, "bob", `m${i}`, `c${i}`);
  const { conv } = a.all("ack")[0];
  b.frame({ type: "read", conv, seq: 2 });
  assert.deepEqual(await b2.next("read"), { type: "read", conv, seq: 2 });
  assert.deepEqual(await b.next("read"), { type: "read", conv, seq: 2 });
  b.frame({ type: "read", conv, seq: 1 });
  assert.equal((await b.next("read")).seq, 2, "never backwards: the answer says where it is");
  await t.settle();
  assert.equal(b2.all("read").length, 1, "a read that did not move is the asker's answer only");
  b.frame({ type: "read", conv, seq: 1000 });
  assert.equal((await b2.next("read")).seq, 3, "clamped to the last seq");
  b.frame({ type: "conversations" });
  const item = (await b.next("conversations", (m) => m.items?.length === 1)).items[0];
  assert.deepEqual([item.lastRead, item.unread], [3, 0]);
  assert.equal(a.all("read").length, 0, "the other person hears nothing");
  c.frame({ type: "read", conv, seq: 1 });
  assert.equal((await c.error("not_member")).conv, conv);
});

Deno.test("Chat: read {room} answers read; joined carries lastRead and unread; a send reads up to it; not_member outside", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  const b = await t.connect({ name: "bob", room: "r" });
  for (let i = 1; i <= 5; i++) a.frame({ type: "send", room: "r", text: `m${i}`, cid: `c${i}` });
  await b.next("message", (m) => m.seq === 5);
  b.frame({ type: "read", room: "r", seq: 3 });
  assert.deepEqual(await b.next("read"), { type: "read", room: "r", seq: 3 });
  const b2 = await t.connect({ token: tokenOf(b), room: "r" });
  assert.deepEqual(pick(b2.all("joined")[0], "lastSeq", "lastRead", "unread"), {
    lastSeq: 5,
    lastRead: 3,
    unread: 2,
  });
  b2.frame({ type: "send", room: "r", text: "mine", cid: "own" });
  await b2.next("ack");
  b2.frame({ type: "leave", room: "r" });
  await b2.next("left");
  b2.frame({ type: "read", room: "r", seq: 6 });
  assert.equal((await b2.error("not_member")).message, 'Cannot mark as read room "r": join it first');
  b2.frame({ type: "join", room: "r" });
  assert.deepEqual(pick(await b2.next("joined"), "lastSeq", "lastRead", "unread"), {
    lastSeq: 6,
    lastRead: 6,
    unread: 0,
  });
  await t.settle();
  assert.equal(b2.all("read").length, 0, "a send moves the position without a read line");
});

function pick(m: Msg, ...fields: string[]): Msg {
  return Object.fromEntries(fields.map((f) => [f, m[f]]));
}

Deno.test("Chat: messages to someone who has not answered are first contacts, at most firstContactsPerHour a person", async () => {
  await using t = testChat({ firstContactsPerHour: 2 });
  const a = await person(t, "alice");
  const b = await person(t, "bob");
  await person(t, "carol");
  await dm(a, "bob", "hi", "d1");
  await dm(a, "carol", "hi", "d2");
  a.frame({ type: "send", to: "bob", text: "hello?", cid: "d3" });
  const err = await a.error("too_many_contacts");
  assert.deepEqual([err.cid, err.retryAfter], ["d3", 1800]);
  assert.match(err.message, /^You have written 2 times within the hour to people who have not answered/);
  // Once bob answers, writing to him is a conversation, not a contact: no allowance needed.
  await dm(b, "alice", "hey", "b1");
  await dm(a, "bob", "hello!", "d4");
  a.frame({ type: "send", to: "carol", text: "hello?", cid: "d5" });
  await a.error("too_many_contacts");
  // The allowance grows back over the hour: one more after half of it.
  t.clock.advance(1_800_000);
  await dm(a, "carol", "hello?", "d6");
  await t.settle();
  assert.equal(b.all("message").filter((m) => m.from === "alice").length, 2, "nothing refused was stored");
});

Deno.test("Chat: first contacts from one address are capped together (firstContactsPerIpPerHour), whoever sends them", async () => {
  await using t = testChat({ firstContactsPerHour: 10, firstContactsPerIpPerHour: 3 });
  await person(t, "victim");
  const spammers = [];
  for (let i = 0; i < 4; i++) {
    spammers.push(await t.connect({ name: `g${i}`, room: "", address: "192.0.2.7" }));
  }
  for (const [i, g] of spammers.slice(0, 3).entries()) await dm(g, "victim", "buy now", `s${i}`);
  spammers[3].frame({ type: "send", to: "victim", text: "buy now", cid: "s3" });
  const err = await spammers[3].error("too_many_contacts");
  assert.match(err.message, /^Your address has written 3 times within the hour/);
  // Another address has its own allowance.
  const other = await t.connect({ name: "h", room: "", address: "198.51.100.1" });
  await dm(other, "victim", "hello", "o1");
});

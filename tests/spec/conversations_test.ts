/**
 * Direct conversations, the people directory and read state: the engine side run against every engine
 * (embedded on MemoryStore and SqliteStore; RedisEngine when TEST_REDIS_URL is set), then the protocol
 * over real sockets (on Redis too when TEST_REDIS_URL is set).
 * @module
 */
import assert from "node:assert/strict";
import { conversationId, type Draft } from "../../lib/engine.ts";
import { engineKinds } from "../helpers/engine_kinds.ts";
import { faultyStore, type Msg, startServer, TestClient } from "../helpers/test_server.ts";

const kinds = engineKinds();

/** Keys of their own per test: Redis runs are not flushed between engine tests. */
const fresh = (p: string) => `${p}-${crypto.randomUUID().slice(0, 8)}`;

const dm = (from: string, to: string, text: string, ts: number, extra: Partial<Draft> = {}): Draft => ({
  room: conversationId(from, to),
  from: `name-${from}`,
  text,
  ts,
  key: from,
  between: [from, to],
  ...extra,
});

Deno.test("conversationId() is the same either way round, starts with @ and differs per pair", () => {
  const ab = conversationId("a", "b");
  assert.equal(ab, conversationId("b", "a"));
  assert.match(ab, /^@[A-Za-z0-9_-]{22}$/);
  assert.notEqual(ab, conversationId("a", "c"));
  // The separator keeps ("a\nb", "c") and ("a", "b\nc") apart.
  assert.notEqual(conversationId("ab", "c"), conversationId("a", "bc"));
});

for (const [kind, make] of kinds) {
  Deno.test(`${kind}: a direct message is stored like a room message and lists the conversation for both`, async () => {
    const u = await make();
    const a = fresh("ka"), b = fresh("kb"), c = fresh("kc");
    const conv = conversationId(a, b);
    const t = Date.now();
    const out = await u.engine.append([dm(a, b, "one", t, { cid: "c1" }), dm(b, a, "two", t + 1)]);
    assert.deepEqual(out.map((o) => [o.message.seq, o.duplicate]), [[1, false], [2, false]]);
    assert.equal((await u.engine.append([dm(a, b, "one", t + 1, { cid: "c1" })]))[0].duplicate, true);
    await u.engine.append([dm(a, c, "other", t + 5)]);
    const page = await u.engine.before(conv, Number.MAX_SAFE_INTEGER, 10);
    assert.deepEqual(page.messages.map((m) => [m.seq, m.text]), [[1, "one"], [2, "two"]]);
    assert.deepEqual(await u.engine.conversations!(a, Number.MAX_SAFE_INTEGER, 10), [
      { conv: conversationId(a, c), peer: c, lastTs: t + 5 },
      { conv, peer: b, lastTs: t + 1 },
    ]);
    assert.deepEqual(await u.engine.conversations!(a, t + 5, 10), [{ conv, peer: b, lastTs: t + 1 }]);
    assert.deepEqual(await u.engine.conversations!(b, Number.MAX_SAFE_INTEGER, 1), [
      { conv, peer: a, lastTs: t + 1 },
    ]);
    assert.equal(await u.engine.conversationPeer!(b, conv), a);
    assert.equal(await u.engine.conversationPeer!(c, conv), undefined);
    // Each sender's own message is read: a read 1, b read 2.
    assert.deepEqual(await u.engine.readPositions!(a, [conv]), [1]);
    assert.deepEqual(await u.engine.readPositions!(b, [conv]), [2]);
    await u.cleanup();
  });

  Deno.test(`${kind}.wrote() tells whether a person has written in a conversation (first contacts are to those who have not)`, async () => {
    const u = await make();
    const a = fresh("ka"), b = fresh("kb");
    const conv = conversationId(a, b);
    assert.deepEqual([await u.engine.wrote(conv, a), await u.engine.wrote(conv, b)], [false, false]);
    await u.engine.append([dm(a, b, "hi", Date.now()), dm(a, b, "there?", Date.now())]);
    assert.deepEqual([await u.engine.wrote(conv, a), await u.engine.wrote(conv, b)], [true, false]);
    await u.engine.append([dm(b, a, "yes", Date.now())]);
    assert.equal(await u.engine.wrote(conv, b), true);
    assert.equal(await u.engine.wrote(conversationId(a, fresh("kc")), a), false, "per conversation");
    await u.cleanup();
  });

  Deno.test(`${kind}.markRead() never moves back and is clamped to the last seq`, async () => {
    const u = await make();
    const room = fresh("r"), k = fresh("k");
    const t = Date.now();
    await u.engine.append([1, 2, 3].map((i) => ({ room, from: "x", text: `m${i}`, ts: t, key: "other" })));
    assert.deepEqual(await u.engine.readPositions!(k, [room, fresh("none")]), [0, 0]);
    assert.deepEqual(await u.engine.markRead!(k, room, 2), { seq: 2, moved: true });
    assert.deepEqual(await u.engine.markRead!(k, room, 1), { seq: 2, moved: false });
    assert.deepEqual(await u.engine.markRead!(k, room, 99), { seq: 3, moved: true });
    assert.deepEqual(await u.engine.markRead!(k, room, 3), { seq: 3, moved: false });
    assert.deepEqual(await u.engine.readPositions!(k, [room]), [3]);
    assert.deepEqual(await u.engine.markRead!(k, fresh("empty"), 5), { seq: 0, moved: false });
    await u.cleanup();
  });

  Deno.test(`${kind}: the people directory finds a person by name and lookalike, and follows renames`, async () => {
    const u = await make();
    const key = fresh("p");
    const name = fresh("dora");
    assert.equal(await u.engine.findPerson!(name), undefined);
    await u.engine.rememberPerson!({ key, uid: "uid-1", name });
    assert.deepEqual(await u.engine.findPerson!(name), { key, uid: "uid-1", name });
    assert.deepEqual(await u.engine.findPerson!(name.toUpperCase()), { key, uid: "uid-1", name });
    const renamed = fresh("dorothy");
    await u.engine.rememberPerson!({ key, uid: "uid-1", name: renamed });
    assert.equal(await u.engine.findPerson!(name), undefined, "the old name is free");
    assert.deepEqual(await u.engine.findPerson!(renamed), { key, uid: "uid-1", name: renamed });
    assert.deepEqual(await u.engine.people!([key, fresh("nobody")]), [
      { key, uid: "uid-1", name: renamed },
      undefined,
    ]);
    await u.cleanup();
  });

  Deno.test(`${kind}: a guest who never wrote leaves the directory after guestForgetMs; one who wrote or was written to stays`, async () => {
    const u = await make({ guestForgetMs: 300 });
    const [silent, writer, written, signed] = ["ks", "kw", "kt", "u:kn"].map(fresh);
    const names = [silent, writer, written, signed].map((k) => fresh(`n${k.slice(0, 2)}`));
    for (const [i, key] of [silent, writer, written, signed].entries()) {
      await u.engine.rememberPerson!({ key, uid: key, name: names[i] }, i < 3);
    }
    const room = fresh("r");
    await u.engine.append([{ room, from: names[1], text: "hello", ts: Date.now(), key: writer }]);
    await u.engine.append([dm(signed, written, "are you there?", Date.now())]);
    await u.engine.markRead!(silent, room, 1);
    await new Promise((r) => setTimeout(r, 450));
    await u.prune();
    assert.equal(await u.engine.findPerson!(names[0]), undefined, "the silent guest is forgotten");
    assert.deepEqual(
      (await u.engine.people!([silent, writer, written, signed])).map((p) => p?.name),
      [undefined, names[1], names[2], names[3]],
    );
    for (const i of [1, 2, 3]) {
      assert.equal((await u.engine.findPerson!(names[i]))?.key, [silent, writer, written, signed][i]);
    }
    // The embedded stores forget the guest's read positions with it (Redis keeps them per room).
    if (kind !== "RedisEngine") assert.deepEqual(await u.engine.readPositions!(silent, [room]), [0]);
    // Connecting again puts the guest back, for another while.
    await u.engine.rememberPerson!({ key: silent, uid: silent, name: names[0] }, true);
    assert.equal((await u.engine.findPerson!(names[0]))?.key, silent);
    await u.cleanup();
  });

  Deno.test(`${kind}: age retention takes what a message owns; an emptied conversation leaves both lists with its read positions`, async () => {
    const u = await make({ retainMs: 2000 });
    const a = fresh("ka"), b = fresh("kb"), room = fresh("r");
    const conv = conversationId(a, b);
    const t0 = Date.now();
    const bob = { key: b, name: "bob" };
    // Young enough when stored (so no append ages it), too old when pruned 800 ms later.
    await u.engine.append([
      { room, from: "alice", text: "@bob old", ts: t0 - 1500, key: a, mentions: [bob] },
      { room, from: "alice", text: "new", ts: t0, key: a },
      dm(a, b, "anyone?", t0 - 1500),
    ]);
    const caps = { maxEmoji: 5, maxPerPerson: 5, maxTotal: 10 };
    assert.equal((await u.engine.react(room, 1, b, "👍", true, caps)).ok, true);
    await u.engine.markRead(b, conv, 1);
    assert.deepEqual(await u.engine.mentionCounts(b, [{ room, after: 0 }]), { [room]: 1 });
    await new Promise((r) => setTimeout(r, 800));
    await u.prune();
    assert.deepEqual((await u.engine.after(room, 0, 10)).messages.map((m) => m.text), ["new"]);
    assert.deepEqual([...(await u.engine.reactions(room, 1, 2, b)).keys()], []);
    assert.deepEqual(await u.engine.mentionCounts(b, [{ room, after: 0 }]), {});
    assert.deepEqual((await u.engine.after(conv, 0, 10)).messages, []);
    assert.deepEqual(await u.engine.conversations(a, Number.MAX_SAFE_INTEGER, 10), []);
    assert.deepEqual(await u.engine.conversations(b, Number.MAX_SAFE_INTEGER, 10), []);
    assert.equal(await u.engine.conversationPeer(b, conv), undefined);
    assert.deepEqual(await u.engine.readPositions(b, [conv]), [0]);
    assert.equal(await u.engine.wrote(conv, a), false, "a new message there is a first contact again");
    // The conversation's seqs go on: none is used twice.
    const [again] = await u.engine.append([dm(a, b, "hello again", Date.now())]);
    assert.equal(again.message.seq, 2);
    assert.equal((await u.engine.conversations(b, Number.MAX_SAFE_INTEGER, 10))[0].conv, conv);
    await u.cleanup();
  });

  if (kind !== "MemoryStore") {
    Deno.test(`${kind}: conversations, the directory and read positions survive a restart`, async () => {
      const u = await make();
      const a = fresh("ka"), b = fresh("kb");
      const conv = conversationId(a, b);
      await u.engine.append([dm(a, b, "hello", Date.now()), dm(a, b, "again", Date.now())]);
      await u.engine.rememberPerson!({ key: b, uid: "ub", name: fresh("bea") });
      await u.engine.markRead!(b, conv, 1);
      const e = await u.reopen!();
      assert.equal((await e.conversations!(b, Number.MAX_SAFE_INTEGER, 5))[0].conv, conv);
      assert.deepEqual(await e.readPositions!(b, [conv]), [1]);
      assert.equal((await e.people!([b]))[0]?.uid, "ub");
      assert.deepEqual((await e.after(conv, 0, 5)).messages.map((m) => m.text), ["hello", "again"]);
      await u.cleanup();
    });
  }
}

// ---- the protocol ---------------------------------------------------------------------------------

/** Waits until `c` has seen `conversations` and takes it. */
const conversations = (c: TestClient) => c.next("conversations");

Deno.test("a DM to someone offline is stored and acked; they get it with an unread count when they connect", async () => {
  await using s = await startServer();
  const bob = await TestClient.connect(s, { name: "bob", room: "" });
  const bobToken = bob.all("welcome")[0].token;
  assert.deepEqual((await conversations(bob)).items, []);
  await bob.close();
  await using alice = await TestClient.connect(s, { name: "alice", room: "" });
  alice.send({ type: "send", to: "bob", text: "are you there?", cid: "d1" });
  const ack = await alice.next("ack", (m) => m.cid === "d1");
  assert.equal(ack.seq, 1);
  assert.equal(ack.to, "bob");
  assert.match(ack.conv, /^@/);
  const mine = await alice.next("message", (m) => m.cid === "d1");
  assert.deepEqual([mine.conv, mine.seq, mine.to, mine.from, mine.text], [
    ack.conv,
    1,
    "bob",
    "alice",
    "are you there?",
  ]);
  alice.send({ type: "send", to: "bob", text: "second", cid: "d2" });
  await alice.next("ack", (m) => m.cid === "d2");

  // Bob comes back on another device (same token): the list says 2 unread.
  await using back = await TestClient.connect(s, { token: bobToken, room: "" });
  const list = await conversations(back);
  assert.equal(list.complete, true);
  assert.equal(list.items.length, 1);
  const item = list.items[0];
  assert.deepEqual([item.conv, item.with, item.lastSeq, item.unread, item.lastRead], [
    ack.conv,
    "alice",
    2,
    2,
    0,
  ]);
  assert.equal(item.last.text, "second");
  assert.equal(item.last.conv, ack.conv);
  // Alice's own messages are read for her.
  alice.send({ type: "conversations" });
  assert.equal((await alice.next("conversations", (m) => m.items.length === 1)).items[0].unread, 0);

  back.send({ type: "history", conv: ack.conv });
  const h = await back.next("history");
  assert.deepEqual(h.messages.map((m: Msg) => [m.seq, m.from, m.text]), [[1, "alice", "are you there?"], [
    2,
    "alice",
    "second",
  ]]);
  assert.equal(h.complete, true);
  back.send({ type: "history", conv: ack.conv, after: 1 });
  const forward = await back.next("history");
  assert.deepEqual(forward.messages.map((m: Msg) => m.seq), [2]);
  assert.equal(forward.lastSeq, 2);
});

Deno.test("a DM to a name that never existed is user_not_found; to yourself bad_message; nothing is stored", async () => {
  await using s = await startServer();
  await using alice = await TestClient.connect(s, { name: "alice", room: "" });
  alice.send({ type: "send", to: "nobody", text: "hello?", cid: "n1" });
  assert.deepEqual(
    [(await alice.next("error")).code, alice.all("error")[0].cid],
    ["user_not_found", "n1"],
  );
  alice.send({ type: "send", to: "ALICE", text: "me", cid: "n2" });
  const self = await alice.next("error");
  assert.deepEqual([self.code, self.cid], ["bad_message", "n2"]);
  alice.send({ type: "conversations" });
  assert.deepEqual((await alice.next("conversations", (m) => m.items !== undefined)).items, []);
});

Deno.test("a DM reaches the same person after a rename, and the list shows the new name", async () => {
  await using s = await startServer();
  const bob = await TestClient.connect(s, { name: "bob", room: "" });
  const token = bob.all("welcome")[0].token;
  bob.send({ type: "nick", name: "robert" });
  await bob.next("nick");
  await bob.close();
  await using alice = await TestClient.connect(s, { name: "alice", room: "" });
  alice.send({ type: "send", to: "robert", text: "hi robert", cid: "y" });
  const ack = await alice.next("ack");
  await using again = await TestClient.connect(s, { token, room: "" });
  const list = await conversations(again);
  assert.deepEqual(list.items.map((i: Msg) => [i.conv, i.with, i.unread]), [[ack.conv, "alice", 1]]);
  alice.send({ type: "conversations" });
  assert.equal((await alice.next("conversations", (m) => m.items?.length === 1)).items[0].with, "robert");
});

Deno.test("live DMs go to every connection of both people with conv and seq; a re-sent cid is acked, not delivered again", async () => {
  await using s = await startServer();
  await using a = await TestClient.connect(s, { name: "alice", room: "" });
  await using a2 = await TestClient.connect(s, { token: a.all("welcome")[0].token, room: "" });
  await using b = await TestClient.connect(s, { name: "bob", room: "" });
  await using c = await TestClient.connect(s, { name: "carol", room: "" });
  a.send({ type: "send", to: "bob", text: "psst", cid: "d1" });
  for (const x of [a, a2, b]) {
    const m = await x.next("message");
    assert.deepEqual([m.seq, m.to, m.from, m.text, m.room], [1, "bob", "alice", "psst", undefined]);
    assert.match(m.conv, /^@/);
  }
  const first = await a.next("ack");
  a.send({ type: "send", to: "bob", text: "psst", cid: "d1" });
  const again = await a.next("ack");
  assert.deepEqual([again.seq, again.ts, again.conv], [first.seq, first.ts, first.conv]);
  b.send({ type: "send", to: "alice", text: "yes?", cid: "b1" });
  assert.equal((await a.next("message", (m) => m.cid === "b1")).seq, 2);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(b.all("message").length, 2, "the re-send was not delivered twice");
  assert.equal(c.all("message").length, 0);
  // Carol cannot read or mark their conversation.
  c.send({ type: "history", conv: first.conv });
  assert.deepEqual([(await c.next("error")).code, c.all("error")[0].conv], ["not_member", first.conv]);
  c.send({ type: "read", conv: first.conv, seq: 1 });
  assert.equal((await c.next("error")).code, "not_member");
});

Deno.test("read {conv}: stored per person, clamped, never backwards, told to the person's other connections", async () => {
  await using s = await startServer();
  await using a = await TestClient.connect(s, { name: "alice", room: "" });
  await using b = await TestClient.connect(s, { name: "bob", room: "" });
  await using b2 = await TestClient.connect(s, { token: b.all("welcome")[0].token, room: "" });
  for (let i = 1; i <= 3; i++) a.send({ type: "send", to: "bob", text: `m${i}`, cid: `c${i}` });
  const { conv } = await a.next("ack", (m) => m.cid === "c3");
  b.send({ type: "read", conv, seq: 2 });
  assert.deepEqual(await b2.next("read"), { type: "read", conv, seq: 2 });
  assert.deepEqual(await b.next("read"), { type: "read", conv, seq: 2 });
  b.send({ type: "read", conv, seq: 1 });
  assert.equal((await b.next("read")).seq, 2, "never backwards: the answer says where it is");
  b.send({ type: "read", conv, seq: 1000 });
  assert.equal((await b2.next("read")).seq, 3, "clamped to the last seq");
  b.send({ type: "conversations" });
  const item = (await b.next("conversations", (m) => m.items?.length === 1)).items[0];
  assert.deepEqual([item.lastRead, item.unread], [3, 0]);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(a.all("read").length, 0, "the other person hears nothing");
  b.send({ type: "read", conv, seq: -1 });
  assert.equal((await b.next("error")).code, "bad_message");
  b.send({ type: "read", conv: "@short", seq: 1 });
  assert.equal((await b.next("error")).code, "bad_message");
});

Deno.test("read {room}: joined carries lastRead and unread; own messages count as read; not_member outside", async () => {
  await using s = await startServer();
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  const b = await TestClient.connect(s, { name: "bob", room: "r" });
  const token = b.all("welcome")[0].token;
  assert.deepEqual([(await b.next("joined")).lastRead, b.all("joined")[0].unread], [0, 0]);
  for (let i = 1; i <= 5; i++) a.send({ type: "send", room: "r", text: `m${i}`, cid: `c${i}` });
  await b.next("message", (m) => m.seq === 5);
  b.send({ type: "read", room: "r", seq: 3 });
  assert.deepEqual(await b.next("read"), { type: "read", room: "r", seq: 3 });
  await b.close();
  await using b2 = await TestClient.connect(s, { token, room: "r" });
  const joined = await b2.next("joined");
  assert.deepEqual([joined.lastSeq, joined.lastRead, joined.unread], [5, 3, 2]);
  b2.send({ type: "send", room: "r", text: "mine", cid: "own" });
  await b2.next("ack");
  b2.send({ type: "leave", room: "r" });
  await b2.next("left");
  b2.send({ type: "read", room: "r", seq: 6 });
  assert.equal((await b2.next("error")).code, "not_member");
  b2.send({ type: "join", room: "r" });
  const rejoined = await b2.next("joined");
  assert.deepEqual(
    [rejoined.lastSeq, rejoined.lastRead, rejoined.unread],
    [6, 6, 0],
    "a send reads up to it",
  );
  // Alice's position is hers: her own five messages.
  a.send({ type: "leave", room: "r" });
  await a.next("left");
  a.send({ type: "join", room: "r" });
  const aj = await a.next("joined", (m) => m.lastSeq === 6);
  assert.deepEqual([aj.lastRead, aj.unread], [5, 1]);
});

Deno.test("conversations page newest first with before, capped by limit", async () => {
  await using s = await startServer({ messagesPerSecond: 1000, burst: 1000 });
  await using me = await TestClient.connect(s, { name: "me", room: "" });
  const peers: TestClient[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const p = await TestClient.connect(s, { name: `p${i}`, room: "" });
      peers.push(p);
      me.send({ type: "send", to: `p${i}`, text: `to p${i}`, cid: `c${i}` });
      await me.next("ack", (m) => m.cid === `c${i}`);
      await new Promise((r) => setTimeout(r, 3)); // distinct ts
    }
    me.send({ type: "conversations", limit: 2 });
    const first = await me.next("conversations", (m) => m.items.length === 2);
    assert.deepEqual(first.items.map((i: Msg) => i.with), ["p2", "p1"]);
    assert.equal(first.complete, false);
    me.send({ type: "conversations", before: first.items[1].lastTs, limit: 2 });
    const second = await me.next("conversations", (m) => m.items.length === 1);
    assert.deepEqual([second.items[0].with, second.complete], ["p0", true]);
  } finally {
    for (const p of peers) await p.close();
  }
});

Deno.test("parseClientFrame() takes read, conversations and history {conv} and refuses bad ones", async () => {
  const { parseClientFrame } = await import("../../lib/protocol.ts");
  const limits = { maxTextChars: 100, maxFrameBytes: 1000 };
  const parse = (o: unknown) => parseClientFrame(JSON.stringify(o), limits);
  const conv = "@" + "a".repeat(22);
  assert.deepEqual(parse({ type: "read", room: "Lobby", seq: 3 }), { type: "read", room: "lobby", seq: 3 });
  assert.deepEqual(parse({ type: "read", conv, seq: 0 }), { type: "read", conv, seq: 0 });
  assert.deepEqual(parse({ type: "conversations", before: 5, limit: 2 }), {
    type: "conversations",
    before: 5,
    limit: 2,
  });
  assert.deepEqual(parse({ type: "history", conv, after: 4 }), { type: "history", conv, after: 4 });
  assert.deepEqual(parse({ type: "history", conv, around: 4 }), { type: "history", conv, around: 4 });
  for (
    const bad of [
      { type: "read", room: "r" },
      { type: "read", room: "r", seq: 1.5 },
      { type: "read", room: "r", conv, seq: 1 },
      { type: "read", conv: "lobby", seq: 1 },
      { type: "history", conv, before: 1, after: 1 },
      { type: "history", conv, around: 0 },
      { type: "history", conv, around: 2, before: 5 },
      { type: "conversations", limit: 0 },
    ]
  ) {
    assert.throws(
      () => parse(bad),
      (e: Error & { code?: string }) => e.code === "bad_message",
      JSON.stringify(bad),
    );
  }
});

Deno.test("a DM to someone who left a moment ago reaches them before the people directory has them", async () => {
  const slow = faultyStore();
  await using s = await startServer({}, { store: slow.store });
  slow.hold(); // writes wait, like a slow disk: the directory does not know the newcomer yet
  const reader = new TestClient(`${s.wsUrl}?name=reader&room=`);
  await reader.next("welcome");
  await reader.close();
  await using writer = await TestClient.connect(s, { name: "writer", room: "" });
  writer.send({ type: "send", to: "reader", text: "you just missed me", cid: "w1" });
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(writer.all("error"), [], "the name is still held here: it is reader's");
  slow.release();
  const ack = await writer.next("ack");
  assert.deepEqual([ack.cid, ack.to, ack.seq], ["w1", "reader", 1]);
});

for (
  const [engine, overrides] of [
    [Deno.env.get("TEST_REDIS_URL") ? "redis" : "memory", () => ({})],
    ["sqlite", (dataDir: string) => ({ store: "sqlite" as const, dataDir })],
  ] as const
) {
  Deno.test(`history {conv, around} answers the page centered on a seq, then pages forward to the end (${engine})`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "conv-around-" });
    try {
      await using s = await startServer({ historyPage: 10, ...overrides(dir) });
      await using alice = await TestClient.connect(s, { name: "alice", room: "" });
      await using bob = await TestClient.connect(s, { name: "bob", room: "" });
      for (let i = 1; i <= 30; i++) {
        alice.send({ type: "send", to: "bob", text: `m${i}`, cid: `a${i}` });
        await alice.next("ack", (m) => m.cid === `a${i}`);
      }
      bob.send({ type: "conversations" });
      const id = (await bob.next("conversations", (m) => m.items.length === 1)).items[0].conv;

      bob.send({ type: "history", conv: id, around: 12 });
      const mid = await bob.next("history", (m) => m.around === 12);
      // Half older (4), the seq itself, the rest newer: 10 in all; more newer ones follow.
      assert.deepEqual(mid.messages.map((m: Msg) => m.seq), [8, 9, 10, 11, 12, 13, 14, 15, 16, 17]);
      assert.deepEqual([mid.conv, mid.complete, mid.more, mid.lastSeq], [id, false, true, 30]);
      assert.equal(mid.messages[4].text, "m12");

      // Near the start the newer side fills the page, and nothing older exists.
      bob.send({ type: "history", conv: id, around: 2 });
      const start = await bob.next("history", (m) => m.around === 2);
      assert.deepEqual(start.messages.map((m: Msg) => m.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      assert.deepEqual([start.complete, start.more], [true, true]);

      // Forward from the page's end: echoed, and `more` stops at the end.
      bob.send({ type: "history", conv: id, after: 17 });
      const next = await bob.next("history", (m) => m.after === 17);
      assert.deepEqual(next.messages.map((m: Msg) => m.seq), [18, 19, 20, 21, 22, 23, 24, 25, 26, 27]);
      assert.equal(next.more, true);
      bob.send({ type: "history", conv: id, after: 27 });
      const end = await bob.next("history", (m) => m.after === 27);
      assert.deepEqual(end.messages.map((m: Msg) => m.seq), [28, 29, 30]);
      assert.deepEqual([end.more, end.complete], [false, true]);

      // Past the end: the newest page there is.
      bob.send({ type: "history", conv: id, around: 99 });
      const past = await bob.next("history", (m) => m.around === 99);
      assert.deepEqual(past.messages.map((m: Msg) => m.seq), [26, 27, 28, 29, 30]);
      assert.equal(past.more, false);

      // Only one of before, around, after; someone outside the conversation is refused.
      bob.send({ type: "history", conv: id, around: 3, after: 1 });
      assert.equal((await bob.next("error")).code, "bad_message");
      await using eve = await TestClient.connect(s, { name: "eve", room: "" });
      eve.send({ type: "history", conv: id, around: 3 });
      const refused = await eve.next("error");
      assert.deepEqual([refused.code, refused.conv], ["not_member", id]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

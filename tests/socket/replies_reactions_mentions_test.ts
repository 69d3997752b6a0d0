/**
 * Replies, reactions and mentions over real sockets (issue #11), with the bad input the issue lists.
 * On the Redis engine when TEST_REDIS_URL is set (a single Redis or a Cluster).
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Engine } from "../../lib/engine.ts";
import { EmbeddedEngine } from "../../lib/engine_embedded.ts";
import { RedisEngine } from "../../lib/engine_redis.ts";
import { createLogger } from "../../lib/log.ts";
import { MemoryStore } from "../../lib/store.ts";
import type { ConfigInput } from "../../lib/config.ts";
import { type Msg, startServer, TestClient, type TestServer, waitFor } from "../helpers/test_server.ts";

const TEST_REDIS_URL = Deno.env.get("TEST_REDIS_URL");

async function sendAndAck(c: TestClient, m: Msg): Promise<Msg> {
  c.send({ type: "send", room: "lobby", ...m });
  const ack = await c.next("ack", (a) => a.cid === m.cid);
  // On Redis the ack can come before the message itself (pub/sub), and history holds only what this
  // member was handed: wait until it has it (without taking it from the test).
  await waitFor(() => Promise.resolve(c.lines.some((l) => l.type === "message" && l.seq === ack.seq)));
  return ack;
}

/** Connects `name` to the lobby and takes its joined. */
async function join(s: TestServer, name: string, room = "lobby"): Promise<TestClient> {
  const c = await TestClient.connect(s, { name, room });
  if (room) await c.next("joined");
  return c;
}

/** Waits until `c` has `n` answers to its reactions (its own `reactions` lines and errors); returns them. */
async function answers(c: TestClient, by: string, n: number): Promise<Msg[]> {
  const mine = () => c.lines.filter((m) => (m.type === "reactions" && m.by === by) || m.type === "error");
  const end = Date.now() + 10_000;
  while (mine().length < n) {
    if (Date.now() > end) throw new Error(`${by} got ${mine().length} answers, not ${n}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return mine();
}

Deno.test("send replyTo: the reply carries the quote live, in history and on resume", async () => {
  await using s = await startServer();
  await using alice = await join(s, "alice");
  await using bob = await join(s, "bob");
  const first = await sendAndAck(alice, { text: "lunch at noon?\nor later", cid: "a1" });
  const reply = await sendAndAck(bob, { text: "noon works", cid: "b1", replyTo: first.seq });
  const quote = { seq: first.seq, from: "alice", text: "lunch at noon?" };
  const live = await alice.next("message", (m) => m.seq === reply.seq);
  assert.deepEqual(live.replyTo, quote);
  assert.equal((await alice.next("message", (m) => m.seq === first.seq)).replyTo, undefined);
  alice.send({ type: "history", room: "lobby" });
  const h = await alice.next("history");
  assert.deepEqual(h.messages.find((m: Msg) => m.seq === reply.seq).replyTo, quote);
  await using carol = await TestClient.connect(s, { name: "carol", room: "" });
  carol.send({ type: "join", room: "lobby", since: first.seq });
  const j = await carol.next("joined");
  assert.deepEqual(j.messages.map((m: Msg) => [m.seq, m.replyTo]), [[reply.seq, quote]]);
});

/** The stores a socket test runs on: memory, SQLite, and Redis when TEST_REDIS_URL is set. */
const backends: [string, () => Promise<{ overrides: ConfigInput; cleanup(): Promise<void> }>][] = [
  ["memory", () => Promise.resolve({ overrides: { store: "memory" }, cleanup: () => Promise.resolve() })],
  ["SQLite", async () => {
    const dataDir = await Deno.makeTempDir();
    return {
      overrides: { store: "sqlite", dataDir },
      cleanup: () => Deno.remove(dataDir, { recursive: true }),
    };
  }],
];
if (TEST_REDIS_URL) {
  backends.push(["Redis", () => Promise.resolve({ overrides: {}, cleanup: () => Promise.resolve() })]);
}

for (const [backend, setup] of backends) {
  Deno.test(`edit and delete (${backend}): the replies' quotes follow, in history and on resume`, async () => {
    const b = await setup();
    try {
      await using s = await startServer(b.overrides);
      await using alice = await join(s, "alice");
      await using bob = await join(s, "bob");
      const first = await sendAndAck(alice, { text: "secret plan\nsecond line", cid: "a1" });
      const r1 = await sendAndAck(bob, { text: "agreed", cid: "b1", replyTo: first.seq });
      const r2 = await sendAndAck(bob, { text: "me too", cid: "b2", replyTo: first.seq });
      const quotes = async (c: TestClient) => {
        c.send({ type: "history", room: "lobby" });
        const h = await c.next("history");
        return h.messages.filter((m: Msg) => m.replyTo).map((m: Msg) => [m.seq, m.replyTo]);
      };
      /** What a newcomer gets on join (resume from 0). */
      const resumed = async () => {
        await using carol = await TestClient.connect(s, { name: "carol", room: "" });
        carol.send({ type: "join", room: "lobby", since: 0 });
        const j = await carol.next("joined");
        return j.messages.filter((m: Msg) => m.replyTo).map((m: Msg) => [m.seq, m.replyTo]);
      };
      alice.send({ type: "edit", room: "lobby", seq: first.seq, text: "revised plan\nsecond line" });
      await bob.next("edited");
      const revised = { seq: first.seq, from: "alice", text: "revised plan" };
      const afterEdit = [[r1.seq, revised], [r2.seq, revised]];
      assert.deepEqual(await quotes(bob), afterEdit);
      assert.deepEqual(await resumed(), afterEdit);
      alice.send({ type: "delete", room: "lobby", seq: first.seq });
      await bob.next("deleted");
      const gone = { seq: first.seq, from: "alice", text: "", deleted: true };
      const afterDelete = [[r1.seq, gone], [r2.seq, gone]];
      assert.deepEqual(await quotes(bob), afterDelete);
      assert.deepEqual(await resumed(), afterDelete);
      bob.send({ type: "history", room: "lobby" });
      assert.ok(!JSON.stringify(await bob.next("history")).includes("plan"), "nothing of its text is left");
    } finally {
      await b.cleanup();
    }
  });
}

Deno.test("send replyTo: an unknown or deleted seq is message_not_found and nothing is stored", async () => {
  await using s = await startServer();
  await using alice = await join(s, "alice");
  const one = await sendAndAck(alice, { text: "one", cid: "a1" });
  const two = await sendAndAck(alice, { text: "two", cid: "a2" });
  alice.send({ type: "delete", room: "lobby", seq: two.seq });
  await alice.next("deleted");
  for (const [cid, replyTo] of [["r1", 999], ["r2", two.seq]] as const) {
    alice.send({ type: "send", room: "lobby", text: "re", cid, replyTo });
    const e = await alice.next("error", (m) => m.cid === cid);
    assert.deepEqual([e.code, e.room], ["message_not_found", "lobby"]);
  }
  // Refused with bad_message before anything: 0, a string, a DM with replyTo.
  for (const bad of [{ replyTo: 0 }, { replyTo: "1" }, { replyTo: 1.5 }]) {
    alice.send({ type: "send", room: "lobby", text: "re", ...bad });
    assert.equal((await alice.next("error")).code, "bad_message");
  }
  alice.send({ type: "send", to: "alice", text: "re", replyTo: one.seq });
  assert.equal((await alice.next("error")).code, "bad_message");
  // Nothing stored: the next message takes the next seq, and history has no reply.
  const three = await sendAndAck(alice, { text: "three", cid: "a3", replyTo: one.seq });
  assert.equal(three.seq, two.seq + 1);
  alice.send({ type: "history", room: "lobby" });
  const h = await alice.next("history");
  assert.deepEqual(h.messages.map((m: Msg) => m.text), ["one", "", "three"]);
});

Deno.test("send replyTo and react in a room you are not in: not_member", async () => {
  await using s = await startServer();
  await using alice = await join(s, "alice");
  await using bob = await join(s, "bob", "other");
  const one = await sendAndAck(alice, { text: "one", cid: "a1" });
  bob.send({ type: "send", room: "lobby", text: "re", cid: "b1", replyTo: one.seq });
  assert.deepEqual(pick(await bob.next("error"), "code", "cid"), { code: "not_member", cid: "b1" });
  bob.send({ type: "react", room: "lobby", seq: one.seq, emoji: "👍" });
  assert.deepEqual(pick(await bob.next("error"), "code", "room"), { code: "not_member", room: "lobby" });
  alice.send({ type: "history", room: "lobby" });
  assert.equal((await alice.next("history")).messages[0].reactions, undefined);
});

Deno.test("react: toggles; every member gets the counts; history and resume carry counts and the asker's own", async () => {
  await using s = await startServer();
  await using alice = await join(s, "alice");
  await using bob = await join(s, "bob");
  const one = await sendAndAck(alice, { text: "ship it", cid: "a1" });
  await sendAndAck(alice, { text: "plain", cid: "a2" });
  bob.send({ type: "react", room: "lobby", seq: one.seq, emoji: "👍" });
  const seen = await alice.next("reactions");
  assert.deepEqual(seen, {
    type: "reactions",
    room: "lobby",
    seq: one.seq,
    counts: { "👍": 1 },
    by: "bob",
    emoji: "👍",
    on: true,
  });
  await bob.next("reactions");
  alice.send({ type: "react", room: "lobby", seq: one.seq, emoji: "👍" });
  assert.deepEqual((await bob.next("reactions")).counts, { "👍": 2 });
  alice.send({ type: "react", room: "lobby", seq: one.seq, emoji: "🚀", on: true });
  assert.deepEqual((await bob.next("reactions")).counts, { "👍": 2, "🚀": 1 });
  bob.send({ type: "react", room: "lobby", seq: one.seq, emoji: "👍" });
  const off = await alice.next("reactions", (m) => m.by === "bob" && !m.on);
  assert.deepEqual(off.counts, { "👍": 1, "🚀": 1 });
  bob.send({ type: "history", room: "lobby" });
  const h = await bob.next("history");
  assert.deepEqual(h.messages.map((m: Msg) => [m.text, m.reactions, m.mine]), [
    ["ship it", { "👍": 1, "🚀": 1 }, undefined],
    ["plain", undefined, undefined],
  ]);
  await using again = await TestClient.connect(s, { name: "alice-2", room: "", token: await tokenOf(alice) });
  again.send({ type: "join", room: "lobby", since: 0 });
  const j = await again.next("joined");
  assert.deepEqual(j.messages[0].mine, ["👍", "🚀"], "the same person on another connection");
});

Deno.test("react: bad emoji (text, several, long, control characters, empty) is bad_message and stores nothing", async () => {
  await using s = await startServer();
  await using alice = await join(s, "alice");
  const one = await sendAndAck(alice, { text: "one", cid: "a1" });
  const bad = [
    "a",
    "👍👍",
    "👍".repeat(40),
    "x".repeat(10_000),
    "\u0007",
    "👍\n",
    "",
    "\u200d",
    "🇫",
    42,
    null,
  ];
  for (const emoji of bad) {
    alice.send({ type: "react", room: "lobby", seq: one.seq, emoji });
    assert.equal((await alice.next("error")).code, "bad_message", JSON.stringify(emoji));
  }
  for (const seq of [0, -1, "1"]) {
    alice.send({ type: "react", room: "lobby", seq, emoji: "👍" });
    assert.equal((await alice.next("error")).code, "bad_message");
  }
  alice.send({ type: "react", room: "lobby", seq: 999, emoji: "👍" });
  assert.deepEqual(pick(await alice.next("error"), "code", "room"), {
    code: "message_not_found",
    room: "lobby",
  });
  // These are one emoji each: a ZWJ family, a skin tone, a flag, a keycap, a heart with VS16.
  for (const emoji of ["👨‍👩‍👧‍👦", "👍🏽", "🇫🇷", "1️⃣", "❤️"]) {
    alice.send({ type: "react", room: "lobby", seq: one.seq, emoji });
    assert.equal((await alice.next("reactions")).emoji, emoji);
  }
  alice.send({ type: "history", room: "lobby" });
  const h = await alice.next("history");
  assert.deepEqual(Object.keys(h.messages[0].reactions).sort(), ["1️⃣", "❤️", "🇫🇷", "👍🏽", "👨‍👩‍👧‍👦"].sort());
});

Deno.test("react: 1,000 distinct emoji from one person, and from many: capped per person and per message", async () => {
  const cfg = { messagesPerSecond: 100_000, burst: 100_000, maxStrikes: 100_000 };
  await using s = await startServer(cfg);
  await using alice = await join(s, "alice");
  const one = await sendAndAck(alice, { text: "react to me", cid: "a1" });
  // 1,000 distinct pictographs (U+1F300 on), all valid emoji.
  const emoji = Array.from({ length: 3000 }, (_, i) => String.fromCodePoint(0x1f300 + i))
    .filter((e) => /^\p{Extended_Pictographic}$/u.test(e)).slice(0, 1000);
  assert.equal(emoji.length, 1000);
  for (const e of emoji) alice.send({ type: "react", room: "lobby", seq: one.seq, emoji: e });
  const got = await answers(alice, "alice", emoji.length);
  const oks = got.filter((m) => m.type === "reactions"), errors = got.filter((m) => m.type === "error");
  assert.equal(oks.length, 10, "maxReactionsPerPerson");
  assert.ok(errors.every((e) => e.code === "too_many_reactions"));
  // Three more people: each adds new emoji until the message has 20 distinct.
  const others = await Promise.all(["bob", "carol", "dave"].map((n) => join(s, n)));
  let distinct = 10;
  for (const [i, c] of others.entries()) {
    const name = c.lines[0].name;
    for (const [j, e] of emoji.slice(100 + i * 10, 110 + i * 10).entries()) {
      c.send({ type: "react", room: "lobby", seq: one.seq, emoji: e });
      const m = (await answers(c, name, j + 1))[j];
      if (distinct < 20) assert.equal(m.type, "reactions"), distinct++;
      else assert.equal(m.code, "too_many_reactions");
    }
  }
  // Adding to an emoji that is there already still works.
  others[2].send({ type: "react", room: "lobby", seq: one.seq, emoji: emoji[0] });
  assert.equal((await others[2].next("reactions", (r) => r.by === "dave")).counts[emoji[0]], 2);
  alice.send({ type: "history", room: "lobby" });
  const h = await alice.next("history");
  assert.equal(Object.keys(h.messages[0].reactions).length, 20);
  for (const c of others) await c.close();
});

Deno.test("react: a deleted message loses its reactions and cannot get new ones", async () => {
  await using s = await startServer();
  await using alice = await join(s, "alice");
  const one = await sendAndAck(alice, { text: "one", cid: "a1" });
  alice.send({ type: "react", room: "lobby", seq: one.seq, emoji: "👍" });
  await alice.next("reactions");
  alice.send({ type: "delete", room: "lobby", seq: one.seq });
  await alice.next("deleted");
  alice.send({ type: "react", room: "lobby", seq: one.seq, emoji: "👍" });
  assert.equal((await alice.next("error")).code, "message_not_found");
  alice.send({ type: "history", room: "lobby" });
  const m = (await alice.next("history")).messages[0];
  assert.deepEqual([m.deleted, m.reactions, m.mine], [true, undefined, undefined]);
});

Deno.test("mentions: @name of a person online is recorded (names as they are), not emails, strangers or oneself", async () => {
  const engine = await testEngine();
  await using s = await startServer({}, { engine });
  await using alice = await join(s, "alice");
  await using bob = await join(s, "bob", "");
  await using carol = await join(s, "Carol", "");
  const cases: [string, string[] | undefined][] = [
    ["hi @bob", ["bob"]],
    ["@BOB and @carol, and @nobody", ["bob", "Carol"]],
    ["mail me at alice@bob.example", undefined],
    ["@alice talking to myself", undefined],
    ["thanks @bob.", ["bob"]],
    ["@bob @bob @bob", ["bob"]],
  ];
  for (const [i, [text, want]] of cases.entries()) {
    await sendAndAck(alice, { text, cid: `m${i}` });
    const m = await alice.next("message", (x) => x.cid === `m${i}`);
    assert.deepEqual(m.mentions, want, text);
  }
  const counts = await engine.mentionCounts!(keyOf(bob), [{ room: "lobby", after: 0 }]);
  assert.deepEqual(counts, { lobby: 4 });
  assert.deepEqual(await engine.mentionCounts!(keyOf(carol), [{ room: "lobby", after: 2 }]), {});
  assert.deepEqual(await engine.mentionCounts!(keyOf(alice), [{ room: "lobby", after: 0 }]), {});
});

Deno.test("mentions: at most maxMentions are recorded per message", async () => {
  await using s = await startServer({ maxMentions: 3 });
  await using alice = await join(s, "alice");
  const people = await Promise.all(["p1", "p2", "p3", "p4", "p5"].map((n) => join(s, n, "")));
  await sendAndAck(alice, { text: "@p1 @p2 @p3 @p4 @p5", cid: "c1" });
  assert.deepEqual((await alice.next("message")).mentions, ["p1", "p2", "p3"]);
  for (const p of people) await p.close();
});

if (TEST_REDIS_URL) {
  Deno.test("mentions: a person on another process is found through the engine, in order with the sends", async () => {
    await using a = await startServer();
    await using b = await startServer({}, {});
    await using alice = await join(a, "alice");
    await using bob = await join(b, "bob", "");
    for (let i = 0; i < 5; i++) {
      alice.send({ type: "send", room: "lobby", text: i === 2 ? "@bob look" : `m${i}`, cid: `c${i}` });
    }
    const got = [];
    for (let i = 0; i < 5; i++) got.push(await alice.next("message"));
    assert.deepEqual(got.map((m) => m.text), ["m0", "m1", "@bob look", "m3", "m4"]);
    assert.deepEqual(got[2].mentions, ["bob"]);
    void bob;
  });
}

/** The engine a test can ask about mention rows: Redis when the run is on Redis, else memory. */
async function testEngine(): Promise<Engine> {
  if (!TEST_REDIS_URL) {
    return new EmbeddedEngine(new MemoryStore({ retainMessages: 0, retainMs: 0 }), { dedupWindowMs: 60_000 });
  }
  await startServer().then((s) => s.close()); // empties the test Redis
  return await RedisEngine.connect({
    url: TEST_REDIS_URL,
    retainMessages: 0,
    retainMs: 0,
    dedupWindowMs: 60_000,
    log: createLogger("error"),
  });
}

/** A guest's person key: the hash of the token its welcome gave (as the server makes it). */
function keyOf(c: TestClient): string {
  const token = c.lines.find((m) => m.type === "welcome")!.token;
  return createHash("sha256").update(token).digest("base64url").slice(0, 22);
}

function tokenOf(c: TestClient): Promise<string> {
  return Promise.resolve(c.lines.find((m) => m.type === "welcome")!.token);
}

function pick(m: Msg, ...fields: string[]): Msg {
  return Object.fromEntries(fields.map((f) => [f, m[f]]));
}

Deno.test("mentions: a person who is away (known to the directory) is mentioned and finds the count on return", async () => {
  await using s = await startServer({ nameHoldSeconds: 1 });
  const dana = await TestClient.connect(s, { name: "dana", room: "lobby" });
  const token = dana.all("welcome")[0].token;
  await dana.close();
  // Past the name hold: dana is only in the people directory now.
  await new Promise((r) => setTimeout(r, 1500));
  await using alice = await join(s, "alice");
  await sendAndAck(alice, { text: "@dana are you around?", cid: "m1" });
  assert.deepEqual(alice.all("message").at(-1)?.mentions, ["dana"]);
  await using back = await TestClient.connect(s, { token, room: "lobby" });
  const joined = await back.next("joined");
  assert.equal(joined.mentions, 1);
});

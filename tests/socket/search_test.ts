/**
 * `search` over real sockets and `GET /api/search` (#21): where a person may look (their rooms and
 * conversations, a named room only as `join` would let them in: private rooms and bans), bad queries
 * answered with a stable code while the connection lives on, the rate, and Redis saying it has no
 * search. On the memory store and SQLite; the Redis case runs when TEST_REDIS_URL is set.
 * @module
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { type Msg, startServer, TestClient, type TestServer, waitFor } from "../helpers/test_server.ts";

const SECRET = "search-test-secret-0123456789-abcdefgh";
const KEY = "search-test-api-key-0123456789";
const TEST_REDIS_URL = Deno.env.get("TEST_REDIS_URL");

function token(sub: string, claims: { role?: string } = {}): Promise<string> {
  return new SignJWT({ name: sub, ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(SECRET));
}

async function as(
  s: TestServer,
  sub: string,
  room: string,
  claims: { role?: string } = {},
): Promise<TestClient> {
  const c = await TestClient.connect(s, { token: await token(sub, claims), room });
  if (room) await c.next("joined");
  return c;
}

async function say(c: TestClient, room: string, text: string): Promise<number> {
  const cid = crypto.randomUUID().slice(0, 8);
  c.send({ type: "send", room, text, cid });
  return (await c.next("ack", (m) => m.cid === cid)).seq;
}

/** Sends a search and waits for its answer: the first `search` or `error` line after it. */
async function answer(c: TestClient, frame: Record<string, unknown>): Promise<Msg> {
  const from = c.lines.length;
  c.send({ type: "search", ...frame });
  const got = () => c.lines.slice(from).find((m) => m.type === "search" || m.type === "error");
  await waitFor(() => Promise.resolve(got() !== undefined), 5000, "a search answer");
  return got()!;
}

for (const store of ["memory", "sqlite"] as const) {
  Deno.test(`search (${store}): finds in the asker's rooms with highlights, never a private room or a ban's`, async () => {
    const dataDir = store === "sqlite" ? await Deno.makeTempDir() : undefined;
    try {
      await using s = await startServer({ jwtSecret: SECRET, store, ...(dataDir ? { dataDir } : {}) });
      await using mod = await as(s, "mod", "staff", { role: "moderator" });
      mod.send({ type: "room", room: "staff", private: true });
      await mod.next("room");
      await say(mod, "staff", "the launch code is café");
      mod.send({ type: "join", room: "lobby" });
      await mod.next("joined");
      await say(mod, "lobby", "Le Café opens at nine");
      mod.send({ type: "join", room: "banned" });
      await mod.next("joined");
      await say(mod, "banned", "café in a room bob is banned from");
      await using bob = await as(s, "bob", "lobby");
      mod.send({ type: "ban", room: "banned", name: "bob" });
      await mod.next("moderation");

      const found = await answer(bob, { q: "cafe" });
      assert.equal(found.type, "search", JSON.stringify(found));
      assert.deepEqual(found.results.map((r: Msg) => [r.room, r.from, r.text, r.matches]), [
        ["lobby", "mod", "Le Café opens at nine", [[3, 7]]],
      ]);
      assert.equal(found.q, "cafe");
      // Named rooms: the private one and the banned one refused as join refuses them.
      const priv = await answer(bob, { q: "cafe", room: "staff" });
      assert.deepEqual([priv.type, priv.code, priv.room], ["error", "forbidden", "staff"]);
      const viaIn = await answer(bob, { q: "cafe in:staff" });
      assert.deepEqual([viaIn.type, viaIn.code], ["error", "forbidden"]);
      const banned = await answer(bob, { q: "cafe", room: "banned" });
      assert.deepEqual([banned.type, banned.code], ["error", "banned"]);
      // A public room bob is not in may be searched by name.
      await say(mod, "lobby", "x");
      const mods = await answer(mod, { q: "cafe", room: "staff" });
      assert.deepEqual(mods.results.map((r: Msg) => r.text), ["the launch code is café"]);
      // The connection lives on after every refusal.
      assert.equal((await answer(bob, { q: "nine" })).results.length, 1);
    } finally {
      if (dataDir) await Deno.remove(dataDir, { recursive: true });
    }
  });
}

Deno.test("search: direct conversations are searched, a deleted message is gone and an edit found by its new text", async () => {
  await using s = await startServer({ store: "memory" });
  await using alice = await TestClient.connect(s, { name: "alice", room: "lobby" });
  await alice.next("joined");
  await using bob = await TestClient.connect(s, { name: "bob", room: "" });
  alice.send({ type: "send", to: "bob", text: "the wifi password is hunter2", cid: "d1" });
  await alice.next("ack", (m) => m.cid === "d1");
  const gone = await say(alice, "lobby", "secret draft");
  const fixed = await say(alice, "lobby", "meeting at tree");
  alice.send({ type: "delete", room: "lobby", seq: gone });
  await alice.next("deleted");
  alice.send({ type: "edit", room: "lobby", seq: fixed, text: "meeting at three" });
  await alice.next("edited");
  const direct = await answer(bob, { q: "wifi" });
  assert.deepEqual(direct.results.map((r: Msg) => [r.text, typeof r.conv, r.room]), [
    ["the wifi password is hunter2", "string", undefined],
  ]);
  assert.deepEqual((await answer(alice, { q: "secret" })).results, []);
  assert.deepEqual((await answer(alice, { q: "tree" })).results, []);
  assert.deepEqual((await answer(alice, { q: "three" })).results.map((r: Msg) => r.text), [
    "meeting at three",
  ]);
});

Deno.test("search: bad queries get bad_query, bad fields bad_message, and the connection lives on", async () => {
  await using s = await startServer({ store: "memory", searchMaxQueryChars: 100 });
  await using c = await TestClient.connect(s, { name: "alice", room: "lobby" });
  await c.next("joined");
  await say(c, "lobby", "NEAR the * star");
  for (const q of ["x".repeat(10_000), "", "-only", "from:bob", '"', "x before:someday"]) {
    const e = await answer(c, { q });
    assert.deepEqual([e.type, e.code], ["error", "bad_query"], q.slice(0, 20));
  }
  for (const bad of [{ q: 1 }, { q: "x", limit: 0 }, { q: "x", before: "abc" }, { q: "x", order: "rank" }]) {
    const e = await answer(c, bad);
    assert.deepEqual([e.type, e.code], ["error", "bad_message"], JSON.stringify(bad));
  }
  // FTS syntax is taken as words.
  assert.deepEqual((await answer(c, { q: "NEAR( * star" })).results.map((r: Msg) => r.text), [
    "NEAR the * star",
  ]);
  const w = await answer(c, { q: "star" });
  assert.equal(w.type, "search");
});

Deno.test("search: a person's searches are rate limited with rate_limited", async () => {
  await using s = await startServer({ store: "memory", searchesPerMinute: 4 });
  await using c = await TestClient.connect(s, { name: "alice", room: "lobby" });
  await c.next("joined");
  const codes: string[] = [];
  for (let i = 0; i < 3; i++) {
    const a = await answer(c, { q: `word${i}` });
    codes.push(a.type === "error" ? a.code : "ok");
  }
  assert.deepEqual(codes, ["ok", "rate_limited", "rate_limited"]);
});

Deno.test("GET /api/search: any room for the host application, same answer shape, errors with status", async () => {
  await using s = await startServer({ store: "memory", apiKeys: KEY, searchPage: 2 });
  await using c = await TestClient.connect(s, { name: "alice", room: "one" });
  await c.next("joined");
  await say(c, "one", "report alpha");
  await say(c, "one", "report beta");
  await say(c, "one", "report gamma");
  const get = async (query: string) => {
    const r = await fetch(`${s.url}/api/search?${query}`, { headers: { authorization: `Bearer ${KEY}` } });
    return { status: r.status, body: await r.json() };
  };
  const first = await get("q=report");
  assert.equal(first.status, 200);
  assert.deepEqual(first.body.results.map((r: Msg) => r.text), ["report gamma", "report beta"]);
  const second = await get(`q=report&before=${first.body.next}`);
  assert.deepEqual(second.body.results.map((r: Msg) => r.text), ["report alpha"]);
  assert.equal(second.body.next, undefined);
  assert.deepEqual((await get("q=report&room=two")).body.results, []);
  const bad = await get(`q=${"x".repeat(300)}`);
  assert.deepEqual([bad.status, bad.body.error.code], [400, "bad_query"]);
});

Deno.test({
  name: "search on Redis: error unsupported with a sentence, and welcome says so (searchQueryChars 0)",
  ignore: !TEST_REDIS_URL,
  fn: async () => {
    await using s = await startServer();
    await using c = await TestClient.connect(s, { name: "alice", room: "lobby" });
    const welcome = c.lines.find((m) => m.type === "welcome")!;
    assert.equal(welcome.limits.searchQueryChars, 0);
    const e = await answer(c, { q: "anything" });
    assert.deepEqual([e.type, e.code], ["error", "unsupported"]);
    assert.match(e.message, /no text index/);
  },
});

for (const store of ["memory", "sqlite"] as const) {
  Deno.test(`search with --search off (${store}): error unsupported naming it, welcome says so, the API answers 501`, async () => {
    await using s = await startServer({ store, search: "off", apiKeys: KEY });
    await using c = await TestClient.connect(s, { name: "alice", room: "lobby" });
    await c.next("joined");
    const welcome = c.lines.find((m) => m.type === "welcome")!;
    assert.equal(welcome.limits.searchQueryChars, 0);
    await say(c, "lobby", "findable words");
    const e = await answer(c, { q: "findable" });
    assert.deepEqual([e.type, e.code], ["error", "unsupported"]);
    assert.match(e.message, /--search off/);
    // The connection lives on.
    assert.ok(await say(c, "lobby", "still here") > 0);
    const r = await fetch(`${s.url}/api/search?q=findable`, { headers: { authorization: `Bearer ${KEY}` } });
    const body = await r.json();
    assert.deepEqual([r.status, body.error.code], [501, "unsupported"]);
  });
}

Deno.test("welcome tells the search limits where search is available", async () => {
  await using s = await startServer({ store: "memory", searchMaxQueryChars: 99, searchPage: 7 });
  await using c = await TestClient.connect(s, { name: "alice", room: "" });
  const welcome = c.lines.find((m) => m.type === "welcome")!;
  assert.equal(welcome.limits.searchQueryChars, 99);
  assert.equal(welcome.limits.searchPage, 7);
});

Deno.test("history {room, around}: a page centered on a seq, then forward pages with {after} to the live end", async () => {
  await using s = await startServer({ store: "memory", burst: 100, messagesPerSecond: 100 });
  await using c = await TestClient.connect(s, { name: "alice", room: "lobby" });
  await c.next("joined");
  for (let i = 1; i <= 30; i++) await say(c, "lobby", `m${i}`);
  await waitFor(() => Promise.resolve(c.all("message").length === 30));
  const page = async (frame: Record<string, unknown>) => {
    c.send({ type: "history", room: "lobby", ...frame });
    const h = await c.next("history");
    return [h.messages.map((m: Msg) => m.seq), h.complete, h.more];
  };
  assert.deepEqual(await page({ around: 10, limit: 5 }), [[8, 9, 10, 11, 12], false, true]);
  assert.deepEqual(await page({ around: 2, limit: 5 }), [[1, 2, 3, 4, 5], true, true]);
  assert.deepEqual(await page({ around: 29, limit: 5 }), [[27, 28, 29, 30], false, false]);
  assert.deepEqual(await page({ after: 12, limit: 5 }), [[13, 14, 15, 16, 17], false, true]);
  assert.deepEqual(await page({ after: 27, limit: 5 }), [[28, 29, 30], false, false]);
  c.send({ type: "history", room: "lobby", around: 3, before: 4 });
  assert.equal((await c.next("error")).code, "bad_message");
});

/**
 * The room directory over real sockets (`rooms {q?, after?, limit?}`): public rooms with their topic
 * and how many people are in them, private rooms never (not even their names), a prefix filter, pages
 * by name, and bad input refused with `bad_message` on a connection that goes on. With
 * `TEST_REDIS_URL`, on Redis too, and counted across two processes.
 * @module
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import {
  faultyStore,
  type Msg,
  startServer,
  TestClient,
  type TestServer,
  waitFor,
} from "../helpers/test_server.ts";
import { ChatClient } from "../../static/chat-client.js";

const SECRET = "directory-test-secret-0123456789-abcdef";

function token(sub: string, role = "member"): Promise<string> {
  return new SignJWT({ name: sub, role })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(SECRET));
}

function serve(extra: Record<string, unknown> = {}): Promise<TestServer> {
  return startServer({ jwtSecret: SECRET, guests: "on", ...extra });
}

/** Sends `rooms` with `query` and returns its answer (or the error that refused it), within 3 s. */
async function ask(c: TestClient, query: Msg = {}): Promise<Msg> {
  const from = c.lines.length;
  c.send({ type: "rooms", ...query });
  const end = Date.now() + 3000;
  for (;;) {
    const m = c.lines.slice(from).find((m) => m.type === "rooms" || m.type === "error");
    if (m) return m;
    if (Date.now() > end) throw new Error(`no answer to rooms ${JSON.stringify(query)}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Asks until `check` holds of the answer (presence on Redis arrives a moment after `joined`). */
async function askUntil(c: TestClient, query: Msg, check: (m: Msg) => boolean): Promise<Msg> {
  let last: Msg = {};
  await waitFor(async () => check(last = await ask(c, query)), 5000, `rooms ${JSON.stringify(query)}`)
    .catch((e) => {
      throw new Error(`${(e as Error).message}; last answer ${JSON.stringify(last)}`);
    });
  return last;
}

/** Joins `room` and waits for its `joined`. */
async function join(c: TestClient, room: string): Promise<void> {
  c.send({ type: "join", room });
  await c.next("joined", (m) => m.room === room);
}

Deno.test("rooms lists public rooms with topic and member count; a private room is never named", async () => {
  await using s = await serve();
  await using mod = await TestClient.connect(s, { token: await token("mo", "moderator"), room: "vip" });
  mod.send({ type: "room", room: "vip", private: true, topic: "the quiet room" });
  await mod.next("room");
  mod.send({ type: "send", room: "vip", text: "secret plans", cid: "c1" });
  await mod.next("ack");
  await join(mod, "news");
  mod.send({ type: "room", room: "news", topic: "Daily news" });
  await mod.next("room", (m) => m.room === "news");
  await using alice = await TestClient.connect(s, { name: "alice", room: "news" });
  // A room with history and nobody in it is listed, with 0.
  await join(alice, "archive");
  alice.send({ type: "send", room: "archive", text: "for the record", cid: "a1" });
  await alice.next("ack");
  alice.send({ type: "leave", room: "archive" });
  await alice.next("left");
  // Two tabs of one person count once.
  await using bob = await TestClient.connect(s, { name: "bob", room: "news" });
  const bobToken = bob.all("welcome")[0].token;
  await using bob2 = await TestClient.connect(s, { name: "bob", token: bobToken, room: "news" });

  await using eve = await TestClient.connect(s, { name: "eve", room: "" });
  const expected = [
    { room: "archive", topic: "", members: 0 },
    { room: "news", topic: "Daily news", members: 3 },
  ];
  const answer = await askUntil(eve, {}, (m) => JSON.stringify(m.items) === JSON.stringify(expected));
  assert.deepEqual(answer, { type: "rooms", q: "", items: expected });
  assert.ok(!eve.lines.some((m) => JSON.stringify(m).includes("vip")), "the private room's name never shows");
  // Not even to someone who may join it, nor when asked for by name.
  assert.deepEqual((await ask(mod, { q: "vip" })).items, []);
  assert.equal(bob2.all("welcome").length, 1);
});

Deno.test("rooms filters by name prefix (any case) and pages by name with after and limit", async () => {
  await using s = await serve({ directoryPage: 3 });
  await using alice = await TestClient.connect(s, { name: "alice", room: "" });
  for (const room of ["r-a1", "r-a2", "r-a3", "r-a4", "r-a5", "r-b1", "other"]) await join(alice, room);
  await using eve = await TestClient.connect(s, { name: "eve", room: "" });

  const first = await askUntil(eve, { q: "R-A", limit: 2 }, (m) => m.items?.length === 2);
  assert.deepEqual(first, {
    type: "rooms",
    q: "r-a",
    items: [{ room: "r-a1", topic: "", members: 1 }, { room: "r-a2", topic: "", members: 1 }],
    next: "r-a2",
  });
  const second = await ask(eve, { q: "r-a", after: first.next, limit: 2 });
  assert.deepEqual(second.items.map((r: Msg) => r.room), ["r-a3", "r-a4"]);
  const last = await ask(eve, { q: "r-a", after: second.next, limit: 2 });
  assert.deepEqual(last.items.map((r: Msg) => r.room), ["r-a5"]);
  assert.equal(last.next, undefined, "the last page has no next");
  // A limit above --directory-page is cut to it; no q lists every room.
  const capped = await ask(eve, { limit: 100 });
  assert.deepEqual(capped.items.map((r: Msg) => r.room), ["other", "r-a1", "r-a2"]);
  assert.equal(capped.next, "r-a2");
  assert.deepEqual((await ask(eve, { q: "zzz" })).items, []);
});

Deno.test("rooms refuses a q too long, a bad cursor or a bad limit with bad_message; the connection goes on", async () => {
  await using s = await serve();
  await using eve = await TestClient.connect(s, { name: "eve", room: "lobby" });
  const bad: [Msg, RegExp][] = [
    [{ q: "a".repeat(65) }, /"q" must be the start of a room name: up to 64 .* got 65 characters/],
    [{ q: "two words" }, /"q" must be the start of a room name/],
    [{ q: 7 }, /"q" must be .* got a number/],
    [{ after: "" }, /"after" must be the "next" of an earlier rooms answer/],
    [{ after: "a/b" }, /"after" must be/],
    [{ after: ["lobby"] }, /"after" must be .* got an array/],
    [{ limit: 0 }, /"limit" must be a whole number of 1 or more, got 0/],
    [{ limit: 2.5 }, /"limit" must be a whole number/],
    [{ limit: "5" }, /"limit" must be a whole number/],
  ];
  for (const [query, message] of bad) {
    const e = await ask(eve, query);
    assert.equal(e.type, "error", JSON.stringify(query));
    assert.equal(e.code, "bad_message", JSON.stringify(query));
    assert.match(e.message, message);
  }
  eve.send({ type: "ping" });
  await eve.next("pong");
  const ok = await askUntil(eve, { q: "lob" }, (m) => m.items?.length === 1);
  assert.deepEqual(ok.items, [{ room: "lobby", topic: "", members: 1 }]);
  assert.equal(eve.ws.readyState, WebSocket.OPEN);
});

Deno.test({
  name: "rooms counts people across two processes on one Redis",
  ignore: !Deno.env.get("TEST_REDIS_URL"),
  async fn() {
    await using one = await serve();
    // Started before anyone connects: a test server empties Redis when it starts.
    await using two = await serve();
    await using alice = await TestClient.connect(one, { name: "alice", room: "crowd" });
    await using bob = await TestClient.connect(two, { name: "bob", room: "crowd" });
    await using carol = await TestClient.connect(two, { name: "carol", room: "corner" });
    const expected = [
      { room: "corner", topic: "", members: 1 },
      { room: "crowd", topic: "", members: 2 },
    ];
    await askUntil(alice, {}, (m) => JSON.stringify(m.items) === JSON.stringify(expected));
    await carol.close();
    await askUntil(alice, {}, (m) => JSON.stringify(m.items) === JSON.stringify([expected[1]]));
    assert.ok(bob);
  },
});

Deno.test("ChatClient.findRooms() pages the directory, each answer to its own request; a bad query rejects", async () => {
  await using s = await serve();
  await using alice = await TestClient.connect(s, { name: "alice", room: "" });
  for (const room of ["cats", "cars", "dogs"]) await join(alice, room);
  const client = new ChatClient({ url: s.wsUrl, name: "bob", rooms: [], storage: null });
  try {
    client.start();
    await waitFor(() => Promise.resolve(client.live), 3000, "bob live");
    // Two searches out at once: each gets the answer to its own q.
    const [ca, d] = await Promise.all([
      client.findRooms({ q: "CA", limit: 1 }),
      client.findRooms({ q: "d" }),
    ]);
    assert.deepEqual(ca, { q: "ca", items: [{ room: "cars", topic: "", members: 1 }], next: "cars" });
    assert.deepEqual(d, { q: "d", items: [{ room: "dogs", topic: "", members: 1 }] });
    const rest = await client.findRooms({ q: "ca", after: ca.next, limit: 1 });
    assert.deepEqual(rest, { q: "ca", items: [{ room: "cats", topic: "", members: 1 }] });
    await assert.rejects(client.findRooms({ q: "no spaces" }), RangeError);
    await assert.rejects(client.findRooms({ limit: 0 }), RangeError);
  } finally {
    await client.stop();
  }
  // Offline, it says so at once.
  await assert.rejects(client.findRooms(), /Not connected/);
});

Deno.test("a refused rooms names its q and after, and ChatClient.findRooms() rejects at once with the reason", async () => {
  const disk = faultyStore();
  await using s = await startServer({}, { store: disk.store });
  await using alice = await TestClient.connect(s, { name: "alice", room: "cats" });
  disk.directoryFailing = true;
  const e = await ask(alice, { q: "ca", after: "cab" });
  assert.deepEqual([e.type, e.code, e.q, e.after], ["error", "store_failed", "ca", "cab"]);
  const client = new ChatClient({ url: s.wsUrl, name: "bob", rooms: [], storage: null });
  try {
    client.start();
    await waitFor(() => Promise.resolve(client.live), 3000, "bob live");
    const started = Date.now();
    // Two out at once: each refusal rejects its own request, not after the client's 10 s wait.
    const [first, second] = await Promise.allSettled([
      client.findRooms({ q: "c" }),
      client.findRooms({ q: "d" }),
    ]);
    assert.ok(Date.now() - started < 3000, `rejected after ${Date.now() - started} ms`);
    for (const r of [first, second]) {
      assert.equal(r.status, "rejected");
      const err = (r as PromiseRejectedResult).reason as Error & { code?: string };
      assert.equal(err.code, "store_failed");
      assert.match(err.message, /could not be|try again/);
    }
    disk.directoryFailing = false;
    assert.deepEqual(await client.findRooms({ q: "c" }), {
      q: "c",
      items: [{ room: "cats", topic: "", members: 1 }],
    });
  } finally {
    await client.stop();
  }
});

Deno.test("rooms shows a token with a rooms claim only the rooms it may join", async () => {
  await using s = await serve();
  await using alice = await TestClient.connect(s, { name: "alice", room: "" });
  for (const room of ["lobby", "team-a", "team-b", "zoo"]) await join(alice, room);
  const signed = await new SignJWT({ name: "tina", rooms: ["team-*", "zoo"] })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("tina")
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(SECRET));
  await using tina = await TestClient.connect(s, { token: signed, room: "" });
  const answer = await ask(tina, {});
  assert.deepEqual(answer.items.map((r: Msg) => r.room), ["team-a", "team-b", "zoo"]);
  // Paged: a room it may not join takes no place in a page, and next goes on past it.
  const first = await ask(tina, { limit: 1 });
  assert.deepEqual(first.items.map((r: Msg) => r.room), ["team-a"]);
  // Everyone else still sees them all.
  assert.deepEqual((await ask(alice, {})).items.map((r: Msg) => r.room), [
    "lobby",
    "team-a",
    "team-b",
    "zoo",
  ]);
});

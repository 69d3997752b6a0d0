/**
 * Unit tests of static/chat-client.js (the page's protocol code) under Deno, against a real server.
 * @module
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { faultyStore, type Msg, startServer, TestClient } from "../helpers/test_server.ts";
import { type Engine, type EngineEvents, UnavailableError } from "../../lib/engine.ts";
import { EmbeddedEngine } from "../../lib/engine_embedded.ts";
import { MemoryStore } from "../../lib/store.ts";
import {
  backoffDelay,
  ChatClient,
  isValidName,
  linkify,
  mentions,
  normalizeRoom,
  parseFrame,
} from "../../static/chat-client.js";

/** A `localStorage` stand-in. */
class MemoryStorage {
  readonly map = new Map<string, string>();
  getItem(k: string): string | null {
    return this.map.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.map.set(k, v);
  }
  removeItem(k: string): void {
    this.map.delete(k);
  }
}

/** Waits until `pred()` holds, checking every 10 ms, for at most `ms`. */
async function until(pred: () => boolean, what: string, ms = 4000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A client that records what it sends and receives. */
function makeClient(url: string, opts: Partial<ConstructorParameters<typeof ChatClient>[0]> = {}) {
  const sent: Msg[] = [];
  const received: Msg[] = [];
  const client = new ChatClient({
    url,
    storage: new MemoryStorage(),
    backoff: { baseMs: 50, maxMs: 200 },
    trace: (dir, m) => (dir === "out" ? sent : received).push(m),
    ...opts,
  });
  return { client, sent, received };
}

/** Sockets the test drives: each records what the client sends and delivers the frames the test gives. */
function fakeSockets() {
  const sockets: InstanceType<typeof FakeSocket>[] = [];
  class FakeSocket extends EventTarget {
    readyState = 0;
    sent: string[] = [];
    onmessage: ((e: { data: string }) => void) | null = null;
    onclose: (() => void) | null = null;
    onerror: (() => void) | null = null;
    constructor(readonly url: string) {
      super();
      sockets.push(this);
    }
    send(d: string) {
      this.sent.push(d);
    }
    close() {
      this.readyState = 3;
      this.onclose?.();
    }
    /** Delivers `lines` as one frame. */
    receive(...lines: Msg[]) {
      this.onmessage?.({ data: lines.map((l) => JSON.stringify(l)).join("\n") });
    }
    /** The messages the client sent so far. */
    messages(): Msg[] {
      return this.sent.map((d) => JSON.parse(d));
    }
  }
  return { sockets, FakeSocket };
}

const texts = (c: ChatClient, room = "lobby") => c.rooms.get(room)?.messages.map((m) => m.text) ?? [];

Deno.test("parseFrame splits a frame on newlines and skips what is not a JSON object", () => {
  assert.deepEqual(parseFrame('{"type":"a"}\n{"type":"b","x":1}\n\nnot json\n[1]\n{"type":"c"}'), [
    { type: "a" },
    { type: "b", x: 1 },
    { type: "c" },
  ]);
  assert.deepEqual(parseFrame('{"type":"pong","ts":1}'), [{ type: "pong", ts: 1 }]);
});

Deno.test("helpers: names, rooms, links, mentions, backoff", () => {
  assert.ok(isValidName("alice.b-2_x"));
  assert.ok(!isValidName("a b"));
  assert.ok(!isValidName("x".repeat(33)));
  assert.deepEqual(normalizeRoom("#Lobby"), "lobby");
  assert.deepEqual(normalizeRoom("no spaces"), undefined);

  assert.deepEqual(linkify("see https://example.com/a?b=1, ok"), [
    { text: "see " },
    { text: "https://example.com/a?b=1", href: "https://example.com/a?b=1" },
    { text: ", ok" },
  ]);
  assert.deepEqual(linkify("(https://example.com/wiki/A_(b))."), [
    { text: "(" },
    { text: "https://example.com/wiki/A_(b)", href: "https://example.com/wiki/A_(b)" },
    { text: ")." },
  ]);
  for (const evil of ["javascript:alert(1)", "data:text/html,<b>x</b>", "vbscript:x", "http://"]) {
    assert.ok(linkify(evil).every((p) => !p.href), evil);
  }
  assert.deepEqual(linkify('https://x.test/"><img src=x onerror=alert(1)>')[0].href, "https://x.test/");

  assert.ok(mentions("hey @alice!", "alice"));
  assert.ok(mentions("@ALICE: look", "alice"));
  assert.ok(!mentions("ALICE: look", "alice"), "a bare name is no mention (the server counts @name only)");
  assert.ok(!mentions("@alicent is here", "alice"));
  assert.ok(!mentions("bob.@alice", "alice"));
  assert.ok(mentions("ping @a.b please", "a.b"));
  assert.ok(mentions("thanks @a.b.", "a.b"));
  assert.ok(!mentions("ping @axb please", "a.b"));

  const ceil = (n: number) => Math.min(1000, 100 * 2 ** n);
  for (let n = 0; n < 8; n++) {
    assert.deepEqual(backoffDelay(n, { baseMs: 100, maxMs: 1000 }, () => 0), ceil(n) / 2);
    assert.deepEqual(backoffDelay(n, { baseMs: 100, maxMs: 1000 }, () => 1), ceil(n));
  }
});

Deno.test("mentions() highlights exactly what the server counts: an @name, never a bare name", async () => {
  await using server = await startServer();
  await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
  await using alice = await TestClient.connect(server, { name: "alice", room: "lobby" });
  const cases = [
    "hi bob",
    "bob: look",
    "hey @bob",
    "@BOB!",
    "thanks @bob.",
    "@ｂｏｂ (full-width)",
    "mail bob@example.com",
    "a@bob",
    "@bobby",
  ];
  for (const [i, text] of cases.entries()) {
    alice.send({ type: "send", room: "lobby", text, cid: `m${i}` });
    const line = await bob.next("message", (m) => m.cid === `m${i}`);
    const counted = (line.mentions ?? []).includes("bob");
    assert.equal(mentions(text, "bob"), counted, `${JSON.stringify(text)}: server counted ${counted}`);
  }
  // The rule is the server's, not a copy: both sides counted some and left some.
  assert.ok(bob.all("message").some((m) => m.mentions) && bob.all("message").some((m) => !m.mentions));
});

Deno.test("a frame holding several lines is split into its messages", async () => {
  // A fake socket: the test controls exactly what one frame holds.
  const { sockets, FakeSocket } = fakeSockets();
  const { client } = makeClient("ws://fake/ws", { WebSocket: FakeSocket as unknown as typeof WebSocket });
  client.start();
  const ws = sockets[0];
  ws.readyState = 1;
  const lines = [
    { type: "welcome", id: 1, name: "alice", token: "t".repeat(22), rooms: [], limits: {}, version: 1 },
    { type: "joined", room: "lobby", members: ["alice"], messages: [], lastSeq: 0, truncated: false },
    { type: "message", room: "lobby", seq: 1, from: "bob", text: "one", ts: 1 },
    { type: "message", room: "lobby", seq: 2, from: "bob", text: "two", ts: 2 },
    { type: "message", room: "lobby", seq: 2, from: "bob", text: "two", ts: 2 },
  ];
  ws.onmessage?.({ data: lines.map((l) => JSON.stringify(l)).join("\n") });
  assert.deepEqual(client.state, "live");
  assert.deepEqual(client.me, "alice");
  assert.deepEqual(texts(client), ["one", "two"]);
  assert.deepEqual(client.stats, { frames: 1, lines: 5, connects: 1 });
  assert.deepEqual(JSON.parse(ws.sent[0]), { type: "join", room: "lobby" });
  await client.stop();
});

Deno.test("ChatClient reconnects after a refused connection that fires only an error event (Node 20)", async () => {
  // Node 20's WebSocket reports a refused connection with `error` and never with `close`.
  const { sockets, FakeSocket } = fakeSockets();
  const { client } = makeClient("ws://fake/ws", { WebSocket: FakeSocket as unknown as typeof WebSocket });
  client.start();
  sockets[0].onerror?.();
  assert.equal(client.state, "reconnecting");
  await until(() => sockets.length === 2, "a second attempt");
  // The first socket's late close (where the runtime sends one) changes nothing.
  const state = client.state;
  sockets[0].onclose?.();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sockets.length, 2);
  assert.equal(client.state, state);
  await client.stop();
});

Deno.test("ChatClient.on() hands the listener each event's detail until the returned function removes it", async () => {
  const { sockets, FakeSocket } = fakeSockets();
  const { client } = makeClient("ws://fake/ws", { WebSocket: FakeSocket as unknown as typeof WebSocket });
  const got: string[] = [];
  const off = client.on("message", (d) => got.push(`${d.room}:${d.message.text}`));
  client.start();
  const ws = sockets[0];
  ws.readyState = 1;
  ws.receive(
    { type: "welcome", id: 1, name: "alice", token: "t".repeat(22), rooms: [], limits: {}, version: 1 },
    { type: "joined", room: "lobby", members: ["alice"], messages: [], lastSeq: 0, truncated: false },
    { type: "message", room: "lobby", seq: 1, from: "bob", text: "one", ts: 1 },
  );
  off();
  ws.receive({ type: "message", room: "lobby", seq: 2, from: "bob", text: "two", ts: 2 });
  assert.deepEqual(got, ["lobby:one"]);
  assert.deepEqual(texts(client), ["one", "two"]);
  await client.stop();
});

Deno.test("the slow-mode wait and the end of a mute come from the error's fields, not its sentence", async () => {
  const { sockets, FakeSocket } = fakeSockets();
  const { client } = makeClient("ws://fake/ws", { WebSocket: FakeSocket as unknown as typeof WebSocket });
  client.start();
  const ws = sockets[0];
  ws.readyState = 1;
  const joined = (room: string, slowModeSeconds: number) => ({
    type: "joined",
    room,
    members: ["alice"],
    messages: [],
    lastSeq: 0,
    truncated: false,
    rules: { topic: "", private: false, readOnly: false, slowModeSeconds },
    you: { role: "member" },
  });
  ws.receive({ type: "welcome", name: "alice", token: "t".repeat(22), limits: {}, version: 1 });
  client.join("news");
  ws.receive(joined("lobby", 60), joined("news", 0));
  const lastSend = () => ws.messages().filter((m) => m.type === "send").at(-1)!;

  // The sentence says 42 s; the field says 7: the message waits 7 s (and the room's 60 are not used).
  const slowed = client.send({ room: "lobby", text: "one more" });
  ws.receive({
    type: "error",
    code: "slow_mode",
    message: 'Room "lobby" is in slow mode: wait 42 s before posting again',
    room: "lobby",
    retryAfter: 7,
    cid: lastSend().cid,
  });
  const wait = client.rooms.get("lobby")!.slowUntil - Date.now();
  assert.ok(wait > 6000 && wait <= 7250, `waits ${wait} ms`);
  assert.equal(slowed.state, "pending", "it waits its turn");

  // The sentence names one end, the field another: the field counts.
  const until = Date.now() + 120_000;
  const muted = client.send({ room: "news", text: "hello?" });
  ws.receive({
    type: "error",
    code: "muted",
    message: `You are muted in room "news" until ${new Date(until + 86_400_000).toISOString()}`,
    room: "news",
    until,
    cid: lastSend().cid,
  });
  assert.equal(client.rooms.get("news")!.mutedUntil, until);
  assert.equal(muted.state, "failed");
  await client.stop();
});

Deno.test("the client follows the server's coalesced frames", async () => {
  await using server = await startServer();
  await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
  const { client } = makeClient(server.wsUrl, { name: "alice" });
  client.start();
  await until(() => client.rooms.get("lobby")?.joined === true, "alice joined");
  await bob.next("presence", (m) => m.name === "alice");
  for (let i = 1; i <= 6; i++) bob.send({ type: "send", room: "lobby", text: `m${i}`, cid: `c${i}` });
  await until(() => texts(client).length === 6, "six messages");
  assert.deepEqual(texts(client), ["m1", "m2", "m3", "m4", "m5", "m6"]);
  // The six were written in one or two batches and arrived in fewer frames than lines.
  assert.ok(client.stats.lines > client.stats.frames, JSON.stringify(client.stats));
  assert.deepEqual([...client.rooms.get("lobby")!.members], ["alice", "bob"]);
  await client.stop();
  assert.deepEqual(client.state, "offline");
});

Deno.test("the outbox survives a reload and re-sends with the same cid: nothing lost or doubled", async () => {
  // No history on join: the client cannot see that "first" is stored, so it must send it again.
  await using server = await startServer({ historyOnJoin: 0 });
  await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
  const token = "test-token-alice-0123456789";
  // An earlier page sent "first" and was stored, but the ack never came back (the page went away).
  const earlier = await TestClient.connect(server, { name: "alice", room: "lobby", token });
  earlier.send({ type: "send", room: "lobby", text: "first", cid: "cid-first" });
  const firstAck = await earlier.next("ack");
  await earlier.close();
  await bob.next("message", (m) => m.text === "first");

  // The reloaded page finds both messages still in its stored outbox.
  const storage = new MemoryStorage();
  storage.setItem("chat:identity", JSON.stringify({ name: "alice", token }));
  storage.setItem("chat:rooms", JSON.stringify(["lobby"]));
  storage.setItem(
    "chat:outbox",
    JSON.stringify([
      { cid: "cid-first", room: "lobby", text: "first", createdAt: 1, state: "sending" },
      { cid: "cid-second", room: "lobby", text: "second", createdAt: 2, state: "pending" },
    ]),
  );
  const { client, sent, received } = makeClient(server.wsUrl, { storage });
  assert.deepEqual(client.outbox.map((i) => i.state), ["pending", "pending"]);
  // And one more typed before the connection is up.
  client.send({ room: "lobby", text: "third" });
  assert.deepEqual(JSON.parse(storage.getItem("chat:outbox")!).length, 3);
  client.start();
  await until(() => client.outbox.length === 0, "outbox empty");
  await bob.next("message", (m) => m.text === "third");

  const sends = sent.filter((m) => m.type === "send");
  assert.deepEqual(sends.map((m) => m.text), ["first", "second", "third"]);
  assert.deepEqual(sends[0].cid, "cid-first");
  assert.deepEqual(sends[1].cid, "cid-second");
  const acks = received.filter((m) => m.type === "ack");
  assert.deepEqual(acks[0].cid, "cid-first");
  assert.deepEqual(acks[0].seq, firstAck.seq, "a re-sent cid gets the original ack");
  assert.deepEqual(acks[0].ts, firstAck.ts);
  // Bob saw each message once; so did alice.
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(bob.all("message").map((m) => m.text), ["first", "second", "third"]);
  assert.deepEqual(texts(client), ["first", "second", "third"]);
  assert.deepEqual(JSON.parse(storage.getItem("chat:outbox")!), []);
  assert.deepEqual(JSON.parse(storage.getItem("chat:identity")!).token, token);
  await client.stop();
});

Deno.test("a dropped connection reconnects by itself and resumes with since: no gap, no duplicate", async () => {
  await using server = await startServer();
  await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
  bob.send({ type: "send", room: "lobby", text: "m1", cid: "b1" });
  await bob.next("ack");
  // A long backoff: the test decides when the client comes back.
  const { client, sent } = makeClient(server.wsUrl, {
    name: "alice",
    backoff: { baseMs: 60_000, maxMs: 60_000 },
  });
  const joinedEvents: Record<string, unknown>[] = [];
  client.addEventListener("joined", (e) => joinedEvents.push((e as CustomEvent).detail));
  client.start();
  await until(() => texts(client).length === 1, "history on join");
  bob.send({ type: "send", room: "lobby", text: "m2", cid: "b2" });
  await until(() => texts(client).length === 2, "m2 live");
  const lastSeq = client.rooms.get("lobby")!.lastSeq;
  assert.deepEqual(lastSeq, 2);

  client.ws!.close(); // the network drops
  await until(() => client.state === "reconnecting", "reconnecting");
  assert.ok(client.retryAt > Date.now(), "a retry is scheduled");
  const offline = client.send({ room: "lobby", text: "typed while offline" });
  bob.send({ type: "send", room: "lobby", text: "m3", cid: "b3" });
  bob.send({ type: "send", room: "lobby", text: "m4", cid: "b4" });
  await bob.next("ack", (m) => m.cid === "b4");

  client.reconnectNow();
  await until(() => client.outbox.length === 0 && texts(client).length === 5, "resumed and sent");
  const joins = sent.filter((m) => m.type === "join");
  const epoch = client.rooms.get("lobby")!.epoch;
  assert.deepEqual(joins, [{ type: "join", room: "lobby" }, {
    type: "join",
    room: "lobby",
    since: 2,
    epoch,
    rev: 0,
  }]);
  assert.deepEqual(joinedEvents[1].reset, false);
  assert.deepEqual(
    (joinedEvents[1].added as { text: string }[]).map((m) => m.text),
    ["m3", "m4"],
  );
  assert.deepEqual(texts(client), ["m1", "m2", "m3", "m4", "typed while offline"]);
  assert.deepEqual(client.rooms.get("lobby")!.messages.map((m) => m.seq), [1, 2, 3, 4, 5]);
  const mine = await bob.next("message", (m) => m.cid === offline.cid);
  assert.deepEqual(mine.from, "alice");
  assert.deepEqual(sent.filter((m) => m.type === "send" && m.cid === offline.cid).length, 1);
  await client.stop();
});

/** A client holding bob's m1..m3 whose connection then drops (a long backoff: the test says when it is back). */
async function heldThenDropped(overrides: Record<string, unknown> = {}) {
  const server = await startServer(overrides);
  const bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
  for (const text of ["m1", "m2", "m3"]) {
    bob.send({ type: "send", room: "lobby", text, cid: text });
    await bob.next("ack", (m) => m.cid === text);
  }
  const { client, sent } = makeClient(server.wsUrl, {
    name: "alice",
    backoff: { baseMs: 60_000, maxMs: 60_000 },
  });
  const changed: { seq: number; text: string; deleted?: boolean }[] = [];
  client.addEventListener("changed", (e) => {
    const { message } = (e as CustomEvent).detail;
    changed.push({ seq: message.seq, text: message.text, deleted: message.deleted });
  });
  client.start();
  await until(() => texts(client).length === 3, "history on join");
  // A live change moves the room's rev on.
  bob.send({ type: "edit", room: "lobby", seq: 3, text: "m3, edited live" });
  await bob.next("edited", (m) => m.seq === 3);
  await until(() => client.rooms.get("lobby")!.rev === 1, "rev 1 from the edited line");
  client.ws!.close(); // the network drops
  await until(() => client.state === "reconnecting", "reconnecting");
  return { server, bob, client, sent, changed };
}

Deno.test("a resumed room applies joined.changes: a held message deleted and one edited while away", async () => {
  const { server, bob, client, sent, changed } = await heldThenDropped();
  await using _server = server;
  await using _bob = bob;
  bob.send({ type: "delete", room: "lobby", seq: 1 });
  await bob.next("deleted");
  bob.send({ type: "edit", room: "lobby", seq: 2, text: "m2, better" });
  await bob.next("edited");
  changed.length = 0;

  client.reconnectNow();
  await until(() => client.rooms.get("lobby")!.rev === 3, "the resume's rev");
  const join = sent.filter((m) => m.type === "join").at(-1)!;
  assert.deepEqual([join.since, join.rev], [3, 1], "the join sends the rev it has seen");
  const r = client.rooms.get("lobby")!;
  assert.deepEqual(r.messages.map((m) => [m.seq, m.text, m.deleted ?? false]), [
    [1, "", true],
    [2, "m2, better", false],
    [3, "m3, edited live", false],
  ]);
  assert.equal(typeof r.messages[1].editedTs, "number");
  assert.deepEqual(changed, [{ seq: 1, text: "", deleted: true }, {
    seq: 2,
    text: "m2, better",
    deleted: undefined,
  }]);
  await client.stop();
});

Deno.test("a resume whose changes were too many (changesTruncated) reloads the room's history", async () => {
  const { server, bob, client } = await heldThenDropped({ resumeCap: 1 });
  await using _server = server;
  await using _bob = bob;
  for (const seq of [1, 2]) {
    bob.send({ type: "delete", room: "lobby", seq });
    await bob.next("deleted", (m) => m.seq === seq);
  }
  const joined: Record<string, unknown>[] = [];
  client.addEventListener("joined", (e) => joined.push((e as CustomEvent).detail));
  client.reconnectNow();
  await until(() => joined.length === 1, "joined");
  assert.equal(joined[0].reset, true);
  await until(() => texts(client).length === 3, "the history reloaded");
  assert.deepEqual(client.rooms.get("lobby")!.messages.map((m) => [m.seq, m.text, m.deleted ?? false]), [
    [1, "", true],
    [2, "", true],
    [3, "m3, edited live", false],
  ]);
  assert.equal(client.rooms.get("lobby")!.rev, 3);
  await client.stop();
});

Deno.test("a server restart: the client comes back by itself with its name, messages and outbox", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-client-test-" });
  try {
    const first = await startServer({ store: "sqlite", dataDir });
    const port = first.port;
    const { client } = makeClient(first.wsUrl, { name: "alice", backoff: { baseMs: 100, maxMs: 400 } });
    client.start();
    await until(() => client.rooms.get("lobby")?.joined === true, "joined");
    client.send({ room: "lobby", text: "before" });
    await until(() => client.outbox.length === 0, "before acked");
    const token = client.token;

    await first.close();
    await until(() => client.state === "reconnecting", "reconnecting");
    client.send({ room: "lobby", text: "during" });

    await using second = await startServer({ store: "sqlite", dataDir, port });
    await using bob = await TestClient.connect(second, { name: "bob", room: "lobby" });
    bob.send({ type: "send", room: "lobby", text: "meanwhile", cid: "b1" });
    await bob.next("ack");
    await until(() => client.live && client.outbox.length === 0, "back and flushed", 6000);
    await until(() => texts(client).length === 3, "three messages");
    assert.deepEqual(texts(client), ["before", "meanwhile", "during"]);
    assert.deepEqual(client.me, "alice");
    assert.deepEqual(client.token, token);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(bob.all("message").filter((m) => m.text === "during").length, 1);
    await client.stop();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a restart that lost the history (new epoch) reloads the room instead of resuming into new seqs", async () => {
  const first = await startServer({ store: "memory" });
  const port = first.port;
  const { client, sent } = makeClient(first.wsUrl, { name: "alice", backoff: { baseMs: 100, maxMs: 400 } });
  client.start();
  await until(() => client.rooms.get("lobby")?.joined === true, "joined");
  for (const text of ["old 1", "old 2", "old 3"]) client.send({ room: "lobby", text });
  await until(() => client.outbox.length === 0 && texts(client).length === 3, "three acked");
  const epoch = client.rooms.get("lobby")!.epoch;
  await first.close();
  await until(() => client.state === "reconnecting", "reconnecting");
  // A memory store starts over: seq 1 and 2 are new messages, not "old 1" and "old 2" again.
  await using second = await startServer({ store: "memory", port });
  await using bob = await TestClient.connect(second, { name: "bob", room: "lobby" });
  for (const text of ["new 1", "new 2", "new 3", "new 4"]) bob.send({ type: "send", room: "lobby", text });
  await bob.next("message", (m) => m.seq === 4);
  await until(() => client.live && client.rooms.get("lobby")?.joined === true, "back", 6000);
  const rejoin = sent.filter((m) => m.type === "join").at(-1)!;
  assert.deepEqual([rejoin.since, rejoin.epoch], [3, epoch]);
  await until(() => texts(client).length === 4, "the new history");
  assert.deepEqual(texts(client), ["new 1", "new 2", "new 3", "new 4"]);
  assert.notEqual(client.rooms.get("lobby")!.epoch, epoch);
  await client.stop();
});

Deno.test("a refused send is marked failed with the server's reason, and can be discarded", async () => {
  await using server = await startServer();
  const { client } = makeClient(server.wsUrl, { name: "alice" });
  const errors: string[] = [];
  client.addEventListener("servererror", (e) => errors.push((e as CustomEvent).detail.code));
  client.start();
  await until(() => client.live, "live");
  const item = client.send({ to: "nobody", text: "hello?" });
  await until(() => item.state === "failed", "failed");
  assert.deepEqual(errors, ["user_not_found"]);
  assert.match(item.error ?? "", /nobody/);
  client.discard(item.cid);
  assert.deepEqual(client.outbox, []);
  await client.stop();
});

Deno.test("direct messages, typing that expires, presence and renames", async () => {
  await using server = await startServer();
  await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
  const { client } = makeClient(server.wsUrl, { name: "alice", typingTtlMs: 150 });
  client.start();
  await until(() => client.rooms.get("lobby")?.joined === true, "joined");

  bob.send({ type: "typing", room: "lobby" });
  await until(() => client.rooms.get("lobby")!.typers().join() === "bob", "bob typing");
  await until(() => client.rooms.get("lobby")!.typers().length === 0, "typing expired", 1000);

  client.send({ to: "bob", text: "psst" });
  const dm = await bob.next("message", (m) => m.to === "bob");
  assert.deepEqual([dm.from, dm.text, dm.room], ["alice", "psst", undefined]);
  bob.send({ type: "send", to: "alice", text: "yes?", cid: "d1" });
  await until(() => client.directs.get("bob")?.messages.length === 2, "two direct messages");
  assert.deepEqual(client.directs.get("bob")!.messages.map((m) => `${m.from}:${m.text}`), [
    "alice:psst",
    "bob:yes?",
  ]);

  bob.send({ type: "nick", name: "robert" });
  await until(() => client.rooms.get("lobby")!.members.has("robert"), "rename seen");
  assert.ok(!client.rooms.get("lobby")!.members.has("bob"));
  assert.ok(client.directs.has("robert"), "the conversation follows the rename");
  await bob.close();
  await until(() => !client.rooms.get("lobby")!.members.has("robert"), "presence leave");
  await client.stop();
});

Deno.test("typing() right after a send goes out once the message is in, so the room sees it after the message", async () => {
  const disk = faultyStore();
  await using server = await startServer({}, { store: disk.store });
  using _ = { [Symbol.dispose]: () => disk.release() }; // a failed assertion must not leave writes held
  await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
  const { client, sent } = makeClient(server.wsUrl, { name: "alice" });
  client.start();
  await until(() => client.rooms.get("lobby")?.joined === true, "joined");
  const typings = () => sent.filter((m) => m.type === "typing").length;
  client.typing("lobby");
  await bob.next("typing", (m) => m.name === "alice");
  // A slow disk: the message reaches the room only once stored, while a typing would go at once.
  disk.hold();
  client.send({ room: "lobby", text: "one" });
  client.typing("lobby"); // typing on at once: within the throttle, held back for now
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(typings(), 1);
  disk.release();
  await bob.next("message", (m) => m.text === "one");
  await bob.next("typing", (m) => m.name === "alice");
  assert.equal(typings(), 2);
  const order = bob.lines.filter((m) => m.type === "message" || m.type === "typing").map((m) => m.type);
  assert.deepEqual(order, ["typing", "message", "typing"], "the second typing is not cleared by the message");
  // After the message, the throttle holds again.
  client.typing("lobby");
  assert.equal(typings(), 2);
  await client.stop();
});

Deno.test("join(room, { resume }) with what leave() returned asks only for what came since", async () => {
  await using server = await startServer();
  await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
  const { client, sent } = makeClient(server.wsUrl, { name: "alice" });
  client.start();
  await until(() => client.rooms.get("lobby")?.joined === true, "joined");
  bob.send({ type: "send", room: "lobby", text: "before", cid: "b1" });
  await until(() => texts(client).length === 1, "the first message");
  const kept = client.leave("lobby");
  assert.ok(kept);
  await bob.next("presence", (m) => m.event === "leave" && m.name === "alice");
  bob.send({ type: "send", room: "lobby", text: "meanwhile", cid: "b2" });
  await bob.next("ack", (m) => m.cid === "b2");
  assert.equal(client.join("lobby", { resume: kept }), "lobby");
  await until(() => texts(client).length === 2, "what came meanwhile");
  assert.deepEqual(texts(client), ["before", "meanwhile"]);
  assert.deepEqual(sent.filter((m) => m.type === "join").at(-1), {
    type: "join",
    room: "lobby",
    since: 1,
    epoch: kept.epoch,
    rev: 0,
  });
  assert.equal(client.leave("nowhere"), undefined);
  await client.stop();
});

Deno.test("a send refused with shutting_down stays in the outbox and goes out after the restart", async () => {
  const disk = faultyStore();
  const first = await startServer({}, { store: disk.store });
  using _ = { [Symbol.dispose]: () => disk.release() }; // a failed assertion must not leave writes held
  const port = first.port;
  const { client } = makeClient(first.wsUrl, { name: "alice", backoff: { baseMs: 100, maxMs: 400 } });
  const errors: string[] = [];
  client.addEventListener("servererror", (e) => errors.push((e as CustomEvent).detail.code));
  client.start();
  await until(() => client.rooms.get("lobby")?.joined === true, "joined");
  // Bob's write is held by a slow disk, so the shutdown drains for as long as the test wants.
  const bob = await TestClient.connect(first, { name: "bob", room: "lobby" });
  disk.hold();
  bob.send({ type: "send", room: "lobby", text: "held", cid: "b1" });
  while (first.app.chat.pendingCount === 0) await new Promise((r) => setTimeout(r, 2));
  const down = first.close();
  const item = client.send({ room: "lobby", text: "during shutdown" });
  await until(() => errors.includes("shutting_down"), "shutting_down");
  assert.notEqual(item.state, "failed", "a restart is no reason to give up on a message");
  disk.release();
  await down;
  await bob.closed;

  await using second = await startServer({ port }, { store: disk.store });
  await until(() => client.live && client.outbox.length === 0, "back and flushed", 6000);
  await until(() => texts(client).includes("during shutdown"), "delivered");
  assert.deepEqual(texts(client), ["held", "during shutdown"]);
  assert.ok(second);
  await client.stop();
});

Deno.test("a send answered unavailable (storage out of reach for a moment) stays in the outbox and goes once it is back", async () => {
  const engine = new EmbeddedEngine(new MemoryStore({ retainMessages: 0, retainMs: 0 }), {
    dedupWindowMs: 60_000,
  });
  let away = false;
  const append = engine.append.bind(engine);
  engine.append = (batch) => away ? Promise.reject(new UnavailableError("the store is away")) : append(batch);
  await using server = await startServer({}, { engine });
  const { client } = makeClient(server.wsUrl, { name: "alice" });
  const errors: string[] = [];
  client.addEventListener("servererror", (e) => errors.push((e as CustomEvent).detail.code));
  client.start();
  await until(() => client.rooms.get("lobby")?.joined === true, "joined");
  away = true;
  const item = client.send({ room: "lobby", text: "while the store is away" });
  await until(() => errors.includes("unavailable"), "unavailable");
  assert.notEqual(item.state, "failed", "the server said to send it again, not that it is refused");
  away = false;
  await until(() => client.outbox.length === 0, "sent once the store is back", 6000);
  assert.deepEqual(texts(client), ["while the store is away"]);
  await client.stop();
});

const MOD_SECRET = "chat-client-moderation-secret-0123456789";

/** A signed token for `sub` with the test's secret. */
function signed(sub: string, claims: { role?: string; rooms?: string[] } = {}): Promise<string> {
  return new SignJWT({ name: sub, ...claims }).setProtectedHeader({ alg: "HS256" }).setSubject(sub)
    .setExpirationTime("10m").sign(new TextEncoder().encode(MOD_SECRET));
}

Deno.test("the outbox fails a send to a room where you are muted or read-only, without sending it, and sends again once lifted", async () => {
  await using server = await startServer({ jwtSecret: MOD_SECRET });
  await using mod = await TestClient.connect(server, { token: await signed("mo", { role: "moderator" }) });
  await mod.next("joined");
  const { client, sent } = makeClient(server.wsUrl, { getToken: () => signed("alice") });
  client.start();
  await until(() => client.rooms.get("lobby")?.joined === true, "joined");
  assert.equal(client.guest, false);
  assert.throws(() => client.nick("alicia"), RangeError, "a signed name is the host's");
  const lobby = client.rooms.get("lobby")!;
  const sends = () => sent.filter((m) => m.type === "send").length;

  mod.send({ type: "mute", room: "lobby", name: "alice", seconds: 600 });
  await until(() => lobby.isMuted(), "muted");
  assert.ok(lobby.mutedUntil! > Date.now() + 590_000);
  assert.equal(lobby.moderation.at(-1)?.action, "mute");
  const muted = client.send({ room: "lobby", text: "let me speak" });
  assert.equal(muted.state, "failed");
  assert.match(muted.error ?? "", /^You are muted in #lobby until /);
  assert.equal(sends(), 0, "not sent: the server would refuse it, a strike");

  mod.send({ type: "unmute", room: "lobby", name: "alice" });
  await until(() => !lobby.isMuted(), "unmuted");
  client.retry(muted.cid);
  await until(() => client.outbox.length === 0, "sent after the unmute");
  assert.deepEqual(texts(client), ["let me speak"]);

  mod.send({ type: "room", room: "lobby", readOnly: true, topic: "announcements" });
  await until(() => lobby.rules.readOnly, "read-only");
  assert.equal(lobby.rules.topic, "announcements");
  const ro = client.send({ room: "lobby", text: "may I?" });
  assert.equal(ro.state, "failed");
  assert.equal(ro.error, "#lobby is read-only: only moderators post");
  assert.equal(sends(), 1);
  await client.stop();
});

Deno.test("kicked, banned and refused rooms fail their outbox with a sentence; slow mode holds a message until its turn", async () => {
  await using server = await startServer({ jwtSecret: MOD_SECRET });
  await using mod = await TestClient.connect(server, { token: await signed("mo", { role: "moderator" }) });
  await mod.next("joined");
  const { client, sent } = makeClient(server.wsUrl, {
    getToken: () => signed("alice", { rooms: ["lobby"] }),
  });
  client.start();
  await until(() => client.rooms.get("lobby")?.joined === true, "joined");
  const lobby = client.rooms.get("lobby")!;

  // A join the token does not allow: refused, and what waits for the room fails with the server's sentence.
  client.join("secret");
  const waiting = client.send({ room: "secret", text: "hello?" });
  await until(() => waiting.state === "failed", "refused");
  assert.equal(waiting.error, 'You cannot join room "secret"');
  assert.equal(client.rooms.get("secret")!.removed?.reason, "refused");
  client.discard(waiting.cid);

  // Slow mode: the second message waits for its turn instead of being refused.
  mod.send({ type: "room", room: "lobby", slowModeSeconds: 1 });
  await until(() => lobby.rules.slowModeSeconds === 1, "slow mode");
  client.send({ room: "lobby", text: "one" });
  client.send({ room: "lobby", text: "two" });
  await until(() => client.outbox.length === 0, "both sent", 4000);
  assert.deepEqual(texts(client), ["one", "two"]);
  const [t1, t2] = lobby.messages.map((m) => m.ts);
  assert.ok(t2 - t1 >= 1000, `one second apart, got ${t2 - t1} ms`);
  assert.equal(sent.filter((m) => m.type === "send").length, 2, "no refused try");
  mod.send({ type: "room", room: "lobby", slowModeSeconds: 0 });
  await until(() => lobby.rules.slowModeSeconds === 0, "slow mode off");

  mod.send({ type: "kick", room: "lobby", name: "alice" });
  await until(() => lobby.removed?.reason === "kicked", "kicked");
  assert.equal(client.send({ room: "lobby", text: "back?" }).error, "You were removed from #lobby");
  client.rejoin("lobby");
  await until(() => lobby.joined, "joined again");

  mod.send({ type: "ban", room: "lobby", name: "alice", reason: "spam" });
  await until(() => lobby.removed?.reason === "banned", "banned");
  assert.equal(client.send({ room: "lobby", text: "please" }).error, "You are banned from #lobby");
  client.rejoin("lobby");
  await until(() => lobby.removed?.reason === "banned" && !lobby.joined, "refused again");
  await client.stop();
});

Deno.test("ChatClient.send({replyTo}) and react() keep replies, mentions and reactions on the room's messages", async () => {
  await using server = await startServer();
  await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
  const { client, sent } = makeClient(server.wsUrl, { name: "alice" });
  const reactions: unknown[] = [];
  client.addEventListener("reactions", (e) => reactions.push((e as CustomEvent).detail.seq));
  client.start();
  await until(() => client.rooms.get("lobby")?.joined === true, "joined");
  bob.send({ type: "send", room: "lobby", text: "hello @alice\nsecond line", cid: "b1" });
  const first = await bob.next("ack");
  await until(() => texts(client).length === 1, "bob's message");
  assert.deepEqual(client.rooms.get("lobby")!.messages[0].mentions, ["alice"]);
  client.send({ room: "lobby", text: "hi!", replyTo: first.seq });
  assert.throws(() => client.send({ room: "lobby", text: "x", replyTo: 0 }), RangeError);
  await until(() => texts(client).length === 2, "the reply");
  assert.deepEqual(client.rooms.get("lobby")!.messages[1].replyTo, {
    seq: first.seq,
    from: "bob",
    text: "hello @alice",
  });
  assert.equal(sent.find((m) => m.type === "send")!.replyTo, first.seq);
  assert.equal(client.react("lobby", first.seq, "👍"), true);
  await until(() => reactions.length === 1, "our reaction");
  bob.send({ type: "react", room: "lobby", seq: first.seq, emoji: "👍" });
  await until(() => reactions.length === 2, "bob's reaction");
  const m = client.rooms.get("lobby")!.messages[0];
  assert.deepEqual([m.reactions, m.mine], [{ "👍": 2 }, ["👍"]]);
  client.react("lobby", first.seq, "👍");
  await until(() => reactions.length === 3, "taken back");
  assert.deepEqual([m.reactions, m.mine], [{ "👍": 1 }, undefined]);
  await client.stop();
});

Deno.test("a DM sent while offline shows with its unread count on connect; markRead clears it on every device", async () => {
  await using server = await startServer();
  const bob = await TestClient.connect(server, { name: "bob", room: "" });
  const token = bob.all("welcome")[0].token;
  await bob.close();
  await using alice = await TestClient.connect(server, { name: "alice", room: "" });
  alice.send({ type: "send", to: "bob", text: "while you were out", cid: "o1" });
  const { conv } = await alice.next("ack");
  await using phone = await TestClient.connect(server, { token, room: "" });
  const storage = new MemoryStorage();
  storage.setItem("chat:identity", JSON.stringify({ token, name: "bob" }));
  const { client } = makeClient(server.wsUrl, { storage });
  client.start();
  await until(() => client.directs.get("alice")?.unread === 1, "unread 1 from the list");
  const c = client.directs.get("alice")!;
  assert.equal(c.conv, conv);
  assert.deepEqual(c.messages.map((m) => [m.from, m.text, m.convSeq]), [["alice", "while you were out", 1]]);
  assert.ok(client.markRead({ peer: "alice" }));
  assert.deepEqual(await phone.next("read"), { type: "read", conv, seq: 1 });
  await until(() => c.unread === 0 && c.lastRead === 1, "read here");
  phone.send({ type: "send", to: "alice", text: "back now", cid: "p1" });
  alice.send({ type: "send", to: "bob", text: "welcome back", cid: "o2" });
  await until(() => c.lastSeq === 3, "both live messages");
  assert.equal(c.unread, 1, "alice's second message is unread; bob's own is not");
  await client.stop();
});

Deno.test("ChatClient: edited and deleted lines update the quotes of the replies it holds", async () => {
  await using server = await startServer();
  await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
  const { client } = makeClient(server.wsUrl, { name: "alice" });
  const changed: number[] = [];
  client.addEventListener("changed", (e) => changed.push((e as CustomEvent).detail.message.seq));
  client.start();
  await until(() => client.rooms.get("lobby")?.joined === true, "joined");
  bob.send({ type: "send", room: "lobby", text: "secret plan\nsecond line", cid: "b1" });
  const first = await bob.next("ack");
  bob.send({ type: "send", room: "lobby", text: "other", cid: "b2" });
  const other = await bob.next("ack");
  await until(() => texts(client).length === 2, "bob's messages");
  client.send({ room: "lobby", text: "agreed", replyTo: first.seq });
  client.send({ room: "lobby", text: "re other", replyTo: other.seq });
  client.send({ room: "lobby", text: "me too", replyTo: first.seq });
  await until(() => texts(client).length === 5, "the replies");
  const quotes = () => client.rooms.get("lobby")!.messages.slice(2).map((m) => m.replyTo);
  const rest = { seq: other.seq, from: "bob", text: "other" };
  await until(() => quotes().every((q) => q !== undefined), "the replies' own lines");
  changed.length = 0;
  bob.send({ type: "edit", room: "lobby", seq: first.seq, text: "revised plan\nsecond line" });
  await until(() => changed.length >= 3, "the edit");
  const revised = { seq: first.seq, from: "bob", text: "revised plan" };
  assert.deepEqual(quotes(), [revised, rest, revised]);
  assert.deepEqual(changed.sort(), [first.seq, first.seq + 2, first.seq + 4], "the replies are changed too");
  changed.length = 0;
  bob.send({ type: "delete", room: "lobby", seq: first.seq });
  await until(() => changed.length >= 3, "the delete");
  const gone = { seq: first.seq, from: "bob", text: "", deleted: true };
  assert.deepEqual(quotes(), [gone, rest, gone]);
  assert.ok(!JSON.stringify(client.rooms.get("lobby")!.messages).includes("plan"));
  await client.stop();
});

/**
 * An embedded engine with some calls replaced by `wrap(inner)`: a test's seam for the timing another
 * engine (Redis, a Cluster) can show.
 */
function engineWith(wrap: (inner: EmbeddedEngine) => Partial<Engine>): Engine {
  const inner = new EmbeddedEngine(new MemoryStore({ retainMessages: 0, retainMs: 0 }), {
    dedupWindowMs: 60_000,
  });
  const replaced = wrap(inner) as Record<PropertyKey, unknown>;
  return new Proxy(inner, {
    get(target, p) {
      if (p in replaced) return replaced[p];
      const v = Reflect.get(target, p, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  }) as unknown as Engine;
}

Deno.test("ChatClient: an ack that overtakes its message (as on Redis) still leaves the reply's quote and mentions", async () => {
  // Stored messages reach the members 30 ms after the append resolved (the sender's ack is out).
  const late = new Set<ReturnType<typeof setTimeout>>();
  const engine = engineWith((inner) => ({
    subscribe: (events: EngineEvents) =>
      inner.subscribe({
        ...events,
        message: (m) => {
          const t = setTimeout(() => (late.delete(t), events.message(m)), 30);
          late.add(t);
        },
      }),
  }));
  await using server = await startServer({}, { engine });
  await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
  const { client, received } = makeClient(server.wsUrl, { name: "alice" });
  const changed: number[] = [];
  client.addEventListener("changed", (e) => changed.push((e as CustomEvent).detail.message.seq));
  client.start();
  await until(() => client.rooms.get("lobby")?.joined === true, "joined");
  bob.send({ type: "send", room: "lobby", text: "plan A\nmore", cid: "b1" });
  const first = await bob.next("ack");
  await until(() => texts(client).length === 1, "bob's message");
  client.send({ room: "lobby", text: "yes @bob", replyTo: first.seq });
  await until(() => received.some((m) => m.type === "message" && m.from === "alice"), "alice's own line");
  const lines = received.filter((m) => m.type === "ack" || (m.type === "message" && m.from === "alice"));
  assert.deepEqual(lines.map((m) => m.type), ["ack", "message"], "the ack came first");
  const mine = client.rooms.get("lobby")!.messages[1];
  assert.deepEqual(mine.replyTo, { seq: first.seq, from: "bob", text: "plan A" });
  assert.deepEqual(mine.mentions, ["bob"]);
  assert.deepEqual(changed, [mine.seq], "the page is told to draw it again");
  await client.stop();
  await until(() => late.size === 0, "the late deliveries");
});

Deno.test("ChatClient: a change both in joined.changes and held as a line (it landed during the join) counts once", async () => {
  // The join's read of the changes waits (once held) until the test lets it go.
  let gate: Promise<void> | undefined;
  let open = () => {};
  let waiting = 0;
  const engine = engineWith((inner) => ({
    changes: async (room: string, upTo: number, afterRev: number, limit: number) => {
      if (gate) waiting++, await gate;
      return inner.changes(room, upTo, afterRev, limit);
    },
  }));
  await using server = await startServer({}, { engine });
  using _ = { [Symbol.dispose]: () => open() }; // a failed assertion must not leave the read held
  await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
  for (const text of ["m1", "m2"]) {
    bob.send({ type: "send", room: "lobby", text, cid: text });
    await bob.next("ack", (m) => m.cid === text);
  }
  const { client } = makeClient(server.wsUrl, { name: "alice", backoff: { baseMs: 60_000, maxMs: 60_000 } });
  const changed: { seq: number; text: string }[] = [];
  client.addEventListener("changed", (e) => {
    const { message } = (e as CustomEvent).detail;
    changed.push({ seq: message.seq, text: message.text });
  });
  client.start();
  await until(() => texts(client).length === 2, "history on join");
  client.ws!.close();
  await until(() => client.state === "reconnecting", "reconnecting");
  gate = new Promise((r) => open = r);
  client.reconnectNow();
  await until(() => waiting === 1, "the join reading its changes");
  bob.send({ type: "edit", room: "lobby", seq: 1, text: "m1, better" });
  await bob.next("edited");
  gate = undefined;
  open();
  await until(() => client.rooms.get("lobby")!.rev === 1, "the resume's rev");
  bob.send({ type: "send", room: "lobby", text: "m3", cid: "m3" });
  await until(() => texts(client).length === 3, "a later message (the held line is long here)");
  assert.deepEqual(texts(client), ["m1, better", "m2", "m3"]);
  assert.deepEqual(changed, [{ seq: 1, text: "m1, better" }], "once");
  await client.stop();
});

/** Unit tests of `Chat` with fake connections: what a connection gets when it opens, names, ping. */
import assert from "node:assert/strict";
import { signed, testChat } from "../helpers/chat_harness.ts";
import manifest from "../../deno.json" with { type: "json" };
import { EmbeddedEngine } from "../../lib/engine_embedded.ts";

Deno.test("Chat: welcome is the first line and carries id, name, uid, role, guest, token, rooms, limits, version", async () => {
  await using t = testChat({ maxTextChars: 500, burst: 7, editWindowSeconds: 60 });
  const a = t.open({ name: "alice" });
  const w = await a.next("welcome");
  assert.equal(a.lines[0], w);
  assert.equal(w.id, a.id);
  assert.equal(w.name, "alice");
  assert.match(w.token, /^[A-Za-z0-9_-]{22,64}$/);
  assert.deepEqual([w.uid.length > 0, w.role, w.guest, w.rooms, w.version], [true, "member", true, [], 1]);
  assert.equal(w.notice, undefined);
  assert.deepEqual(w.limits, {
    textChars: 500,
    frameBytes: t.config.maxFrameBytes,
    roomsPerConnection: t.config.maxRoomsPerConnection,
    messagesPerSecond: t.config.messagesPerSecond,
    burst: 7,
    historyPage: t.config.historyPage,
    editSeconds: 60,
    searchQueryChars: t.config.searchMaxQueryChars,
    searchPage: t.config.searchPage,
  });
});

Deno.test("Chat: a guest without a name is called guest- and four characters of its token", async () => {
  await using t = testChat();
  const a = await t.connect({ room: "" });
  const w = a.all("welcome")[0];
  assert.match(w.name, /^guest-[a-z0-9x]{4}$/);
  assert.equal(w.name.slice(6), w.token.slice(0, 4).toLowerCase().replace(/[^a-z0-9]/g, "x"));
});

Deno.test("Chat: a token that is not one the server hands out is replaced by a new one", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "", token: "short!" });
  assert.match(a.all("welcome")[0].token, /^[A-Za-z0-9_-]{22,64}$/);
  assert.notEqual(a.all("welcome")[0].token, "short!");
});

Deno.test("Chat: a name held by someone else (or a lookalike) gives name-2 and a notice", async () => {
  await using t = testChat();
  await t.connect({ name: "alice", room: "" });
  const b = await t.connect({ name: "ALICE", room: "" });
  const w = b.all("welcome")[0];
  assert.equal(w.name, "ALICE-2");
  assert.equal(w.notice, 'The name "ALICE" is taken (or looks like one that is); you are "ALICE-2"');
  const c = await t.connect({ name: "aIice", room: "" });
  assert.equal(c.all("welcome")[0].name, "aIice-3", "capital I for l looks like alice");
});

Deno.test("Chat: a second tab with the same token is the same person with the same name, and no notice", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "" });
  const { token, uid } = a.all("welcome")[0];
  const tab = await t.connect({ name: "something-else", room: "", token });
  const w = tab.all("welcome")[0];
  assert.deepEqual([w.name, w.uid, w.token, w.notice], ["alice", uid, token, undefined]);
});

Deno.test("Chat: a name stays with its token for the name hold after the last tab closes, then is free", async () => {
  await using t = testChat({ nameHoldSeconds: 60 });
  const a = await t.connect({ name: "alice", room: "" });
  const { token } = a.all("welcome")[0];
  a.hangUp();
  const thief = await t.connect({ name: "alice", room: "" });
  assert.equal(thief.all("welcome")[0].name, "alice-2");
  const back = await t.connect({ room: "", token });
  assert.equal(back.all("welcome")[0].name, "alice");
  back.hangUp();
  t.clock.advance(60_000);
  const later = await t.connect({ name: "alice", room: "" });
  assert.equal(later.all("welcome")[0].name, "alice", "the hold is over");
});

Deno.test("Chat: a signed identity's welcome has its uid, role, exp and name, guest false and no token", async () => {
  await using t = testChat();
  const exp = t.clock.now() + 3_600_000;
  const a = await t.connect({ identity: signed("u-1", { name: "Ann", role: "moderator", exp }), room: "" });
  const w = a.all("welcome")[0];
  assert.deepEqual([w.name, w.uid, w.role, w.guest, w.exp, w.token], [
    "Ann",
    "u-1",
    "moderator",
    false,
    exp,
    undefined,
  ]);
  assert.deepEqual(t.chat.identityOf(a.id), signed("u-1", { name: "Ann", role: "moderator", exp }));
});

Deno.test("Chat: a signed person takes their name from a guest here, who is renamed name-2 with a nick line", async () => {
  await using t = testChat();
  const guest = await t.connect({ name: "bob" });
  const watcher = await t.connect({ name: "carol" });
  const b = await t.connect({ identity: signed("bob-uid", { name: "bob" }), room: "" });
  assert.equal(b.all("welcome")[0].name, "bob");
  assert.deepEqual(await guest.next("nick"), { type: "nick", old: "bob", name: "bob-2" });
  assert.deepEqual(await watcher.next("nick"), { type: "nick", old: "bob", name: "bob-2" });
});

Deno.test("Chat: a signed person whose name another signed person holds gets the suffix and a notice", async () => {
  await using t = testChat();
  await t.connect({ identity: signed("one", { name: "sam" }), room: "" });
  const two = await t.connect({ identity: signed("two", { name: "sam" }), room: "" });
  const w = two.all("welcome")[0];
  assert.equal(w.name, "sam-2");
  assert.match(w.notice, /"sam" is taken/);
});

Deno.test("Chat: the conversation list follows welcome", async () => {
  await using t = testChat();
  const a = t.open({ name: "alice", room: "" });
  await a.next("welcome");
  assert.deepEqual(await a.next("conversations"), { type: "conversations", items: [], complete: true });
});

Deno.test("Chat: welcome carries the release of deno.json beside the protocol version", async () => {
  await using t = testChat();
  const w = await t.open({ name: "alice" }).next("welcome");
  assert.match(manifest.version, /^\d+\.\d+\.\d+$/);
  assert.deepEqual([w.release, w.version], [manifest.version, 1]);
});

Deno.test("Chat: ping answers pong with the clock's time", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "" });
  a.frame({ type: "ping" });
  assert.deepEqual(await a.next("pong"), { type: "pong", ts: t.clock.now() });
});

Deno.test("Chat: connectionCount counts open connections; closed() forgets one once", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice" });
  await t.connect({ name: "bob" });
  assert.equal(t.chat.connectionCount, 2);
  t.chat.closed(a.id);
  t.chat.closed(a.id);
  assert.equal(t.chat.connectionCount, 1);
  assert.equal(t.chat.identityOf(a.id), undefined);
  a.frame({ type: "ping" });
  assert.equal(a.all("pong").length, 0, "a closed connection's frames are ignored");
});

Deno.test("Chat: a connection that leaves is gone from its rooms: presence leave and members", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice" });
  const b = await t.connect({ name: "bob" });
  await a.next("presence", (p) => p.event === "join" && p.name === "bob");
  b.hangUp();
  assert.deepEqual(await a.next("presence"), {
    type: "presence",
    room: "lobby",
    event: "leave",
    name: "bob",
  });
  assert.deepEqual(await t.chat.presence("lobby"), ["alice"]);
});

/** Counts the reads a connect may skip. */
class CountingEngine extends EmbeddedEngine {
  readonly reads: string[] = [];
  override conversations(...a: Parameters<EmbeddedEngine["conversations"]>) {
    this.reads.push("conversations");
    return super.conversations(...a);
  }
  override readPositions(...a: Parameters<EmbeddedEngine["readPositions"]>) {
    this.reads.push("readPositions");
    return super.readPositions(...a);
  }
  override mentionCounts(...a: Parameters<EmbeddedEngine["mentionCounts"]>) {
    this.reads.push("mentionCounts");
    return super.mentionCounts(...a);
  }
}

Deno.test("Chat: a new guest joining an empty room reads no conversations, read positions or mentions", async () => {
  await using t = testChat({}, { engineClass: CountingEngine });
  const reads = (t.engine as CountingEngine).reads;
  const a = await t.connect({ name: "alice", room: "r" });
  assert.deepEqual(a.all("conversations").map((c) => [c.items, c.complete]), [[[], true]]);
  const joined = a.all("joined")[0];
  assert.deepEqual([joined.lastRead, joined.unread, joined.mentions], [0, 0, undefined]);
  assert.deepEqual(reads, []);
  // The same person again (its token), into a room with history: both are read, as before.
  a.frame({ type: "send", room: "r", text: "hi @alice" });
  await a.next("message");
  const again = await t.connect({ name: "alice", room: "r", token: a.all("welcome")[0].token });
  assert.deepEqual(again.all("joined")[0].lastSeq, 1);
  assert.deepEqual([...new Set(reads)].sort(), ["conversations", "mentionCounts", "readPositions"]);
});

Deno.test("Chat.whereIs() gives the connection's name and rooms, the one raw text goes to last", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  a.frame({ type: "join", room: "q" });
  await a.next("joined", (m) => m.room === "q");
  assert.deepEqual(t.chat.whereIs(a.id), { name: "alice", rooms: ["r", "q"] });
  a.frame({ type: "join", room: "r" });
  await t.settle();
  assert.deepEqual(t.chat.whereIs(a.id), { name: "alice", rooms: ["q", "r"] });
  assert.equal(t.chat.whereIs(999), undefined);
});

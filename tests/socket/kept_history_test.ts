/**
 * The client's `kept` option (static/client/snapshot.js) under Deno against a real server: a room that
 * starts from what a device kept holds its messages before connecting and resumes with `join {since}`;
 * a snapshot that does not line up is ignored. The page keeps them in IndexedDB (tests/browser/offline_test.ts).
 * @module
 */
import assert from "node:assert/strict";
import { type Msg, startServer, TestClient } from "../helpers/test_server.ts";
import { ChatClient, restoreRoom, type RoomSnapshot, snapshotOf } from "../../static/chat-client.js";

/** Waits until `pred()` holds, checking every 10 ms, for at most `ms`. */
async function until(pred: () => boolean, what: string, ms = 4000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function makeClient(url: string, kept: RoomSnapshot[], name: string) {
  const sent: Msg[] = [];
  const client = new ChatClient({
    url,
    name,
    storage: null,
    kept,
    backoff: { baseMs: 50, maxMs: 200 },
    trace: (dir, m) => dir === "out" && sent.push(m),
  });
  return { client, sent };
}

Deno.test("ChatClient({kept}) holds the kept messages before connecting and resumes with join {since}", async () => {
  await using server = await startServer();
  await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
  await bob.seen("joined");
  for (let i = 1; i <= 3; i++) {
    bob.send({ type: "send", room: "lobby", text: `m${i}`, cid: `c${i}` });
    await bob.next("ack", (m) => m.cid === `c${i}`);
  }
  // A first session keeps what it saw.
  const first = makeClient(server.wsUrl, [], "alice");
  first.client.start();
  await until(() => first.client.rooms.get("lobby")?.messages.length === 3, "the first session's join");
  const snap = snapshotOf(first.client.rooms.get("lobby")!, 2)!;
  await first.client.stop();
  assert.deepEqual(snap.messages.map((m) => m.text), ["m2", "m3"], "the newest `max`");
  assert.equal(snap.complete, false, "m1 is on the server only");
  assert.equal(snap.lastSeq, 3);

  bob.send({ type: "send", room: "lobby", text: "m4", cid: "c4" });
  await bob.next("ack", (m) => m.cid === "c4");
  const { client, sent } = makeClient(server.wsUrl, [structuredClone(snap)], "alice");
  assert.deepEqual(client.rooms.get("lobby")!.messages.map((m) => m.text), ["m2", "m3"], "before connecting");
  client.start();
  await until(() => client.rooms.get("lobby")?.messages.length === 3, "the resume");
  assert.deepEqual(client.rooms.get("lobby")!.messages.map((m) => m.text), ["m2", "m3", "m4"]);
  const join = sent.find((m) => m.type === "join");
  assert.equal(join?.since, 3, "only what is newer is asked");
  assert.equal(join?.epoch, snap.epoch);
  await client.stop();
});

Deno.test("restoreRoom() ignores a snapshot that does not line up with a resume", () => {
  const good: RoomSnapshot = {
    room: "lobby",
    messages: [{ room: "lobby", seq: 2, from: "bob", text: "hi", ts: 1 }],
    lastSeq: 2,
    epoch: "e",
    rev: 0,
    complete: false,
    lastRead: 0,
  };
  assert.equal(restoreRoom("lobby", good)?.synced, true);
  const bad = (patch: Record<string, unknown>) => restoreRoom("lobby", { ...good, ...patch });
  assert.equal(bad({ room: "other" }), undefined, "another room's");
  assert.equal(bad({ lastSeq: 1 }), undefined, "a message past lastSeq");
  assert.equal(bad({ lastSeq: -1 }), undefined);
  assert.equal(bad({ epoch: 5 }), undefined);
  assert.equal(bad({ messages: [good.messages[0], good.messages[0]] }), undefined, "a duplicate");
  assert.equal(bad({ messages: [{ seq: 1, from: "bob" }] }), undefined, "a message without text");
  assert.equal(restoreRoom("lobby", "junk"), undefined);
  // Not kept: the room starts empty and joins afresh, as without a snapshot.
  const { client } = makeClient("ws://127.0.0.1:1/ws", [{ ...good, lastSeq: 1 }], "alice");
  assert.equal(client.rooms.get("lobby")?.synced, false);
  assert.deepEqual(client.rooms.get("lobby")?.messages, []);
});

Deno.test("ChatClient({kept}) takes the kept messages' reactions again from the server after the resume", async () => {
  await using server = await startServer();
  await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
  await bob.seen("joined");
  bob.send({ type: "send", room: "lobby", text: "react here", cid: "c1" });
  const { seq } = await bob.next("ack", (m) => m.cid === "c1");
  bob.send({ type: "react", room: "lobby", seq, emoji: "👍" });
  await bob.next("reactions");
  const first = makeClient(server.wsUrl, [], "alice");
  first.client.start();
  await until(
    () => first.client.rooms.get("lobby")?.messages[0]?.reactions?.["👍"] === 1,
    "the first session",
  );
  const snap = snapshotOf(first.client.rooms.get("lobby")!, 10)!;
  await first.client.stop();
  // While the device was away: bob took his back, carol added one. A resume tells neither.
  bob.send({ type: "react", room: "lobby", seq, emoji: "👍", on: false });
  await bob.next("reactions");
  await using carol = await TestClient.connect(server, { name: "carol", room: "lobby" });
  carol.send({ type: "react", room: "lobby", seq, emoji: "🎉" });
  await carol.next("reactions");
  const { client, sent } = makeClient(server.wsUrl, [structuredClone(snap)], "alice");
  assert.deepEqual(
    client.rooms.get("lobby")!.messages[0].reactions,
    { "👍": 1 },
    "as kept, before connecting",
  );
  client.start();
  await until(() => client.rooms.get("lobby")?.messages[0]?.reactions?.["🎉"] === 1, "the reactions of now");
  assert.deepEqual(client.rooms.get("lobby")!.messages[0].reactions, { "🎉": 1 });
  assert.equal(sent.find((m) => m.type === "join")?.since, seq, "still a resume");
  assert.deepEqual(
    sent.filter((m) => m.type === "history").map((m) => [m.before, m.limit]),
    [[seq + 1, 1]],
    "one page, of the kept messages",
  );
  await client.stop();
});

/** Unit tests of `Chat` with fake connections: joins, resume, leave, history, presence, typing, budgets. */
import assert from "node:assert/strict";
import type { FakePeer, Msg } from "../helpers/fake_peer.ts";
import { testChat } from "../helpers/chat_harness.ts";

/** Sends `texts` to `room` from `peer` with cids and waits for the last ack. */
async function say(peer: FakePeer, room: string, ...texts: string[]): Promise<Msg[]> {
  const acks: Msg[] = [];
  for (const text of texts) {
    const cid = `c${peer.lines.length}-${acks.length}`;
    peer.frame({ type: "send", room, text, cid });
    acks.push(await peer.next("ack", (a) => a.cid === cid));
  }
  return acks;
}

const seqs = (ms: Msg[]) => ms.map((m) => m.seq);

Deno.test("Chat: a join answers joined with members, epoch, rules, role, read state and rev", async () => {
  await using t = testChat();
  const a = t.open({ name: "alice", room: "r" });
  const j = await a.next("joined");
  assert.match(j.epoch, /^[A-Za-z0-9_-]{16,64}$/);
  assert.deepEqual({ ...j, epoch: "" }, {
    type: "joined",
    room: "r",
    members: ["alice"],
    messages: [],
    lastSeq: 0,
    truncated: false,
    epoch: "",
    rules: { topic: "", private: false, readOnly: false, slowModeSeconds: 0 },
    you: { role: "member" },
    lastRead: 0,
    unread: 0,
    rev: 0,
  });
});

Deno.test("Chat: a join answers joined with the last historyOnJoin messages, truncated when older exist", async () => {
  await using t = testChat({ historyOnJoin: 2 });
  const a = await t.connect({ name: "alice", room: "r" });
  await say(a, "r", "m1", "m2", "m3");
  const b = await t.connect({ name: "bob", room: "" });
  b.frame({ type: "join", room: "R" });
  const j = await b.next("joined");
  assert.deepEqual([j.room, j.members, j.messages.map((m: Msg) => m.text), j.truncated, j.lastSeq], [
    "r",
    ["alice", "bob"],
    ["m2", "m3"],
    true,
    3,
  ]);
  assert.deepEqual(j.messages[0], {
    type: "message",
    room: "r",
    seq: 2,
    from: "alice",
    text: "m2",
    ts: t.clock.now(),
    cid: j.messages[0].cid,
  });
  assert.deepEqual([j.lastRead, j.unread], [0, 3]);
});

Deno.test("Chat: a join with since resumes exactly after it; beyond resumeCap the newest come, truncated", async () => {
  await using t = testChat({ resumeCap: 3 });
  const a = await t.connect({ name: "alice", room: "r" });
  await say(a, "r", "m1", "m2", "m3", "m4", "m5", "m6");
  const b = await t.connect({ name: "bob", room: "" });
  b.frame({ type: "join", room: "r", since: 4 });
  const j = await b.next("joined");
  assert.deepEqual([seqs(j.messages), j.truncated], [[5, 6], false]);
  b.frame({ type: "leave", room: "r" });
  await b.next("left");
  b.frame({ type: "join", room: "r", since: 1 });
  const cut = await b.next("joined");
  assert.deepEqual([seqs(cut.messages), cut.truncated], [[4, 5, 6], true]);
  b.frame({ type: "join", room: "r", since: 6 });
  await t.settle();
  assert.equal(b.all("joined").length, 2, "a join of a room joined already is not answered again");
});

Deno.test("Chat: a since of this epoch resumes; one of another epoch answers the newest, truncated, with this epoch", async () => {
  await using t = testChat({ historyOnJoin: 2 });
  const a = await t.connect({ name: "alice", room: "r" });
  const { epoch } = a.all("joined")[0];
  await say(a, "r", "m1", "m2", "m3", "m4");
  const b = await t.connect({ name: "bob", room: "" });
  b.frame({ type: "join", room: "r", since: 2, epoch });
  const same = await b.next("joined");
  assert.deepEqual([seqs(same.messages), same.truncated, same.epoch], [[3, 4], false, epoch]);
  b.frame({ type: "leave", room: "r" });
  await b.next("left");
  b.frame({ type: "join", room: "r", since: 3, epoch: "another-history" });
  const lost = await b.next("joined");
  assert.deepEqual([seqs(lost.messages), lost.truncated, lost.epoch], [[3, 4], true, epoch]);
});

Deno.test("Chat: a resume with rev carries the held messages changed since, and the room's rev", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  await say(a, "r", "one", "two", "three", "four");
  a.frame({ type: "edit", room: "r", seq: 1, text: "ONE" });
  const edited = await a.next("edited");
  a.frame({ type: "delete", room: "r", seq: 2 });
  const deleted = await a.next("deleted");
  assert.deepEqual([edited.rev, deleted.rev], [1, 2]);
  const b = await t.connect({ name: "bob", room: "" });
  b.frame({ type: "join", room: "r", since: 3, rev: 1 });
  const j = await b.next("joined");
  assert.deepEqual(seqs(j.messages), [4]);
  assert.equal(j.rev, 2);
  assert.deepEqual(j.changes.map((m: Msg) => [m.seq, m.text, m.deleted]), [[2, "", true]]);
  assert.equal(j.changesTruncated, undefined);
  b.frame({ type: "leave", room: "r" });
  await b.next("left");
  b.frame({ type: "join", room: "r", since: 3, rev: 0 });
  const all = await b.next("joined");
  assert.deepEqual(all.changes.map((m: Msg) => [m.seq, m.text]), [[1, "ONE"], [2, ""]]);
  b.frame({ type: "leave", room: "r" });
  await b.next("left");
  b.frame({ type: "join", room: "r", since: 3 });
  const noRev = await b.next("joined");
  assert.deepEqual([noRev.rev, noRev.changes], [2, undefined], "without rev: the rev, no changes");
});

Deno.test("Chat: more changes than resumeCap answer no changes and changesTruncated", async () => {
  await using t = testChat({ resumeCap: 2 });
  const a = await t.connect({ name: "alice", room: "r" });
  await say(a, "r", "1", "2", "3");
  for (const seq of [1, 2, 3]) {
    a.frame({ type: "edit", room: "r", seq, text: `edited ${seq}` });
    await a.next("edited");
  }
  const b = await t.connect({ name: "bob", room: "" });
  b.frame({ type: "join", room: "r", since: 3, rev: 0 });
  const j = await b.next("joined");
  assert.deepEqual([j.messages, j.changes, j.changesTruncated, j.rev], [[], [], true, 3]);
});

Deno.test("Chat: presence tells the others of a join and a leave, once per person however many tabs", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  const b = await t.connect({ name: "bob", room: "r" });
  const { token } = b.all("welcome")[0];
  const tab = await t.connect({ token, room: "r" });
  assert.deepEqual(await a.next("presence"), { type: "presence", room: "r", event: "join", name: "bob" });
  assert.equal(b.all("presence").length, 0, "never one's own join");
  assert.deepEqual(tab.all("joined")[0].members, ["alice", "bob"]);
  b.frame({ type: "leave", room: "r" });
  assert.deepEqual(await b.next("left"), { type: "left", room: "r" });
  tab.frame({ type: "leave", room: "r" });
  await tab.next("left");
  assert.deepEqual(await a.next("presence"), { type: "presence", room: "r", event: "leave", name: "bob" });
  assert.equal(a.all("presence").length, 2, "one join, one leave");
});

Deno.test("Chat: leave of a room not joined is not_member", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "" });
  a.frame({ type: "leave", room: "r" });
  const e = await a.error("not_member");
  assert.equal(e.message, 'You are not in room "r"');
});

Deno.test("Chat: a join past roomsPerConnection is too_many_rooms, naming the room", async () => {
  await using t = testChat({ maxRoomsPerConnection: 2 });
  const a = await t.connect({ name: "alice", room: "one" });
  a.frame({ type: "join", room: "two" });
  await a.next("joined", (j) => j.room === "two");
  a.frame({ type: "join", room: "three" });
  const e = await a.error("too_many_rooms");
  assert.equal(e.room, "three");
  assert.match(e.message, /three/);
});

Deno.test("Chat: history pages backwards with before and limit, capped at historyPage", async () => {
  await using t = testChat({ historyPage: 4 });
  const a = await t.connect({ name: "alice", room: "r" });
  await say(a, "r", ...Array.from({ length: 10 }, (_, i) => `m${i + 1}`));
  a.frame({ type: "history", room: "r", limit: 100 });
  const h = await a.next("history");
  assert.deepEqual([h.room, seqs(h.messages), h.complete], ["r", [7, 8, 9, 10], false]);
  a.frame({ type: "history", room: "r", before: 3, limit: 5 });
  const start = await a.next("history");
  assert.deepEqual([seqs(start.messages), start.complete], [[1, 2], true]);
  a.frame({ type: "history", room: "r", before: 8, limit: 2 });
  assert.deepEqual(seqs((await a.next("history")).messages), [6, 7]);
});

Deno.test("Chat: history of a room not joined is not_member", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  a.frame({ type: "history", room: "elsewhere" });
  assert.equal(
    (await a.error("not_member")).message,
    'Cannot read the history of room "elsewhere": join it first',
  );
});

Deno.test("Chat: a joined answer holds at most maxAnswerBytes of messages, the newest, and says truncated", async () => {
  await using t = testChat({ maxAnswerBytes: 16 * 1024, maxTextChars: 4000, historyOnJoin: 50 });
  const a = await t.connect({ name: "alice", room: "r" });
  await say(a, "r", ...["1", "2", "3", "4", "5"].map((n) => n.repeat(4000)));
  const b = await t.connect({ name: "bob", room: "" });
  b.frame({ type: "join", room: "r" });
  const j = await b.next("joined");
  assert.deepEqual([seqs(j.messages), j.truncated, j.lastSeq], [[3, 4, 5], true, 5]);
  b.frame({ type: "history", room: "r", before: 3 });
  const h = await b.next("history");
  assert.deepEqual([seqs(h.messages), h.complete], [[1, 2], true]);
});

Deno.test("Chat: a client with earlier answers unread gets busy for a join or a history, not a page", async () => {
  await using t = testChat({ maxBufferedBytes: 64 * 1024, maxAnswerBytes: 16 * 1024 });
  const a = await t.connect({ name: "alice", room: "r" });
  a.queued = 64 * 1024 - 16 * 1024 + 1; // what one more answer would take is no longer free
  a.frame({ type: "history", room: "r" });
  const e = await a.error("busy");
  assert.equal(e.message, "Earlier answers are still on their way to you; read them before asking for more");
  a.frame({ type: "join", room: "other" });
  assert.equal((await a.error("busy")).room, "other");
  assert.equal(a.all("history").length + a.all("joined").length, 1, "only the first joined");
  assert.deepEqual(await t.chat.presence("other"), [], "the refused join took no place");
  a.queued = 64 * 1024 - 16 * 1024;
  a.frame({ type: "history", room: "r" });
  await a.next("history");
});

Deno.test("Chat: frames sent right after a join wait for its check and are then handled in order", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "" });
  a.frame({ type: "join", room: "fast" });
  a.frame({ type: "send", room: "fast", text: "right away", cid: "f1" });
  a.frame({ type: "typing", room: "fast" });
  const ack = await a.next("ack");
  assert.deepEqual([ack.cid, ack.room, ack.seq], ["f1", "fast", 1]);
  assert.deepEqual(a.all("error"), []);
  const order = a.lines.map((m) => m.type).filter((x) => ["joined", "typing", "message", "ack"].includes(x));
  assert.equal(order[0], "joined");
  assert.ok(order.includes("typing"));
});

Deno.test("Chat: typing reaches the room with the typist's name and is not stored; outside a room not_member", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  const b = await t.connect({ name: "bob", room: "r" });
  a.frame({ type: "typing", room: "r" });
  assert.deepEqual(await b.next("typing"), { type: "typing", room: "r", name: "alice" });
  a.frame({ type: "history", room: "r" });
  assert.deepEqual((await a.next("history")).messages, []);
  a.frame({ type: "typing", room: "nowhere" });
  assert.equal((await a.error("not_member")).message, 'Cannot type in room "nowhere": join it first');
});

Deno.test("Chat: page() and presence() read a room for the host application", async () => {
  await using t = testChat({ historyPage: 2 });
  const a = await t.connect({ name: "alice", room: "r" });
  await t.connect({ name: "bob", room: "r" });
  await say(a, "r", "m1", "m2", "m3");
  const newest = await t.chat.page("r", Number.MAX_SAFE_INTEGER, 10);
  assert.deepEqual([newest.messages.map((m) => m.text), newest.complete], [["m2", "m3"], false]);
  const first = await t.chat.page("r", 2, 10);
  assert.deepEqual([first.messages.map((m) => m.text), first.complete], [["m1"], true]);
  assert.deepEqual(await t.chat.presence("r"), ["alice", "bob"]);
  assert.deepEqual(await t.chat.presence("empty"), []);
});

Deno.test("Chat: answers still being read count against the budget, so many asked at once get busy, not pages", async () => {
  // 64 KiB a client may have queued, 16 KiB an answer: room for four answers, whether they are queued
  // or still being read from the engine.
  await using t = testChat({ maxBufferedBytes: 64 * 1024, maxAnswerBytes: 16 * 1024 });
  const a = await t.connect({ name: "alice", room: "r" });
  for (let i = 0; i < 10; i++) a.frame({ type: "history", room: "r" });
  a.frame({ type: "join", room: "other" });
  await t.settle();
  assert.equal(a.all("history").length, 4);
  assert.equal(a.all("error").filter((e) => e.code === "busy").length, 7);
  assert.deepEqual(a.all("joined").map((j) => j.room), ["r"], "the join that found no room was refused");
  // Once those answers were queued and read, the room is free again.
  a.frame({ type: "join", room: "other" });
  assert.equal((await a.next("joined")).room, "other");
  a.frame({ type: "history", room: "r" });
  await a.next("history");
});

/** Unit tests of `Chat` with fake connections: reactions on room messages, their caps and their history. */
import assert from "node:assert/strict";
import type { FakePeer, Msg } from "../helpers/fake_peer.ts";
import { type TestChat, testChat } from "../helpers/chat_harness.ts";

/** alice and bob in the lobby, and one message of alice's there (seq 1). */
async function room(t: TestChat): Promise<{ alice: FakePeer; bob: FakePeer }> {
  const alice = await t.connect({ name: "alice" });
  const bob = await t.connect({ name: "bob" });
  alice.frame({ type: "send", room: "lobby", text: "ship it", cid: "a1" });
  await alice.next("ack");
  await bob.next("message");
  return { alice, bob };
}

const react = (p: FakePeer, emoji: string, extra: Msg = {}) =>
  p.frame({ type: "react", room: "lobby", seq: 1, emoji, ...extra });

Deno.test("Chat: a react toggles the person's reaction; every member gets the counts, who and what", async () => {
  await using t = testChat();
  const { alice, bob } = await room(t);
  react(bob, "👍");
  const line = {
    type: "reactions",
    room: "lobby",
    seq: 1,
    counts: { "👍": 1 },
    by: "bob",
    emoji: "👍",
    on: true,
  };
  assert.deepEqual(await alice.next("reactions"), line);
  assert.deepEqual(await bob.next("reactions"), line);
  react(alice, "👍");
  assert.deepEqual((await bob.next("reactions")).counts, { "👍": 2 });
  react(alice, "🚀", { on: true });
  assert.deepEqual((await bob.next("reactions")).counts, { "👍": 2, "🚀": 1 });
  react(bob, "👍");
  const off = await alice.next("reactions", (m) => m.by === "bob");
  assert.deepEqual([off.on, off.counts], [false, { "👍": 1, "🚀": 1 }]);
});

Deno.test("Chat: a react with on set is idempotent: a repeat changes nothing and still tells the room", async () => {
  await using t = testChat();
  const { alice, bob } = await room(t);
  react(bob, "🎉", { on: true });
  react(bob, "🎉", { on: true });
  const [x, y] = [await alice.next("reactions"), await alice.next("reactions")];
  assert.deepEqual([x.counts, y.counts, y.on], [{ "🎉": 1 }, { "🎉": 1 }, true]);
  react(bob, "🎉", { on: false });
  react(bob, "🎉", { on: false });
  const [z, w] = [await alice.next("reactions"), await alice.next("reactions")];
  assert.deepEqual([z.counts, w.counts, w.on], [{}, {}, false]);
});

Deno.test("Chat: history and resume carry a message's reactions and the asking person's own", async () => {
  await using t = testChat();
  const { alice, bob } = await room(t);
  alice.frame({ type: "send", room: "lobby", text: "plain", cid: "a2" });
  await alice.next("ack");
  react(bob, "👍");
  react(alice, "👍");
  react(alice, "🚀");
  await bob.next("reactions", (m) => m.emoji === "🚀");
  bob.frame({ type: "history", room: "lobby" });
  const h = await bob.next("history");
  assert.deepEqual(h.messages.map((m: Msg) => [m.text, m.reactions, m.mine]), [
    ["ship it", { "👍": 2, "🚀": 1 }, ["👍"]],
    ["plain", undefined, undefined],
  ]);
  const tab = await t.connect({ token: alice.all("welcome")[0].token, room: "" });
  tab.frame({ type: "join", room: "lobby", since: 0 });
  assert.deepEqual(
    (await tab.next("joined")).messages[0].mine,
    ["👍", "🚀"],
    "the same person on another tab",
  );
});

Deno.test("Chat: one person puts at most maxReactionsPerPerson on a message; then too_many_reactions", async () => {
  await using t = testChat({ maxReactionsPerPerson: 2 });
  const { alice } = await room(t);
  for (const e of ["😀", "😁"]) react(alice, e);
  react(alice, "😂");
  const err = await alice.error("too_many_reactions");
  assert.deepEqual([err.room, err.message], [
    "lobby",
    "You have 2 reactions on message 1 already: take one back first",
  ]);
  assert.equal(alice.all("reactions").length, 2);
  react(alice, "😀", { on: false });
  react(alice, "😂");
  assert.deepEqual((await alice.next("reactions", (m) => m.emoji === "😂")).counts, { "😁": 1, "😂": 1 });
});

Deno.test("Chat: a message carries at most maxReactionEmoji distinct emoji; adding to one it has still works", async () => {
  await using t = testChat({ maxReactionEmoji: 2 });
  const { alice, bob } = await room(t);
  react(alice, "😀");
  react(alice, "😁");
  react(bob, "😂");
  const err = await bob.error("too_many_reactions");
  assert.equal(err.message, "Message 1 has 2 different reactions already: add to one of them");
  react(bob, "😀");
  assert.deepEqual((await bob.next("reactions", (m) => m.by === "bob")).counts, { "😀": 2, "😁": 1 });
});

Deno.test("Chat: a message takes at most maxReactionsPerMessage reactions from everyone; fresh guests cannot add more", async () => {
  await using t = testChat({ maxReactionsPerMessage: 3 });
  const { alice } = await room(t);
  const guests = [];
  for (let i = 0; i < 4; i++) guests.push(await t.connect({ name: `g${i}` }));
  for (const [i, g] of guests.slice(0, 3).entries()) {
    react(g, "👍");
    await g.next("reactions", (m) => m.by === `g${i}`);
  }
  react(guests[3], "👍");
  const err = await guests[3].error("too_many_reactions");
  assert.equal(err.message, "Message 1 has 3 reactions already, the most one message takes");
  assert.deepEqual((await alice.next("reactions", (m) => m.by === "g2")).counts, { "👍": 3 });
});

Deno.test("Chat: a react on a missing message is message_not_found; outside the room not_member; bad emoji bad_message", async () => {
  await using t = testChat();
  const { alice } = await room(t);
  alice.frame({ type: "react", room: "lobby", seq: 99, emoji: "👍" });
  const e = await alice.error("message_not_found");
  assert.deepEqual([e.room, e.message], ["lobby", 'Room "lobby" has no message 99 to react to']);
  const outsider = await t.connect({ name: "carol", room: "" });
  react(outsider, "👍");
  assert.equal((await outsider.error("not_member")).room, "lobby");
  for (const emoji of ["a", "👍👍", ""]) {
    react(alice, emoji);
    await alice.error("bad_message");
  }
  await t.settle();
  assert.equal(alice.all("reactions").length, 0);
});

Deno.test("Chat: a deleted message loses its reactions and takes no new ones", async () => {
  await using t = testChat();
  const { alice } = await room(t);
  react(alice, "👍");
  await alice.next("reactions");
  alice.frame({ type: "delete", room: "lobby", seq: 1 });
  await alice.next("deleted");
  react(alice, "👍");
  await alice.error("message_not_found");
  alice.frame({ type: "history", room: "lobby" });
  const [m] = (await alice.next("history")).messages;
  assert.deepEqual([m.deleted, m.reactions, m.mine], [true, undefined, undefined]);
});

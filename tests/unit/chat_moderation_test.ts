/**
 * Unit tests of `Chat` with fake connections: deletes and edits, moderation by signed moderators
 * (kick, ban, mute), room rules (read-only, slow mode, private rooms, the rooms claim), the audit log,
 * and the host application's side of them.
 */
import assert from "node:assert/strict";
import { SYSTEM_ACTOR } from "../../lib/moderation.ts";
import { CloseCode } from "../../lib/protocol.ts";
import type { FakePeer, Msg } from "../helpers/fake_peer.ts";
import { as, signed, testChat } from "../helpers/chat_harness.ts";

async function sendAndAck(peer: FakePeer, room: string, text: string, cid: string): Promise<Msg> {
  peer.frame({ type: "send", room, text, cid });
  return await peer.next("ack", (a) => a.cid === cid);
}

Deno.test("Chat: the author deletes their message: everyone gets deleted with the rev, history a tombstone", async () => {
  await using t = testChat();
  const alice = await as(t, "alice");
  const bob = await as(t, "bob");
  const ack = await sendAndAck(alice, "lobby", "oops, wrong room", "c1");
  alice.frame({ type: "delete", room: "lobby", seq: ack.seq });
  assert.deepEqual(await bob.next("deleted"), {
    type: "deleted",
    room: "lobby",
    seq: ack.seq,
    by: "alice",
    rev: 1,
  });
  await alice.next("deleted");
  bob.frame({ type: "history", room: "lobby" });
  const [tomb] = (await bob.next("history")).messages;
  assert.deepEqual([tomb.seq, tomb.text, tomb.deleted, tomb.from], [ack.seq, "", true, "alice"]);
  assert.equal((await sendAndAck(bob, "lobby", "after", "c2")).seq, ack.seq + 1, "the seq is not reused");
});

Deno.test("Chat: a member cannot delete someone else's message; a moderator can; a tombstone is not found", async () => {
  await using t = testChat();
  const alice = await as(t, "alice");
  const bob = await as(t, "bob");
  const mod = await as(t, "mo", "moderator");
  const ack = await sendAndAck(alice, "lobby", "mine", "c1");
  bob.frame({ type: "delete", room: "lobby", seq: ack.seq });
  const e = await bob.error("not_allowed");
  assert.deepEqual([e.room, e.message], [
    "lobby",
    `Only its author or a moderator can delete message ${ack.seq}`,
  ]);
  bob.frame({ type: "delete", room: "lobby", seq: 999 });
  assert.equal((await bob.error("message_not_found")).message, 'Room "lobby" has no message 999 to delete');
  mod.frame({ type: "delete", room: "lobby", seq: ack.seq });
  assert.equal((await alice.next("deleted")).by, "mo");
  mod.frame({ type: "delete", room: "lobby", seq: ack.seq });
  await mod.error("message_not_found");
  assert.equal(alice.all("deleted").length, 1, "nobody heard of the refused attempts");
  bob.frame({ type: "delete", room: "elsewhere", seq: 1 });
  assert.equal((await bob.error("not_member")).message, 'Cannot delete in room "elsewhere": join it first');
});

Deno.test("Chat: the author edits within the edit window; others cannot; later it is edit_window_closed", async () => {
  await using t = testChat({ editWindowSeconds: 60 });
  const alice = await as(t, "alice");
  const bob = await as(t, "bob");
  const ack = await sendAndAck(alice, "lobby", "helo", "c1");
  t.clock.advance(1000);
  alice.frame({ type: "edit", room: "lobby", seq: ack.seq, text: "hello" });
  const ed = await bob.next("edited");
  assert.deepEqual(ed, {
    type: "edited",
    room: "lobby",
    seq: ack.seq,
    text: "hello",
    editedTs: t.clock.now(),
    rev: 1,
  });
  bob.frame({ type: "edit", room: "lobby", seq: ack.seq, text: "bob was here" });
  assert.equal((await bob.error("not_allowed")).message, `Only its author can edit message ${ack.seq}`);
  bob.frame({ type: "history", room: "lobby" });
  const [m] = (await bob.next("history")).messages;
  assert.deepEqual([m.text, m.editedTs], ["hello", t.clock.now()]);
  t.clock.advance(60_000);
  alice.frame({ type: "edit", room: "lobby", seq: ack.seq, text: "too late" });
  const late = await alice.error("edit_window_closed");
  assert.equal(
    late.message,
    `Messages can be edited for 60 s after they are sent; message ${ack.seq} is older`,
  );
  alice.frame({ type: "edit", room: "lobby", seq: 99, text: "x" });
  await alice.error("message_not_found");
});

Deno.test("Chat: with editWindowSeconds 0 nothing can be edited", async () => {
  await using t = testChat({ editWindowSeconds: 0 });
  const alice = await as(t, "alice");
  const ack = await sendAndAck(alice, "lobby", "final", "c1");
  alice.frame({ type: "edit", room: "lobby", seq: ack.seq, text: "changed" });
  assert.equal((await alice.error("not_allowed")).message, "Messages cannot be edited on this server");
});

Deno.test("Chat: only moderators kick; the kicked person gets kicked, the room a moderation line; they may come back", async () => {
  await using t = testChat();
  const mod = await as(t, "mo", "moderator");
  const bob = await as(t, "bob");
  const carol = await as(t, "carol");
  bob.frame({ type: "kick", room: "lobby", name: "mo" });
  assert.equal(
    (await bob.error("not_allowed")).message,
    'Only moderators and admins can do that in room "lobby"',
  );
  mod.frame({ type: "kick", room: "lobby", name: "bob", reason: "cool off" });
  assert.deepEqual(await bob.next("kicked"), { type: "kicked", room: "lobby", reason: "kicked" });
  assert.deepEqual(await carol.next("moderation"), {
    type: "moderation",
    room: "lobby",
    action: "kick",
    name: "bob",
    uid: "bob",
    by: "mo",
    reason: "cool off",
  });
  assert.deepEqual(await carol.next("presence"), {
    type: "presence",
    room: "lobby",
    event: "leave",
    name: "bob",
  });
  bob.frame({ type: "send", room: "lobby", text: "still here?" });
  await bob.error("not_member");
  bob.frame({ type: "join", room: "lobby" });
  assert.equal((await bob.next("joined")).room, "lobby");
  mod.frame({ type: "kick", room: "lobby", name: "nobody-here" });
  assert.equal((await mod.error("user_not_found")).message, 'No one called "nobody-here" is online');
});

Deno.test("Chat: a guest is a member: no moderation, and a moderator acts only in a room joined", async () => {
  await using t = testChat();
  const guest = await t.connect({ name: "gus" });
  guest.frame({ type: "ban", room: "lobby", name: "gus" });
  await guest.error("not_allowed");
  const mod = await as(t, "mo", "moderator", "");
  mod.frame({ type: "kick", room: "lobby", name: "gus" });
  assert.equal((await mod.error("not_member")).message, 'Cannot moderate room "lobby": join it first');
});

Deno.test("Chat: a ban takes the person out at once and keeps them out until unbanned", async () => {
  await using t = testChat();
  const mod = await as(t, "mo", "moderator");
  const bob = await as(t, "bob");
  const alice = await as(t, "alice");
  mod.frame({ type: "ban", room: "lobby", name: "bob", reason: "spam" });
  assert.deepEqual(await bob.next("kicked"), { type: "kicked", room: "lobby", reason: "banned" });
  const line = await alice.next("moderation");
  assert.deepEqual([line.action, line.name, line.uid, line.by, line.until, line.reason], [
    "ban",
    "bob",
    "bob",
    "mo",
    0,
    "spam",
  ]);
  bob.frame({ type: "join", room: "lobby" });
  const e = await bob.error("banned");
  assert.deepEqual([e.room, e.message], ["lobby", 'You are banned from room "lobby" for good']);
  const again = t.open({ identity: signed("bob"), room: "lobby" });
  await again.error("banned", (x) => x.room === "lobby");
  mod.frame({ type: "unban", room: "lobby", uid: "bob" });
  await alice.next("moderation", (m) => m.action === "unban");
  bob.frame({ type: "join", room: "lobby" });
  assert.equal((await bob.next("joined")).room, "lobby");
});

Deno.test("Chat: a ban for some seconds names its end", async () => {
  await using t = testChat();
  const mod = await as(t, "mo", "moderator");
  const bob = await as(t, "bob");
  mod.frame({ type: "ban", room: "lobby", name: "bob", seconds: 3600 });
  const until = t.clock.now() + 3_600_000;
  assert.equal((await mod.next("moderation")).until, until);
  await bob.next("kicked");
  bob.frame({ type: "join", room: "lobby" });
  const e = await bob.error("banned");
  assert.equal(e.message, `You are banned from room "lobby" until ${new Date(until).toISOString()}`);
});

Deno.test("Chat: a muted person reads but cannot post or react; joined says until when; unmute restores it", async () => {
  await using t = testChat();
  const mod = await as(t, "mo", "moderator");
  const bob = await as(t, "bob");
  mod.frame({ type: "mute", room: "lobby", name: "bob", seconds: 600 });
  const until = t.clock.now() + 600_000;
  assert.equal((await bob.next("moderation", (m) => m.action === "mute")).until, until);
  bob.frame({ type: "send", room: "lobby", text: "hello?", cid: "m1" });
  const e = await bob.error("muted");
  assert.deepEqual([e.cid, e.room], ["m1", "lobby"]);
  assert.equal(e.message, `You are muted in room "lobby" until ${new Date(until).toISOString()}`);
  const ack = await sendAndAck(mod, "lobby", "you can still read", "c1");
  await bob.next("message", (m) => m.seq === ack.seq);
  bob.frame({ type: "react", room: "lobby", seq: ack.seq, emoji: "👍" });
  const refused = await bob.error("muted");
  assert.deepEqual(
    [refused.room, refused.until],
    ["lobby", until],
    "a refused reaction says until when, too",
  );
  bob.frame({ type: "leave", room: "lobby" });
  await bob.next("left");
  bob.frame({ type: "join", room: "lobby" });
  assert.deepEqual((await bob.next("joined")).you, { role: "member", muted: until });
  mod.frame({ type: "unmute", room: "lobby", name: "bob" });
  await bob.next("moderation", (m) => m.action === "unmute");
  await sendAndAck(bob, "lobby", "thanks", "m2");
  assert.ok(!mod.all("message").some((m) => m.text === "hello?"), "nobody saw the refused message");
});

Deno.test("Chat: a mute ends by itself at its time", async () => {
  await using t = testChat();
  const mod = await as(t, "mo", "moderator");
  const bob = await as(t, "bob");
  mod.frame({ type: "mute", room: "lobby", name: "bob", seconds: 60 });
  await bob.next("moderation");
  bob.frame({ type: "send", room: "lobby", text: "x", cid: "a" });
  await bob.error("muted");
  t.clock.advance(60_000);
  await sendAndAck(bob, "lobby", "free again", "b");
});

Deno.test("Chat: a read-only room refuses members' posts, not moderators'", async () => {
  await using t = testChat();
  const mod = await as(t, "mo", "moderator", "news");
  const bob = await as(t, "bob", "member", "news");
  mod.frame({ type: "room", room: "news", readOnly: true });
  assert.deepEqual(await bob.next("room"), {
    type: "room",
    room: "news",
    topic: "",
    private: false,
    readOnly: true,
    slowModeSeconds: 0,
  });
  bob.frame({ type: "send", room: "news", text: "hi", cid: "b1" });
  const e = await bob.error("read_only");
  assert.deepEqual([e.cid, e.message], ["b1", 'Room "news" is read-only: only moderators post']);
  await sendAndAck(mod, "news", "announcement", "a1");
  const carol = await as(t, "carol", "member", "news");
  assert.equal(carol.all("joined")[0].rules.readOnly, true);
});

Deno.test("Chat: slow mode lets a member post once per slowModeSeconds, says how long to wait, spares moderators", async () => {
  await using t = testChat();
  const mod = await as(t, "mo", "moderator", "news");
  const bob = await as(t, "bob", "member", "news");
  mod.frame({ type: "room", room: "news", slowModeSeconds: 30 });
  await bob.next("room", (m) => m.slowModeSeconds === 30);
  await sendAndAck(bob, "news", "first", "b1");
  t.clock.advance(10_500);
  bob.frame({ type: "send", room: "news", text: "second", cid: "b2" });
  assert.equal(
    (await bob.error("slow_mode")).message,
    'Room "news" is in slow mode: wait 20 s before posting again',
  );
  t.clock.advance(19_500);
  await sendAndAck(bob, "news", "third", "b3");
  await sendAndAck(mod, "news", "mods are not slowed", "a2");
  await sendAndAck(mod, "news", "at all", "a3");
});

Deno.test("Chat: a private room admits moderators, added people and the rooms claim; others get forbidden and learn nothing", async () => {
  await using t = testChat();
  const mod = await as(t, "mo", "moderator", "vip");
  mod.frame({ type: "room", room: "vip", private: true, topic: "the quiet room" });
  assert.deepEqual(pick(await mod.next("room"), "private", "topic"), {
    private: true,
    topic: "the quiet room",
  });
  await sendAndAck(mod, "vip", "secret plans", "c1");
  const eve = await as(t, "eve", "member", "");
  eve.frame({ type: "join", room: "vip" });
  const e = await eve.error("forbidden");
  assert.deepEqual([e.room, e.message], ["vip", 'You cannot join room "vip"']);
  const guest = await t.connect({ name: "gus", room: "" });
  guest.frame({ type: "join", room: "vip" });
  await guest.error("forbidden");
  const ann = await as(t, "ann", "member", "vip", ["vip", "team-*"]);
  assert.equal(ann.all("joined")[0].messages[0].text, "secret plans");
  mod.frame({ type: "allow", room: "vip", uid: "eve" });
  await t.settle();
  eve.frame({ type: "join", room: "vip" });
  assert.equal((await eve.next("joined")).room, "vip");
  assert.deepEqual(
    mod.all("presence").map((p) => p.name),
    ["ann", "eve"],
    "the refused attempts were never presence",
  );
});

Deno.test("Chat: a room turned private takes out the members who may not stay, with kicked forbidden", async () => {
  await using t = testChat();
  const mod = await as(t, "mo", "moderator", "r");
  const bob = await as(t, "bob", "member", "r");
  const guest = await t.connect({ name: "gus", room: "r" });
  const ann = await as(t, "ann", "member", "r", ["r"]);
  mod.frame({ type: "room", room: "r", private: true });
  assert.deepEqual(await bob.next("kicked"), { type: "kicked", room: "r", reason: "forbidden" });
  assert.deepEqual(await guest.next("kicked"), { type: "kicked", room: "r", reason: "forbidden" });
  await t.settle();
  assert.equal(ann.all("kicked").length + mod.all("kicked").length, 0);
  assert.deepEqual(await t.chat.presence("r"), ["ann", "mo"]);
});

Deno.test("Chat: a token's rooms claim limits joins to its rooms and patterns", async () => {
  await using t = testChat();
  const tess = await as(t, "tess", "member", "team-red", ["team-*"]);
  assert.equal(tess.all("joined")[0].room, "team-red");
  tess.frame({ type: "join", room: "lobby" });
  await tess.error("forbidden", (e) => e.room === "lobby");
  tess.frame({ type: "join", room: "teamx" });
  await tess.error("forbidden", (e) => e.room === "teamx");
  tess.frame({ type: "join", room: "team-blue" });
  assert.equal((await tess.next("joined", (j) => j.room === "team-blue")).rules.private, false);
});

Deno.test("Chat: admins read the audit log newest first, page by page; members and moderators may not", async () => {
  await using t = testChat();
  const admin = await as(t, "root", "admin");
  const mod = await as(t, "mo", "moderator");
  const bob = await as(t, "bob");
  mod.frame({ type: "mute", room: "lobby", name: "bob", seconds: 60, reason: "caps" });
  await bob.next("moderation");
  t.clock.advance(1);
  mod.frame({ type: "kick", room: "lobby", name: "bob" });
  await bob.next("kicked");
  for (const p of [bob, mod]) {
    p.frame({ type: "audit", room: "lobby" });
    assert.equal((await p.error("not_allowed")).message, 'Only admins read the audit log of room "lobby"');
  }
  admin.frame({ type: "audit", room: "lobby", limit: 1 });
  const page = await admin.next("audit");
  assert.deepEqual(
    [page.room, page.complete, page.entries],
    ["lobby", false, [{ ts: t.clock.now(), action: "kick", by: "mo", target: "bob" }]],
  );
  admin.frame({ type: "audit", room: "lobby", before: page.entries[0].ts });
  const rest = await admin.next("audit");
  assert.deepEqual(rest.entries, [{
    ts: t.clock.now() - 1,
    action: "mute",
    by: "mo",
    target: "bob",
    until: t.clock.now() - 1 + 60_000,
    reason: "caps",
  }]);
  assert.equal(rest.complete, true);
});

Deno.test("Chat: the host application moderates through kick, sanction, changeRoom and deleteMessage", async () => {
  await using t = testChat();
  const bob = await as(t, "bob");
  const alice = await as(t, "alice");
  const ack = await sendAndAck(bob, "lobby", "bad words", "c1");
  await t.chat.deleteMessage(SYSTEM_ACTOR, "lobby", ack.seq);
  assert.equal((await alice.next("deleted")).by, "system");
  await assert.rejects(t.chat.deleteMessage(SYSTEM_ACTOR, "lobby", ack.seq), { code: "message_not_found" });
  await t.chat.sanction(SYSTEM_ACTOR, "lobby", { uid: "bob", name: "bob" }, {
    kind: "mute",
    uid: "bob",
    until: 0,
  });
  assert.deepEqual(pick(await alice.next("moderation"), "action", "by", "until"), {
    action: "mute",
    by: "system",
    until: 0,
  });
  assert.deepEqual(await t.chat.accessList("lobby"), {
    allowed: [],
    bans: [],
    mutes: [{ uid: "bob", until: 0 }],
  });
  const rules = await t.chat.changeRoom(SYSTEM_ACTOR, "lobby", {
    kind: "rules",
    rules: { topic: "be nice" },
  });
  assert.equal(rules.topic, "be nice");
  assert.equal((await alice.next("room")).topic, "be nice");
  assert.equal((await t.chat.rulesOf("lobby")).topic, "be nice");
  await t.chat.kick(SYSTEM_ACTOR, "lobby", { uid: "bob", name: "bob" }, "out");
  assert.equal((await bob.next("kicked")).reason, "kicked");
  const audit = await t.chat.auditPage("lobby", Number.MAX_SAFE_INTEGER, 10);
  assert.deepEqual(audit.entries.map((e) => [e.action, e.by]), [["kick", "api"], ["rules", "api"], [
    "mute",
    "api",
  ], [
    "delete",
    "api",
  ]]);
  assert.equal(audit.complete, true);
});

Deno.test("Chat: disconnectPerson sends disconnected then closes every connection of the person with 4004", async () => {
  await using t = testChat();
  const a = await as(t, "alice");
  const tab = await as(t, "alice", "member", "");
  const bob = await as(t, "bob");
  assert.equal(await t.chat.disconnectPerson("alice", "account closed"), 2);
  for (const p of [a, tab]) {
    assert.deepEqual(await p.next("disconnected"), { type: "disconnected", reason: "account closed" });
    assert.deepEqual(await p.closed(), { code: CloseCode.DISCONNECTED, reason: "disconnected" });
  }
  assert.equal(bob.closedWith, undefined);
  await t.settle();
  assert.equal(t.chat.connectionCount, 1);
});

function pick(m: Msg, ...fields: string[]): Msg {
  return Object.fromEntries(fields.map((f) => [f, m[f]]));
}

Deno.test("Chat: edits obey mute, read-only and slow mode; a muted person's typing reaches nobody", async () => {
  // Issue #18, item 10: a member's edits to their own message were all accepted and shown live while
  // muted, in a read-only room and under slow mode; muted members could still send typing.
  await using t = testChat();
  const mod = await as(t, "mo", "moderator");
  const bob = await as(t, "bob");
  const mine = await sendAndAck(bob, "lobby", "first", "b1");
  mod.frame({ type: "room", room: "lobby", slowModeSeconds: 30 });
  await bob.next("room", (m) => m.slowModeSeconds === 30);
  t.clock.advance(31_000);
  bob.frame({ type: "edit", room: "lobby", seq: mine.seq, text: "first, edited" });
  await mod.next("edited", (m) => m.seq === mine.seq);
  bob.frame({ type: "edit", room: "lobby", seq: mine.seq, text: "again at once" });
  assert.equal((await bob.error("slow_mode")).room, "lobby");
  mod.frame({ type: "room", room: "lobby", slowModeSeconds: 0, readOnly: true });
  await bob.next("room", (m) => m.readOnly === true);
  bob.frame({ type: "edit", room: "lobby", seq: mine.seq, text: "read-only now" });
  await bob.error("read_only");
  mod.frame({ type: "room", room: "lobby", readOnly: false });
  await bob.next("room", (m) => m.readOnly === false);
  mod.frame({ type: "mute", room: "lobby", name: "bob" });
  await bob.next("moderation", (m) => m.action === "mute");
  bob.frame({ type: "edit", room: "lobby", seq: mine.seq, text: "muted now" });
  assert.equal((await bob.error("muted")).until, 0);
  bob.frame({ type: "typing", room: "lobby" });
  await t.settle();
  assert.deepEqual(mod.all("typing"), [], "a muted person's typing goes nowhere");
  assert.deepEqual(mod.all("edited").map((m) => m.text), ["first, edited"], "only the edit that was allowed");
});

Deno.test("Chat: members' edits and deletes of their own messages leave the audit log to moderators' actions", async () => {
  await using t = testChat({ auditRetain: 5, messagesPerSecond: 1000, burst: 1000 });
  const mod = await as(t, "mo", "moderator");
  const alice = await as(t, "alice");
  await as(t, "eve");
  mod.frame({ type: "ban", room: "lobby", name: "eve", seconds: 60 });
  await mod.next("moderation");
  // Far more own edits and deletes than the log keeps.
  for (let i = 0; i < 10; i++) {
    const { seq } = await sendAndAck(alice, "lobby", `draft ${i}`, `c${i}`);
    alice.frame({ type: "edit", room: "lobby", seq, text: `fixed ${i}` });
    await alice.next("edited", (m) => m.seq === seq);
    alice.frame({ type: "delete", room: "lobby", seq });
    await alice.next("deleted", (m) => m.seq === seq);
  }
  const { seq } = await sendAndAck(alice, "lobby", "spam", "s");
  mod.frame({ type: "delete", room: "lobby", seq });
  await mod.next("deleted", (m) => m.seq === seq);
  const audit = await t.chat.auditPage("lobby", Number.MAX_SAFE_INTEGER, 10);
  assert.deepEqual(audit.entries.map((e) => [e.action, e.by]), [["delete", "mo"], ["ban", "mo"]]);
});

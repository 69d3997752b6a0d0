/**
 * Who may do what to whom (issue #18, item 13): refusals that tell no private room's name, what a
 * token's `rooms` claim opens, roles that rank, and bans of guests by address. A `Chat` over fake peers.
 */
import assert from "node:assert/strict";
import type { FakePeer, Msg } from "../helpers/fake_peer.ts";
import { as, testChat } from "../helpers/chat_harness.ts";

/** The answer to `peer`'s join of `room`: `joined`, or the error with the room's name taken out. */
async function joinAnswer(peer: FakePeer, room: string): Promise<Msg> {
  const from = peer.lines.length;
  peer.frame({ type: "join", room });
  for (let i = 0; i < 200; i++) {
    const m = peer.lines.slice(from).find((x) =>
      x.room === room && (x.type === "joined" || x.type === "error")
    );
    if (m) {
      return m.type === "joined"
        ? { type: "joined" }
        : JSON.parse(JSON.stringify(m).replaceAll(room, "ROOM"));
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`no answer to the join of "${room}"`);
}

Deno.test("Chat: with createRooms moderators, a private room and a name never used are refused alike to those who may not enter", async () => {
  await using t = testChat({ createRooms: "moderators" });
  const mod = await as(t, "mo", "moderator", "board");
  mod.frame({ type: "room", room: "board", private: true });
  await mod.next("room");
  const bob = await as(t, "bob", "member", "");
  const guest = await t.connect({ name: "gus", room: "" });
  for (const who of [bob, guest]) {
    const secret = await joinAnswer(who, "board");
    const free = await joinAnswer(who, "bored");
    assert.deepEqual(secret, {
      type: "error",
      code: "forbidden",
      message: 'You cannot join room "ROOM"',
      room: "ROOM",
    });
    assert.deepEqual(free, secret, "a name never used answers as a private room does");
  }
  // Nothing was made by the refusals: the moderator still makes "bored" by joining it and posting.
  const maker = await as(t, "mo2", "moderator", "bored");
  maker.frame({ type: "send", room: "bored", text: "first", cid: "c1" });
  await maker.next("ack");
  assert.deepEqual(await joinAnswer(bob, "bored"), { type: "joined" }, "a room that exists is open");
  assert.deepEqual(await joinAnswer(guest, "bored"), { type: "joined" });
  // A token whose claim names a room may make it (it could enter it were it private); a pattern may not.
  const named = await as(t, "nora", "member", "", ["fresh"]);
  assert.deepEqual(await joinAnswer(named, "fresh"), { type: "joined" });
  const patterned = await as(t, "pat", "member", "", ["fresh*"]);
  assert.equal((await joinAnswer(patterned, "fresh-2")).code, "forbidden");
});

Deno.test("Chat: by default (createRooms anyone) a join of a name never used makes the room", async () => {
  await using t = testChat();
  const bob = await as(t, "bob", "member", "");
  assert.deepEqual(await joinAnswer(bob, "anything-new"), { type: "joined" });
});

Deno.test("Chat: a rooms claim opens a private room only by its exact name; `*` and `prefix*` only limit", async () => {
  await using t = testChat();
  const mod = await as(t, "mo", "moderator", "team-secret");
  mod.frame({ type: "room", room: "team-secret", private: true });
  await mod.next("room");
  const star = await as(t, "star", "member", "", ["*"]);
  assert.equal((await joinAnswer(star, "team-secret")).code, "forbidden", "`*` opens no private room");
  assert.deepEqual(await joinAnswer(star, "anywhere"), { type: "joined" }, "`*` limits nothing");
  const team = await as(t, "tess", "member", "", ["team-*"]);
  assert.equal((await joinAnswer(team, "team-secret")).code, "forbidden", "a pattern opens no private room");
  assert.deepEqual(await joinAnswer(team, "team-open"), { type: "joined" });
  assert.equal((await joinAnswer(team, "lobby")).code, "forbidden", "outside the claim");
  const named = await as(t, "nina", "member", "", ["team-*", "team-secret"]);
  assert.deepEqual(await joinAnswer(named, "team-secret"), { type: "joined" }, "a name opens it");
});

Deno.test("Chat: nobody acts on a higher role: a moderator cannot kick, ban, mute or unmute an admin", async () => {
  await using t = testChat();
  const admin = await as(t, "ada", "admin");
  const mod = await as(t, "mo", "moderator");
  const mod2 = await as(t, "max", "moderator");
  const bob = await as(t, "bob");
  for (const type of ["kick", "ban", "mute", "unmute"]) {
    mod.frame({ type, room: "lobby", name: "ada" });
    const e = await mod.error("not_allowed");
    assert.deepEqual([e.room, e.message], [
      "lobby",
      `Cannot ${type} "ada" in room "lobby": their role (admin) is above yours (moderator)`,
    ]);
  }
  mod.frame({ type: "unban", room: "lobby", uid: "ada" });
  await mod.error("not_allowed");
  await t.settle();
  assert.ok(
    !admin.lines.some((m) => m.type === "kicked" || m.type === "moderation"),
    "the admin saw nothing",
  );
  // Equal or lower roles: a moderator mutes a moderator, an admin bans a moderator, a moderator a member.
  mod.frame({ type: "mute", room: "lobby", name: "max", seconds: 60 });
  assert.equal((await bob.next("moderation")).action, "mute");
  admin.frame({ type: "ban", room: "lobby", name: "mo" });
  assert.deepEqual(await mod.next("kicked"), { type: "kicked", room: "lobby", reason: "banned" });
  mod2.frame({ type: "kick", room: "lobby", name: "bob" });
  assert.equal((await bob.next("kicked")).reason, "kicked");
});

Deno.test("Chat: with guestBans address, a banned guest who comes back as a new guest from the same address is refused", async () => {
  await using t = testChat({ guestBans: "address" });
  const mod = await as(t, "mo", "moderator");
  const gus = await t.connect({ name: "gus", address: "192.0.2.7" });
  const neighbour = await t.connect({ name: "nat", address: "192.0.2.7" });
  const other = await t.connect({ name: "olga", address: "198.51.100.1" });
  mod.frame({ type: "ban", room: "lobby", name: "gus", reason: "spam" });
  assert.equal((await gus.next("kicked")).reason, "banned");
  assert.equal((await neighbour.next("kicked")).reason, "banned", "the address's other guests go too");
  const lines = (await other.next("moderation"), other.lines.filter((m) => m.type === "moderation"));
  await t.settle();
  assert.equal(lines.length, 1, "the room is told of the ban once, and of no address");
  assert.equal(lines[0].name, "gus");
  // A new guest (no token) from the same address, from another address, and a signed person there.
  const back = t.open({ name: "gus2", address: "192.0.2.7" });
  await back.error("banned", (e) => e.room === "lobby");
  await t.connect({ name: "fresh", address: "203.0.113.9" });
  const list = await t.chat.accessList("lobby");
  assert.deepEqual(list.bans.map((b) => b.uid).filter((u) => u.startsWith("ip:")), ["ip:192.0.2.7"]);
  // Lifted like any ban, by its uid.
  mod.frame({ type: "unban", room: "lobby", uid: "ip:192.0.2.7" });
  await mod.next("moderation", (m) => m.action === "unban");
  await t.connect({ name: "gus3", address: "192.0.2.7" });
});

Deno.test("Chat: by default (guestBans person) a banned guest comes back as a new guest", async () => {
  await using t = testChat();
  const mod = await as(t, "mo", "moderator");
  const gus = await t.connect({ name: "gus", address: "192.0.2.7" });
  mod.frame({ type: "ban", room: "lobby", name: "gus" });
  await gus.next("kicked");
  await t.connect({ name: "gus2", address: "192.0.2.7" });
  assert.deepEqual((await t.chat.accessList("lobby")).bans.length, 1);
});

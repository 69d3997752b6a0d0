/** Unit tests of `Chat` with fake connections: `nick`, and the signed identities of `auth` frames. */
import assert from "node:assert/strict";
import type { Verifier } from "../../lib/auth.ts";
import type { Identity } from "../../lib/identity.ts";
import { CloseCode, ProtocolError } from "../../lib/protocol.ts";
import { signed, testChat } from "../helpers/chat_harness.ts";

Deno.test("Chat: nick renames the person on every tab and tells their rooms; later messages carry the new name", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  const tab = await t.connect({ token: a.all("welcome")[0].token, room: "" });
  const b = await t.connect({ name: "bob", room: "r" });
  const c = await t.connect({ name: "carol", room: "elsewhere" });
  a.frame({ type: "nick", name: "alicia" });
  const line = { type: "nick", old: "alice", name: "alicia" };
  for (const p of [a, tab, b]) assert.deepEqual(await p.next("nick"), line);
  a.frame({ type: "send", room: "r", text: "hi", cid: "n1" });
  assert.equal((await b.next("message")).from, "alicia");
  assert.deepEqual(await t.chat.presence("r"), ["alicia", "bob"]);
  await t.settle();
  assert.equal(c.all("nick").length, 0);
});

Deno.test("Chat: nick to a name someone else holds, or a lookalike, is name_taken; a bad name bad_name", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "" });
  await t.connect({ name: "bob", room: "" });
  a.frame({ type: "nick", name: "bob" });
  assert.equal((await a.error("name_taken")).message, 'The name "bob" is taken');
  a.frame({ type: "nick", name: "B0B" });
  assert.equal(
    (await a.error("name_taken")).message,
    'The name "B0B" is taken: it looks like "bob", held by someone else',
  );
  a.frame({ type: "nick", name: "no spaces" });
  assert.match((await a.error("bad_name")).message, /^Cannot change name: /);
  a.frame({ type: "nick", name: "ALICE" });
  assert.deepEqual(
    await a.next("nick"),
    { type: "nick", old: "alice", name: "ALICE" },
    "one's own lookalike is free",
  );
});

Deno.test("Chat: nick from a signed person is not_allowed", async () => {
  await using t = testChat();
  const a = await t.connect({ identity: signed("ann"), room: "" });
  a.frame({ type: "nick", name: "other" });
  assert.equal(
    (await a.error("not_allowed")).message,
    "Your name comes from your sign-in: change it on the site you signed in with",
  );
});

/** A verifier that knows the tokens of `known`; any other is bad_token. */
function verifier(known: Record<string, Identity>): Verifier {
  return {
    verify: (token) =>
      known[token]
        ? Promise.resolve(known[token])
        : Promise.reject(new ProtocolError("bad_token", "The token's signature does not match")),
  };
}

Deno.test("Chat: a connection that owes auth gets nothing until it comes; other frames are auth_required", async () => {
  await using t = testChat({}, { verifier: verifier({ "tok-ann": signed("ann", { name: "Ann" }) }) });
  const a = t.open({ authenticate: true, room: "team" });
  a.frame({ type: "ping" });
  const e = await a.error("auth_required");
  assert.equal(e.message, "Send auth {token} first: this server needs to know who you are");
  assert.deepEqual(a.lines.map((m) => m.type), ["error"]);
  assert.equal(t.chat.identityOf(a.id), undefined);
  a.frame({ type: "auth", token: "tok-ann" });
  const w = await a.next("welcome");
  assert.deepEqual([w.name, w.uid, w.guest], ["Ann", "ann", false]);
  assert.equal((await a.next("joined")).room, "team");
});

Deno.test("Chat: a refused auth frame that was owed closes with 4002", async () => {
  await using t = testChat({}, { verifier: verifier({}) });
  const a = t.open({ authenticate: true, room: "" });
  a.frame({ type: "auth", token: "forged" });
  assert.equal((await a.error("bad_token")).message, "The token's signature does not match");
  assert.deepEqual(await a.closed(), { code: CloseCode.AUTH_FAILED, reason: "bad_token" });
});

Deno.test("Chat: a refresh answers authed with the new token's name and role; rooms it no longer allows are left", async () => {
  const exp = Date.now() + 3_600_000;
  await using t = testChat({}, {
    verifier: verifier({
      "new": signed("ann", { name: "Annie", role: "moderator", rooms: ["a"], exp: exp + 1000 }),
      "other": signed("bob"),
    }),
  });
  const ann = await t.connect({ identity: signed("ann", { exp }), room: "a" });
  ann.frame({ type: "join", room: "b" });
  await ann.next("joined", (j) => j.room === "b");
  ann.frame({ type: "auth", token: "other" });
  assert.equal(
    (await ann.error("bad_token")).message,
    "A refreshed token must be for the same user (sub) as the connection",
  );
  ann.frame({ type: "auth", token: "new" });
  assert.deepEqual(await ann.next("left"), { type: "left", room: "b" });
  assert.deepEqual(await ann.next("authed"), {
    type: "authed",
    exp: exp + 1000,
    name: "Annie",
    role: "moderator",
    uid: "ann",
  });
  assert.equal(ann.closedWith, undefined);
  assert.equal(t.chat.identityOf(ann.id)?.role, "moderator");
});

Deno.test("Chat: a guest's connection cannot sign in with an auth frame", async () => {
  await using t = testChat({}, { verifier: verifier({ "tok": signed("ann") }) });
  const g = await t.connect({ name: "gus", room: "" });
  g.frame({ type: "auth", token: "tok" });
  await g.error("bad_token");
  assert.equal(g.closedWith, undefined);
});

Deno.test("Chat: once a second, an expired token closes 4003 and an auth frame owed too long closes 4002", async () => {
  await using t = testChat({ authTimeoutMs: 5000 }, { verifier: verifier({}) });
  const expiring = await t.connect({ identity: signed("ann", { exp: t.clock.now() + 1000 }), room: "" });
  const waiting = t.open({ authenticate: true, room: "" });
  t.clock.advance(5000);
  assert.deepEqual(await expiring.closed(3000), { code: CloseCode.TOKEN_EXPIRED, reason: "token_expired" });
  assert.equal(expiring.all("error")[0].message, "Your sign-in expired: connect again with a new token");
  assert.deepEqual(await waiting.closed(3000), { code: CloseCode.AUTH_FAILED, reason: "auth_required" });
  assert.equal(waiting.all("error")[0].message, "No auth frame within 5000 ms of connecting");
});

Deno.test("Chat: a refresh that demotes a moderator takes them out of a private room they no longer may see", async () => {
  // Issue #18, item 8: the refresh answered authed role member and left the person in the room.
  await using t = testChat({}, {
    verifier: verifier({
      "demoted": signed("mo", { role: "member" }),
      "still": signed("mo2", { role: "moderator" }),
    }),
  });
  const mo = await t.connect({ identity: signed("mo", { role: "moderator" }), room: "board" });
  const mo2 = await t.connect({ identity: signed("mo2", { role: "moderator" }), room: "board" });
  mo.frame({ type: "room", room: "board", private: true });
  await mo.next("room");
  mo2.frame({ type: "auth", token: "still" });
  await mo2.next("authed");
  mo.frame({ type: "auth", token: "demoted" });
  assert.deepEqual(await mo.next("left"), { type: "left", room: "board" });
  assert.equal((await mo.next("authed")).role, "member");
  mo.frame({ type: "send", room: "board", text: "still here?", cid: "c1" });
  assert.equal((await mo.error("not_member")).cid, "c1");
  assert.deepEqual(mo2.all("left"), [], "a refresh that keeps the role keeps the room");
});

Deno.test("Chat: a signed person's name is never given to a guest, and what is addressed to it reaches her", async () => {
  await using t = testChat();
  // Ann signs in once, then goes; the name hold passes.
  const ann = await t.connect({ identity: signed("ann", { name: "Ann" }), room: "r" });
  ann.hangUp();
  await t.settle();
  t.clock.advance(61_000);
  // A guest asks for her name (and a lookalike) at connect and by nick.
  const guest = await t.connect({ name: "ann", room: "r" });
  const w = guest.all("welcome")[0];
  assert.deepEqual([w.name, w.notice], [
    "ann-2",
    'The name "ann" is taken (or looks like one that is); you are "ann-2"',
  ]);
  guest.frame({ type: "nick", name: "ANN" });
  assert.equal(
    (await guest.error("name_taken")).message,
    'The name "ANN" is taken: it looks like "Ann", held by someone else',
  );
  // Bob writes to Ann and mentions her: it is hers, not the guest's.
  const bob = await t.connect({ name: "bob", room: "r" });
  bob.frame({ type: "send", to: "Ann", text: "the wifi password is hunter2", cid: "d1" });
  assert.equal((await bob.next("ack")).to, "Ann");
  bob.frame({ type: "send", room: "r", text: "@Ann look", cid: "m1" });
  assert.deepEqual((await bob.next("message", (m) => m.cid === "m1")).mentions, ["Ann"]);
  await t.settle();
  guest.frame({ type: "conversations" });
  assert.deepEqual((await guest.next("conversations", (m) => m.items !== undefined)).items, []);
  const back = await t.connect({ identity: signed("ann", { name: "Ann" }), room: "r" });
  assert.equal(back.all("joined")[0].mentions, 1);
  const convs = back.all("conversations")[0].items;
  assert.deepEqual(convs.map((c: { with: string; last: { text: string } }) => [c.with, c.last.text]), [[
    "bob",
    "the wifi password is hunter2",
  ]]);
});

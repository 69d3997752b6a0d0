/**
 * Display names beside handles over real sockets and the server API (issue #19, item 3): a signed
 * token's `name` claim is shown as it is (`Ada Lovelace`, `O'Brien`, `Zoë Smith-Jones`) with a handle
 * made from it or taken from `handle`/`preferred_username`; a guest may connect with `?display=` and
 * change it with `nick {display}`; `welcome`, `joined` (`displays`), `presence`, `typing`, `nick`,
 * messages (live, history, tombstones) and the API carry it; clients that never send one see nothing new.
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { type Msg, startServer, TestClient, type TestServer } from "../helpers/test_server.ts";

const SECRET = "display-names-test-secret-0123456789-abc";
const KEY = "display-names-api-key-0123456789";

function serve(): Promise<TestServer> {
  return startServer({ jwtSecret: SECRET, guests: "on", apiKeys: KEY });
}

function token(sub: string, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setExpirationTime("1h")
    .sign(new TextEncoder().encode(SECRET));
}

async function sendAndAck(c: TestClient, room: string, text: string, cid: string): Promise<Msg> {
  c.send({ type: "send", room, text, cid });
  return await c.next("ack", (m) => m.cid === cid);
}

Deno.test("a token's real name is shown as it is, beside a handle made from it or claimed", async () => {
  await using s = await serve();
  const cases: [string, Record<string, unknown>, string, string | undefined][] = [
    ["u-42", { name: "Ada Lovelace" }, "Ada_Lovelace", "Ada Lovelace"],
    ["u-44", { name: "O'Brien" }, "OBrien", "O'Brien"],
    ["u-45", { name: "Zoë Smith-Jones" }, "Zoë_Smith-Jones", "Zoë Smith-Jones"],
    ["u-46", { name: "Grace Hopper", preferred_username: "grace" }, "grace", "Grace Hopper"],
    ["u-47", { name: "Linus T", handle: "linus", preferred_username: "lt" }, "linus", "Linus T"],
    // A name that is a valid handle is both: no display name of its own.
    ["u-48", { name: "bob" }, "bob", undefined],
    // Scripts mixed: no handle can be made of it, so `sub`'s; the display name is kept.
    ["u-49", { name: "Ivan Иванов" }, "u-49", "Ivan Иванов"],
    // A name with a bidi override is no display name: the handle comes from `sub`.
    ["u-50", { name: "evil\u202Eexe.txt" }, "u-50", undefined],
  ];
  for (const [sub, claims, handle, display] of cases) {
    await using c = await TestClient.connect(s, { token: await token(sub, claims), room: "" });
    const w = c.all("welcome")[0];
    assert.equal(w.name, handle, `${JSON.stringify(claims)}: handle`);
    assert.equal(w.display, display, `${JSON.stringify(claims)}: display name`);
    assert.equal("display" in w, display !== undefined, "no display field without a display name");
  }
});

Deno.test("a guest's display name reaches welcome, joined, presence, typing, messages and history", async () => {
  await using s = await serve();
  await using bob = await TestClient.connect(s, { name: "bob", room: "lobby" });
  await bob.next("joined");
  // A display name alone: the handle is made from it.
  await using ada = await TestClient.connect(s, { display: "  Ada   Lovelace ", room: "lobby" });
  const w = ada.all("welcome")[0];
  assert.equal(w.name, "Ada_Lovelace");
  assert.equal(w.display, "Ada Lovelace", "trimmed, inner spaces made one");
  const joined = await ada.next("joined");
  assert.deepEqual(joined.members, ["Ada_Lovelace", "bob"]);
  assert.deepEqual(joined.displays, { Ada_Lovelace: "Ada Lovelace" });
  const p = await bob.next("presence", (m) => m.event === "join");
  assert.deepEqual(p, {
    type: "presence",
    room: "lobby",
    event: "join",
    name: "Ada_Lovelace",
    display: "Ada Lovelace",
  });
  ada.send({ type: "typing", room: "lobby" });
  assert.equal((await bob.next("typing")).display, "Ada Lovelace");
  const ack = await sendAndAck(ada, "lobby", "hello", "c1");
  const live = await bob.next("message", (m) => m.seq === ack.seq);
  assert.equal(live.from, "Ada_Lovelace");
  assert.equal(live.display, "Ada Lovelace");
  // Bob's own messages carry none: he has no display name.
  const ackB = await sendAndAck(bob, "lobby", "hi ada", "b1");
  assert.equal("display" in (await ada.next("message", (m) => m.seq === ackB.seq)), false);
  // History keeps who said it as they were shown then, also once the message is deleted.
  ada.send({ type: "delete", room: "lobby", seq: ack.seq });
  await bob.next("deleted");
  await using carol = await TestClient.connect(s, { name: "carol", room: "lobby" });
  const cj = await carol.next("joined");
  const tomb = cj.messages.find((m: Msg) => m.seq === ack.seq);
  assert.equal(tomb.deleted, true);
  assert.equal(tomb.display, "Ada Lovelace");
  carol.send({ type: "history", room: "lobby", before: ackB.seq });
  const h = await carol.next("history");
  assert.equal(h.messages.find((m: Msg) => m.seq === ack.seq).display, "Ada Lovelace");
  // Leaving says who left, with the display name.
  await ada.close();
  const left = await bob.next("presence", (m) => m.event === "leave");
  assert.equal(left.display, "Ada Lovelace");
});

Deno.test("nick {display} changes or clears a guest's display name; a bad one is refused and the socket stays", async () => {
  await using s = await serve();
  await using bob = await TestClient.connect(s, { name: "bob", room: "lobby" });
  await bob.next("joined");
  await using zoe = await TestClient.connect(s, { name: "zoe", room: "lobby" });
  await zoe.next("joined");
  zoe.send({ type: "nick", display: "Zoë Smith-Jones" });
  assert.deepEqual(await bob.next("nick"), {
    type: "nick",
    old: "zoe",
    name: "zoe",
    display: "Zoë Smith-Jones",
  });
  await zoe.next("nick");
  const ack = await sendAndAck(zoe, "lobby", "hi", "z1");
  assert.equal((await bob.next("message", (m) => m.seq === ack.seq)).display, "Zoë Smith-Jones");
  // Name and display name in one frame: one rename, then the display name.
  zoe.send({ type: "nick", name: "zsj", display: "Zoë S-J" });
  assert.deepEqual(await bob.next("nick"), {
    type: "nick",
    old: "zoe",
    name: "zsj",
    display: "Zoë Smith-Jones",
  });
  assert.deepEqual(await bob.next("nick"), { type: "nick", old: "zsj", name: "zsj", display: "Zoë S-J" });
  for (
    const bad of [
      "\u202Eevil",
      "a\u0007b",
      "x".repeat(65),
      "Z\u0300\u0301\u0302\u0303\u0304\u0305algo",
      "\u200Bhidden",
    ]
  ) {
    zoe.send({ type: "nick", display: bad });
    const e = await zoe.next("error");
    assert.equal(e.code, "bad_name", JSON.stringify(bad));
    assert.match(e.message, /^Cannot change display name: /);
  }
  zoe.send({ type: "nick", display: "" });
  assert.deepEqual(await bob.next("nick"), { type: "nick", old: "zsj", name: "zsj" });
  const ack2 = await sendAndAck(zoe, "lobby", "plain again", "z2");
  assert.equal("display" in (await bob.next("message", (m) => m.seq === ack2.seq)), false);
  // A member who joins now sees no display name for her.
  await using carol = await TestClient.connect(s, { name: "carol", room: "lobby" });
  assert.equal((await carol.next("joined")).displays, undefined);
});

Deno.test("a bad ?display= is refused before the upgrade; a signed person cannot set one", async () => {
  await using s = await serve();
  const res = await fetch(`${s.url}/ws?display=${encodeURIComponent("ok\u2066no")}`, {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.equal(body.error.code, "bad_name");
  assert.match(body.error.message, /U\+2066/);
  await using ada = await TestClient.connect(s, {
    token: await token("u-1", { name: "Ada Lovelace" }),
    room: "",
  });
  ada.send({ type: "nick", display: "Someone Else" });
  assert.equal((await ada.next("error")).code, "not_allowed");
  // A refreshed token with another name: a rename told with the new display name.
  ada.send({ type: "auth", token: await token("u-1", { name: "Ada King" }) });
  const authed = await ada.next("authed");
  assert.equal(authed.name, "Ada_King", "a handle made from the name follows it");
  assert.equal(authed.display, "Ada King");
  assert.deepEqual(await ada.next("nick"), {
    type: "nick",
    old: "Ada_Lovelace",
    name: "Ada_King",
    display: "Ada King",
  });
});

Deno.test("the server API shows and posts display names", async () => {
  await using s = await serve();
  await using ada = await TestClient.connect(s, { display: "Ada Lovelace", room: "lobby" });
  await using bob = await TestClient.connect(s, { name: "bob", room: "lobby" });
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${s.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const presence = await (await call("GET", "/api/rooms/lobby/presence")).json();
  assert.deepEqual(presence, {
    members: ["Ada_Lovelace", "bob"],
    displays: { Ada_Lovelace: "Ada Lovelace" },
  });
  const posted = await call("POST", "/api/rooms/lobby/messages", {
    text: "from the site",
    uid: "u-9",
    display: "Site Bot",
  });
  assert.equal(posted.status, 201);
  const { message } = await posted.json();
  assert.equal(message.display, "Site Bot");
  assert.equal((await bob.next("message", (m) => m.seq === message.seq)).display, "Site Bot");
  const bad = await call("POST", "/api/rooms/lobby/messages", { text: "x", uid: "u-9", display: "\u202E" });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.code, "bad_name");
  await ada.close();
});

Deno.test("a conversation in the list names the other person's display name, online or by their last message", async () => {
  await using s = await serve();
  const ada = await TestClient.connect(s, { display: "Ada Lovelace", room: "" });
  await using bob = await TestClient.connect(s, { name: "bob", room: "" });
  ada.send({ type: "send", to: "bob", text: "psst", cid: "d1" });
  await ada.next("ack", (m) => m.cid === "d1");
  const token = bob.all("welcome")[0].token;
  await using again = await TestClient.connect(s, { token, room: "" });
  const online = (await again.next("conversations")).items[0];
  assert.deepEqual([online.with, online.display], ["Ada_Lovelace", "Ada Lovelace"]);
  // Offline: the display name her last message carries.
  await ada.close();
  await using later = await TestClient.connect(s, { token, room: "" });
  const offline = (await later.next("conversations")).items[0];
  assert.deepEqual([offline.with, offline.display], ["Ada_Lovelace", "Ada Lovelace"]);
  assert.equal(offline.last.display, "Ada Lovelace");
});

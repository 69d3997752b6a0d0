/**
 * Error frames carry what a client acts on as fields (`room`, `retryAfter`, `until`), beside the
 * sentence for people, over real sockets; and `encodeError` merges them.
 * @module
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { encodeError, ProtocolError } from "../../lib/protocol.ts";
import { type Msg, startServer, TestClient, type TestServer } from "../helpers/test_server.ts";

const SECRET = "error-details-test-secret-0123456789-abcdef";

function token(sub: string, claims: { role?: string; rooms?: string[] } = {}): Promise<string> {
  return new SignJWT({ name: sub, ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(SECRET));
}

/** A signed connection in `room` ("" for none), its `joined` taken. */
async function as(
  s: TestServer,
  sub: string,
  claims: { role?: string; rooms?: string[] } = {},
  room = "lobby",
): Promise<TestClient> {
  const c = await TestClient.connect(s, { token: await token(sub, claims), room });
  if (room) await c.next("joined");
  return c;
}

/** The ISO time a sentence names after "until", as ms. */
const untilIn = (message: string) => Date.parse(/until (\S+Z)/.exec(message)?.[1] ?? "");

Deno.test("encodeError() puts the error's details and the frame's extra as fields, leaving out absent ones", () => {
  const e = new ProtocolError("slow_mode", "wait 3 s", undefined, { room: "news", retryAfter: 3 });
  assert.deepEqual(JSON.parse(encodeError(e, { cid: "c1", room: undefined })), {
    type: "error",
    code: "slow_mode",
    message: "wait 3 s",
    room: "news",
    retryAfter: 3,
    cid: "c1",
  });
  const plain = new ProtocolError("bad_json", "Frames must be one JSON object");
  assert.deepEqual(JSON.parse(encodeError(plain)), {
    type: "error",
    code: "bad_json",
    message: "Frames must be one JSON object",
  });
});

Deno.test("slow_mode carries retryAfter (the sentence's whole seconds) and the room", async () => {
  await using s = await startServer({ jwtSecret: SECRET });
  await using mod = await as(s, "mo", { role: "moderator" }, "news");
  await using bob = await as(s, "bob", {}, "news");
  mod.send({ type: "room", room: "news", slowModeSeconds: 30 });
  await bob.next("room", (m) => m.slowModeSeconds === 30);
  bob.send({ type: "send", room: "news", text: "first", cid: "b1" });
  await bob.next("ack", (m) => m.cid === "b1");
  bob.send({ type: "send", room: "news", text: "second", cid: "b2" });
  const e = await bob.next("error");
  assert.equal(e.code, "slow_mode");
  assert.equal(e.room, "news");
  assert.equal(e.cid, "b2");
  assert.ok(Number.isInteger(e.retryAfter) && e.retryAfter >= 29 && e.retryAfter <= 30, String(e.retryAfter));
  assert.match(
    e.message,
    new RegExp(`wait ${e.retryAfter} s before posting again`),
    "the sentence is unchanged",
  );
});

Deno.test("muted carries until (ms, 0 = for good) and the room", async () => {
  await using s = await startServer({ jwtSecret: SECRET });
  await using mod = await as(s, "mo", { role: "moderator" });
  await using bob = await as(s, "bob");
  const before = Date.now();
  mod.send({ type: "mute", room: "lobby", name: "bob", seconds: 600 });
  const line = await bob.next("moderation", (m) => m.action === "mute");
  bob.send({ type: "send", room: "lobby", text: "hello?", cid: "m1" });
  const timed = await bob.next("error");
  assert.deepEqual([timed.code, timed.room, timed.cid], ["muted", "lobby", "m1"]);
  assert.equal(timed.until, line.until);
  assert.ok(timed.until >= before + 600_000 && timed.until <= Date.now() + 600_000, String(timed.until));
  assert.equal(untilIn(timed.message), timed.until, "the sentence names the same time");

  mod.send({ type: "mute", room: "lobby", name: "bob" });
  await bob.next("moderation", (m) => m.action === "mute" && m.until === 0);
  bob.send({ type: "send", room: "lobby", text: "and now?", cid: "m2" });
  const forGood = await bob.next("error");
  assert.deepEqual([forGood.code, forGood.until, forGood.room], ["muted", 0, "lobby"]);
  assert.match(forGood.message, /for good$/);
});

Deno.test("every refused join names its room in a field; banned carries until", async () => {
  await using s = await startServer({ jwtSecret: SECRET, maxRoomsPerConnection: 2 });
  await using mod = await as(s, "mo", { role: "moderator" }, "vip");
  mod.send({ type: "room", room: "vip", private: true });
  await mod.next("room");
  const refusal = async (c: TestClient, room: string): Promise<Msg> => {
    c.send({ type: "join", room });
    return await c.next("error");
  };

  await using eve = await as(s, "eve", {}, "");
  assert.deepEqual(pick(await refusal(eve, "vip")), { code: "forbidden", room: "vip" }, "a private room");
  await using tess = await as(s, "tess", { rooms: ["team-*"] }, "");
  assert.deepEqual(
    pick(await refusal(tess, "lobby")),
    { code: "forbidden", room: "lobby" },
    "the token's claim",
  );

  await using bob = await as(s, "bob", {}, "lobby");
  mod.send({ type: "join", room: "lobby" });
  await mod.next("joined", (m) => m.room === "lobby");
  const banUntil = Date.now() + 3_600_000;
  mod.send({ type: "ban", room: "lobby", name: "bob", seconds: 3600 });
  await bob.next("kicked");
  const banned = await refusal(bob, "lobby");
  assert.deepEqual(pick(banned), { code: "banned", room: "lobby" });
  assert.ok(Math.abs(banned.until - banUntil) < 5000, String(banned.until));
  assert.equal(untilIn(banned.message), banned.until);
  // At connect (`?room=`) too, and a ban for good says 0.
  mod.send({ type: "ban", room: "lobby", name: "bob" });
  await mod.next("moderation", (m) => m.action === "ban" && m.until === 0);
  await using again = new TestClient(`${s.wsUrl}?${new URLSearchParams({ token: await token("bob") })}`);
  const atConnect = await again.next("error");
  assert.deepEqual([atConnect.code, atConnect.room, atConnect.until], ["banned", "lobby", 0]);

  await using ann = await as(s, "ann", {}, "lobby");
  ann.send({ type: "join", room: "two" });
  await ann.next("joined", (m) => m.room === "two");
  assert.deepEqual(pick(await refusal(ann, "three")), { code: "too_many_rooms", room: "three" });
});

/** The code and room of an error frame. */
function pick(e: Msg): { code: string; room: string } {
  return { code: e.code, room: e.room };
}

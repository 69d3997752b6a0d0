/**
 * Signed identities end to end: a real server on port 0, real WebSocket clients, tokens minted here
 * with jose as a host application would (and bad ones built by hand).
 * @module
 */
import assert from "node:assert/strict";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from "jose";
import { createVerifier } from "../../lib/auth.ts";
import { configFromArgs, resolveConfig } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { type Msg, startServer, TestClient, type TestServer, wsHeaders } from "../helpers/test_server.ts";

const SECRET = "a-test-secret-of-more-than-32-bytes-0123456789";
const KEY = new TextEncoder().encode(SECRET);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nowS = () => Math.floor(Date.now() / 1000);

/** Claims of a test token; `exp` in seconds from now. */
interface Claims {
  sub?: string;
  name?: string;
  role?: string;
  rooms?: unknown;
  exp?: number;
  nbf?: number;
  aud?: string;
}

/** An HS256 token signed with `key` (the server's secret unless told). */
function mint(c: Claims = {}, key: Uint8Array = KEY): Promise<string> {
  const { sub = "u1", exp = 300, nbf, ...rest } = c;
  const jwt = new SignJWT({ name: "alice", ...rest }).setProtectedHeader({ alg: "HS256" }).setSubject(sub)
    .setIssuedAt().setExpirationTime(nowS() + exp);
  if (nbf !== undefined) jwt.setNotBefore(nowS() + nbf);
  return jwt.sign(key);
}

/** `alg: none`: a header and claims in base64url and an empty signature, built by hand. */
function unsigned(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) =>
    btoa(JSON.stringify(o)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.`;
}

/** The HTTP refusal of an upgrade with `?token=`. */
async function refusal(
  server: TestServer,
  token: string,
): Promise<{ status: number; code: string; message: string }> {
  const res = await fetch(`${server.url}/ws?${new URLSearchParams({ token })}`, { headers: wsHeaders() });
  const body = await res.json();
  return { status: res.status, code: body.error?.code, message: body.error?.message };
}

/** A client that connects with `?auth=frame` (and `room`), sends `auth {token}` unless `token` is undefined. */
async function authFrame(server: TestServer, token: string | undefined, room = "lobby"): Promise<TestClient> {
  const c = new TestClient(`${server.wsUrl}?${new URLSearchParams({ auth: "frame", room })}`);
  await c.opened;
  if (token !== undefined) c.send({ type: "auth", token });
  return c;
}

/** What a bystander got besides its own connect: it must notice nothing of refused clients. */
function noticed(watcher: TestClient): Msg[] {
  return watcher.lines.filter((m) => !["welcome", "joined", "conversations"].includes(m.type));
}

Deno.test("?token= with an HS256 token connects as the signed user: welcome has uid, role, guest:false and no token", async () => {
  await using server = await startServer({ jwtSecret: SECRET });
  const token = await mint({ sub: "user-42", name: "Alice", role: "moderator" });
  await using c = await TestClient.connect(server, { token, room: "lobby" });
  const w = c.lines.find((m) => m.type === "welcome")!;
  assert.equal(w.name, "Alice");
  assert.equal(w.uid, "user-42");
  assert.equal(w.role, "moderator");
  assert.equal(w.guest, false);
  assert.equal(w.token, undefined, "the host's token is never echoed");
  assert.ok(Math.abs(w.exp - (nowS() + 300) * 1000) < 5000, "exp in ms");
  assert.ok(w.limits.textChars > 0, "limits stay");
  assert.deepEqual((await c.next("joined")).members, ["Alice"]);
  const id = server.app.chat.identityOf(w.id)!;
  assert.deepEqual([id.key, id.uid, id.role, id.guest], ["u:user-42", "user-42", "moderator", false]);
});

Deno.test("auth frame: no welcome and no room until it comes; anything else is auth_required", async () => {
  await using server = await startServer({ jwtSecret: SECRET });
  await using watcher = await TestClient.connect(server, {
    token: await mint({ sub: "w", name: "watcher" }),
  });
  await using c = await authFrame(server, undefined);
  c.send({ type: "join", room: "lobby" });
  const e = await c.next("error");
  assert.equal(e.code, "auth_required");
  assert.equal(c.all("welcome").length, 0);
  c.send({ type: "auth", token: await mint({ sub: "u2", name: "bob" }) });
  const w = await c.next("welcome");
  assert.deepEqual([w.name, w.uid, w.guest], ["bob", "u2", false]);
  assert.deepEqual((await c.next("joined")).room, "lobby");
  assert.equal((await watcher.next("presence")).name, "bob");
});

Deno.test("bad tokens in ?token= are refused 401 before the upgrade with a stable code, and no one notices", async () => {
  const lines: string[] = [];
  await using server = await startServer({ jwtSecret: SECRET, logLevel: "debug" }, {
    log: createLogger("debug", (l) => lines.push(l)),
  });
  await using watcher = await TestClient.connect(server, {
    token: await mint({ sub: "w", name: "watcher" }),
  });
  const good = await mint();
  const [h, p] = good.split(".");
  // The claims of an admin under the signature of a member's token.
  const claims = { sub: "admin", name: "x", role: "admin", exp: nowS() + 60 };
  const forged = `${h}.${unsigned(claims).split(".")[1]}.${good.split(".")[2]}`;
  const cases: [string, string, string][] = [
    ["forged", forged, "bad_token"],
    ["expired", await mint({ exp: -10 }), "token_expired"],
    ["alg none", unsigned({ sub: "u1", name: "alice", exp: nowS() + 60 }), "bad_token"],
    [
      "wrong key",
      await mint({}, new TextEncoder().encode("another-secret-of-more-than-32-bytes!!")),
      "bad_token",
    ],
    ["oversized", await mint({ name: "alice", role: "member", rooms: ["x".repeat(9000)] }), "bad_token"],
    ["not yet valid", await mint({ nbf: 120 }), "bad_token"],
    [
      "no sub",
      await new SignJWT({ name: "a" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h").sign(KEY),
      "bad_token",
    ],
    ["bad role", await mint({ role: "root" }), "bad_token"],
    ["truncated", `${h}.${p}`, "bad_token"],
  ];
  for (const [what, token, code] of cases) {
    const r = await refusal(server, token);
    assert.equal(r.status, 401, what);
    assert.equal(r.code, code, `${what}: ${r.message}`);
    assert.match(r.message, /^Cannot connect: /, what);
    assert.ok(!r.message.includes(token.slice(-20)), `${what}: the token is not repeated`);
  }
  assert.match((await refusal(server, cases[4][1])).message, /Tokens are at most 8192 bytes, got \d+/);
  assert.match((await refusal(server, cases[5][1])).message, /not valid yet/);
  await sleep(300);
  assert.deepEqual(noticed(watcher), []);
  assert.equal(server.app.chat.connectionCount, 1);
  for (const [what, token] of cases) {
    assert.ok(!lines.some((l) => l.includes(token.split(".").at(-1)! || token)), `${what} is not in the log`);
  }
  assert.ok(lines.some((l) => l.includes("upgrade refused") && l.includes("bad_token")));
});

Deno.test("bad tokens in an auth frame: an error frame with the code, then close 4002; no one notices", async () => {
  await using server = await startServer({ jwtSecret: SECRET });
  await using watcher = await TestClient.connect(server, {
    token: await mint({ sub: "w", name: "watcher" }),
  });
  const cases: [string, string, string][] = [
    ["expired", await mint({ exp: -10 }), "token_expired"],
    ["alg none", unsigned({ sub: "u1", name: "alice", exp: nowS() + 60 }), "bad_token"],
    [
      "wrong key",
      await mint({}, new TextEncoder().encode("another-secret-of-more-than-32-bytes!!")),
      "bad_token",
    ],
    ["oversized", "a".repeat(5000) + "." + "b".repeat(5000) + ".c", "bad_token"],
    ["guest token", "AAAAAAAAAAAAAAAAAAAAAA", "bad_token"],
  ];
  for (const [what, token, code] of cases) {
    const c = await authFrame(server, token);
    const e = await c.next("error");
    assert.equal(e.code, code, `${what}: ${e.message}`);
    assert.equal((await c.closed).code, 4002, what);
    assert.equal(c.all("welcome").length, 0, what);
  }
  await sleep(300);
  assert.deepEqual(noticed(watcher), []);
});

Deno.test("a connection that owes an auth frame and sends none is closed 4002 after --auth-timeout", async () => {
  await using server = await startServer({ jwtSecret: SECRET, authTimeoutMs: 200 });
  const c = await authFrame(server, undefined);
  const t = Date.now();
  const e = await c.next("error", undefined, 3000);
  assert.equal(e.code, "auth_required");
  assert.equal((await c.closed).code, 4002);
  assert.ok(Date.now() - t < 2500, "within a sweep of the timeout");
  assert.equal(server.app.chat.connectionCount, 0);
});

Deno.test("refresh: a new token for the same sub is answered authed and keeps the connection; another sub is bad_token", async () => {
  await using server = await startServer({ jwtSecret: SECRET });
  await using other = await TestClient.connect(server, { token: await mint({ sub: "o", name: "olga" }) });
  await using c = await TestClient.connect(server, {
    token: await mint({ sub: "u1", name: "alice", exp: 60 }),
  });
  c.send({ type: "auth", token: await mint({ sub: "u1", name: "alice", exp: 600 }) });
  const a = await c.next("authed");
  assert.deepEqual([a.name, a.role, a.uid], ["alice", "member", "u1"]);
  assert.ok(Math.abs(a.exp - (nowS() + 600) * 1000) < 5000);
  c.send({ type: "auth", token: await mint({ sub: "mallory", name: "mallory" }) });
  assert.equal((await c.next("error")).code, "bad_token");
  c.send({ type: "auth", token: await mint({ sub: "u1", exp: -5 }) });
  assert.equal((await c.next("error")).code, "token_expired");
  assert.equal(c.ws.readyState, WebSocket.OPEN, "a bad refresh keeps the old token");
  // A changed name claim is a rename.
  c.send({ type: "auth", token: await mint({ sub: "u1", name: "alicia" }) });
  assert.equal((await c.next("authed")).name, "alicia");
  assert.deepEqual(await other.next("nick"), { type: "nick", old: "alice", name: "alicia" });
  c.send({ type: "send", room: "lobby", text: "still here", cid: "c1" });
  assert.equal((await c.next("ack")).cid, "c1");
});

Deno.test("expiry: at exp without a refresh the server sends token_expired and closes 4003; a refresh keeps it", async () => {
  await using server = await startServer({ jwtSecret: SECRET });
  await using watcher = await TestClient.connect(server, {
    token: await mint({ sub: "w", name: "watcher" }),
  });
  const c = await TestClient.connect(server, { token: await mint({ sub: "u1", exp: 2 }) });
  await using kept = await TestClient.connect(server, {
    token: await mint({ sub: "u2", name: "bob", exp: 2 }),
  });
  kept.send({ type: "auth", token: await mint({ sub: "u2", name: "bob", exp: 60 }) });
  await kept.next("authed");
  const e = await c.next("error", undefined, 5000);
  assert.equal(e.code, "token_expired");
  assert.equal((await c.closed).code, 4003);
  assert.deepEqual(await watcher.next("presence", (m) => m.event === "leave"), {
    type: "presence",
    room: "lobby",
    event: "leave",
    name: "alice",
  });
  await sleep(1200);
  assert.equal(kept.ws.readyState, WebSocket.OPEN);
});

Deno.test("guests: off by default with a key (no token or a guest token must authenticate), on with --guests on", async () => {
  {
    await using server = await startServer({ jwtSecret: SECRET });
    for (const q of [{}, { token: "AAAAAAAAAAAAAAAAAAAAAA" }] as Record<string, string>[]) {
      const c = new TestClient(`${server.wsUrl}?${new URLSearchParams(q)}`);
      await c.opened;
      c.send({ type: "send", room: "lobby", text: "hi" });
      assert.equal((await c.next("error")).code, "auth_required");
      assert.equal(c.all("welcome").length, 0);
      c.send({
        type: "auth",
        token: await mint({ sub: "s" + Object.keys(q).length, name: "n" + Object.keys(q).length }),
      });
      assert.equal((await c.next("welcome")).guest, false);
      await c.close();
    }
  }
  {
    await using server = await startServer({ jwtSecret: SECRET, guests: "on" });
    await using g = await TestClient.connect(server, { name: "gus" });
    const w = g.lines[0];
    assert.deepEqual([w.type, w.name, w.guest, w.role, w.uid.length], ["welcome", "gus", true, "member", 22]);
    assert.ok(typeof w.token === "string");
  }
  {
    // No key: today's behaviour, and signed ways in are refused plainly.
    await using server = await startServer();
    await using g = await TestClient.connect(server, { name: "gus" });
    assert.equal(g.lines[0].guest, true);
    assert.equal((await refusal(server, await mint())).code, "bad_token");
    const res = await fetch(`${server.url}/ws?auth=frame`, { headers: wsHeaders() });
    assert.equal(res.status, 400);
    await res.body?.cancel();
  }
});

Deno.test("a rooms claim limits joins: another room is forbidden with one sentence, a matching pattern joins", async () => {
  await using server = await startServer({ jwtSecret: SECRET });
  await using watcher = await TestClient.connect(server, {
    token: await mint({ sub: "w", name: "watcher" }),
  });
  const token = await mint({ sub: "t", name: "tess", rooms: ["team-*", "Ops"] });
  const c = new TestClient(`${server.wsUrl}?${new URLSearchParams({ token, room: "lobby" })}`);
  await c.next("welcome");
  assert.deepEqual(await c.next("error"), {
    type: "error",
    code: "forbidden",
    message: 'You cannot join room "lobby"',
    room: "lobby",
  });
  c.send({ type: "join", room: "team-a" });
  assert.equal((await c.next("joined")).room, "team-a");
  c.send({ type: "join", room: "ops" });
  assert.equal((await c.next("joined")).room, "ops");
  c.send({ type: "join", room: "team" });
  assert.equal((await c.next("error")).code, "forbidden");
  // A refresh that narrows the claim leaves the rooms it no longer allows.
  c.send({ type: "auth", token: await mint({ sub: "t", name: "tess", rooms: ["team-*"] }) });
  assert.deepEqual(await c.next("left"), { type: "left", room: "ops" });
  await c.next("authed");
  await sleep(300);
  assert.deepEqual(noticed(watcher), [], "lobby never saw tess");
  await c.close();
});

Deno.test("names from signed tokens are not first-come: a guest holding one is renamed; a second signed one gets a suffix", async () => {
  await using server = await startServer({ jwtSecret: SECRET, guests: "on" });
  await using guest = await TestClient.connect(server, { name: "alice" });
  await using a = await TestClient.connect(server, { token: await mint({ sub: "a1", name: "alice" }) });
  assert.equal(a.lines[0].name, "alice");
  assert.equal(a.lines[0].notice, undefined);
  assert.deepEqual(await guest.next("nick"), { type: "nick", old: "alice", name: "alice-2" });
  await using a2 = await TestClient.connect(server, { token: await mint({ sub: "a2", name: "ALICE" }) });
  assert.equal(a2.lines[0].name, "ALICE-3", "alice-2 is the guest's now");
  assert.match(a2.lines[0].notice, /taken/);
  // A guest cannot take a signed person's name, and a signed person cannot nick.
  await using late = await TestClient.connect(server, { name: "alice" });
  assert.equal(late.lines[0].name, "alice-4");
  a.send({ type: "nick", name: "queen" });
  assert.equal((await a.next("error")).code, "not_allowed");
  // A name claim that is no handle is the display name, and the handle is made from it (shown as
  // text, never as HTML: the page builds text nodes).
  await using odd = await TestClient.connect(server, {
    token: await mint({ sub: "id:7/x", name: "<b>hi</b>" }),
  });
  assert.equal(odd.lines[0].name, "bhib");
  assert.equal(odd.lines[0].display, "<b>hi</b>");
  // One that makes no handle (nor is a display name) falls back to a safe form of sub.
  await using odder = await TestClient.connect(server, {
    token: await mint({ sub: "id:8/x", name: "!!\u0007" }),
  });
  assert.equal(odder.lines[0].name, "id8x");
  assert.equal(odder.lines[0].display, undefined);
});

/** A key pair for `alg`, written as a PEM (SPKI) file and a JWKS file. */
async function keyFiles(alg: string, dir: string) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const pem = `${dir}/${alg}.pem`;
  const jwks = `${dir}/${alg}.jwks.json`;
  await Deno.writeTextFile(pem, await exportSPKI(publicKey));
  await Deno.writeTextFile(
    jwks,
    JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg }] }),
  );
  return { pem, jwks, privateKey };
}

for (const alg of ["RS256", "ES256", "EdDSA"]) {
  Deno.test(`--jwt-public-key takes a PEM file and a JWKS file for ${alg}; another key and HS256 are refused`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const mine = await keyFiles(alg, dir);
      const theirs = await generateKeyPair(alg);
      const sign = (key: Parameters<SignJWT["sign"]>[0], kid?: string) =>
        new SignJWT({ name: "pat" }).setProtectedHeader({ alg, ...(kid ? { kid } : {}) }).setSubject("p1")
          .setExpirationTime("5m").sign(key);
      for (const file of [mine.pem, mine.jwks]) {
        await using server = await startServer({ jwtPublicKey: file });
        await using c = await TestClient.connect(server, { token: await sign(mine.privateKey, "k1") });
        assert.deepEqual([c.lines[0].name, c.lines[0].uid], ["pat", "p1"], file);
        assert.equal((await refusal(server, await sign(theirs.privateKey, "k1"))).code, "bad_token", file);
        assert.equal((await refusal(server, await mint({ sub: "p1" }))).code, "bad_token", `${file}: HS256`);
        assert.equal((await refusal(server, unsigned({ sub: "p1", exp: nowS() + 60 }))).code, "bad_token");
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("settings: a short --jwt-secret and --guests off without a key stop start-up; the secret is never quoted", async () => {
  const none = () => undefined;
  assert.throws(() => configFromArgs(["--jwt-secret", "short-secret-value"], none), (e: Error) => {
    assert.equal(
      e.message,
      "--jwt-secret (CHAT_JWT_SECRET) must be at least 32 bytes (HS256 keys shorter than its hash are guessable), got 18",
    );
    return true;
  });
  assert.throws(
    () => configFromArgs(["--guests", "off"], none),
    /--guests off needs --jwt-secret or --jwt-public-key/,
  );
  const c = configFromArgs([], (n) => n === "CHAT_JWT_SECRET" ? SECRET : undefined);
  assert.deepEqual([c.guests, c.authTimeoutMs, c.maxTokenBytes], ["auto", 10000, 8192]);
  await assert.rejects(
    () => createVerifier(resolveConfig({ jwtPublicKey: "x.pem" }), "not a key"),
    /--jwt-public-key "x.pem" holds neither a PEM public key/,
  );
  await assert.rejects(
    () => startServer({ jwtPublicKey: "/nonexistent/key.pem" }),
    /cannot read "\/nonexistent\/key.pem"/,
  );
});

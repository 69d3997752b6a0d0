/** Operations: a failing store, shutdown answers, and the /healthz and /metrics endpoints. */
import assert from "node:assert/strict";
import { createLogger } from "../../lib/log.ts";
import { faultyStore, type Msg, startServer, TestClient, type TestServer } from "../helpers/test_server.ts";

/** Generous limits, so that only the behaviour under test answers. */
const UNLIMITED = { messagesPerSecond: 100_000, burst: 100_000 };

async function health(s: TestServer): Promise<[number, string]> {
  const res = await fetch(`${s.url}/healthz`);
  return [res.status, await res.text()];
}

async function metrics(s: TestServer): Promise<string> {
  return await (await fetch(`${s.url}/metrics`)).text();
}

Deno.test("a failing store answers every send with store_failed and its cid, strikes no one, and says so in /healthz and /metrics until a write succeeds", async () => {
  const disk = faultyStore();
  // Default maxStrikes (20): fewer than the sends below, so a strike per failure would close the client.
  const logged: string[] = [];
  const log = createLogger("warn", (line) => logged.push(line));
  await using s = await startServer(UNLIMITED, { store: disk.store, log });
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  await using b = await TestClient.connect(s, { name: "bob", room: "r" });
  assert.deepEqual(await health(s), [200, "ok\n"]);
  assert.match(await metrics(s), /^chat_store_healthy 1$/m);

  disk.failing = true;
  const sends = 40;
  for (let i = 0; i < sends; i++) {
    a.send({ type: "send", room: "r", text: `m${i}`, cid: `full-${i}` });
    // One at a time, so each is a write of its own and fails on its own.
    const e = await a.next("error", (m) => m.cid === `full-${i}`);
    assert.equal(e.code, "store_failed");
    assert.equal(e.room, "r");
    assert.ok(e.message.length > 20, e.message);
  }
  assert.ok(disk.appends >= sends, `${disk.appends} writes tried`);
  assert.equal(a.all("ack").length, 0, "nothing is acked while the store fails");
  assert.equal(b.all("message").length, 0, "nothing is delivered while the store fails");
  assert.equal(a.ws.readyState, WebSocket.OPEN, "a server fault is not the client's strike");
  a.send({ type: "ping" });
  await a.next("pong");
  const [status, reason] = await health(s);
  assert.equal(status, 503);
  assert.equal(reason, "store failing\n");
  const text = await metrics(s);
  assert.match(text, /^chat_store_healthy 0$/m);
  assert.match(text, new RegExp(`^chat_store_failures_total ${disk.appends}$`, "m"));
  assert.match(text, new RegExp(`^chat_errors_total\\{code="store_failed"\\} ${sends}$`, "m"));

  // Space is back: the next write succeeds and health follows it.
  disk.failing = false;
  a.send({ type: "send", room: "r", text: "again", cid: "full-0" });
  const ack = await a.next("ack");
  assert.deepEqual([ack.cid, ack.seq], ["full-0", 1], "a re-send after the failure is stored, seq 1");
  assert.equal((await b.next("message")).text, "again");
  assert.deepEqual(await health(s), [200, "ok\n"]);
  assert.match(await metrics(s), /^chat_store_healthy 1$/m);
  for (let i = 1; i < 5; i++) a.send({ type: "send", room: "r", text: `m${i}`, cid: `full-${i}` });
  const acks: Msg[] = [];
  for (let i = 1; i < 5; i++) acks.push(await a.next("ack"));
  assert.deepEqual(acks.map((m) => m.seq), [2, 3, 4, 5]);
  // A full disk fails every write: the log says so once, and once that it is over, not 40 times.
  assert.equal(logged.length, 2, logged.join("\n"));
  assert.match(logged[0], /level=error msg="store write failed" .*No space left on device/);
  assert.match(logged[1], new RegExp(`level=warn msg="store recovered" failedWrites=${sends}`));
});

Deno.test("shutdown answers every send before the 1001: its ack if taken before, else shutting_down with its cid", async () => {
  const disk = faultyStore();
  const s = await startServer(UNLIMITED, { store: disk.store });
  using _ = { [Symbol.dispose]: () => disk.release() }; // a failed assertion must not leave writes held
  const a = await TestClient.connect(s, { name: "alice", room: "r" });
  await a.next("joined");
  // A slow disk holds the first half of the burst in its write while shutdown begins.
  disk.hold();
  const before = 50, after = 100;
  for (let i = 0; i < before; i++) a.send({ type: "send", room: "r", text: `b${i}`, cid: `before-${i}` });
  while (s.app.chat.pendingCount < before) await new Promise((r) => setTimeout(r, 2));
  const down = s.app.shutdown();
  for (let i = 0; i < after; i++) a.send({ type: "send", room: "r", text: `a${i}`, cid: `after-${i}` });
  a.ws.send("raw text during shutdown");
  for (let i = 0; i < after; i++) {
    const e = await a.next("error", (m) => m.cid === `after-${i}`);
    assert.equal(e.code, "shutting_down");
    assert.equal(e.room, "r");
    assert.ok(e.message.length > 20, e.message);
  }
  assert.equal((await a.next("error", (m) => m.cid === undefined)).code, "shutting_down", "the raw frame");
  assert.equal(a.all("ack").length, 0, "the held write is not acked yet");
  disk.release();
  const ev = await a.closed;
  assert.equal(ev.code, 1001);
  await down;
  // Each cid got exactly one answer, and every answer came before the close.
  const answers = new Map<string, string[]>();
  for (const m of a.lines) {
    if (m.type === "ack" || m.type === "error") answers.set(m.cid, [...answers.get(m.cid) ?? [], m.type]);
  }
  for (let i = 0; i < before; i++) assert.deepEqual(answers.get(`before-${i}`), ["ack"], `before-${i}`);
  for (let i = 0; i < after; i++) assert.deepEqual(answers.get(`after-${i}`), ["error"], `after-${i}`);
  assert.deepEqual(a.all("message").map((m) => m.text), Array.from({ length: before }, (_, i) => `b${i}`));
  assert.equal(disk.inner.lastSeq("r"), before, "nothing sent after shutdown began was stored");
  await s.close();
});

Deno.test("/healthz and /metrics answer GET and HEAD; any other method gets 405 with Allow", async () => {
  await using s = await startServer();
  for (const path of ["/healthz", "/metrics"]) {
    const get = await fetch(s.url + path);
    assert.equal(get.status, 200, `GET ${path}`);
    assert.ok((await get.text()).length > 0);
    const head = await fetch(s.url + path, { method: "HEAD" });
    assert.equal(head.status, 200, `HEAD ${path}`);
    assert.match(head.headers.get("content-type")!, /text\/plain/);
    assert.equal(await head.text(), "", "HEAD has no body");
    for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
      const res = await fetch(s.url + path, { method, body: method === "POST" ? "x" : undefined });
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get("allow"), "GET, HEAD");
      const body = await res.json();
      assert.equal(body.error.code, "method_not_allowed");
      assert.match(body.error.message, new RegExp(`${path}.*${method}`));
    }
  }
});

Deno.test("/metrics with a metrics token needs Authorization: Bearer <token>, else 401 with WWW-Authenticate", async () => {
  const token = "s3cret-token_0123456789";
  await using s = await startServer({ metricsToken: token });
  const scrape = (authorization?: string, method = "GET") =>
    fetch(`${s.url}/metrics`, { method, headers: authorization ? { authorization } : {} });
  for (
    const bad of [undefined, "", `Bearer ${token}x`, `Bearer ${token.slice(0, -1)}`, `Basic ${token}`, token]
  ) {
    for (const method of ["GET", "HEAD"]) {
      const res = await scrape(bad, method);
      assert.equal(res.status, 401, `${method} with ${JSON.stringify(bad)}`);
      assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer realm="metrics"/);
      const text = await res.text();
      if (method === "GET") {
        assert.equal(JSON.parse(text).error.code, "unauthorized");
        assert.doesNotMatch(text, /chat_connections/);
      }
    }
  }
  const ok = await scrape(`Bearer ${token}`);
  assert.equal(ok.status, 200);
  assert.match(await ok.text(), /^chat_connections 0$/m);
  const lower = await scrape(`bearer ${token}`);
  assert.equal(lower.status, 200, "the scheme is case-insensitive (RFC 9110)");
  await lower.body?.cancel();
  const h = await fetch(`${s.url}/healthz`);
  assert.equal(h.status, 200, "health stays open for load balancers");
  await h.body?.cancel();
  // Without the setting, /metrics is open.
  await using open = await startServer();
  const res = await fetch(`${open.url}/metrics`);
  assert.equal(res.status, 200);
  await res.body?.cancel();
});

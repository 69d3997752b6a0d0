/**
 * The server under abuse, as a real process: file descriptors running out, clients that ask and never
 * read, a port in use. Bounded in count and time, loopback only.
 * @module
 */
import assert from "node:assert/strict";
import { type Msg, TestClient, waitFor } from "../helpers/test_server.ts";
import { RawSocket } from "../helpers/raw_ws.ts";
import { runMain, type ServerProcess, spawnServer } from "../helpers/process.ts";

/** The status of `GET path` on a new TCP connection (fetch would reuse a pooled one). */
async function get(port: number, path: string): Promise<{ status: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`),
    );
    const buf = new Uint8Array(512);
    const n = await conn.read(buf);
    const head = new TextDecoder().decode(buf.subarray(0, n ?? 0));
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0) };
  } finally {
    conn.close();
  }
}

async function metric(port: number, name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
  const m = new RegExp(`^chat_${name} (\\d+)$`, "m").exec(await res.text());
  return m ? Number(m[1]) : NaN;
}

async function client(srv: ServerProcess, q: Record<string, string>): Promise<TestClient> {
  const c = new TestClient(`ws://127.0.0.1:${srv.port}/ws?${new URLSearchParams(q)}`);
  await c.next("welcome");
  return c;
}

Deno.test("the listener comes back after file descriptors run out; a connected client is served throughout", async () => {
  const dir = await Deno.makeTempDir();
  const srv = await spawnServer(dir, ["--store", "memory", "--log", "info"], { maxFiles: 256 });
  const attack: Deno.TcpConn[] = [];
  try {
    await using alice = await client(srv, { name: "alice", room: "r" });
    await alice.next("joined");
    // Connections that never send a request: the per-address cap counts WebSockets only.
    const tries = await Promise.allSettled(
      Array.from({ length: 400 }, () => Deno.connect({ hostname: "127.0.0.1", port: srv.port })),
    );
    for (const t of tries) if (t.status === "fulfilled") attack.push(t.value);
    await new Promise((r) => setTimeout(r, 500));
    // The connected client is still served while the attack holds the descriptors.
    alice.send({ type: "send", room: "r", text: "during", cid: "c1" });
    assert.equal((await alice.next("ack", (m: Msg) => m.cid === "c1")).seq, 1);
    for (const c of attack.splice(0)) c.close();
    // As soon as descriptors are free the server listens again: new clients, health, metrics.
    await waitFor(async () => (await get(srv.port, "/healthz")).status === 200, 10_000, "/healthz");
    await using bob = await client(srv, { name: "bob", room: "r" });
    await bob.next("joined");
    alice.send({ type: "send", room: "r", text: "after", cid: "c2" });
    assert.equal((await bob.next("message", (m: Msg) => m.text === "after")).seq, 2);
    // The attack did exhaust the descriptors: the listener had to be opened again.
    assert.ok((await metric(srv.port, "listener_restarts_total")) >= 1, srv.output());
  } finally {
    for (const c of attack) c.close();
    await srv.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("clients that ask for history and never read cannot drive memory up", async () => {
  const dir = await Deno.makeTempDir();
  // The scene of #18: 40 clients that never read, each asking 30 times in one write for a room of 200
  // messages of 4,000 characters, on the durable store (its reads take a while, so all 30 are asked
  // before the first is answered), while 20 others talk.
  const clients = 40;
  const srv = await spawnServer(dir, [
    "--data-dir",
    dir,
    "--messages-per-second",
    "1000",
    "--burst",
    "1000",
    "--history-on-join",
    "0",
    "--max-connections-per-ip",
    "100",
  ]);
  const stuck: RawSocket[] = [];
  const talkers: TestClient[] = [];
  try {
    {
      await using filler = await client(srv, { name: "filler", room: "r" });
      await filler.next("joined");
      for (let i = 1; i <= 200; i++) {
        filler.send({ type: "send", room: "r", text: "x".repeat(4000), cid: `f${i}` });
      }
      await filler.next("ack", (m: Msg) => m.cid === "f200", 10_000);
    }
    for (let i = 0; i < 20; i++) {
      const c = await client(srv, { name: `t${i}`, room: "talk" });
      await c.next("joined");
      talkers.push(c);
    }
    const before = await metric(srv.port, "resident_memory_bytes");
    const asks = Array(30).fill(JSON.stringify({ type: "history", room: "r", limit: 200 }));
    for (let i = 0; i < clients; i++) {
      const s = await RawSocket.open(srv.port, `/ws?name=s${i}&room=r`);
      stuck.push(s);
      await s.sendTexts(asks);
    }
    // A healthy client is answered throughout, and memory stays bounded.
    let peak = before;
    await using healthy = await client(srv, { name: "healthy", room: "r" });
    for (let i = 0; i < 15; i++) {
      const t = performance.now();
      peak = Math.max(peak, await metric(srv.port, "resident_memory_bytes"));
      assert.ok(performance.now() - t < 5000, "/metrics answered within 5 s");
      talkers.forEach((c, k) => c.send({ type: "send", room: "talk", text: `hi ${i}`, cid: `t${k}-${i}` }));
      healthy.send({ type: "ping" });
      await healthy.next("pong", undefined, 5000);
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const [k, c] of talkers.entries()) await c.next("ack", (m: Msg) => m.cid === `t${k}-14`, 10_000);
    const grown = (peak - before) / 2 ** 20;
    if (Deno.env.get("ABUSE_VERBOSE")) {
      console.log(`RSS ${(before / 2 ** 20).toFixed(0)} -> peak +${grown.toFixed(0)} MiB`);
    }
    // Each client may hold one client's budget (1 MiB of answers, queued or being read) plus Deno's
    // copy of it; when reads in flight were not counted, this scene took RSS from 101 to 525 MiB.
    assert.ok(grown < 250, `RSS grew by ${grown.toFixed(0)} MiB for ${clients} clients that do not read`);
    const busy = await metric(srv.port, `errors_total{code="busy"}`).catch(() => NaN);
    assert.ok(busy > 0 || Number.isNaN(busy));
    // What each got: the answers that fit its budget (1 MiB for answers of 256 KiB: 4), and busy for
    // the rest, although all 30 were asked before the first answer was read from the store.
    const answered = await Promise.all(stuck.map(async (s) => {
      const text = new TextDecoder("latin1").decode(await s.drain(1500));
      return [text.split('{"type":"history"').length - 1, text.split('"code":"busy"').length - 1];
    }));
    for (const [histories, refused] of answered) {
      assert.ok(histories >= 1 && histories <= 4, `${histories} answers for one client that does not read`);
      assert.ok(refused >= 1, "the rest were refused busy");
    }
  } finally {
    await Promise.all(talkers.map((c) => c.close()));
    await Promise.all(stuck.map((s) => s.close()));
    await srv.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

for (const store of ["sqlite", "memory"]) {
  Deno.test(`start-up on a port in use says so in one line and exits 1 (${store})`, async () => {
    const dir = await Deno.makeTempDir();
    using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = taken.addr.port;
    try {
      const { code, output } = await runMain(dir, [
        "--data-dir",
        dir,
        "--store",
        store,
        "--port",
        String(port),
      ]);
      assert.equal(code, 1, output);
      assert.equal(output.trim(), `chat: port ${port} is in use on 127.0.0.1; pick another with --port`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("the start-up line names the real store and the address bound", async () => {
  const dir = await Deno.makeTempDir();
  const mem = await spawnServer(dir, ["--store", "memory"]);
  const sql = await spawnServer(dir, []);
  try {
    assert.match(
      mem.output(),
      new RegExp(
        `listening on http://127\\.0\\.0\\.1:${mem.port}/ \\(bound to 127\\.0\\.0\\.1:${mem.port}; store: memory \\(lost on restart\\)\\)`,
      ),
    );
    assert.doesNotMatch(mem.output(), /data/);
    assert.match(sql.output(), new RegExp(`store: sqlite in ${dir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
  } finally {
    await mem.stop();
    await sql.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("after a stop signal the server still answers for the drain time: upgrades get 503 shutting_down", async () => {
  const dir = await Deno.makeTempDir();
  const srv = await spawnServer(dir, []);
  try {
    srv.child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 50));
    const res = await fetch(`http://127.0.0.1:${srv.port}/ws`, {
      headers: { upgrade: "websocket", connection: "upgrade", "sec-websocket-version": "13" },
    }).catch(async (e) => {
      const status = await srv.stop();
      throw new Error(`${e.cause ?? e}; server exited ${status.code}:\n${srv.output()}`);
    });
    assert.equal(res.status, 503);
    assert.equal((await res.json()).error.code, "shutting_down");
    assert.equal((await get(srv.port, "/healthz")).status, 503);
    assert.equal((await srv.stop()).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a fragmented message too large for a string leaves no ghost: the connection leaves its rooms", async () => {
  const dir = await Deno.makeTempDir();
  const srv = await spawnServer(dir, ["--store", "memory", "--idle-timeout", "5", "--presence-delay", "0"]);
  const attacker = await RawSocket.open(srv.port, "/ws?name=big&room=r");
  try {
    await using watcher = await client(srv, { name: "watcher", room: "r" });
    await watcher.next("joined");
    // One text message in 1 MiB fragments, past what one JavaScript string can hold (2^29 - 24).
    const chunk = new Uint8Array(1 << 20).fill(0x61);
    await attacker.sendFragment(1, false, chunk);
    for (let i = 1; i < 539; i++) await attacker.sendFragment(0, false, chunk);
    await attacker.sendFragment(0, true, chunk);
    // Deno gives up on that socket's receive side; within the idle timeout the server lets it go.
    await watcher.next("presence", (m: Msg) => m.event === "leave" && m.name === "big", 60_000).catch((e) => {
      throw new Error(`${e.message}\nserver said:\n${srv.output()}`);
    });
    await waitFor(async () => (await metric(srv.port, "connections")) === 1, 5000, "connections back to 1");
    watcher.send({ type: "send", room: "r", text: "still here", cid: "w1" });
    await watcher.next("ack", (m: Msg) => m.cid === "w1");
    assert.equal((await get(srv.port, "/healthz")).status, 200);
    if (Deno.env.get("ABUSE_VERBOSE")) console.log(srv.output());
  } finally {
    await attacker.close();
    await srv.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--tcp-backlog reaches the listener (the accept queue a reconnect storm fills)", async () => {
  try {
    await new Deno.Command("ss", { args: ["-V"], stdout: "null" }).output();
  } catch {
    return console.log("skipped: no `ss` (iproute2) to read the listen queue");
  }
  const dir = await Deno.makeTempDir();
  const srv = await spawnServer(dir, ["--store", "memory", "--tcp-backlog", "777"]);
  try {
    const out = new TextDecoder().decode(
      (await new Deno.Command("ss", { args: ["-ltn"], stdout: "piped" }).output()).stdout,
    );
    const row = out.split("\n").find((l) => l.includes(`127.0.0.1:${srv.port} `));
    assert.match(row ?? "", /^LISTEN\s+\d+\s+777\s/, out);
  } finally {
    await srv.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--reuse-port without Deno's --unstable-net is one sentence and exit 1, not Deno's own exit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { code, output } = await runMain(dir, ["--data-dir", dir, "--store", "memory", "--reuse-port"]);
    assert.equal(code, 1, output);
    assert.match(output.trim(), /^chat: --reuse-port needs Deno's --unstable-net flag/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

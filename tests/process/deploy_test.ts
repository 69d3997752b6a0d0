/**
 * docs/deploy.md followed for real: a private redis-server with the page's settings, two instances
 * with the page's flags, Debian's nginx with the page's config (read out of docs/deploy.md, so the page
 * cannot drift), and clients connected through nginx while instances are killed and restarted, while
 * slow handshakes and one address's surplus connections meet nginx's guards, and while a 100 MiB
 * message shows what nginx cannot stop.
 * Every process is the test's own, on loopback, stopped by PID.
 * @module
 */
import assert from "node:assert/strict";
import { checkRoom, docSnippet, Participant, redisFlags } from "../helpers/cluster.ts";
import { type ServerProcess, spawnServer } from "../helpers/process.ts";
import { findCloseCode, rawHandshake, RawSocket } from "../helpers/raw_ws.ts";
import { redisMissing, startRedis } from "../helpers/redis.ts";
import { SseClient } from "../helpers/sse.ts";
import { type Msg, TestClient } from "../helpers/test_server.ts";

const NGINX = "/usr/sbin/nginx";
/** The test's own limits on top of the page's flags: publish fast, read the whole room back. */
const LIMITS = [
  "--messages-per-second",
  "100000",
  "--burst",
  "100000",
  "--resume-cap",
  "100000",
  "--max-buffered-bytes",
  String(64 << 20),
  "--max-answer-bytes",
  String(32 << 20),
];

function nginxMissing(): string | undefined {
  try {
    Deno.statSync(NGINX);
  } catch {
    return `${NGINX} is not installed (apt-get install nginx); .ci/run installs it`;
  }
  return undefined;
}

const missing = redisMissing() ?? nginxMissing();
if (missing) console.log(`deploy tests skipped: ${missing}`);

/** `text` with `from` (which must occur exactly once: the page changed otherwise) replaced. */
function replaceOnce(text: string, from: string, to: string): string {
  const n = text.split(from).length - 1;
  if (n !== 1) throw new Error(`docs/deploy.md: expected "${from}" once in the snippet, found it ${n} times`);
  return text.replace(from, to);
}

/** The page's instance flags, for an instance on `port` (0: any) using Redis at `url`. */
function instanceFlags(port: number, url: string): string[] {
  const words = docSnippet("instance").trim().split(/\s+/);
  assert.deepEqual(words.slice(0, 3), ["deno", "task", "start"]);
  const flags = words.slice(3);
  const set = (flag: string, value: string) => {
    const i = flags.indexOf(flag);
    if (i < 0) throw new Error(`docs/deploy.md: the instance command has no ${flag}`);
    flags[i + 1] = value;
  };
  set("--port", String(port));
  set("--redis", url);
  return flags;
}

function freePort(): number {
  using probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return probe.addr.port;
}

/** nginx, in the foreground, with the page's config in a directory of its own. */
interface Nginx {
  port: number;
  dir: string;
  /** Its error log so far (printed when a test fails). */
  log(): string;
  /**
   * Upgrade requests nginx answered with anything but 101 so far, each as its access log line
   * (status, request, the instances tried and what each said). A refused handshake's line is written
   * when it is answered; a WebSocket's only when it ends, and it is not a refusal.
   */
  refused(): string[];
  [Symbol.asyncDispose](): Promise<void>;
}

async function startNginx(upstreams: [number, number]): Promise<Nginx> {
  const dir = await Deno.makeTempDir({ prefix: "nginx-" });
  const port = freePort();
  let site = docSnippet("nginx");
  site = replaceOnce(site, "127.0.0.1:8001", `127.0.0.1:${upstreams[0]}`);
  site = replaceOnce(site, "127.0.0.1:8002", `127.0.0.1:${upstreams[1]}`);
  site = replaceOnce(site, "listen 80;", `listen 127.0.0.1:${port};`);
  await Deno.writeTextFile(`${dir}/chat.conf`, site);
  // What Debian's /etc/nginx/nginx.conf would hold around conf.d/, with every path in `dir`.
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `error_log ${dir}/error.log info;
worker_processes 1;
events { worker_connections 256; }
http {
  log_format chat '$status $request_uri upstreams=$upstream_addr statuses=$upstream_status';
  access_log ${dir}/access.log chat;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/chat.conf;
}
`,
  );
  const child = new Deno.Command(NGINX, {
    args: [
      "-e",
      `${dir}/error.log`,
      "-p",
      `${dir}/`,
      "-c",
      `${dir}/nginx.conf`,
      "-g",
      `daemon off; pid ${dir}/nginx.pid;`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.text();
  let exited = false;
  const status = child.status.then((s) => (exited = true, s));
  const stop = async () => {
    if (!exited) child.kill("SIGTERM");
    await status;
    await stderr;
    await Deno.remove(dir, { recursive: true });
  };
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch { /* not listening yet */ }
    if (exited || Date.now() > deadline) {
      const log = await Deno.readTextFile(`${dir}/error.log`).catch(() => "");
      await stop();
      throw new Error(`nginx did not start on port ${port}: ${await stderr}\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const log = () => {
    try {
      return Deno.readTextFileSync(`${dir}/error.log`);
    } catch {
      return "";
    }
  };
  const refused = () => {
    let lines: string[];
    try {
      lines = Deno.readTextFileSync(`${dir}/access.log`).split("\n");
    } catch {
      return [];
    }
    return lines.filter((l) => / \/ws\?/.test(l) && !l.startsWith("101 "));
  };
  return { port, dir, log, refused, [Symbol.asyncDispose]: stop };
}

/** WebSocket connections an instance holds now (its /metrics, asked directly, not through nginx). */
async function connections(srv: ServerProcess): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${srv.port}/metrics`)).text();
  return Number(/^chat_connections (\d+)$/m.exec(text)?.[1]);
}

/** What an instance's /healthz answers, asked directly (0: nothing listens). */
async function healthz(port: number): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    await res.body?.cancel();
    return res.status;
  } catch {
    return 0;
  }
}

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A number the page's nginx snippet sets with `pattern` (one capture group). */
function nginxSetting(pattern: RegExp): number {
  const m = pattern.exec(docSnippet("nginx"));
  if (!m) throw new Error(`docs/deploy.md: the nginx snippet has no ${pattern}`);
  return Number(m[1]);
}

/** Runs `cmd` and gives its output (Deno asks for --allow-all to read /proc directly; a child may). */
async function output(cmd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
  return new TextDecoder().decode(out.stdout);
}

/** Open file descriptors of a process: each TCP connection an instance holds is one. */
async function openFiles(pid: number): Promise<number> {
  return (await output("ls", `/proc/${pid}/fd`)).trim().split("\n").length;
}

/** Resident memory of a process now and at its peak so far (VmRSS, VmHWM), MiB. */
async function memoryMiB(pid: number): Promise<{ now: number; peak: number }> {
  const status = await output("cat", `/proc/${pid}/status`);
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status)?.[1]);
  return { now: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `p`, or a rejection naming `what` once `ms` passed. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) =>
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A client through nginx that sends a message every 200 ms until stopped; each must be acked within
 * 2 s, or `stop()` throws. `stop()` gives the acks counted and the slowest one.
 */
async function servedThroughout(port: number, name: string) {
  const c = new TestClient(`ws://127.0.0.1:${port}/ws?name=${name}&room=front`);
  await c.next("welcome", () => true, 10_000);
  await c.next("joined", () => true, 10_000);
  let running = true;
  let acks = 0;
  let slowestMs = 0;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const t = performance.now();
      c.send({ type: "send", room: "front", text: `m${i}`, cid: `${name}-${i}` });
      await c.next("ack", (m: Msg) => m.cid === `${name}-${i}`, 2000);
      slowestMs = Math.max(slowestMs, performance.now() - t);
      acks++;
      await sleep(200);
    }
  })();
  loop.catch(() => {}); // seen by stop(), which awaits it
  let stopped: Promise<{ acks: number; slowestMs: number }> | undefined;
  return {
    /** Stops sending and closes; safe to call again (a test's `finally`). */
    stop() {
      running = false;
      return stopped ??= loop.then(() => ({ acks, slowestMs: Math.round(slowestMs) })).finally(() =>
        c.close()
      );
    },
  };
}

/**
 * A TCP connection that never completes its upgrade request: silent, or sending it one byte a second
 * (a slowloris). `lived` resolves with the ms from connect until the other side closed it.
 */
async function slowHandshake(port: number, dribble: boolean) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const start = performance.now();
  const request = new TextEncoder().encode(
    "GET /ws?name=slow&room= HTTP/1.1\r\nHost: chat.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
  );
  let sent = 0;
  let writing: Promise<unknown> = Promise.resolve();
  const drip = () =>
    writing = writing.then(async () => {
      await conn.write(request.subarray(sent, sent + 1));
      sent++;
    }).catch(() => {}); // closed by nginx: the read below sees it
  if (dribble) drip();
  const timer = dribble ? setInterval(drip, 1000) : undefined;
  let closed = false;
  const close = () => {
    if (!closed) closed = true, conn.close();
  };
  const lived = (async () => {
    const buf = new Uint8Array(1024);
    try {
      while ((await conn.read(buf)) !== null) { /* an answer is not expected; read until the end */ }
    } catch { /* reset, or closed by close() */ }
    const ms = performance.now() - start;
    clearInterval(timer);
    await writing;
    close();
    return ms;
  })();
  return { lived, close, sent: () => sent };
}

Deno.test({
  name: "deploy: through nginx, a client whose instance is killed resumes on the other and misses nothing",
  ignore: !!missing,
  sanitizeResources: true,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    await using redis = await startRedis([...redisFlags(), "--dir", dir]);
    const spawn = (port = 0) => spawnServer(dir, [...instanceFlags(port, redis.url), ...LIMITS]);
    const srvs = [await spawn(), await spawn()];
    const everyone: Participant[] = [];
    let nginxLog = () => "";
    try {
      await using nginx = await startNginx([srvs[0].port, srvs[1].port]);
      nginxLog = nginx.log;
      const url = () => `ws://127.0.0.1:${nginx.port}/ws`;

      // The page's origin is accepted through nginx (Host passed on, --public-origin), another refused.
      const page = await RawSocket.open(nginx.port, "/ws?name=page&room=", {
        Host: "chat.example.com",
        Origin: "https://chat.example.com",
      });
      await page.close();
      await assert.rejects(
        RawSocket.open(nginx.port, "/ws?name=evil&room=", {
          Host: "chat.example.com",
          Origin: "https://evil.example",
        }),
        /upgrade refused: HTTP\/1.1 403/,
      );
      // A local test as the page is written (#19): the page at http://localhost:<nginx port>/ connects
      // without --public-origin, since nginx passes Host with its port.
      const local = await RawSocket.open(nginx.port, "/ws?name=local&room=", {
        Host: `localhost:${nginx.port}`,
        Origin: `http://localhost:${nginx.port}`,
      });
      await local.close();

      // Which instance nginx gave the reader: the one whose own /metrics counts a connection.
      const reader = new Participant({ name: "reader", room: "deploy", url });
      everyone.push(reader);
      await reader.start();
      await until(
        async () => (await connections(srvs[0])) + (await connections(srvs[1])) === 1,
        "reader counted",
      );
      const on = (await connections(srvs[0])) === 1 ? 0 : 1;
      const writer = new Participant({ name: "writer", room: "deploy", url, window: 16 });
      everyone.push(writer);
      await writer.start();
      writer.publish();
      await until(() => writer.acked.size >= 100, "100 acks before the kill");

      // SIGKILL the reader's instance mid-stream.
      const killed = srvs[on];
      assert.equal((await killed.stop("SIGKILL")).signal, "SIGKILL");
      const survivor = srvs[1 - on];
      await until(() => reader.reconnects === 1, "the reader reconnects through nginx");
      await until(async () => (await connections(survivor)) === 2, "both clients on the survivor");
      const afterKill = writer.acked.size;
      await until(() => writer.acked.size >= afterKill + 100, "messages flow after the kill");

      // Rolling restart: the killed one comes back on its port, then the survivor gets SIGTERM.
      srvs[on] = await spawn(killed.port);
      const before = reader.reconnects;
      assert.equal((await survivor.stop("SIGTERM")).code, 0);
      await until(() => reader.reconnects === before + 1, "the reader reconnects after the 1001");
      assert.equal(reader.closeCodes.at(-1), 1001, "SIGTERM closes with 1001 (through nginx)");
      srvs[1 - on] = await spawn(survivor.port);
      const afterTerm = writer.acked.size;
      await until(() => writer.acked.size >= afterTerm + 100, "messages flow after the rolling restart");

      writer.stopPublishing();
      await writer.drained();
      const last = Math.max(...writer.acked.values());
      await reader.reached(last);
      await writer.reached(last);
      const audit = new Participant({ name: "audit", room: "deploy", url });
      everyone.push(audit);
      await audit.start();
      assert.equal(audit.lastSeq, last);
      checkRoom(audit.messages, [reader, writer]);
      console.log(
        `deploy: ${last} messages, ${writer.sent.length} sent, reader reconnects ${reader.reconnects} ` +
          `(closes ${reader.closeCodes}), writer reconnects ${writer.reconnects}, refusals ${writer.refusals}`,
      );
    } catch (e) {
      console.log(`nginx error log:\n${nginxLog()}\ninstances:\n${srvs.map((s) => s.output()).join("\n")}`);
      throw e;
    } finally {
      for (const p of everyone) await p.close();
      for (const s of srvs) await s.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "deploy: the fallback transport through nginx: events are not buffered, POSTs landing on either instance reach the session in order, a SIGTERM ends the stream with 1001",
  ignore: !!missing,
  sanitizeResources: true,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    await using redis = await startRedis([...redisFlags(), "--dir", dir]);
    const spawn = (port = 0) => spawnServer(dir, [...instanceFlags(port, redis.url), ...LIMITS]);
    const srvs = [await spawn(), await spawn()];
    let nginxLog = () => "";
    try {
      await using nginx = await startNginx([srvs[0].port, srvs[1].port]);
      nginxLog = nginx.log;
      const base = `http://127.0.0.1:${nginx.port}`;
      await using wendy = new TestClient(`ws://127.0.0.1:${nginx.port}/ws?name=wendy&room=deploy`);
      await wendy.next("joined");
      await using sam = await SseClient.open(base, { name: "sam", room: "deploy" });
      await sam.next("joined");
      // Each answer comes at once: nginx passes every event as it comes (X-Accel-Buffering: no).
      for (let i = 0; i < 3; i++) {
        const before = sam.all("pong").length;
        const t = performance.now();
        await sam.send({ type: "ping" });
        await until(() => sam.all("pong").length > before, "a pong through nginx", 2000);
        assert.ok(performance.now() - t < 1000, `pong after ${performance.now() - t} ms`);
      }
      // nginx balances the POSTs over both instances; every frame reaches the session's, in order.
      for (let i = 0; i < 20; i++) {
        await sam.send({ type: "send", room: "deploy", text: `m${i}`, cid: `c${i}` });
      }
      await sam.next("ack", (m) => m.cid === "c19", 10_000);
      assert.deepEqual(sam.all("ack").map((m) => m.cid), Array.from({ length: 20 }, (_, i) => `c${i}`));
      await wendy.next("message", (m) => m.text === "m19", 10_000);
      assert.deepEqual(
        wendy.all("message").map((m) => m.text),
        Array.from({ length: 20 }, (_, i) => `m${i}`),
      );
      const posts = Deno.readTextFileSync(`${nginx.dir}/access.log`).split("\n")
        .filter((l) => l.includes(`/ws/sse/${sam.session}`));
      const upstreams = new Set(posts.map((l) => /upstreams=(\S+)/.exec(l)?.[1]));
      assert.equal(upstreams.size, 2, `the POSTs went to both instances: ${[...upstreams]}`);

      // The session's instance stops: its stream ends with the close event, through nginx.
      // Which instance holds the session: the one still counting a connection once wendy is gone.
      await wendy.close();
      await until(
        async () => (await connections(srvs[0])) + (await connections(srvs[1])) === 1,
        "only the session counted",
      );
      const holds = await connections(srvs[0]) === 1 ? 0 : 1;
      assert.equal((await srvs[holds].stop("SIGTERM")).code, 0);
      await until(() => sam.closedWith !== undefined, "the close event");
      assert.equal(sam.closedWith?.code, 1001);
    } catch (e) {
      console.log(`nginx error log:\n${nginxLog()}\ninstances:\n${srvs.map((s) => s.output()).join("\n")}`);
      throw e;
    } finally {
      for (const s of srvs) await s.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "deploy: a rolling restart through nginx, done as the page says, sends every handshake to the live instance",
  ignore: !!missing,
  sanitizeResources: true,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    await using redis = await startRedis([...redisFlags(), "--dir", dir]);
    const spawn = (port = 0) => spawnServer(dir, [...instanceFlags(port, redis.url), ...LIMITS]);
    const srvs = [await spawn(), await spawn()];
    const clients: Participant[] = [];
    let probing = true;
    let probes: Promise<number[]> | undefined;
    let nginxLog = () => "";
    try {
      await using nginx = await startNginx([srvs[0].port, srvs[1].port]);
      nginxLog = nginx.log;
      const url = () => `ws://127.0.0.1:${nginx.port}/ws`;
      for (let i = 0; i < 8; i++) {
        clients.push(new Participant({ name: `c${i}`, room: "rolling", url, window: 2 }));
        await clients[i].start();
      }
      const writer = clients[0];
      writer.publish();
      // Besides the clients an instance closes with 1001 (they come back at once), a newcomer every
      // 50 ms: handshakes at every moment of the restarts, the drain and the gap between them included.
      probes = (async () => {
        const statuses: number[] = [];
        for (let i = 0; probing; i++) {
          statuses.push((await rawHandshake(nginx.port, `/ws?name=probe${i}&room=`)).status);
          await sleep(50);
        }
        return statuses;
      })();
      const everyoneCaughtUp = async (what: string) => {
        const target = writer.lastSeq + 20;
        await until(() => clients.every((c) => c.lastSeq >= target), what);
      };
      await everyoneCaughtUp("messages flow before the restarts");

      // The page's procedure: SIGTERM one instance, start it again, and once its /healthz answers 200
      // (asked directly, as an operator's script would), the next one at once.
      const perRestart: number[] = [];
      for (const i of [0, 1]) {
        const before = nginx.refused().length;
        const old = srvs[i];
        assert.equal((await old.stop("SIGTERM")).code, 0);
        srvs[i] = await spawn(old.port);
        await until(async () => (await healthz(old.port)) === 200, `instance ${i + 1} healthy again`);
        await everyoneCaughtUp(`every client back after restarting instance ${i + 1}`);
        perRestart.push(nginx.refused().length - before);
      }
      probing = false;
      const statuses = await probes;
      writer.stopPublishing();
      await writer.drained();
      const last = Math.max(...writer.acked.values());
      for (const c of clients) await c.reached(last);
      const reconnects = clients.reduce((n, c) => n + c.reconnects, 0);
      const noLive = nginx.log().split("\n").filter((l) => l.includes("no live upstreams")).length;
      console.log(
        `rolling restart through nginx: refused handshakes per restart ${perRestart.join(", ")} ` +
          `(${noLive} "no live upstreams"); ${reconnects} reconnects of ${clients.length} clients, ` +
          `${statuses.length} newcomers, ${last} messages`,
      );
      if (perRestart.some((n) => n > 0)) console.log(nginx.refused().join("\n"));
      // The other instance was up throughout: nginx had somewhere to send each of them.
      assert.deepEqual(perRestart, [0, 0], "handshakes refused during each restart");
      assert.ok(reconnects >= clients.length, `every client was moved at least once (${reconnects})`);
      assert.ok(statuses.every((s) => s === 101), `newcomers answered ${statuses.filter((s) => s !== 101)}`);
    } catch (e) {
      console.log(`nginx error log:\n${nginxLog()}\ninstances:\n${srvs.map((s) => s.output()).join("\n")}`);
      throw e;
    } finally {
      probing = false;
      await probes?.catch(() => {});
      for (const c of clients) await c.close();
      for (const s of srvs) await s.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "deploy: nginx closes 20 silent and 20 dribbling handshakes at client_header_timeout, refuses an address past limit_conn, and serves a client throughout",
  ignore: !!missing,
  fn: async () => {
    const timeoutMs = nginxSetting(/client_header_timeout (\d+)s;/) * 1000;
    const limit = nginxSetting(/limit_conn chat_peraddr (\d+);/);
    assert.deepEqual([timeoutMs, limit], [10_000, 50]);
    const dir = await Deno.makeTempDir();
    await using redis = await startRedis([...redisFlags(), "--dir", dir]);
    const spawn = () => spawnServer(dir, instanceFlags(0, redis.url));
    const srvs = [await spawn(), await spawn()];
    const sockets: RawSocket[] = [];
    const slow: Awaited<ReturnType<typeof slowHandshake>>[] = [];
    let healthy: Awaited<ReturnType<typeof servedThroughout>> | undefined;
    try {
      await using nginx = await startNginx([srvs[0].port, srvs[1].port]);
      const files = async () => (await openFiles(srvs[0].child.pid)) + (await openFiles(srvs[1].child.pid));
      healthy = await servedThroughout(nginx.port, "healthy");
      const filesBefore = await files();
      for (let i = 0; i < 20; i++) slow.push(await slowHandshake(nginx.port, false));
      for (let i = 0; i < 20; i++) slow.push(await slowHandshake(nginx.port, true));

      // nginx holds them itself: an instance sees a connection only once a request is complete.
      await sleep(1500);
      const moreFiles = (await files()) - filesBefore;
      assert.ok(moreFiles < 5, `the instances hold ${moreFiles} more descriptors`);

      // limit_conn counts requests (a WebSocket for its whole life), not connections still sending
      // their headers: with the 40 slow ones open, the address still gets its 50, the healthy one
      // included, and not one more.
      for (let i = 1; i < limit; i++) sockets.push(await RawSocket.open(nginx.port, `/ws?name=u${i}&room=`));
      await until(
        async () => (await connections(srvs[0])) + (await connections(srvs[1])) === limit,
        "every connection reached an instance",
      );
      const refused = await rawHandshake(nginx.port, "/ws?name=one-more&room=");
      assert.equal(refused.status, 503, "nginx refuses the address's next connection");
      await sockets.pop()!.close();
      await until(
        async () => (await rawHandshake(nginx.port, "/ws?name=again&room=")).status === 101,
        "a slot is free again",
        5000,
      );
      for (const s of sockets.splice(0)) await s.close();

      const lived = await within(
        Promise.all(slow.map((c) => c.lived)),
        timeoutMs + 5000,
        "every slow handshake closed",
      );
      const served = await healthy.stop();
      const [min, max] = [Math.min(...lived), Math.max(...lived)].map(Math.round);
      console.log(
        `front door: 40 slow handshakes (dribblers sent ${
          slow.map((c) => c.sent()).slice(20).join(",")
        } bytes) ` +
          `closed ${min}-${max} ms after connecting; instances +${moreFiles} descriptors meanwhile; the healthy client got ${served.acks} acks, ` +
          `slowest ${served.slowestMs} ms`,
      );
      // At the timeout, not sooner (so it is client_header_timeout that closed them) and not much later.
      assert.ok(min >= timeoutMs - 500 && max <= timeoutMs + 2000, `closed after ${min}-${max} ms`);
      assert.ok(served.acks >= 30, `the healthy client got ${served.acks} acks in ${max} ms`);
    } finally {
      await healthy?.stop().catch(() => {});
      for (const c of slow) c.close();
      await Promise.all(slow.map((c) => c.lived));
      for (const s of sockets) await s.close();
      for (const s of srvs) await s.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "deploy: nginx passes a 100 MiB message in 1 MiB fragments on whole; the instance closes it 1009 and serves a client throughout",
  ignore: !!missing,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    await using redis = await startRedis([...redisFlags(), "--dir", dir]);
    const spawn = () => spawnServer(dir, instanceFlags(0, redis.url));
    const srvs = [await spawn(), await spawn()];
    let attacker: RawSocket | undefined;
    let healthy: Awaited<ReturnType<typeof servedThroughout>> | undefined;
    try {
      await using nginx = await startNginx([srvs[0].port, srvs[1].port]);
      healthy = await servedThroughout(nginx.port, "healthy");
      const before = await Promise.all(srvs.map((s) => memoryMiB(s.child.pid)));
      attacker = await RawSocket.open(nginx.port, "/ws?name=big&room=");
      const chunk = new Uint8Array(1 << 20).fill(0x61);
      const t0 = performance.now();
      await attacker.sendFragment(1, false, chunk);
      for (let i = 1; i < 99; i++) await attacker.sendFragment(0, false, chunk);
      await attacker.sendFragment(0, true, chunk);
      const sentMs = performance.now() - t0;
      let bytes = new Uint8Array(0);
      const end = Date.now() + 20_000;
      while (findCloseCode(bytes) === undefined && Date.now() < end) {
        const more = await attacker.drain(100);
        bytes = new Uint8Array([...bytes, ...more]);
        if (more.ended) break;
      }
      const closedMs = performance.now() - t0 - sentMs;
      const said = new TextDecoder().decode(bytes);
      // The instance counted every byte: nginx let the whole message through.
      assert.match(said, /"frame_too_big".*got 104857600/, said);
      assert.equal(findCloseCode(bytes), 1009);
      const after = await Promise.all(srvs.map((s) => memoryMiB(s.child.pid)));
      const grew = Math.round(Math.max(...after.map((a, i) => a.peak - before[i].now)));
      assert.ok(grew >= 100, `an instance's peak RSS grew by ${grew} MiB`);
      const served = await healthy.stop();
      console.log(
        `100 MiB through nginx in ${Math.round(sentMs)} ms, 1009 ${Math.round(closedMs)} ms after the last ` +
          `fragment, instance RSS +${grew} MiB at peak; the healthy client got ${served.acks} acks, ` +
          `slowest ${served.slowestMs} ms`,
      );
    } finally {
      await healthy?.stop().catch(() => {});
      await attacker?.close();
      for (const s of srvs) await s.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

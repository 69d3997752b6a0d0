/**
 * docs/deploy.md followed for real: a private redis-server with the page's settings, two instances
 * with the page's flags, Debian's nginx with the page's config (read out of docs/deploy.md, so the page
 * cannot drift), and clients connected through nginx while instances are killed and restarted.
 * Every process is the test's own, on loopback, stopped by PID.
 * @module
 */
import assert from "node:assert/strict";
import { checkRoom, docSnippet, Participant, redisFlags } from "../helpers/cluster.ts";
import { type ServerProcess, spawnServer } from "../helpers/process.ts";
import { rawHandshake, RawSocket } from "../helpers/raw_ws.ts";
import { redisMissing, startRedis } from "../helpers/redis.ts";

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
  access_log ${dir}/access.log;
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
  return { port, dir, log, [Symbol.asyncDispose]: stop };
}

/** WebSocket connections an instance holds now (its /metrics, asked directly, not through nginx). */
async function connections(srv: ServerProcess): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${srv.port}/metrics`)).text();
  return Number(/^chat_connections (\d+)$/m.exec(text)?.[1]);
}

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
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
  name: "deploy: nginx holds one address to limit_conn connections (50) and frees a slot when one closes",
  ignore: !!missing,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    await using redis = await startRedis([...redisFlags(), "--dir", dir]);
    const spawn = () => spawnServer(dir, instanceFlags(0, redis.url));
    const srvs = [await spawn(), await spawn()];
    const sockets: RawSocket[] = [];
    try {
      await using nginx = await startNginx([srvs[0].port, srvs[1].port]);
      const limit = Number(/limit_conn chat_peraddr (\d+);/.exec(docSnippet("nginx"))?.[1]);
      assert.equal(limit, 50);
      for (let i = 0; i < limit; i++) sockets.push(await RawSocket.open(nginx.port, `/ws?name=u${i}&room=`));
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
    } finally {
      for (const s of sockets) await s.close();
      for (const s of srvs) await s.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * A connect/close storm from one address against one server on Redis (#18, item 7): guests that close
 * right after `welcome` (or before it), as fast as `--loops` loops can go for `--seconds`. Then, with
 * nobody online, it waits out the name hold and reports what Redis still holds for them (name claims,
 * person claims), what Redis is still asked to do per second while idle, and the server's RSS.
 *
 *   deno run -A bench/name_storm.ts [--root DIR] [--seconds 15] [--loops 64] [--hold 5]
 *
 * `--root` is the checkout whose `main.ts` runs (another worktree, for a before/after in one run).
 * The name hold is shortened (`--hold`, seconds) so the wait is short; the claims' own expiry is the
 * hold, so anything left after it is a leak.
 * @module
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    root: { type: "string", default: new URL("..", import.meta.url).pathname },
    seconds: { type: "string", default: "15" },
    loops: { type: "string", default: "64" },
    hold: { type: "string", default: "5" },
  },
});
const root = values.root!.replace(/\/?$/, "/");
const seconds = Number(values.seconds), loops = Number(values.loops), hold = Number(values.hold);

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function redisCli(port: number, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("redis-cli", { args: ["-p", String(port), ...args], stdout: "piped" })
    .output();
  return new TextDecoder().decode(out.stdout).trim();
}

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 100));
  }
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Keys of `pattern`, counted with SCAN (never KEYS). */
async function countKeys(port: number, pattern: string): Promise<number> {
  const out = await redisCli(port, "--scan", "--pattern", pattern);
  return out === "" ? 0 : out.split("\n").length;
}

const redisPort = freePort();
const redis = new Deno.Command("redis-server", {
  args: ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
  stdout: "null",
  stderr: "null",
}).spawn();
const dataDir = await Deno.makeTempDir();
let server: Deno.ChildProcess | undefined;
try {
  await waitFor(async () => (await redisCli(redisPort, "ping")) === "PONG", 5000);
  const port = freePort();
  server = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${root}main.ts`,
      "--hostname",
      "127.0.0.1",
      "--port",
      String(port),
      "--data-dir",
      dataDir,
      "--redis",
      `redis://127.0.0.1:${redisPort}`,
      "--name-hold",
      String(hold),
      "--max-connections-per-ip",
      "100000",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitFor(
    async () => (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.text())) !== "",
    20_000,
  );
  const rssBefore = rssMiB(server.pid);

  let cycles = 0;
  const end = Date.now() + seconds * 1000;
  const loop = async (i: number) => {
    for (let n = 0; Date.now() < end; n++) {
      await new Promise<void>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?name=s${i}x${n}&room=`);
        // Every other one closes at once, before its welcome; the rest right after it.
        if (n % 2 === 0) ws.onopen = () => ws.close();
        else ws.onmessage = () => ws.close();
        ws.onclose = () => resolve();
        ws.onerror = () => {};
      });
      cycles++;
    }
  };
  await Promise.all(Array.from({ length: loops }, (_, i) => loop(i)));
  const rssPeak = rssMiB(server.pid);
  // Nobody is online now: wait out the hold (and the refresh after it), then look.
  await new Promise((r) => setTimeout(r, (hold + 10) * 1000));
  const persons = await countKeys(redisPort, "chat:{names}:person:*");
  const names = await countKeys(redisPort, "chat:{names}:name:*");
  const calls = async () =>
    Number(/total_commands_processed:(\d+)/.exec(await redisCli(redisPort, "info", "stats"))![1]);
  const c0 = await calls();
  await new Promise((r) => setTimeout(r, 5000));
  const idleOps = ((await calls()) - c0 - 1) / 5;
  console.log(JSON.stringify({
    root,
    seconds,
    loops,
    cycles,
    cyclesPerSecond: Math.round(cycles / seconds),
    personClaimsLeft: persons,
    nameKeysLeft: names,
    redisIdleCommandsPerSecond: Math.round(idleOps),
    rssMiB: {
      before: Math.round(rssBefore),
      afterStorm: Math.round(rssPeak),
      idle: Math.round(rssMiB(server.pid)),
    },
  }));
} finally {
  if (server) {
    try {
      server.kill("SIGTERM");
    } catch { /* gone */ }
    await server.status;
  }
  redis.kill("SIGTERM");
  await redis.status;
  await Deno.remove(dataDir, { recursive: true });
}

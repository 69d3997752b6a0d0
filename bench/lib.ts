/**
 * Shared pieces of the benchmark driver (`run.ts`) and the durable-publish bench (`store_bench.ts`):
 * paths, the servers under test, pinned child processes stopped by process group, the load
 * generator's runtime, one measured row, and the result tables.
 *
 * Every child is spawned `detached` (its own session and process group, pgid == pid), pinned with
 * `taskset` when it exists, with `ulimit -n` raised to the hard limit, and stopped with SIGTERM to
 * that process group (SIGKILL after a grace period). Nothing is ever stopped by name.
 * @module
 */
import { resolveConfig } from "../lib/config.ts";
import { denoRunFlags, grantsFor } from "../lib/permissions.ts";

/** `bench/` with a trailing slash. */
export const BENCH_DIR = new URL(".", import.meta.url).pathname;
/** The project root (where `main.ts` is), with a trailing slash. */
export const ROOT = new URL("..", import.meta.url).pathname;
/** Git-ignored: npm packages (Bun, optional peer deps). */
export const CACHE = `${BENCH_DIR}.cache`;
/** Git-ignored: one folder per run. */
export const RESULTS = `${BENCH_DIR}results`;
export const BUN_PKG = "@oven/bun-linux-x64@1.4.5";
export const BUN = `${CACHE}/node_modules/@oven/bun-linux-x64/bin/bun`;
/** What the optional `node-ws` peer needs (the versions the shared peers were measured with). */
export const NODE_WS_PKGS = ["ws@8.23.0", "bufferutil@4.1.0", "utf-8-validate@6.0.6"];
export const HOST = "127.0.0.1";
export const SERVER_CPU = "0";
export const LOADGEN_CPU = "1";

/** The limits one load generator on one IP must be allowed past; every other feature stays on. */
export const RAISED_LIMITS = [
  "--messages-per-second",
  "100000",
  "--burst",
  "100000",
  "--max-connections-per-ip",
  "20000",
  "--max-connections",
  "20000",
];

// ---------------------------------------------------------------- small utilities

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The absolute path of `cmd` on PATH, or null. */
export function which(cmd: string): string | null {
  let path = "";
  try {
    path = Deno.env.get("PATH") ?? "";
  } catch { /* no --allow-env: nothing found */ }
  for (const dir of path.split(":")) {
    if (!dir) continue;
    try {
      const p = `${dir}/${cmd}`;
      const st = Deno.statSync(p);
      if (st.isFile && ((st.mode ?? 0o111) & 0o111)) return p;
    } catch { /* not here */ }
  }
  return null;
}

/** Runs a command to completion (bounded), returning its exit code and output. */
export async function runToEnd(
  cmd: string,
  args: string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number; out: string }> {
  try {
    const child = new Deno.Command(cmd, {
      args,
      cwd: opts.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, opts.timeoutMs ?? 120_000);
    const r = await child.output();
    clearTimeout(timer);
    const dec = new TextDecoder();
    return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
  } catch (e) {
    return { code: -1, out: String(e) };
  }
}

/** Installs exact package versions into `bench/.cache` with npm. */
export async function npmInstall(pkgs: string[]): Promise<{ ok: boolean; out: string }> {
  Deno.mkdirSync(CACHE, { recursive: true });
  const pj = `${CACHE}/package.json`;
  try {
    Deno.statSync(pj);
  } catch {
    Deno.writeTextFileSync(pj, '{"name":"chat-bench-cache","private":true,"version":"0.0.0"}\n');
  }
  const npm = which("npm");
  if (!npm) return { ok: false, out: "npm not found on PATH" };
  const r = await runToEnd(npm, ["install", "--no-audit", "--no-fund", "--save-exact", ...pkgs], {
    cwd: CACHE,
    timeoutMs: 300_000,
  });
  return { ok: r.code === 0, out: r.out };
}

/**
 * Reads a file under /proc. Deno asks for --allow-all to read /proc directly, so without it the
 * file is read by `cat` (--allow-run); null if neither works.
 */
export function readProc(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    try {
      const r = new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" }).outputSync();
      return r.code === 0 ? new TextDecoder().decode(r.stdout) : null;
    } catch {
      return null;
    }
  }
}

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: HOST, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** How many sockets are in LISTEN on `port` (from /proc/net/tcp{,6}); several with SO_REUSEPORT. */
export function portListeners(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  const re = new RegExp(`^\\s*\\d+: [0-9A-F]+:${hex} [0-9A-F]+:0000 0A`, "gm");
  return ["/proc/net/tcp", "/proc/net/tcp6"].reduce((n, f) => n + (readProc(f)?.match(re)?.length ?? 0), 0);
}

/** Whether something is in LISTEN on `port`. */
export function portListening(port: number): boolean {
  return portListeners(port) > 0;
}

/**
 * utime+stime of a process (all threads) and of the processes it started, theirs too (a wrapper's
 * redis-server and server instances), in clock ticks (100 Hz), or NaN.
 */
export function procCpuTicks(pid: number): number {
  const s = readProc(`/proc/${pid}/stat`);
  if (!s) return NaN;
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  const children = (readProc(`/proc/${pid}/task/${pid}/children`) ?? "").trim().split(" ").filter(Boolean);
  return Number(f[11]) + Number(f[12]) + children.reduce((n, c) => n + (procCpuTicks(Number(c)) || 0), 0);
}

/** Per-core [busy, total] ticks from /proc/stat; busy includes softirq (loopback TCP work). */
export function coreTicks(): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const line of (readProc("/proc/stat") ?? "").split("\n")) {
    const m = /^cpu(\d+) (.*)$/.exec(line);
    if (!m) continue;
    const v = m[2].trim().split(/\s+/).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    out[m[1]] = [total - v[3] - v[4], total];
  }
  return out;
}

/**
 * Percent of all cores busy over `ms` (100 = every core fully busy). Sampled before each row, when
 * none of the bench's processes run: anything well above zero is someone else's load.
 */
export async function machineBusy(ms = 500): Promise<number | null> {
  const sum = (t: Record<string, [number, number]>) =>
    Object.values(t).reduce((a, [b, tot]) => [a[0] + b, a[1] + tot], [0, 0]);
  const [b0, t0] = sum(coreTicks());
  await sleep(ms);
  const [b1, t1] = sum(coreTicks());
  return t1 > t0 ? Math.round(((b1 - b0) / (t1 - t0)) * 1000) / 10 : null;
}

/** The machine's CPU count. */
export function cpuCount(): number {
  return navigator.hardwareConcurrency ?? 1;
}

// ---------------------------------------------------------------- child processes

/** A child process that leads its own process group. */
export interface Proc {
  pid: number;
  name: string;
  status: Promise<Deno.CommandStatus>;
  /** Set once the process has exited. */
  exit: Deno.CommandStatus | null;
}

const running = new Set<Proc>();

/**
 * Whether `taskset` pins children (it exists and the machine has at least two CPUs, and `BENCH_PIN=0`
 * does not say otherwise: unpinned, a server's worker threads, such as the SQLite writer, may run on
 * another core than its event loop, as they would in production).
 */
export const PINNING = which("taskset") !== null && cpuCount() >= 2 && Deno.env.get("BENCH_PIN") !== "0";

/**
 * Starts `cmd` detached (own session and process group), pinned to `cpu` with taskset when
 * {@link PINNING}, with `ulimit -n` raised to the hard limit; stdout to `out`, stderr to `err`
 * (appended; `err` null: into `out`).
 */
export function spawnPinned(
  name: string,
  cmd: string[],
  opts: { cpu: string; out: string; err: string | null; cwd?: string; env?: Record<string, string> },
): Proc {
  const script = 'o="$1"; e="$2"; shift 2; ulimit -n "$(ulimit -Hn)" 2>/dev/null; ' +
    'if [ -n "$e" ]; then exec "$@" >"$o" 2>>"$e"; else exec "$@" >"$o" 2>&1; fi';
  const pin = PINNING ? ["taskset", "-c", opts.cpu] : [];
  const argv = [...pin, "bash", "-c", script, "bench", opts.out, opts.err ?? "", ...cmd];
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: opts.cwd ?? ROOT,
    env: opts.env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  const p: Proc = { pid: child.pid, name, status: child.status, exit: null };
  running.add(p);
  child.status.then((s) => {
    p.exit = s;
    running.delete(p);
  });
  return p;
}

function killGroup(p: Proc, sig: Deno.Signal): void {
  if (p.exit) return;
  try {
    Deno.kill(-p.pid, sig); // the whole process group: pgid == pid (detached)
  } catch {
    try {
      Deno.kill(p.pid, sig);
    } catch { /* gone */ }
  }
}

/** SIGTERM to the process group, SIGKILL after `graceMs`; resolves when it has exited. */
export async function stopProc(p: Proc, graceMs = 6000): Promise<Deno.CommandStatus> {
  killGroup(p, "SIGTERM");
  const timer = setTimeout(() => killGroup(p, "SIGKILL"), graceMs);
  const s = await p.status;
  clearTimeout(timer);
  killGroup(p, "SIGKILL"); // any child left behind in the group
  return s;
}

/** Stops every child still running (on Ctrl-C). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => stopProc(p, 2000)));
}

/** Waits until `listeners` sockets are in LISTEN on `port`, the process exits, or `timeoutMs` passes. */
export async function waitListening(
  p: Proc,
  port: number,
  timeoutMs = 30_000,
  listeners = 1,
): Promise<string | null> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (portListeners(port) >= listeners) {
      await sleep(300);
      return null;
    }
    if (p.exit) return `exited during start-up (code ${p.exit.code})`;
    await sleep(50);
  }
  return `did not listen on ${port} within ${timeoutMs / 1000} s`;
}

// ---------------------------------------------------------------- servers under test

/** One server that can be benchmarked. */
export interface ServerSpec {
  name: string;
  /** How the load generator talks to it: our protocol or the peers' `{"text"}` one. */
  proto: "project" | "chat";
  /** Whether it has our `/metrics`, `cid` acks and a data directory. */
  ours: boolean;
  what: string;
  cmd(port: number, dataDir: string): string[];
  /** Sockets that listen on the port once it is up (several processes with --reuse-port). @default 1 */
  listeners?: number;
  /** Why it cannot run here, or null. */
  missing(): string | null;
}

const deno = Deno.execPath();

/**
 * The permission flags our server runs with: those `deno task start` grants (`lib/permissions.ts`, so the
 * bench starts the server as production does and sees what those permissions break) for the run's temp
 * data directory, plus `extraRead` (see `--server-read`).
 */
export function serverFlags(dataDir: string, extraRead: string[] = []): { flags: string[]; from: string } {
  const flags = denoRunFlags(grantsFor(resolveConfig({ dataDir })));
  return {
    flags: flags.map((t) =>
      t.startsWith("--allow-read=") && extraRead.length ? `${t},${extraRead.join(",")}` : t
    ),
    from: "lib/permissions.ts, as deno task start",
  };
}

/** Extra paths for our server's --allow-read (run.ts `--server-read`). */
export const serverRead: string[] = [];

const ourCmd = (extra: string[]) => (port: number, dir: string) => [
  deno,
  "run",
  ...serverFlags(dir, serverRead).flags,
  "main.ts",
  "--port",
  String(port),
  "--hostname",
  HOST,
  "--data-dir",
  dir,
  ...RAISED_LIMITS,
  ...extra,
];

/**
 * Our server on Redis: a redis-server of its own (AOF on, `fsync` as given) and `instances` servers on one
 * port (--reuse-port), all in one process group started by bash, so the bench pins them to one core and stops
 * them together. The server CPU figure counts the whole group (see procCpuTicks).
 */
/** A free port for a server's redis-server, not `port` (the server's own, released by now too). */
function redisPort(port: number): number {
  for (;;) {
    const p = freePort();
    if (p !== port) return p;
  }
}

const redisCmd = (fsync: "always" | "everysec", instances: number) => (port: number, dir: string) => {
  const one = ourCmd([...(instances > 1 ? ["--reuse-port"] : []), "--redis", "redis://127.0.0.1:$RP"])(
    port,
    dir,
  )
    .map((a) => (a === "run" ? "run --unstable-net" : a))
    .map((a) => (a.includes("$RP") || a.startsWith("run ") ? a : `'${a}'`))
    .join(" ");
  const script = [
    "set -e",
    // From the kernel, as the server's own port: a port nothing listens on may still be held by a client's
    // TIME_WAIT (other benches leave thousands on 127.0.0.1), where redis-server's bind fails and the
    // script used to wait for it until the driver gave up.
    `RP=${redisPort(port)}`,
    `R=$(mktemp -d); trap 'kill 0 2>/dev/null; rm -rf "$R"' EXIT TERM`,
    `redis-server --port $RP --bind 127.0.0.1 --dir "$R" --save '' --appendonly yes --appendfsync ${fsync} >/dev/null &`,
    "until redis-cli -p $RP ping >/dev/null 2>&1; do sleep 0.05; done",
    ...Array.from({ length: instances }, () => `${one} &`),
    "wait",
  ].join("\n");
  return ["bash", "-c", script];
};

const redisMissing = () => {
  try {
    new Deno.Command("redis-server", { args: ["--version"], stdout: "null" }).outputSync();
    return null;
  } catch {
    return "redis-server is not installed (apt-get install redis-server)";
  }
};

export const SERVERS: Record<string, ServerSpec> = {
  "main-redis": {
    name: "main-redis",
    proto: "project",
    ours: true,
    what: "our server on Redis (appendfsync always), 1 instance; redis-server on the same core",
    cmd: redisCmd("always", 1),
    missing: redisMissing,
  },
  "main-redis-everysec": {
    name: "main-redis-everysec",
    proto: "project",
    ours: true,
    what: "our server on Redis (appendfsync everysec), 1 instance; redis-server on the same core",
    cmd: redisCmd("everysec", 1),
    missing: redisMissing,
  },
  "main-redis2": {
    name: "main-redis2",
    proto: "project",
    ours: true,
    what:
      "2 instances of our server on one port (--reuse-port) on Redis (appendfsync always), all on one core",
    cmd: redisCmd("always", 2),
    listeners: 2,
    missing: redisMissing,
  },
  main: {
    name: "main",
    proto: "project",
    ours: true,
    what: "our server, sqlite store (durability full) in a temp --data-dir",
    cmd: ourCmd([]),
    missing: () => null,
  },
  "main-normal": {
    name: "main-normal",
    proto: "project",
    ours: true,
    what: "our server, sqlite store with --durability normal (no fsync per write; survives a killed process)",
    cmd: ourCmd(["--durability", "normal"]),
    missing: () => null,
  },
  "main-nosearch": {
    name: "main-nosearch",
    proto: "project",
    ours: true,
    what:
      "our server as main with --search off (no search index written): what indexing costs the store case",
    cmd: ourCmd(["--search", "off"]),
    missing: () => null,
  },
  "main-memory": {
    name: "main-memory",
    proto: "project",
    ours: true,
    what: "our server, --store memory",
    cmd: ourCmd(["--store", "memory"]),
    missing: () => null,
  },
  naive: {
    name: "naive",
    proto: "chat",
    ours: false,
    what: "bench/peers/deno_naive.ts (the shared peers' naive Deno server): the baseline",
    cmd: (port) => [deno, "run", "--allow-net", `${BENCH_DIR}peers/deno_naive.ts`, String(port)],
    missing: () => null,
  },
  "naive-hello": {
    name: "naive-hello",
    proto: "chat",
    ours: false,
    what:
      "the naive server sending each connection one frame of a welcome's size as it opens (bench/naive_hello.ts)",
    cmd: (port) => [deno, "run", "--allow-net", "--allow-read", `${BENCH_DIR}naive_hello.ts`, String(port)],
    missing: () => null,
  },
  bun: {
    name: "bun",
    proto: "chat",
    ours: false,
    what: "bench/peers/bun_pubsub.js on Bun 1.4.5 (optional peer)",
    cmd: (port) => [BUN, `${BENCH_DIR}peers/bun_pubsub.js`, String(port)],
    missing: () => exists(BUN) ? null : `${BUN} is not installed`,
  },
  "node-ws": {
    name: "node-ws",
    proto: "chat",
    ours: false,
    what: "bench/peers/node_ws.mjs on Node + ws 8.23.0 (optional peer)",
    cmd: (port) => ["node", `${BENCH_DIR}peers/node_ws.mjs`, String(port)],
    missing: () =>
      !which("node")
        ? "node is not on PATH"
        : exists(`${CACHE}/node_modules/ws/package.json`)
        ? null
        : "ws is not installed in bench/.cache",
  },
};

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Installs what an optional peer needs; returns why it failed, or null. */
export async function installPeer(name: string): Promise<string | null> {
  const s = SERVERS[name];
  if (!s) return `unknown peer ${name}`;
  if (!s.missing()) return null;
  if (name === "node-ws") {
    const r = await npmInstall(NODE_WS_PKGS);
    if (!r.ok) return `npm install failed: ${r.out.trim().split("\n").slice(-3).join(" / ")}`;
  }
  return s.missing();
}

// ---------------------------------------------------------------- the load generator

/** Which runtime runs `loadgen.mjs`. */
export interface Generator {
  runtime: string;
  client: "bunraw" | "raw";
  label: string;
}

/**
 * Bun (from bench/.cache, installed with npm on first use) with the `bunraw` client, the cheapest
 * generator; else Node with the raw client.
 */
export async function setupGenerator(want: "auto" | "bun" | "node", install: boolean): Promise<Generator> {
  const bunVersion = async () => {
    const r = await runToEnd(BUN, ["--version"], { timeoutMs: 10_000 });
    return r.code === 0 ? r.out.trim() : null;
  };
  if (want !== "node") {
    let v = exists(BUN) ? await bunVersion() : null;
    if (!v && install) {
      console.error(`installing ${BUN_PKG} into bench/.cache with npm ...`);
      const r = await npmInstall([BUN_PKG]);
      if (!r.ok) console.error(`npm install failed:\n${r.out.trim().split("\n").slice(-5).join("\n")}`);
      v = exists(BUN) ? await bunVersion() : null;
    }
    if (v) return { runtime: BUN, client: "bunraw", label: `bun ${v} (bunraw client)` };
    if (want === "bun") throw new Error("Bun is not available (see above)");
    console.error("Bun is not available: falling back to Node with the raw client (costlier generator)");
  }
  const node = which("node");
  if (!node) throw new Error("neither Bun nor node is available for the load generator");
  const r = await runToEnd(node, ["--version"]);
  return { runtime: node, client: "raw", label: `node ${r.out.trim()} (raw client)` };
}

// ---------------------------------------------------------------- one measured row

/** Knobs of a run. */
export interface Knobs {
  dur: number;
  warm: number;
  conns: number;
  storeDur: number;
  pubs: number;
  window: number;
  w: number;
  /** Soak minutes. */
  soakMin: number;
}

/** A case id: `s1-<N>`, `s2-<rate>`, `s3` or `store`. */
export function caseKind(c: string): "s1" | "s2" | "s3" | "store" {
  return c.startsWith("s1") ? "s1" : c.startsWith("s2") ? "s2" : c === "s3" ? "s3" : "store";
}

/** The load generator's arguments for a case. */
function generatorArgs(c: string, k: Knobs): string[] {
  switch (caseKind(c)) {
    case "s1":
      return [
        "--scenario",
        "s1",
        "--n",
        c.slice(3),
        "--w",
        String(k.w),
        "--dur",
        String(k.dur),
        "--warm",
        String(k.warm),
      ];
    case "s2":
      return [
        "--scenario",
        "s2",
        "--rooms",
        "100",
        "--per-room",
        "10",
        "--rate",
        c.slice(3),
        "--dur",
        String(k.dur),
        "--warm",
        String(k.warm),
      ];
    default:
      return ["--scenario", "s3", "--conns", String(k.conns), "--conc", "200"];
  }
}

// deno-lint-ignore no-explicit-any
export type Json = Record<string, any>;

/** One (run, case, server) result: what is written to results.jsonl. */
export interface Row {
  run: number;
  case: string;
  server: string;
  started: string;
  generator: string;
  pinned: boolean;
  /** % of all cores busy in the 0.5 s before the server started (other processes' load). */
  machine_busy_before: number | null;
  /** The same in the 0.5 s after the server stopped. */
  machine_busy_after: number | null;
  port: number;
  server_pid: number;
  /** The load generator's (or store client's) result line. */
  res: Json;
  server_alive: boolean;
  server_exit: { code: number; signal: string | null } | null;
  /** Our /metrics counters, read after the load and before stopping. */
  metrics: Record<string, number> | null;
  /** Lines in the server's log apart from the start-up line. */
  log_lines: number;
  log_head: string[];
  /** s4 and soak: what the driver measured itself (restart times, RSS peaks, samples). */
  extra?: Json;
}

/** A row with nothing measured yet: the driver fills in port, pid, result and the rest. */
export function newRow(
  run: number,
  c: string,
  server: ServerSpec,
  generator: string,
  busy: number | null,
): Row {
  return {
    run,
    case: c,
    server: server.name,
    started: new Date().toISOString(),
    generator,
    pinned: PINNING,
    machine_busy_before: busy,
    machine_busy_after: null,
    port: 0,
    server_pid: 0,
    res: {},
    server_alive: false,
    server_exit: null,
    metrics: null,
    log_lines: 0,
    log_head: [],
  };
}

/** Our server's /metrics as `{name{labels}: value}`. */
export async function scrapeMetrics(port: number): Promise<Record<string, number> | null> {
  try {
    const r = await fetch(`http://${HOST}:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
    const text = await r.text();
    const out: Record<string, number> = {};
    for (const line of text.split("\n")) {
      const m = /^chat_(\S+) (\S+)$/.exec(line);
      if (m) out[m[1]] = Number(m[2]);
    }
    return out;
  } catch {
    return null;
  }
}

/**
 * Starts `server` fresh on core 0, runs the generator for case `c` on core 1, reads /metrics
 * (ours), stops the server by its process group and returns the row.
 */
export async function measure(
  run: number,
  c: string,
  server: ServerSpec,
  gen: Generator,
  k: Knobs,
  outDir: string,
): Promise<Row> {
  const busyBefore = await machineBusy();
  const port = freePort();
  const dataDir = Deno.makeTempDirSync({ prefix: "chat-bench-" });
  const log = `${outDir}/server-${c}-${server.name}-run${run}.log`;
  const generator = caseKind(c) === "store" ? `deno ${Deno.version.deno} (store_bench.ts client)` : gen.label;
  const row = newRow(run, c, server, generator, busyBefore);
  const srv = spawnPinned(server.name, server.cmd(port, dataDir), { cpu: SERVER_CPU, out: log, err: null });
  row.port = port;
  row.server_pid = srv.pid;
  try {
    const why = await waitListening(srv, port, 30_000, server.listeners);
    if (why) {
      row.res = { error: `server ${why}` };
    } else {
      let cmd: string[];
      let timeoutS: number;
      if (caseKind(c) === "store") {
        cmd = [
          deno,
          "run",
          "--allow-net",
          "--allow-read",
          "--allow-run=cat",
          `${BENCH_DIR}store_bench.ts`,
          "--client",
          "--port",
          String(port),
          "--server-pid",
          String(srv.pid),
          "--dur",
          String(k.storeDur),
          "--warm",
          String(k.warm),
          "--pubs",
          String(k.pubs),
          "--window",
          String(k.window),
        ];
        timeoutS = k.storeDur + k.warm + 60;
      } else {
        cmd = [
          gen.runtime,
          `${BENCH_DIR}loadgen.mjs`,
          ...generatorArgs(c, k),
          "--port",
          String(port),
          "--proto",
          server.proto,
          "--client",
          gen.client,
          "--server-pid",
          String(srv.pid),
          "--label",
          server.name,
        ];
        timeoutS = caseKind(c) === "s3" ? 180 : k.dur + k.warm + 60;
      }
      const out = `${outDir}/.gen-out`;
      const lg = spawnPinned("loadgen", cmd, {
        cpu: LOADGEN_CPU,
        out,
        err: `${outDir}/loadgen.log`,
        cwd: BENCH_DIR,
      });
      const timer = setTimeout(() => stopProc(lg, 1000), timeoutS * 1000);
      await lg.status;
      clearTimeout(timer);
      const lines = Deno.readTextFileSync(out).trim().split("\n").filter(Boolean);
      Deno.removeSync(out);
      try {
        row.res = lines.length
          ? JSON.parse(lines[lines.length - 1])
          : { error: `generator printed no result (exit ${lg.exit?.code})` };
      } catch {
        row.res = { error: `generator printed no JSON: ${lines[lines.length - 1].slice(0, 200)}` };
      }
    }
    row.server_alive = srv.exit === null;
    if (row.server_alive && server.ours) row.metrics = await scrapeMetrics(port);
  } finally {
    const s = await stopProc(srv);
    if (!row.server_alive) row.server_exit = { code: s.code, signal: s.signal };
    try {
      Deno.removeSync(dataDir, { recursive: true });
    } catch { /* already gone */ }
  }
  row.machine_busy_after = await machineBusy();
  try {
    const ansi = new RegExp(String.fromCharCode(27) + "\\[[0-9;]*m", "g"); // colour codes
    const lines = Deno.readTextFileSync(log).replace(ansi, "").split("\n")
      .filter((l) => l && !l.startsWith("chat: listening"));
    row.log_lines = lines.length;
    row.log_head = lines.slice(0, 5).map((l) => l.slice(0, 300));
  } catch { /* no log */ }
  return row;
}

// ---------------------------------------------------------------- tables

const num = (x: unknown): number | null => typeof x === "number" && Number.isFinite(x) ? x : null;

/** 1234567 -> "1.23M", 12345 -> "12.3k". */
export function si(x: unknown): string {
  const v = num(x);
  if (v === null) return "-";
  const a = Math.abs(v);
  if (a >= 999_500) return (v / 1e6).toFixed(2) + "M";
  if (a >= 99_950) return (v / 1e3).toFixed(0) + "k";
  if (a >= 999.5) return (v / 1e3).toFixed(1) + "k";
  return a >= 10 ? v.toFixed(0) : v.toFixed(1);
}

/** A number with `d` decimals, or "-". */
export function fx(x: unknown, d = 1): string {
  const v = num(x);
  return v === null ? "-" : v.toFixed(d);
}

/** "value (ratio x)" where ratio = value / base. */
function withRatio(v: unknown, base: unknown, show: (x: unknown) => string): string {
  const a = num(v), b = num(base);
  if (a === null) return show(v);
  if (b === null || b === 0) return show(v);
  return `${show(v)} (${(a / b).toFixed(2)}x)`;
}

/** A plain text table with right-aligned cells. */
export function table(head: string[], body: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => "| " + r.map((c, i) => (c ?? "").padStart(w[i])).join(" | ") + " |";
  return [line(head), "|" + w.map((x) => "-".repeat(x + 2)).join("|") + "|", ...body.map(line)].join("\n");
}

/** Load generator CPU per delivery (µs), from the generator's own process CPU. */
export function lgUsPerDelivery(r: Json): number | null {
  if (num(r.us_per_delivery_lg) !== null) return r.us_per_delivery_lg;
  const d = num(r.deliveries_s), s = num(r.dur), cpu = num(r.lg_cpu_s);
  return d && s && cpu !== null ? Math.round((cpu * 1e6) / (d * s) * 100) / 100 : null;
}

/** Which core was >= 93 % busy (core busy includes softirq, where loopback TCP work lands). */
export function bound(r: Json): string {
  if (num(r.core0_busy) === null) return "-";
  const s = r.core0_busy >= 93, l = r.core1_busy >= 93;
  return s && l ? "both" : s ? "server" : l ? "LOADGEN" : "window";
}

/** Server CPU µs per handshake in S3 (CPU over the connect phase / connections opened). */
function srvUsPerHs(r: Json): number | null {
  const cpu = num(r.srv_cpu), secs = num(r.secs), ok = num(r.ok);
  return cpu !== null && secs && ok ? (cpu / 100) * secs * 1e6 / ok : null;
}
function lgUsPerHs(r: Json): number | null {
  const cpu = num(r.lg_cpu_s), ok = num(r.ok);
  return cpu !== null && ok ? cpu * 1e6 / ok : null;
}

/** % of all cores busy before a row above which the row is flagged as contaminated. */
export const BUSY_LIMIT = 15;

/** Everything in a row that is not a clean run: errors, drops, closes, crashes, log lines. */
export function problems(row: Row): string[] {
  const r = row.res, out: string[] = [];
  if (r.error) out.push(`ERROR: ${r.error}`);
  if (!row.server_alive) {
    out.push(
      `server not running after the load (exit code ${row.server_exit?.code}, ${row.server_exit?.signal})`,
    );
  }
  for (
    const k of [
      "drops",
      "abandoned",
      "invalid",
      "bad",
      "order_err",
      "closed_early",
      "seq_errors",
      "unacked",
      "missing_echoes",
    ]
  ) {
    if (num(r[k])) out.push(`${k}=${r[k]}`);
  }
  if (r.first_invalid) out.push(`first invalid: ${String(r.first_invalid).slice(0, 120)}`);
  if (num(r.proj_errors)) {
    out.push(`${r.proj_errors} error frames, first: ${String(r.first_error).slice(0, 160)}`);
  }
  if (num(r.errors)) out.push(`${r.errors} error frames, first: ${String(r.first_error).slice(0, 160)}`);
  if (r.close_codes && Object.keys(r.close_codes).length) {
    out.push(`close frames received: ${JSON.stringify(r.close_codes)}`);
  }
  if (r.errs && Object.keys(r.errs).length) out.push(`connect errors: ${JSON.stringify(r.errs)}`);
  if (caseKind(row.case) === "s2" && r.keeps_up === false) out.push("does NOT keep up with the offered load");
  if (caseKind(row.case) === "s3" && r.room0_live) {
    const [a, b] = String(r.room0_live).split("/");
    if (a !== b) out.push(`room r0 live only ${r.room0_live}`);
  }
  const m = row.metrics;
  if (m) {
    for (const [k, v] of Object.entries(m)) {
      if (!v) continue;
      if (
        k.startsWith("errors_total") || k === "slow_consumer_closes_total" ||
        k === "store_failures_total" || k === "connections_refused_total"
      ) out.push(`/metrics ${k}=${v}`);
    }
  }
  const busy = Math.max(row.machine_busy_before ?? 0, row.machine_busy_after ?? 0);
  if (busy > BUSY_LIMIT) {
    out.push(
      `the machine was ${row.machine_busy_before}% / ${row.machine_busy_after}% busy just before / after ` +
        "this row (other processes): figures unreliable",
    );
  }
  if (row.log_lines) out.push(`${row.log_lines} server log line(s), first: ${row.log_head[0]}`);
  return out;
}

/** The tables for `rows` (one per case and run), the generator check, and the problems found. */
export function report(rows: Row[], baseline = "naive", storeBaseline = "main-memory"): string {
  const out: string[] = [];
  const cases = [...new Set(rows.map((r) => r.case))];
  const runs = [...new Set(rows.map((r) => r.run))].sort((a, b) => a - b);
  const genChecks: string[] = [];
  let genOk = 0, genAll = 0;
  const notes: string[] = [];
  for (const c of cases) {
    const kind = caseKind(c);
    for (const run of runs) {
      const rs = rows.filter((r) => r.case === c && r.run === run);
      if (!rs.length) continue;
      const baseName = kind === "store" ? storeBaseline : baseline;
      const base = rs.find((r) => r.server === baseName && !r.res.error)?.res ?? {};
      let head: string[];
      let body: string[][];
      if (kind === "s1" || kind === "s2") {
        head = [
          "server",
          ...(kind === "s2" ? ["offered/s"] : []),
          "deliveries/s",
          "p50 ms",
          "p99 ms",
          "max ms",
          "srv us/deliv",
          "lg us/deliv",
          "lg<srv",
          "srv CPU%",
          "core0%",
          "core1%",
          kind === "s1" ? "bound" : "keeps up",
          "drops",
        ];
        body = rs.map((row) => {
          const r = row.res;
          if (r.error) {
            return [row.server, `ERROR: ${String(r.error).slice(0, 60)}`, ...Array(head.length - 2).fill("")];
          }
          const lg = lgUsPerDelivery(r), srv = num(r.srv_us_per_delivery);
          const cheaper = lg !== null && srv !== null ? lg < srv : null;
          if (cheaper !== null) {
            genAll++;
            if (cheaper) genOk++;
            else {
              genChecks.push(
                `${c} ${row.server} run ${run}: generator ${fx(lg, 2)} us/delivery >= server ${fx(srv, 2)} ` +
                  `(core1 ${fx(r.core1_busy, 0)}% busy${
                    r.core1_busy >= 93 ? ": generator-bound, a lower bound" : ""
                  })`,
              );
            }
          }
          return [
            row.server,
            ...(kind === "s2" ? [si(r.offered_deliveries_s)] : []),
            withRatio(r.deliveries_s, base.deliveries_s, si),
            withRatio(r.p50_ms, base.p50_ms, (x) => fx(x, 2)),
            withRatio(r.p99_ms, base.p99_ms, (x) => fx(x, 2)),
            withRatio(r.max_ms, base.max_ms, (x) => fx(x, 1)),
            withRatio(srv, base.srv_us_per_delivery, (x) => fx(x, 2)),
            fx(lg, 2),
            cheaper === null ? "-" : cheaper ? "yes" : "NO",
            fx(r.srv_cpu, 0),
            fx(r.core0_busy, 0),
            fx(r.core1_busy, 0),
            kind === "s1" ? bound(r) : r.keeps_up ? "yes" : "NO",
            String(r.drops ?? "-"),
          ];
        });
      } else if (kind === "s3") {
        head = [
          "server",
          "opened",
          "failed",
          "handshakes/s",
          "KiB/conn",
          "RSS MiB before->after",
          "srv us/hs",
          "lg us/hs",
          "core0%",
          "core1%",
          "room r0 live",
        ];
        body = rs.map((row) => {
          const r = row.res;
          if (r.error) {
            return [row.server, `ERROR: ${String(r.error).slice(0, 60)}`, ...Array(head.length - 2).fill("")];
          }
          return [
            row.server,
            String(r.ok),
            String(r.failed) + (r.stopped_early ? " (gave up)" : ""),
            withRatio(r.hs_s, base.hs_s, si),
            withRatio(r.kib_per_conn, base.kib_per_conn, (x) => fx(x, 1)),
            `${fx(r.rss_before_mib, 0)}->${fx(r.rss_after_mib, 0)}`,
            withRatio(srvUsPerHs(r), srvUsPerHs(base), (x) => fx(x, 0)),
            fx(lgUsPerHs(r), 0),
            fx(r.core0_busy, 0),
            fx(r.core1_busy, 0),
            String(r.room0_live ?? "-"),
          ];
        });
      } else {
        head = [
          "server",
          "acked msgs/s",
          "p50 ack ms",
          "p99 ack ms",
          "max ack ms",
          "srv us/msg",
          "client us/msg",
          "msgs/write",
          "srv CPU%",
          "core0%",
          "core1%",
        ];
        body = rs.map((row) => {
          const r = row.res;
          if (r.error) {
            return [row.server, `ERROR: ${String(r.error).slice(0, 60)}`, ...Array(head.length - 2).fill("")];
          }
          const m = row.metrics;
          const perWrite = m && m.store_batches_total
            ? m.messages_stored_total / m.store_batches_total
            : null;
          return [
            row.server,
            withRatio(r.acks_s, base.acks_s, si),
            withRatio(r.p50_ms, base.p50_ms, (x) => fx(x, 2)),
            withRatio(r.p99_ms, base.p99_ms, (x) => fx(x, 2)),
            withRatio(r.max_ms, base.max_ms, (x) => fx(x, 1)),
            withRatio(r.srv_us_per_msg, base.srv_us_per_msg, (x) => fx(x, 2)),
            fx(r.client_us_per_msg, 2),
            fx(perWrite, 1),
            fx(r.srv_cpu, 0),
            fx(r.core0_busy, 0),
            fx(r.core1_busy, 0),
          ];
        });
      }
      const title = {
        s1: `S1 fan-out, 1 room, N=${c.slice(3)} members + 1 publisher, ${
          rs[0].res.W ?? "W"
        } messages in flight`,
        s2: `S2 chatter, 100 rooms x 10 clients, ${c.slice(3)} msg/s per client, open loop`,
        s3: `S3 idle connections (rooms of 100, 200 handshakes in flight)`,
        store: `STORE durable publish: publishers x window in flight, ack after the store write`,
      }[kind];
      out.push(`\n### ${c} run ${run}: ${title}; (x) = ratio to ${baseName} in this run\n`);
      out.push(table(head, body));
      for (const row of rs) {
        const p = problems(row);
        if (p.length) notes.push(`${c} ${row.server} run ${run}: ${p.join("; ")}`);
      }
    }
  }
  out.push("\n### load generator check (CPU per delivery: generator process vs server process, S1/S2)\n");
  if (genAll === 0) out.push("no S1/S2 rows");
  else if (genOk === genAll) {
    out.push(`OK: the generator's CPU per delivery is below the server's in all ${genAll} S1/S2 rows.`);
  } else {
    out.push(
      `The generator's CPU per delivery is below the server's in ${genOk} of ${genAll} S1/S2 rows. Not in:`,
    );
    for (const g of genChecks) out.push(`  - ${g}`);
    out.push(
      "  A row is only generator-limited if core1 was saturated (bound = LOADGEN/both); otherwise the server\n" +
        "  was not saturated either and the number is bound by the in-flight window (latency).",
    );
  }
  out.push("\n### problems seen (errors, drops, closes, crashes, server log lines)\n");
  out.push(notes.length ? notes.map((n) => `  - ${n}`).join("\n") : "none");
  if (runs.length > 1) out.push(spread(rows, cases));
  return out.join("\n");
}

/** Median [min..max] of each case's headline metric over the runs. */
function spread(rows: Row[], cases: string[]): string {
  const servers = [...new Set(rows.map((r) => r.server))];
  const metric = (c: string, r: Json): number | null => {
    const k = caseKind(c);
    return num(
      k === "s1" ? r.deliveries_s : k === "s2" ? r.srv_us_per_delivery : k === "s3" ? r.hs_s : r.acks_s,
    );
  };
  const body = servers.map((s) => [
    s,
    ...cases.map((c) => {
      const v = rows.filter((r) => r.case === c && r.server === s && !r.res.error).map((r) =>
        metric(c, r.res)
      )
        .filter((x): x is number => x !== null).sort((a, b) => a - b);
      if (!v.length) return "-";
      const med = v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
      const f = caseKind(c) === "s2" ? (x: number) => x.toFixed(2) : si;
      return `${f(med)} [${f(v[0])}..${f(v[v.length - 1])}]`;
    }),
  ]);
  return "\n### over all runs: median [min..max] of s1 deliveries/s, s2 srv us/deliv, s3 handshakes/s, " +
    "store acked msgs/s\n\n" + table(["server", ...cases], body);
}

/**
 * The JSON lines a generator wrote so far to `path` (events, then its result last). A last line
 * without its newline is still being written and is left for the next read; another line that is
 * not JSON becomes an `error` entry.
 */
export function jsonLines(path: string): Json[] {
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return [];
  }
  const lines = text.split("\n");
  lines.pop(); // "" after the last newline, or a line still being written
  const out: Json[] = [];
  for (const l of lines) {
    if (!l.trim()) continue;
    try {
      out.push(JSON.parse(l));
    } catch {
      out.push({ error: `generator printed no JSON: ${l.slice(0, 200)}` });
    }
  }
  return out;
}

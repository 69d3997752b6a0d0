/**
 * S3-100k, a crowd of idle connections on one server process (issue #22): `--s3k-conns` members
 * (100,000) in rooms of 100, connected with at most 200 handshakes in flight from loopback source
 * addresses spread over 127.0.0.0/8 (one address has about 28,000 ephemeral ports towards one port).
 * Reported: time to connect them, the server's RSS and KiB per connection, one message to a room of
 * 100 reaching every member, and `/healthz` latency sampled all through (goal: under 100 ms).
 *
 * One process may hold at most its hard descriptor limit of sockets, so the crowd is shared by as
 * many generator processes (`churn.mjs --scenario crowd`) as that takes, all pinned to the
 * generator's core and steered with files. The server is one process under the same limit: a crowd
 * larger than it can hold is cut to what it can, and the row says so.
 * @module
 */
import {
  BENCH_DIR,
  BUSY_LIMIT,
  coreTicks,
  freePort,
  type Generator,
  HOST,
  type Json,
  jsonLines,
  LOADGEN_CPU,
  machineBusy,
  newRow,
  type Proc,
  procCpuTicks,
  readProc,
  type Row,
  SERVER_CPU,
  type ServerSpec,
  sleep,
  spawnPinned,
  stopProc,
  table,
  waitListening,
} from "./lib.ts";

/** Clock ticks a second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const HZ = 100;
/** Descriptors a process needs besides its sockets (runtime, listener, store, logs). */
const FD_MARGIN = 200;
/** Total handshakes in flight, shared by the generators (as S3). */
const IN_FLIGHT = 200;

/** The S3-100k knobs. */
export interface CrowdKnobs {
  /** Connections asked for. @default 100000 */
  conns: number;
  /** Members per room. @default 100 */
  roomSize: number;
  /** Members sharing one loopback source address. @default 100 */
  perIp: number;
  /** Seconds the crowd is held, idle, after the room check while `/healthz` is still sampled. @default 10 */
  holdS: number;
  /** Milliseconds between two `/healthz` requests. @default 100 */
  healthzEveryMs: number;
  /** Connections one generator process holds. @default as many as its descriptor limit allows, at most 20,000 */
  perProc?: number;
  /** The hard limit of open files (`ulimit -Hn`) every process of the run gets. */
  hardNofile: number;
}

/** How many connections the run can hold and how the generators share them. */
export function crowdPlan(k: CrowdKnobs): { conns: number; perProc: number; procs: number; cut: boolean } {
  const fit = (n: number) => Math.floor(n / k.roomSize) * k.roomSize;
  const serverMax = fit(k.hardNofile - FD_MARGIN);
  const conns = Math.max(k.roomSize, Math.min(fit(k.conns), serverMax));
  const perProc = Math.max(k.roomSize, fit(Math.min(k.perProc ?? Infinity, serverMax, 20_000)));
  return { conns, perProc, procs: Math.ceil(conns / perProc), cut: conns < fit(k.conns) };
}

/**
 * `field` (VmRSS, VmHWM) of `pid` and its descendants summed, in KiB: on Redis the server is a bash
 * wrapper whose children are redis-server and the instances, and the wrapper's own would say nothing.
 */
function rssKiB(pid: number, field = "VmRSS"): number | null {
  const m = new RegExp(`${field}:\\s+(\\d+)`).exec(readProc(`/proc/${pid}/status`) ?? "");
  if (!m) return null;
  const children = (readProc(`/proc/${pid}/task/${pid}/children`) ?? "").trim().split(" ").filter(Boolean);
  return children.reduce((n, c) => n + (rssKiB(Number(c), field) ?? 0), Number(m[1]));
}

/** The server's command with room for the crowd: `--max-connections` past it (other limits unchanged). */
export function withRoom(cmd: string[], conns: number): string[] {
  const max = String(conns + 1000);
  return cmd.map((a, i) =>
    cmd[i - 1] === "--max-connections"
      ? max
      : a.replace(/'--max-connections' '\d+'/, `'--max-connections' '${max}'`)
  );
}

/** `/healthz` answered every `everyMs` until stopped: latency (ms) and the phase it fell in. */
function healthzSampler(port: number, everyMs: number) {
  const samples: { phase: string; ms: number | null }[] = [];
  let phase = "idle";
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const t = performance.now();
      let ms: number | null = null;
      try {
        const r = await fetch(`http://${HOST}:${port}/healthz`, { signal: AbortSignal.timeout(5000) });
        await r.body?.cancel();
        if (r.ok) ms = performance.now() - t;
      } catch { /* counted as failed */ }
      samples.push({ phase, ms });
      const rest = everyMs - (performance.now() - t);
      if (rest > 0) await sleep(rest);
    }
  })();
  return {
    samples,
    setPhase(p: string) {
      phase = p;
    },
    async stop() {
      stopped = true;
      await done;
    },
  };
}

function pct(sorted: number[], p: number): number | null {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}
const r1 = (x: number | null | undefined) => (typeof x === "number" ? Math.round(x * 10) / 10 : null);

/** Latency figures of `samples` (failed requests apart). */
function healthzStats(samples: { ms: number | null }[]): Json {
  const ms = samples.map((s) => s.ms).filter((x): x is number => x !== null).sort((a, b) => a - b);
  return {
    n: samples.length,
    failed: samples.length - ms.length,
    p50_ms: r1(pct(ms, 0.5)),
    p99_ms: r1(pct(ms, 0.99)),
    max_ms: r1(ms.at(-1) ?? null),
    over_100ms: ms.filter((x) => x > 100).length,
  };
}

/** Waits until every generator printed an event line of `kind` (or exited), polling their outputs. */
async function waitEvents(outs: string[], procs: Proc[], kind: string, timeoutMs: number): Promise<Json[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const evs = outs.map((o) => jsonLines(o).find((l) => l.event === kind) ?? null);
    const waiting = evs.some((e, i) => e === null && procs[i].exit === null);
    if (!waiting || Date.now() > end) return evs.filter((e): e is Json => e !== null);
    await sleep(200);
  }
}

/** One S3-100k row for `server`. */
export async function measureCrowd(
  run: number,
  server: ServerSpec,
  gen: Generator,
  k: CrowdKnobs,
  outDir: string,
): Promise<Row> {
  const plan = crowdPlan(k);
  const row: Row & { extra: Json } = {
    ...newRow(run, "s3-100k", server, gen.label, await machineBusy()),
    extra: { asked: k.conns, ...plan, hard_nofile: k.hardNofile, room_size: k.roomSize, per_ip: k.perIp },
  };
  const port = freePort();
  row.port = port;
  const dataDir = Deno.makeTempDirSync({ prefix: "chat-bench-" });
  const log = `${outDir}/server-s3-100k-${server.name}-run${run}.log`;
  const srv = spawnPinned(server.name, withRoom(server.cmd(port, dataDir), plan.conns), {
    cpu: SERVER_CPU,
    out: log,
    err: null,
  });
  row.server_pid = srv.pid;
  const gens: Proc[] = [];
  const flag = (name: string) => `${outDir}/.crowd-${name}-${server.name}-run${run}`;
  const go = flag("go"), stop = flag("stop");
  const clearFlags = () => {
    for (const f of [go, stop]) {
      try {
        Deno.removeSync(f);
      } catch { /* not there */ }
    }
  };
  clearFlags();
  let health: ReturnType<typeof healthzSampler> | null = null;
  // Everything below ends by this time, whatever happens: connecting at no less than 50 a second.
  const deadlineS = Math.ceil(plan.conns / 50) + k.holdS + 120;
  try {
    const why = await waitListening(srv, port, 30_000, server.listeners);
    if (why) {
      row.res = { error: `server ${why}` };
      return row;
    }
    health = healthzSampler(port, k.healthzEveryMs);
    await sleep(1000);
    const rss0 = rssKiB(srv.pid);
    const cpu0 = procCpuTicks(srv.pid), cores0 = coreTicks(), tc0 = performance.now();
    health.setPhase("connecting");
    const outs: string[] = [];
    for (let p = 0; p < plan.procs; p++) {
      const first = p * plan.perProc, n = Math.min(plan.perProc, plan.conns - first);
      const out = `${outDir}/crowd-gen${p}-${server.name}-run${run}.jsonl`;
      outs.push(out);
      gens.push(spawnPinned(`crowd${p}`, [
        gen.runtime,
        `${BENCH_DIR}churn.mjs`,
        "--scenario",
        "crowd",
        "--port",
        String(port),
        "--first",
        String(first),
        "--n",
        String(n),
        "--room-size",
        String(k.roomSize),
        "--per-ip",
        String(k.perIp),
        "--conc",
        String(Math.max(1, Math.floor(IN_FLIGHT / plan.procs))),
        "--check",
        p === 0 ? "1" : "0",
        "--go",
        go,
        "--stop",
        stop,
        "--connect-timeout",
        String(deadlineS - k.holdS - 60),
        "--deadline",
        String(deadlineS),
      ], { cpu: LOADGEN_CPU, out, err: `${outDir}/loadgen.log`, cwd: BENCH_DIR }));
    }
    const connected = await waitEvents(outs, gens, "connected", (deadlineS - k.holdS - 30) * 1000);
    const cpu1 = procCpuTicks(srv.pid), cores1 = coreTicks(), tc1 = performance.now();
    // Whether the server's core was saturated while /healthz waited: by the server, or by someone else.
    const busyPct = (c: string) => {
      const a = cores0[c], b = cores1[c];
      return a && b && b[1] > a[1] ? r1(((b[0] - a[0]) / (b[1] - a[1])) * 100) : null;
    };
    health.setPhase("held");
    const ok = connected.reduce((n, e) => n + e.ok, 0);
    const failures: Record<string, number> = {};
    for (const e of connected) {
      for (const [w, c] of Object.entries(e.failures ?? {})) failures[w] = (failures[w] ?? 0) + (c as number);
    }
    const t0 = Math.min(...connected.map((e) => e.t_first)), t1 = Math.max(...connected.map((e) => e.t_last));
    // As S3: RSS 2 s after the last open, without a forced GC.
    await sleep(2000);
    const rss1 = rssKiB(srv.pid);
    Deno.writeTextFileSync(go, "");
    const checked = await waitEvents(outs.slice(0, 1), gens.slice(0, 1), "checked", 20_000);
    await sleep(k.holdS * 1000);
    await health.stop();
    const lgRss = gens.reduce((n, g) => n + (rssKiB(g.pid) ?? 0), 0);
    const rss2 = rssKiB(srv.pid);
    Deno.writeTextFileSync(stop, "");
    await Promise.race([Promise.all(gens.map((g) => g.status)), sleep(20_000)]);
    const finals = outs.map((o) => jsonLines(o).filter((l) => !l.event).at(-1) ?? {});
    const sum = (key: string) => finals.reduce((n, f) => n + (typeof f[key] === "number" ? f[key] : 0), 0);
    const merge = (key: string) => {
      const m: Record<string, number> = {};
      for (const f of finals) {
        for (const [w, c] of Object.entries(f[key] ?? {})) m[w] = (m[w] ?? 0) + (c as number);
      }
      return m;
    };
    const secs = (t1 - t0) / 1000;
    const joinP99 = connected.map((e) => e.join_p99_ms).filter((x) => typeof x === "number");
    row.res = {
      conns: plan.conns,
      ok,
      failed: connected.reduce((n, e) => n + e.failed, 0),
      failures,
      generators_reported: connected.length,
      source_addresses: connected.reduce((n, e) => n + (e.sources ?? 0), 0),
      connect_s: r1(secs),
      conns_s: secs > 0 ? Math.round(ok / secs) : null,
      join_p99_ms_worst: joinP99.length ? Math.max(...joinP99) : null,
      srv_cpu_s_connect: r1((cpu1 - cpu0) / HZ),
      srv_cpu_pct_connect: r1(((cpu1 - cpu0) / HZ) / ((tc1 - tc0) / 1000) * 100),
      core0_pct_connect: busyPct(SERVER_CPU),
      core1_pct_connect: busyPct(LOADGEN_CPU),
      srv_us_per_conn: ok ? Math.round(((cpu1 - cpu0) / HZ) * 1e6 / ok) : null,
      rss_before_mib: rss0 === null ? null : r1(rss0 / 1024),
      rss_after_mib: rss1 === null ? null : r1(rss1 / 1024),
      rss_end_mib: rss2 === null ? null : r1(rss2 / 1024),
      rss_peak_mib: r1((rssKiB(srv.pid, "VmHWM") ?? 0) / 1024),
      kib_per_conn: rss0 !== null && rss1 !== null && ok ? r1((rss1 - rss0) / ok) : null,
      lg_rss_mib: r1(lgRss / 1024),
      check: checked[0] ?? null,
      healthz: healthzStats(health.samples),
      healthz_connecting: healthzStats(health.samples.filter((s) => s.phase === "connecting")),
      healthz_held: healthzStats(health.samples.filter((s) => s.phase === "held")),
      lost: sum("lost"),
      open_at_end: sum("open_at_end"),
      error_frames: merge("error_frames"),
      close_codes: merge("close_codes"),
      first_error: finals.find((f) => f.first_error)?.first_error ?? null,
      lg_errors: finals.filter((f) => f.error).map((f) => f.error),
      lg_runtime: finals.find((f) => f.lg_runtime)?.lg_runtime ?? null,
    };
    row.server_alive = srv.exit === null;
  } finally {
    await health?.stop();
    await Promise.all(gens.map((g) => stopProc(g, 2000)));
    const s = await stopProc(srv);
    if (!row.server_alive) row.server_exit = { code: s.code, signal: s.signal };
    clearFlags();
    Deno.removeSync(dataDir, { recursive: true });
    row.machine_busy_after = await machineBusy();
  }
  return row;
}

/** The S3-100k table. */
export function crowdReport(rows: Row[]): string {
  if (rows.length === 0) return "";
  const s = (x: unknown) => (x === null || x === undefined ? "-" : String(x));
  const body = rows.map((r) => {
    const x = r.res, h = x.healthz ?? {}, c = x.check;
    const problems = [
      x.error,
      r.extra?.cut ? `cut from ${r.extra.asked} (hard nofile ${r.extra.hard_nofile})` : "",
      x.failed ? `${x.failed} failed ${JSON.stringify(x.failures)}` : "",
      x.lost ? `${x.lost} lost` : "",
      Object.keys(x.error_frames ?? {}).length ? `errors ${JSON.stringify(x.error_frames)}` : "",
      Object.keys(x.close_codes ?? {}).length ? `closes ${JSON.stringify(x.close_codes)}` : "",
      r.server_alive ? "" : "server died",
      [r.machine_busy_before, r.machine_busy_after].some((b) => b !== null && b > BUSY_LIMIT)
        ? `machine busy (${r.machine_busy_before}% before, ${r.machine_busy_after}% after): unreliable`
        : "",
    ].filter(Boolean).join("; ");
    return [
      r.server,
      String(r.run),
      `${s(x.ok)}/${s(x.conns)}`,
      s(x.connect_s),
      s(x.conns_s),
      s(x.srv_us_per_conn),
      `${s(x.srv_cpu_pct_connect)}/${s(x.core0_pct_connect)}`,
      `${s(x.rss_before_mib)} -> ${s(x.rss_after_mib)}`,
      s(x.kib_per_conn),
      s(x.rss_peak_mib),
      c ? `${c.got}/${c.members}` : "-",
      c ? s(c.all_ms) : "-",
      `${s(h.p50_ms)}/${s(h.p99_ms)}/${s(h.max_ms)}`,
      `${s(x.healthz_connecting?.p99_ms)}/${s(x.healthz_connecting?.max_ms)}`,
      `${s(x.healthz_held?.p99_ms)}/${s(x.healthz_held?.max_ms)}`,
      `${s(h.over_100ms)}/${s(h.n)}`,
      problems,
    ];
  });
  return "\nS3-100k: a crowd of idle connections on one process, rooms of 100, 200 handshakes in flight, " +
    "/healthz sampled all through (goal < 100 ms)\n" +
    table(
      [
        "server",
        "run",
        "joined",
        "connect s",
        "conns/s",
        "srv us/conn",
        "srv%/core0%",
        "RSS MiB",
        "KiB/conn",
        "peak MiB",
        "room of 100",
        "all ms",
        "healthz p50/p99/max ms",
        "connecting p99/max",
        "held p99/max",
        ">100ms",
        "problems",
      ],
      body,
    ) + "\n";
}

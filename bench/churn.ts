/**
 * The bench driver's side of the two cases that follow clients over time (`churn.mjs` is the load
 * generator): S4, a reconnect storm after a server restart, and the soak, steady churn for minutes with
 * the server's memory, descriptors and store sampled as it goes. Both run against our server only; each
 * returns a {@link Row} like `measure()` does, and {@link churnReport} prints their tables.
 * @module
 */
import {
  BENCH_DIR,
  BUSY_LIMIT,
  freePort,
  fx,
  type Generator,
  HOST,
  type Json,
  jsonLines,
  type Knobs,
  LOADGEN_CPU,
  machineBusy,
  newRow,
  type Proc,
  readProc,
  type Row,
  scrapeMetrics,
  SERVER_CPU,
  type ServerSpec,
  sleep,
  spawnPinned,
  stopProc,
  table,
  waitListening,
} from "./lib.ts";

/** Whether a case is one of this module's. */
export function isChurnCase(c: string): boolean {
  return c === "s4" || c === "soak";
}

/** VmRSS of `pid` in MiB, or null. */
function rssMiB(pid: number): number | null {
  const m = /VmRSS:\s+(\d+)/.exec(readProc(`/proc/${pid}/status`) ?? "");
  return m ? Number(m[1]) / 1024 : null;
}

/**
 * Open descriptors of `pid`. Deno wants --allow-all to list /proc/<pid>/fd, so `ls` (--allow-run)
 * lists it; null if that fails.
 */
function fdCount(pid: number): number | null {
  try {
    const r = new Deno.Command("ls", { args: ["-U", `/proc/${pid}/fd`], stdout: "piped", stderr: "null" })
      .outputSync();
    if (r.code !== 0) return null;
    return new TextDecoder().decode(r.stdout).split("\n").filter(Boolean).length;
  } catch {
    return null;
  }
}

/** Bytes of the sqlite store: chat.db plus its write-ahead log. */
function storeMiB(dataDir: string): number {
  let n = 0;
  for (const f of ["chat.db", "chat.db-wal"]) {
    try {
      n += Deno.statSync(`${dataDir}/${f}`).size;
    } catch { /* not there (yet, or memory store) */ }
  }
  return n / 1048576;
}

/** Polls until something accepts TCP connections on `port`; returns when (epoch ms), or null. */
async function acceptsAt(port: number, p: Proc, timeoutMs: number): Promise<number | null> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end && !p.exit) {
    try {
      const c = await Deno.connect({ hostname: HOST, port });
      const at = Date.now();
      c.close();
      return at;
    } catch { /* not yet */ }
    await sleep(5);
  }
  return null;
}

/** Stops the generator and the server (by their groups), notes how the server ended, removes its data. */
async function stopRun(row: Row, srv: Proc, lg: Proc | null, dataDir: string): Promise<void> {
  if (lg && !lg.exit) await stopProc(lg, 1000);
  const s = await stopProc(srv);
  if (!row.server_alive) row.server_exit = { code: s.code, signal: s.signal };
  try {
    Deno.removeSync(dataDir, { recursive: true });
  } catch { /* gone */ }
}

/** The machine's load after the run and the first lines the server logged. */
async function closeRow(row: Row, logs: string[]): Promise<void> {
  row.machine_busy_after = await machineBusy();
  const lh = logHead(logs);
  row.log_lines = lh.lines;
  row.log_head = lh.head;
}

function logHead(paths: string[]): { lines: number; head: string[] } {
  const ansi = new RegExp(String.fromCharCode(27) + "\\[[0-9;]*m", "g");
  const all: string[] = [];
  for (const p of paths) {
    try {
      all.push(
        ...Deno.readTextFileSync(p).replace(ansi, "").split("\n").filter((l) =>
          l && !l.startsWith("chat: listening")
        ),
      );
    } catch { /* no log */ }
  }
  return { lines: all.length, head: all.slice(0, 5).map((l) => l.slice(0, 300)) };
}

/**
 * S4: starts `server` fresh, runs `churn.mjs --scenario storm` (cold connect, live messages, messages
 * the clients miss), restarts the server when the generator says `ready` (SIGTERM, wait for the exit,
 * start it again on the same port and data directory) and waits for the generator's verdict. The
 * server's RSS is sampled every 200 ms; peaks are kept per server process. A memory store cannot
 * resume across a restart, so `main-memory` runs the cold connect only.
 */
export async function measureStorm(
  run: number,
  server: ServerSpec,
  gen: Generator,
  k: Knobs,
  outDir: string,
): Promise<Row> {
  const row: Row & { extra: Json } = {
    ...newRow(run, "s4", server, gen.label, await machineBusy()),
    extra: {},
  };
  const memory = server.name.includes("memory");
  const port = freePort();
  row.port = port;
  const dataDir = Deno.makeTempDirSync({ prefix: "chat-bench-" });
  const logs = [1, 2].map((i) => `${outDir}/server-s4-${server.name}-run${run}-${i}.log`);
  const start = (i: number) =>
    spawnPinned(server.name, server.cmd(port, dataDir), { cpu: SERVER_CPU, out: logs[i], err: null });
  let srv = start(0);
  row.server_pid = srv.pid;
  const extra: Json = { restart: null, rss_peak_cold_mib: null, rss_peak_storm_mib: null };
  row.extra = extra;
  const out = `${outDir}/.churn-out`;
  let lg: Proc | null = null;
  let sampling = true;
  const peaks = [0, 0];
  let phase = 0;
  const sampler = (async () => {
    while (sampling) {
      const r = rssMiB(srv.pid);
      if (r !== null && r > peaks[phase]) peaks[phase] = r;
      await sleep(200);
    }
  })();
  try {
    const why = await waitListening(srv, port);
    if (why) {
      row.res = { error: `server ${why}` };
      return row;
    }
    lg = spawnPinned("churn", [
      gen.runtime,
      `${BENCH_DIR}churn.mjs`,
      "--scenario",
      "storm",
      "--port",
      String(port),
      "--n",
      String(k.conns),
      "--rooms",
      "100",
      ...(memory ? ["--cold-only", "1"] : []),
    ], { cpu: LOADGEN_CPU, out, err: `${outDir}/loadgen.log`, cwd: BENCH_DIR });
    const lgProc = lg;
    const timer = setTimeout(() => stopProc(lgProc, 1000), 260_000);
    let restarted = memory;
    while (!lg.exit) {
      if (!restarted && jsonLines(out).some((l) => l.event === "ready")) {
        restarted = true;
        const term = Date.now();
        const s = await stopProc(srv);
        const exited = Date.now();
        phase = 1;
        srv = start(1);
        const listening = await acceptsAt(port, srv, 30_000);
        extra.restart = {
          sigterm_at: term,
          exited_at: exited,
          exit_code: s.code,
          exit_signal: s.signal,
          listening_at: listening,
          new_pid: srv.pid,
          stop_ms: exited - term,
          down_ms: listening === null ? null : listening - exited,
        };
        if (listening === null) row.res = { error: "the restarted server did not listen within 30 s" };
      }
      await sleep(20);
    }
    clearTimeout(timer);
    const lines = jsonLines(out);
    try {
      Deno.removeSync(out);
    } catch { /* none */ }
    const last = lines.at(-1);
    if (!row.res.error) row.res = last && !last.event ? last : { error: `generator printed no result` };
    row.server_alive = srv.exit === null;
    if (row.server_alive) row.metrics = await scrapeMetrics(port);
  } finally {
    sampling = false;
    await sampler;
    extra.rss_peak_cold_mib = peaks[0] || null;
    extra.rss_peak_storm_mib = peaks[1] || null;
    await stopRun(row, srv, lg, dataDir);
  }
  await closeRow(row, logs);
  Object.assign(extra, stormFigures(row));
  return row;
}

/** The S4 figures from the generator's epoch-ms times and the driver's restart times. */
function stormFigures(row: Row): Json {
  const r = row.res, rs = row.extra?.restart;
  const cold99 = r.cold?.t99_ms ?? null, cold100 = r.cold?.t100_ms ?? null;
  const st = r.storm;
  if (!st || !rs) return { cold99, cold100 };
  const since = (t: number | null, from: number | null) => (t && from ? t - from : null);
  const l99 = since(st.at99, rs.listening_at), l100 = since(st.at100, rs.listening_at);
  return {
    cold99,
    cold100,
    storm99_listen: l99,
    storm100_listen: l100,
    storm99_close: since(st.at99, st.closed_at),
    storm100_close: since(st.at100, st.closed_at),
    ratio99: l99 !== null && cold99 ? l99 / cold99 : null,
    ratio100: l100 !== null && cold100 ? l100 / cold100 : null,
  };
}

/** One soak sample (the driver takes one every 10 s; the table shows whole minutes). */
export interface SoakSample {
  t_s: number;
  rss_mib: number | null;
  metrics_rss_mib: number | null;
  heap_mib: number | null;
  fds: number | null;
  store_mib: number;
  connections: number | null;
  sockets: number | null;
}

/**
 * Soak: starts `server` fresh, runs `churn.mjs --scenario soak` for `k.soakMin` minutes and samples the
 * server every 10 s: VmRSS, /metrics resident memory and JS heap, open descriptors and store size; one
 * more sample 5 s after the churn has stopped.
 */
export async function measureSoak(
  run: number,
  server: ServerSpec,
  gen: Generator,
  k: Knobs,
  outDir: string,
): Promise<Row> {
  const row: Row & { extra: Json } = {
    ...newRow(run, "soak", server, gen.label, await machineBusy()),
    extra: {},
  };
  const port = freePort();
  row.port = port;
  const dataDir = Deno.makeTempDirSync({ prefix: "chat-bench-" });
  const log = `${outDir}/server-soak-${server.name}-run${run}.log`;
  const srv = spawnPinned(server.name, server.cmd(port, dataDir), { cpu: SERVER_CPU, out: log, err: null });
  row.server_pid = srv.pid;
  const samples: SoakSample[] = [];
  row.extra = { samples, minutes: k.soakMin };
  const out = `${outDir}/.churn-out`;
  let lg: Proc | null = null;
  const sample = async (t0: number) => {
    const m = await scrapeMetrics(port);
    samples.push({
      t_s: Math.round((Date.now() - t0) / 1000),
      rss_mib: rssMiB(srv.pid),
      metrics_rss_mib: m?.resident_memory_bytes !== undefined ? m.resident_memory_bytes / 1048576 : null,
      heap_mib: m?.heap_used_bytes !== undefined ? m.heap_used_bytes / 1048576 : null,
      fds: fdCount(srv.pid),
      store_mib: storeMiB(dataDir),
      connections: m?.connections ?? null,
      sockets: m?.sockets ?? null,
    });
  };
  try {
    const why = await waitListening(srv, port);
    if (why) {
      row.res = { error: `server ${why}` };
      return row;
    }
    const t0 = Date.now();
    await sample(t0);
    lg = spawnPinned("churn", [
      gen.runtime,
      `${BENCH_DIR}churn.mjs`,
      "--scenario",
      "soak",
      "--port",
      String(port),
      "--minutes",
      String(k.soakMin),
      "--deadline",
      String(k.soakMin * 60 + 60),
    ], { cpu: LOADGEN_CPU, out, err: `${outDir}/loadgen.log`, cwd: BENCH_DIR });
    const lgProc = lg;
    const timer = setTimeout(() => stopProc(lgProc, 1000), (k.soakMin * 60 + 90) * 1000);
    let next = t0 + 10_000;
    while (!lg.exit) {
      if (Date.now() >= next) {
        next += 10_000;
        if (!srv.exit) await sample(t0);
      }
      await sleep(100);
    }
    clearTimeout(timer);
    await sleep(5000);
    if (!srv.exit) await sample(t0);
    row.extra.after_s = samples.at(-1)?.t_s;
    const last = jsonLines(out).at(-1);
    try {
      Deno.removeSync(out);
    } catch { /* none */ }
    row.res = last ?? { error: "generator printed no result" };
    row.server_alive = srv.exit === null;
    if (row.server_alive) row.metrics = await scrapeMetrics(port);
  } finally {
    await stopRun(row, srv, lg, dataDir);
  }
  await closeRow(row, [log]);
  row.extra.trend = soakTrend(samples, k.soakMin, row.extra.after_s);
  return row;
}

/** What counts as an upward trend: the fitted rise over the window, in the metric's own unit. */
const TREND_FLOOR: Record<string, number> = {
  rss_mib: 2,
  heap_mib: 2,
  fds: 10,
  fds_over_sockets: 5,
  store_mib: 1,
};

/**
 * Least-squares slope per minute of each metric over the samples from minute 2 on (from half-way
 * when the soak is shorter than 4 minutes), the churn samples only. "up" when the fitted rise over that
 * window is above both 3 % of the window's mean and a floor (2 MiB, 10 fds, 1 MiB of store).
 */
export function soakTrend(samples: SoakSample[], minutes: number, afterS?: number): Json {
  const from = minutes >= 4 ? 120 : (minutes * 60) / 2;
  const win = samples.filter((s) => s.t_s >= from && s.t_s !== afterS && s.t_s <= minutes * 60 + 15);
  const out: Json = { from_s: from, n: win.length };
  // fds follow the clients connected; fds beyond the open WebSockets is what a leak would move
  const value = (s: SoakSample, key: string): number | null =>
    key === "fds_over_sockets"
      ? (s.fds !== null && s.sockets !== null ? s.fds - s.sockets : null)
      : s[key as keyof SoakSample];
  for (const key of Object.keys(TREND_FLOOR)) {
    const pts = win.map((s) => [s.t_s / 60, value(s, key)] as [number, number | null])
      .filter((p): p is [number, number] => typeof p[1] === "number");
    if (pts.length < 3) {
      out[key] = { slope_per_min: null, up: null };
      continue;
    }
    const mx = pts.reduce((a, p) => a + p[0], 0) / pts.length;
    const my = pts.reduce((a, p) => a + p[1], 0) / pts.length;
    const sxx = pts.reduce((a, p) => a + (p[0] - mx) ** 2, 0);
    const slope = sxx ? pts.reduce((a, p) => a + (p[0] - mx) * (p[1] - my), 0) / sxx : 0;
    const rise = slope * (pts.at(-1)![0] - pts[0][0]);
    out[key] = {
      slope_per_min: Math.round(slope * 1000) / 1000,
      rise: Math.round(rise * 100) / 100,
      mean: Math.round(my * 10) / 10,
      up: rise > Math.max(0.03 * Math.abs(my), TREND_FLOOR[key]),
    };
  }
  return out;
}

/** What went wrong in an S4 or soak row; S4's expected failed attempts while down are not problems. */
export function churnProblems(row: Row): string[] {
  const r = row.res, out: string[] = [];
  if (r.error) out.push(`ERROR: ${r.error}`);
  if (!row.server_alive) {
    out.push(`server not running after the load (exit ${row.server_exit?.code}, ${row.server_exit?.signal})`);
  }
  for (
    const key of ["missed", "doubled", "behind", "wrong_message", "truncated", "lastseq_back", "unacked"]
  ) {
    if (r[key]) out.push(`${key}=${r[key]}`);
  }
  if (r.live_incomplete) out.push(`${r.live_incomplete} clients lacked live messages`);
  if (r.unparsable) out.push(`${r.unparsable} unparsable lines`);
  if (r.error_frames && Object.keys(r.error_frames).length) {
    out.push(`error frames ${JSON.stringify(r.error_frames)}, first: ${String(r.first_error).slice(0, 160)}`);
  }
  if (row.case === "s4") {
    const codes = Object.entries(r.close_codes ?? {}).filter(([c]) => c !== "1001");
    if (codes.length) out.push(`close codes other than 1001: ${JSON.stringify(Object.fromEntries(codes))}`);
    if (r.cold?.failed_attempts && Object.keys(r.cold.failed_attempts).length) {
      out.push(`cold connect failures: ${JSON.stringify(r.cold.failed_attempts)}`);
    }
    const rs = row.extra?.restart;
    if (rs && rs.exit_code !== 0) {
      out.push(`the first server exited ${rs.exit_code} (${rs.exit_signal}) on SIGTERM`);
    }
  } else {
    if (r.unexpected_close && Object.keys(r.unexpected_close).length) {
      out.push(`unexpected close codes ${JSON.stringify(r.unexpected_close)}`);
    }
    if (r.failed && Object.keys(r.failed).length) out.push(`failed connects ${JSON.stringify(r.failed)}`);
  }
  const m = row.metrics;
  if (m) {
    for (const [key, v] of Object.entries(m)) {
      if (!v) continue;
      if (key.startsWith("errors_total") || key === "store_failures_total") out.push(`/metrics ${key}=${v}`);
      if (key === "connections_refused_total" && row.case !== "s4") out.push(`/metrics ${key}=${v}`);
    }
  }
  const busy = Math.max(row.machine_busy_before ?? 0, row.machine_busy_after ?? 0);
  if (busy > BUSY_LIMIT) {
    out.push(`the machine was ${row.machine_busy_before}% / ${row.machine_busy_after}% busy before / after`);
  }
  if (row.log_lines) out.push(`${row.log_lines} server log line(s), first: ${row.log_head[0]}`);
  return out;
}

const ms = (x: unknown) => (typeof x === "number" ? String(Math.round(x)) : "-");
const ratio = (x: unknown) => (typeof x === "number" ? `${x.toFixed(2)}x` : "-");
const counts = (o: Json | undefined) =>
  o && Object.keys(o).length ? Object.entries(o).map(([a, b]) => `${a} ${b}`).join(", ") : "none";

/** The S4 and soak tables and their problems. */
export function churnReport(rows: Row[]): string {
  const out: string[] = [];
  const notes: string[] = [];
  const storm = rows.filter((r) => r.case === "s4");
  if (storm.length) {
    const n = storm.find((r) => r.res.n)?.res;
    out.push(
      `\n### s4: reconnect storm, ${n?.n ?? "?"} clients in ${n?.rooms ?? "?"} rooms, ${n?.unseen ?? "?"} ` +
        "missed messages per room, server restarted (SIGTERM, same port and data dir); times in ms; " +
        "storm from the new server accepting, cold from the first connect (fresh server, 200 in flight)\n",
    );
    out.push(table(
      [
        "server",
        "run",
        "cold 99%",
        "cold 100%",
        "storm 99%",
        "storm 100%",
        "storm/cold 99%",
        "storm/cold 100%",
        "from 1001: 99%",
        "100%",
        "stop->accepting",
        "join ms p50/p99 cold | storm",
        "peak RSS MiB cold | storm",
      ],
      storm.map((row) => {
        const e = row.extra ?? {}, r = row.res, rs = e.restart;
        if (r.error && !r.cold) {
          return [row.server, String(row.run), `ERROR: ${String(r.error).slice(0, 70)}`];
        }
        return [
          row.server,
          String(row.run),
          ms(e.cold99),
          ms(e.cold100),
          r.cold_only ? "(memory: cold only)" : ms(e.storm99_listen),
          ms(e.storm100_listen),
          ratio(e.ratio99),
          ratio(e.ratio100),
          ms(e.storm99_close),
          ms(e.storm100_close),
          rs ? `${ms(rs.stop_ms)}+${ms(rs.down_ms)}` : "-",
          `${fx(r.cold?.join_ms_p50, 0)}/${fx(r.cold?.join_ms_p99, 0)} | ${
            r.storm ? `${fx(r.storm.join_ms_p50, 0)}/${fx(r.storm.join_ms_p99, 0)}` : "-"
          }`,
          `${fx(e.rss_peak_cold_mib, 0)} | ${fx(e.rss_peak_storm_mib, 0)}`,
        ];
      }),
    ));
    out.push("");
    out.push(table(
      [
        "server",
        "run",
        "resumed",
        "missed",
        "doubled",
        "behind last",
        "wrong msg",
        "error frames",
        "close codes",
        "attempts/client p50/p99/max",
        "failed attempts while restarting (expected)",
      ],
      storm.filter((row) => row.res.storm).map((row) => {
        const r = row.res;
        return [
          row.server,
          String(row.run),
          `${r.storm.resumed}/${r.n}`,
          String(r.missed),
          String(r.doubled),
          String(r.behind),
          String(r.wrong_message),
          counts(r.error_frames),
          counts(r.close_codes),
          `${r.storm.attempts?.p50}/${r.storm.attempts?.p99}/${r.storm.attempts?.max}`,
          counts(r.storm.failed_attempts),
        ];
      }),
    ));
    for (const row of storm) {
      const p = churnProblems(row);
      if (p.length) notes.push(`s4 ${row.server} run ${row.run}: ${p.join("; ")}`);
    }
  }
  for (const row of rows.filter((r) => r.case === "soak")) {
    const e = row.extra ?? {}, r = row.res;
    const samples: SoakSample[] = e.samples ?? [];
    out.push(
      `\n### soak ${row.server} run ${row.run}: ${e.minutes} min of churn (about ${
        r.peak_live ?? "?"
      } clients ` +
        `at peak; ${r.connects ?? "?"} connects, ${r.sends ?? "?"} sends, ${r.leaves ?? "?"} leaves, ` +
        `${r.clean ?? "?"} clean + ${r.abrupt ?? "?"} abrupt closes, ${
          r.slow ?? "?"
        } slow consumers of which ` +
        `${r.slow_4001 ?? "?"} closed 4001)\n`,
    );
    const shown = samples.filter((s, i) => s.t_s % 60 < 10 || i === samples.length - 1);
    out.push(table(
      [
        "t",
        "RSS MiB",
        "/metrics RSS",
        "JS heap MiB",
        "fds",
        "fds - sockets",
        "store MiB",
        "connections",
        "sockets",
      ],
      shown.map((s) => [
        s.t_s === e.after_s ? `${s.t_s} s (after)` : `${(s.t_s / 60).toFixed(1)} min`,
        fx(s.rss_mib, 1),
        fx(s.metrics_rss_mib, 1),
        fx(s.heap_mib, 1),
        String(s.fds ?? "-"),
        s.fds !== null && s.sockets !== null ? String(s.fds - s.sockets) : "-",
        fx(s.store_mib, 2),
        String(s.connections ?? "-"),
        String(s.sockets ?? "-"),
      ]),
    ));
    const t = e.trend ?? {};
    out.push(
      `\nslope per minute from ${((t.from_s ?? 0) / 60).toFixed(1)} min (${t.n} samples, least squares): ` +
        ["rss_mib", "heap_mib", "fds", "fds_over_sockets", "store_mib"].map((k) =>
          `${k} ${t[k]?.slope_per_min ?? "-"}${t[k]?.up ? " (UP)" : t[k]?.up === false ? " (flat)" : ""}`
        ).join(", "),
    );
    out.push(
      "(UP = the fitted rise over the window is above 3 % of its mean and above 2 MiB / 10 fds / 5 fds over " +
        "sockets / 1 MiB of store; fds follow the clients connected, fds - sockets is what a leak would move)",
    );
    const p = churnProblems(row);
    if (p.length) notes.push(`soak ${row.server} run ${row.run}: ${p.join("; ")}`);
  }
  if (out.length) {
    out.push("\n### problems seen in s4 / soak\n");
    out.push(notes.length ? notes.map((n) => `  - ${n}`).join("\n") : "none");
  }
  return out.join("\n");
}

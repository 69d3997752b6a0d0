/**
 * S5, one room filled at a steady rate while 10 of its members talk (issue #22): for each size, our
 * server once with big rooms off (`--big-room` past the size: every join told to every member, the
 * whole list in every `joined`) and once on (the default `--big-room`), each on a fresh server. The
 * generator is `churn.mjs --scenario fill`; the driver measures the server's CPU and peak RSS itself.
 * @module
 */
import {
  BENCH_DIR,
  freePort,
  type Generator,
  type Json,
  type Knobs,
  LOADGEN_CPU,
  machineBusy,
  newRow,
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

/** Big rooms off: a size no fill reaches. */
const OFF = 1_000_000_000;
/** Clock ticks a second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const HZ = 100;

/** The S5 knobs: room sizes, joins a second, talkers. */
export interface FillKnobs {
  sizes: number[];
  /** Which of off and on to run (off is quadratic: large sizes may run "on" only). */
  modes: ("off" | "on")[];
  rate: number;
  talkers: number;
  /** Milliseconds between two messages of one talker. */
  talkEveryMs: number;
}

/**
 * The largest peak RSS of `pid` and its descendants (MiB): on Redis the server is a child of the bash
 * that started it and redis-server, so the wrapper's own would say nothing.
 */
function peakRssMiB(pid: number): number | null {
  const m = /VmHWM:\s+(\d+)/.exec(readProc(`/proc/${pid}/status`) ?? "");
  let peak = m ? Math.round(Number(m[1]) / 1024) : null;
  const children = (readProc(`/proc/${pid}/task/${pid}/children`) ?? "").trim().split(" ").filter(Boolean);
  for (const c of children) {
    const p = peakRssMiB(Number(c));
    if (p !== null && (peak === null || p > peak)) peak = p;
  }
  return peak;
}

/** One S5 row per (size, big rooms off/on) of `server`. */
export async function measureFill(
  run: number,
  server: ServerSpec,
  gen: Generator,
  k: Knobs,
  f: FillKnobs,
  outDir: string,
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const n of f.sizes) {
    for (const mode of f.modes) {
      const row: Row & { extra: Json } = {
        ...newRow(run, `s5-${n}-${mode}`, server, gen.label, await machineBusy()),
        extra: { size: n, mode },
      };
      const port = freePort();
      row.port = port;
      const dataDir = Deno.makeTempDirSync({ prefix: "chat-bench-" });
      const log = `${outDir}/server-s5-${n}-${mode}-${server.name}-run${run}.log`;
      const bigRoom = mode === "off" ? OFF : 500;
      // By the environment, not a flag: a Redis server's command is a bash script, whose extra
      // arguments would not reach the server.
      const srv = spawnPinned(server.name, server.cmd(port, dataDir), {
        cpu: SERVER_CPU,
        out: log,
        err: null,
        env: { CHAT_BIG_ROOM: String(bigRoom) },
      });
      row.server_pid = srv.pid;
      try {
        const why = await waitListening(srv, port);
        if (why) {
          row.res = { error: `server ${why}` };
          rows.push(row);
          continue;
        }
        const out = `${outDir}/.fill-out`;
        const cpu0 = procCpuTicks(srv.pid);
        const timeout = Math.ceil(n / f.rate) * 4 + 60;
        const lg = spawnPinned("fill", [
          gen.runtime,
          `${BENCH_DIR}churn.mjs`,
          "--scenario",
          "fill",
          "--port",
          String(port),
          "--n",
          String(n),
          "--rate",
          String(f.rate),
          "--talkers",
          String(f.talkers),
          "--talk-every",
          String(f.talkEveryMs),
          "--fill-timeout",
          String(timeout),
          "--deadline",
          String(timeout + 60),
        ], { cpu: LOADGEN_CPU, out, err: `${outDir}/loadgen.log`, cwd: BENCH_DIR });
        await lg.status;
        const cpu1 = procCpuTicks(srv.pid);
        const lines = Deno.readTextFileSync(out).trim().split("\n");
        row.res = JSON.parse(lines.at(-1) ?? "{}");
        row.extra.cpu_ms = Math.round(((cpu1 - cpu0) * 1000) / HZ);
        row.extra.cpu_ms_per_join = Math.round(((cpu1 - cpu0) * 1000 / HZ / n) * 100) / 100;
        row.extra.rss_peak_mib = peakRssMiB(srv.pid);
        row.server_alive = srv.exit === null;
      } finally {
        const s = await stopProc(srv);
        row.server_exit = { code: s.code, signal: s.signal };
        Deno.removeSync(dataDir, { recursive: true });
        await sleep(500);
      }
      void k;
      rows.push(row);
    }
  }
  return rows;
}

/** The S5 table: each size off and on, and on/off as a ratio, from the same run. */
export function fillReport(rows: Row[]): string {
  if (rows.length === 0) return "";
  const body: string[][] = [];
  const by = new Map<string, Row>();
  for (const r of rows) by.set(`${r.server} ${r.extra?.size} ${r.extra?.mode}`, r);
  const fig = (r: Row | undefined) =>
    r
      ? {
        fill: r.res.fill_ms / 1000,
        cpu: r.extra?.cpu_ms_per_join,
        bytes: r.res.bytes_per_join,
        other: r.res.chars_per_join_no_msgs,
        p99: r.res.p99_ms,
        rss: r.extra?.rss_peak_mib,
      }
      : undefined;
  const ratio = (a?: number, b?: number) =>
    typeof a === "number" && typeof b === "number" && b > 0 ? `${(a / b).toFixed(2)}x` : "-";
  const seen = new Set<string>();
  for (const r of rows) {
    const key = `${r.server} ${r.extra?.size}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const off = fig(by.get(`${key} off`)), on = fig(by.get(`${key} on`));
    for (const [mode, x] of [["off", off], ["on", on]] as const) {
      if (!x) continue;
      const src = by.get(`${key} ${mode}`)!;
      body.push([
        r.server,
        String(r.extra?.size),
        mode,
        `${src.res.joined ?? "-"}/${r.extra?.size}`,
        x.fill?.toFixed(1) ?? "-",
        String(x.cpu ?? "-"),
        String(x.bytes ?? "-"),
        String(x.other ?? "-"),
        String(x.p99 ?? "-"),
        String(x.rss ?? "-"),
        src.res.error ?? (Object.keys(src.res.error_frames ?? {}).join(",") || ""),
      ]);
    }
    if (off && on) {
      body.push([
        r.server,
        String(r.extra?.size),
        "on/off",
        "",
        ratio(on.fill, off.fill),
        ratio(on.cpu, off.cpu),
        ratio(on.bytes, off.bytes),
        ratio(on.other, off.other),
        ratio(on.p99, off.p99),
        ratio(on.rss, off.rss),
        "",
      ]);
    }
  }
  return "\nS5: one room filled at a steady rate while 10 members talk (big rooms off: --big-room " +
    `${OFF}; on: 500)\n` +
    table(
      [
        "server",
        "size",
        "big",
        "joined",
        "fill s",
        "srv CPU ms/join",
        "B/join",
        "chars/join but msgs",
        "p99 ms",
        "peak RSS MiB",
        "errors",
      ],
      body,
    ) + "\n";
}

/**
 * The durable publish path: how many room messages per second the server stores and acks, and how long
 * the `ack` takes, with the sqlite store (durability full) against the same server with `--store memory`.
 *
 * `--pubs` connections each publish into a room of their own, keeping `--window` messages in flight:
 * every `send` carries a `cid`, and the next one goes out when an `ack {cid, seq}` comes back (the
 * server acks after the durable write of the group of messages the message was in). Latency is from
 * the send to the ack, one clock, in this process.
 *
 *     deno run --allow-net --allow-read --allow-write --allow-env --allow-run bench/store_bench.ts [--dur 10]
 *         starts both servers in turn (core 0) and this client (core 1), prints the table
 *     deno run --allow-net --allow-read --allow-run=cat bench/store_bench.ts --client --port P [--server-pid PID]
 *         the client alone, against a running server; prints one JSON line (what run.ts uses)
 *
 * Options: --dur S (10) --warm S (2) --pubs N (10) --window W (32); standalone also --server-read LIST
 * (extra paths for our server's --allow-read, as in run.ts).
 * @module
 */
import { parseArgs } from "node:util";
import {
  coreTicks,
  type Knobs,
  measure,
  procCpuTicks,
  report,
  RESULTS,
  type Row,
  serverRead,
  SERVERS,
  sleep,
  stopAll,
} from "./lib.ts";

interface ClientOptions {
  port: number;
  serverPid: number;
  dur: number;
  warm: number;
  pubs: number;
  window: number;
}

interface Publisher {
  i: number;
  ws: WebSocket;
  room: string;
  next: number;
  inflight: number;
  lastSeq: number;
  sentAt: Float64Array;
}

const RING = 1 << 16;
const TEXT = "s".repeat(100);

/** Runs the publishers against a server on 127.0.0.1 and returns the result object. */
export async function storeClient(o: ClientOptions): Promise<Record<string, unknown>> {
  const lat: number[] = [];
  let measuring = false, sending = true, acked = 0, ackedWin = 0, echoes = 0, errors = 0, seqErrors = 0;
  let firstError: string | null = null;
  const closeCodes: Record<string, number> = {};
  const pubs: Publisher[] = [];

  const send = (p: Publisher) => {
    while (sending && p.inflight < o.window) {
      const n = p.next++;
      p.sentAt[n & (RING - 1)] = performance.now();
      p.inflight++;
      p.ws.send(`{"type":"send","room":"${p.room}","text":"${TEXT}","cid":"${p.i}.${n}"}`);
    }
  };
  const onLine = (p: Publisher, line: string, ready: () => void) => {
    if (line.startsWith('{"type":"message"')) return void echoes++;
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(line);
    } catch {
      errors++;
      firstError ??= `not JSON: ${line.slice(0, 100)}`;
      return;
    }
    switch (m.type) {
      case "ack": {
        const n = Number(String(m.cid).split(".")[1]);
        const t = performance.now() - p.sentAt[n & (RING - 1)];
        p.inflight--;
        acked++;
        if (typeof m.seq !== "number" || m.seq !== p.lastSeq + 1) seqErrors++;
        if (typeof m.seq === "number") p.lastSeq = m.seq;
        if (measuring) {
          ackedWin++;
          lat.push(t);
        }
        return send(p);
      }
      case "joined":
        if (m.room === p.room) {
          p.lastSeq = Number(m.lastSeq ?? 0);
          ready();
        }
        return;
      case "error":
        errors++;
        firstError ??= line.slice(0, 200);
        return;
    }
  };

  // connect every publisher and wait for its `joined`
  await Promise.all(
    Array.from({ length: o.pubs }, (_, i) =>
      new Promise<void>((resolve, reject) => {
        const room = `store${i}`;
        const ws = new WebSocket(`ws://127.0.0.1:${o.port}/ws?room=${room}&name=storepub${i}`);
        const p: Publisher = {
          i,
          ws,
          room,
          next: 0,
          inflight: 0,
          lastSeq: 0,
          sentAt: new Float64Array(RING),
        };
        pubs.push(p);
        const timer = setTimeout(() => reject(new Error(`publisher ${i}: no joined within 10 s`)), 10_000);
        const ready = () => {
          clearTimeout(timer);
          resolve();
        };
        ws.onmessage = (e) => {
          for (const line of String(e.data).split("\n")) if (line) onLine(p, line, ready);
        };
        ws.onclose = (e) => {
          closeCodes[e.code] = (closeCodes[e.code] ?? 0) + 1;
          reject(new Error(`publisher ${i} closed: ${e.code}`));
        };
        ws.onerror = () => {};
      })),
  );

  const snap = () => ({
    t: performance.now(),
    srv: procCpuTicks(o.serverPid),
    me: procCpuTicks(Deno.pid),
    cores: coreTicks(),
  });
  for (const p of pubs) send(p);
  await sleep(o.warm * 1000);
  measuring = true;
  const a = snap();
  await sleep(o.dur * 1000);
  measuring = false;
  const b = snap();
  sending = false;
  const drainEnd = Date.now() + 3000;
  while (pubs.some((p) => p.inflight > 0) && Date.now() < drainEnd) await sleep(20);
  const sent = pubs.reduce((s, p) => s + p.next, 0);
  for (const p of pubs) {
    p.ws.onclose = null;
    p.ws.close();
  }

  const secs = (b.t - a.t) / 1000;
  const core = (k: string) => {
    const x = a.cores[k], y = b.cores[k];
    return x && y ? Math.round(((y[0] - x[0]) / (y[1] - x[1])) * 1000) / 10 : null;
  };
  lat.sort((x, y) => x - y);
  const pct = (q: number) =>
    lat.length ? Math.round(lat[Math.min(lat.length - 1, Math.ceil(q * lat.length) - 1)] * 100) / 100 : null;
  const srvS = (b.srv - a.srv) / 100, meS = (b.me - a.me) / 100;
  return {
    scenario: "store",
    pubs: o.pubs,
    window: o.window,
    dur: Math.round(secs * 10) / 10,
    acks_s: Math.round(ackedWin / secs),
    p50_ms: pct(0.5),
    p99_ms: pct(0.99),
    max_ms: lat.length ? Math.round(lat[lat.length - 1] * 10) / 10 : null,
    srv_cpu: Math.round((srvS / secs) * 1000) / 10,
    client_cpu: Math.round((meS / secs) * 1000) / 10,
    srv_us_per_msg: ackedWin ? Math.round((srvS * 1e6 / ackedWin) * 100) / 100 : null,
    client_us_per_msg: ackedWin ? Math.round((meS * 1e6 / ackedWin) * 100) / 100 : null,
    core0_busy: core("0"),
    core1_busy: core("1"),
    sent,
    acked,
    unacked: sent - acked,
    echoes,
    missing_echoes: Math.max(0, acked - echoes),
    seq_errors: seqErrors,
    errors,
    first_error: firstError,
    close_codes: closeCodes,
  };
}

if (import.meta.main) {
  const { values: v } = parseArgs({
    args: Deno.args,
    options: {
      client: { type: "boolean", default: false },
      port: { type: "string" },
      "server-pid": { type: "string", default: "0" },
      dur: { type: "string", default: "10" },
      warm: { type: "string", default: "2" },
      pubs: { type: "string", default: "10" },
      window: { type: "string", default: "32" },
      "server-read": { type: "string", default: "" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (v.help) {
    console.log("usage: see the comment at the top of bench/store_bench.ts");
    Deno.exit(0);
  }
  const dur = Number(v.dur), warm = Number(v.warm), pubs = Number(v.pubs), window = Number(v.window);
  if (v.client) {
    const hard = setTimeout(() => {
      console.log(JSON.stringify({ error: "store client hard deadline reached" }));
      Deno.exit(3);
    }, (dur + warm + 30) * 1000);
    try {
      const res = await storeClient({
        port: Number(v.port),
        serverPid: Number(v["server-pid"]),
        dur,
        warm,
        pubs,
        window,
      });
      console.log(JSON.stringify(res));
    } catch (e) {
      console.log(JSON.stringify({ error: String((e as Error).message ?? e) }));
    }
    clearTimeout(hard);
    Deno.exit(0);
  }
  // standalone: both servers in turn, then the table
  serverRead.push(...v["server-read"].split(",").map((x) => x.trim()).filter(Boolean));
  Deno.addSignalListener("SIGINT", async () => {
    await stopAll();
    Deno.exit(130);
  });
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  const outDir = `${RESULTS}/${stamp}-store`;
  Deno.mkdirSync(outDir, { recursive: true });
  const knobs: Knobs = { dur, warm, conns: 0, storeDur: dur, pubs, window, w: 16, soakMin: 0 };
  const gen = { runtime: "", client: "raw" as const, label: "" };
  const rows: Row[] = [];
  for (const s of ["main", "main-memory"]) {
    console.error(`store  ${s}`);
    const row = await measure(1, "store", SERVERS[s], gen, knobs, outDir);
    rows.push(row);
    Deno.writeTextFileSync(`${outDir}/results.jsonl`, JSON.stringify(row) + "\n", { append: true });
  }
  const text = report(rows);
  Deno.writeTextFileSync(`${outDir}/tables.txt`, text + "\n");
  console.log(text);
  console.log(`\nraw results: ${outDir}/results.jsonl`);
}

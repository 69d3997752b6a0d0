/**
 * Where an idle connection's memory goes, for one Deno server of the bench (`main`, `main-memory`,
 * `naive`, `naive-hello`): S3's RSS per connection, split into the live JavaScript heap after a forced
 * collection, the young generation, the rest of the heap and what is outside it.
 *
 *   deno run -A bench/heap_probe.ts SERVER [CONNS_PER_STEP=2000] [STEPS=3] [snapshot]
 *
 * It starts the server as the bench does, with V8's expose-gc flag and {@link ./heap_probe_preload.ts}
 * preloaded, and opens STEPS x CONNS_PER_STEP WebSockets (rooms of 100, 200 handshakes in flight, as
 * S3 does). 2 s after each step (when S3 reads RSS) it reads the server's VmRSS, then has the server
 * collect its garbage and report its heap. The figures are per connection over all the steps. With
 * `snapshot`, the last two steps' heap snapshots are compared by constructor: what one more connection
 * keeps alive, ours and Deno's.
 * @module
 */
import { freePort, HOST, readProc, RESULTS, SERVERS, sleep } from "./lib.ts";

const [name = "", perStepArg = "2000", stepsArg = "3", snapshotArg] = Deno.args;
const work = Deno.makeTempDirSync({ prefix: "heap_probe_" });
const oneDeno = (k: string) => SERVERS[k].cmd(0, work)[0] === Deno.execPath() && !SERVERS[k].listeners;
const spec = SERVERS[name];
if (!spec || !oneDeno(name)) {
  console.error(`usage: deno run -A bench/heap_probe.ts SERVER [CONNS_PER_STEP] [STEPS] [snapshot]
SERVER: one Deno server of one process: ${Object.keys(SERVERS).filter(oneDeno).join(", ")}`);
  Deno.removeSync(work, { recursive: true });
  Deno.exit(2);
}
const perStep = Number(perStepArg), steps = Number(stepsArg), snapshots = snapshotArg === "snapshot";
if (!(perStep > 0 && steps > 0)) {
  throw new RangeError(`Cannot probe: ${perStepArg} x ${stepsArg} connections`);
}

const out = `${work}/probe`;
const port = freePort();
const base = spec.cmd(port, `${work}/data`);
Deno.mkdirSync(`${work}/data`);
// Right after `run`: the preload may write its figures to the temp directory and read where to.
const args = [
  base[1],
  "--v8-flags=--expose-gc",
  `--preload=${new URL("./heap_probe_preload.ts", import.meta.url).pathname}`,
  `--allow-write=${work}`,
  "--allow-env=HEAP_PROBE_OUT,HEAP_PROBE_SNAPSHOT",
  ...base.slice(2),
];
const server = new Deno.Command(base[0], {
  args,
  env: { HEAP_PROBE_OUT: out, ...(snapshots ? { HEAP_PROBE_SNAPSHOT: "1" } : {}) },
  stdout: "null",
  stderr: "null",
}).spawn();

const rssOf = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readProc(`/proc/${pid}/status`) ?? "")?.[1] ?? NaN) * 1024;

interface Probe {
  conns: number;
  rssBeforeGc: number;
  usedBeforeGc: number;
  rss: number;
  used: number;
  total: number;
  spaces: Record<string, [number, number]>;
  snapshot: string | null;
}

let probes = 0;
async function probe(conns: number): Promise<Probe> {
  const rssBeforeGc = rssOf(server.pid);
  const file = `${out}.${probes++}.json`;
  try {
    Deno.kill(server.pid, "SIGUSR2");
  } catch (e) {
    throw new Error(`Cannot probe ${name}: its process has stopped (${(e as Error).message})`);
  }
  for (let i = 0; i < 600; i++) {
    try {
      return { ...JSON.parse(Deno.readTextFileSync(file)), rssBeforeGc, conns };
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`The server wrote no heap figures to ${file} in 60 s`);
}

const sockets: WebSocket[] = [];
async function open(n: number): Promise<void> {
  let next = 0;
  const first = sockets.length;
  const one = async () => {
    while (next < n) {
      const i = first + next++;
      const ws = new WebSocket(`ws://${HOST}:${port}/ws?room=r${i % 100}&name=i${i}`);
      ws.onmessage = () => {};
      await new Promise<void>((resolve, reject) => {
        ws.onopen = () => resolve();
        ws.onerror = () => reject(new Error(`Connection ${i} failed`));
      });
      sockets.push(ws);
    }
  };
  await Promise.all(Array.from({ length: 200 }, one));
}

try {
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: HOST, port })).close();
      break;
    } catch {
      await sleep(100);
    }
  }
  await sleep(1000);
  const rows = [await probe(0)];
  for (let s = 1; s <= steps; s++) {
    await open(perStep);
    await sleep(2000);
    rows.push(await probe(s * perStep));
  }
  const a = rows[0], b = rows.at(-1)!;
  const n = b.conns;
  const kib = (x: number, y: number) => ((y - x) / 1024 / n).toFixed(2);
  const space = (p: Probe, s: string, i: 0 | 1) => p.spaces[s]?.[i] ?? 0;
  const young = (p: Probe) => space(p, "new_space", 0) + space(p, "new_large_object_space", 0);
  console.log(`${name}: ${n} connections, KiB per connection (from ${(a.rss / 1048576).toFixed(0)} MiB)`);
  console.log(`  RSS, 2 s after the last open (S3's figure)   ${kib(a.rssBeforeGc, b.rssBeforeGc)}`);
  console.log(`  heap in use before the collection           ${kib(a.usedBeforeGc, b.usedBeforeGc)}`);
  console.log(`  live heap after a forced collection         ${kib(a.used, b.used)}`);
  console.log(`  heap committed after it                     ${kib(a.total, b.total)}`);
  console.log(`    of which the young generation             ${kib(young(a), young(b))}`);
  console.log(
    `    of which old space, committed / live      ${
      kib(space(a, "old_space", 0), space(b, "old_space", 0))
    } / ${kib(space(a, "old_space", 1), space(b, "old_space", 1))}`,
  );
  console.log(`  RSS outside the JavaScript heap             ${kib(a.rss - a.total, b.rss - b.total)}`);
  if (snapshots && rows.length >= 3) {
    const [x, y] = [rows.at(-2)!, rows.at(-1)!];
    console.log(`\nWhat ${y.conns - x.conns} more connections keep alive, bytes per connection (count):`);
    const [ax, by] = [bySelf(x.snapshot!), bySelf(y.snapshot!)];
    const diff = [...by].map(([k, [c, s]]) => {
      const [c0, s0] = ax.get(k) ?? [0, 0];
      return { k, count: (c - c0) / (y.conns - x.conns), bytes: (s - s0) / (y.conns - x.conns) };
    }).sort((p, q) => q.bytes - p.bytes);
    console.log(`  all: ${diff.reduce((t, d) => t + d.bytes, 0).toFixed(0)}`);
    for (const d of diff.slice(0, 40)) {
      console.log(`  ${d.bytes.toFixed(0).padStart(6)} (${d.count.toFixed(2)})  ${d.k}`);
    }
  }
  Deno.mkdirSync(RESULTS, { recursive: true });
  Deno.writeTextFileSync(
    `${RESULTS}/heap_probe_${name}_${Date.now()}.json`,
    JSON.stringify(rows.map(({ snapshot: _, ...r }) => r)),
  );
} finally {
  for (const ws of sockets) ws.close();
  await sleep(500);
  try {
    server.kill("SIGTERM");
  } catch { /* it stopped on its own: its status says how */ }
  await server.status;
  Deno.removeSync(work, { recursive: true });
}

/** Self sizes by node type and constructor name: what a heap snapshot holds, summed. */
function bySelf(path: string): Map<string, [number, number]> {
  const s = JSON.parse(Deno.readTextFileSync(path));
  const fields: string[] = s.snapshot.meta.node_fields;
  const types: string[] = s.snapshot.meta.node_types[0];
  const w = fields.length,
    t = fields.indexOf("type"),
    nm = fields.indexOf("name"),
    sz = fields.indexOf("self_size");
  const nodes: number[] = s.nodes, strings: string[] = s.strings;
  const sums = new Map<string, [number, number]>();
  for (let i = 0; i < nodes.length; i += w) {
    const type = types[nodes[i + t]];
    const key = type.includes("string")
      ? "(strings)"
      : `${type} ${String(strings[nodes[i + nm]]).slice(0, 50)}`;
    const v = sums.get(key) ?? [0, 0];
    v[0]++;
    v[1] += nodes[i + sz];
    sums.set(key, v);
  }
  return sums;
}

/**
 * What `--redis-wait-replicas 1` costs: durable sends (the store bench's client: `--pubs` publishers, a
 * room each, `--window` messages in flight) on a Redis Cluster of three masters with a replica each,
 * without and with the wait, alternated in one run so both see the same machine. Every node, the server
 * and this client share the machine's cores (loopback: a replica's ack is a local round trip).
 *
 *     deno run --allow-net --allow-read --allow-write --allow-env --allow-run bench/replica_wait.ts [--runs 3] [--dur 10]
 *
 * Prints, per setting, acked msgs/s and p50 / p99 ack ms (median of the runs, [lowest..highest]).
 * @module
 */
import { parseArgs } from "node:util";
import { storeClient } from "./store_bench.ts";
import { startCluster } from "../tests/helpers/redis.ts";
import { spawnServer } from "../tests/helpers/process.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    dur: { type: "string", default: "10" },
    warm: { type: "string", default: "2" },
    pubs: { type: "string", default: "10" },
    window: { type: "string", default: "32" },
  },
});
const SETTINGS = { "wait off": "0", "wait 1 replica": "1" } as const;
type Name = keyof typeof SETTINGS;
const rows = new Map<Name, { acks: number; p50: number; p99: number }[]>();

await using cluster = await startCluster({ replicas: 1 });
const dir = await Deno.makeTempDir();
try {
  for (let run = 0; run < Number(values.runs); run++) {
    for (const [name, replicas] of Object.entries(SETTINGS) as [Name, string][]) {
      const srv = await spawnServer(`${dir}/${run}-${replicas}`, [
        "--redis",
        cluster.url,
        "--redis-wait-replicas",
        replicas,
        "--messages-per-second",
        "100000",
        "--burst",
        "100000",
      ]);
      try {
        const r = await storeClient({
          port: srv.port,
          serverPid: srv.child.pid,
          dur: Number(values.dur),
          warm: Number(values.warm),
          pubs: Number(values.pubs),
          window: Number(values.window),
        });
        const row = { acks: r.acks_s as number, p50: r.p50_ms as number, p99: r.p99_ms as number };
        rows.set(name, [...rows.get(name) ?? [], row]);
        console.log(`run ${run + 1}, ${name}: ${JSON.stringify(row)}`);
      } finally {
        await srv.stop();
      }
    }
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const spread = (xs: number[]) => `${median(xs)} [${Math.min(...xs)}..${Math.max(...xs)}]`;
console.log(
  `\n| ${values.pubs} x ${values.window}, ${values.runs} runs | acked msgs/s | p50 ack ms | p99 ack ms |`,
);
console.log("| --- | --- | --- | --- |");
for (const [name, rs] of rows) {
  const of = (k: "acks" | "p50" | "p99") => spread(rs.map((r) => r[k]));
  console.log(`| ${name} | ${of("acks")} | ${of("p50")} | ${of("p99")} |`);
}

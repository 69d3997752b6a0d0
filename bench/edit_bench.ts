/**
 * What an edit or a delete of an old message costs, by how many messages came after it, on the
 * engines themselves (no sockets): SQLite (durability full, as `deno task start`) and Redis (a
 * redis-server of its own, AOF off, so Redis's own time is what is measured).
 *
 * Per engine and per `--later` count: one message, then that many 4,000-character messages after it
 * (a quarter of them replies to it, so quotes have something to follow), then `--edits` edits of the
 * first message one after another, then its delete. Printed per case: the median and the worst edit
 * (ms, as the caller waits), a send for comparison, the delete, and on Redis the microseconds Redis
 * spent in the edit script per edit (INFO commandstats, `cmdstat_evalsha`), which is time every other
 * client of that Redis waits. Then `--burst` edits at once from many callers and one send among them:
 * how long that send waits (the "an unrelated person sending" figure, engine side).
 *
 *     deno run --allow-net --allow-read --allow-write --allow-env --allow-run bench/edit_bench.ts \
 *         [--later 0,1000,4000] [--edits 20] [--burst 200] [--engines sqlite,redis]
 *
 * Bounded: at most a few seconds per case; the temp directory and the redis-server are removed and
 * stopped (by PID) at the end.
 * @module
 */
import { parseArgs } from "node:util";
import { createClient } from "@redis/client";
import type { Draft, Engine } from "../lib/engine.ts";
import { EmbeddedEngine } from "../lib/engine_embedded.ts";
import { RedisEngine } from "../lib/engine_redis.ts";
import { createLogger } from "../lib/log.ts";
import { SqliteStore } from "../lib/store_sqlite.ts";

const args = parseArgs({
  options: {
    later: { type: "string", default: "0,1000,4000" },
    edits: { type: "string", default: "20" },
    burst: { type: "string", default: "200" },
    engines: { type: "string", default: "sqlite,redis" },
  },
});
const LATER = args.values.later.split(",").map(Number);
const EDITS = Number(args.values.edits);
const BURST = Number(args.values.burst);
const TEXT = "x".repeat(4000);

const draft = (room: string, text: string, extra: Partial<Draft> = {}): Draft => ({
  room,
  from: "guest",
  text,
  ts: Date.now(),
  key: "k-guest",
  ...extra,
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number) => Math.round(x * 100) / 100;

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const r = await fn();
  return [performance.now() - t, r];
}

/** One case: `later` messages after the one edited. `redisUsec` reads Redis's script time so far. */
async function one(engine: Engine, later: number, redisUsec?: () => Promise<number>) {
  const room = `bench-${crypto.randomUUID().slice(0, 8)}`;
  await engine.append([draft(room, "the first message\nwith a second line")]);
  for (let done = 0; done < later;) {
    const n = Math.min(200, later - done);
    await engine.append(
      Array.from({ length: n }, (_, i) => draft(room, TEXT, (done + i) % 4 === 0 ? { replyTo: 1 } : {})),
    );
    done += n;
  }
  const edits: number[] = [];
  const before = await redisUsec?.();
  for (let i = 0; i < EDITS; i++) {
    const [ms, r] = await timed(() =>
      engine.changeMessage(room, 1, { kind: "edit", text: `edit ${i}`, editedTs: Date.now() }, {})
    );
    if (!r.ok) throw new Error(`edit refused: ${r.problem}`);
    edits.push(ms);
  }
  const after = await redisUsec?.();
  const [send] = await timed(() => engine.append([draft(room, "a send")]));
  // The burst: many edits of the same message at once, one unrelated send among them.
  const other = `${room}-other`;
  const burstStart = performance.now();
  const burst = Array.from(
    { length: BURST },
    (_, i) => engine.changeMessage(room, 1, { kind: "edit", text: `burst ${i}`, editedTs: Date.now() }, {}),
  );
  const [sendInBurst] = await timed(() => engine.append([draft(other, "unrelated")]));
  await Promise.all(burst);
  const burstMs = performance.now() - burstStart;
  const [del] = await timed(() => engine.changeMessage(room, 1, { kind: "delete", by: "guest" }, {}));
  return {
    later,
    editMedianMs: round(median(edits)),
    editMaxMs: round(Math.max(...edits)),
    sendMs: round(send),
    deleteMs: round(del),
    redisUsecPerEdit: before === undefined ? undefined : Math.round((after! - before) / EDITS),
    burstEdits: BURST,
    sendDuringBurstMs: round(sendInBurst),
    burstDoneMs: round(burstMs),
  };
}

async function sqlite() {
  const dir = await Deno.makeTempDir({ prefix: "edit-bench-" });
  const store = await SqliteStore.open(dir, { retainMessages: 0, retainMs: 0, durability: "full" });
  const engine = new EmbeddedEngine(store, { dedupWindowMs: 60_000 });
  try {
    for (const later of LATER) console.log(JSON.stringify({ engine: "sqlite", ...await one(engine, later) }));
  } finally {
    await engine.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function redis() {
  using probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const child = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `redis://127.0.0.1:${port}`;
  const admin = createClient({ url });
  admin.on("error", () => {});
  let engine: RedisEngine | undefined;
  try {
    for (let i = 0;; i++) {
      try {
        await admin.connect();
        break;
      } catch (e) {
        if (i > 50) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    engine = await RedisEngine.connect({
      url,
      retainMessages: 0,
      retainMs: 0,
      dedupWindowMs: 60_000,
      log: createLogger("error"),
    });
    const usec = async () => {
      const info = await admin.info("commandstats");
      return Number(/^cmdstat_evalsha:calls=\d+,usec=(\d+)/m.exec(info)?.[1] ?? 0);
    };
    for (const later of LATER) {
      console.log(JSON.stringify({ engine: "redis", ...await one(engine, later, usec) }));
    }
  } finally {
    await engine?.close();
    await admin.close().catch(() => {});
    child.kill("SIGTERM");
    await child.status;
  }
}

for (const e of args.values.engines.split(",")) {
  if (e === "sqlite") await sqlite();
  else if (e === "redis") await redis();
  else throw new RangeError(`--engines: unknown engine "${e}" (sqlite, redis)`);
}

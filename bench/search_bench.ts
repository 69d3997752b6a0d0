/**
 * Search on the SQLite store (#21, item 6), on the engine itself (no sockets): one store filled with
 * generated messages in mixed scripts (English, French with accents, Russian, Chinese, Japanese, Thai,
 * Arabic) spread over rooms and senders, then
 *
 * - the index's size as a share of the database (`dbstat`),
 * - search latency p50/p95/p99 (ms, as the engine answers one page of 20) for single words, prefixes,
 *   phrases, `from:` filters and CJK words, in a person's 20 rooms and in every room (the server API),
 * - what indexing costs the durable write: acked messages a second through `EmbeddedEngine.append`
 *   (groups of 100, `durability full` as `deno task start`, and `normal`) with and without the index,
 *   alternated in the same run.
 *
 *     deno task bench --cases search [--search-messages 1000000] [--search-rooms 1000]
 *     deno run --allow-read --allow-write --allow-env bench/search_bench.ts [--messages N] [--rooms N]
 *         [--queries N] [--write-seconds S]
 *
 * Bounded: generation is the long part (3-8 s per 100,000 messages here, on a busy shared machine); the
 * temp directory is removed at the end.
 * @module
 */
import { parseArgs } from "node:util";
import { DatabaseSync } from "node:sqlite";
import type { Draft, SearchRequest } from "../lib/engine.ts";
import { EmbeddedEngine } from "../lib/engine_embedded.ts";
import { parseQuery } from "../lib/search_text.ts";
import { SqliteStore } from "../lib/store_sqlite.ts";

const { values: v } = parseArgs({
  options: {
    messages: { type: "string", default: "1000000" },
    rooms: { type: "string", default: "1000" },
    queries: { type: "string", default: "200" },
    "write-seconds": { type: "string", default: "3" },
  },
});
const MESSAGES = Number(v.messages), ROOMS = Number(v.rooms), QUERIES = Number(v.queries);
const WRITE_S = Number(v["write-seconds"]);

/** A small deterministic random source (the same messages every run). */
let seed = 42;
const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)];

const EN =
  "the meeting deploy release server chat search index message room people decision plan friday link review bug fix test build ship design idea lunch coffee weekend report budget client customer issue ticket merge branch feature docs update question answer thanks please tomorrow today morning evening"
    .split(" ");
const FR = "café réunion déjà élève été problème très après où noël façon garçon hôtel fenêtre".split(" ");
const RU = "привет мир встреча сервер сообщение комната решение завтра сегодня спасибо ёлка".split(" ");
const HAN = "你好世界会议明天今天我们北京上海服务器消息房间问题时间工作学习中文电话朋友".split("");
const JA = [
  "明日",
  "の",
  "会議",
  "は",
  "十時",
  "から",
  "です",
  "サーバー",
  "メッセージ",
  "確認",
  "お願い",
  "します",
];
const TH = ["สวัสดี", "ครับ", "ค่ะ", "ประชุม", "พรุ่งนี้", "ขอบคุณ", "เซิร์ฟเวอร์", "ข้อความ"];
const AR = ["مرحبا", "بالعالم", "اجتماع", "غدا", "شكرا", "رسالة", "خادم", "غرفة"];
const SENDERS = Array.from({ length: 2000 }, (_, i) => `user${i}`);

/** One message's text: mostly English, the rest in another script. */
function text(): string {
  const r = rnd();
  const n = 4 + Math.floor(rnd() * 14);
  const words = (pool: readonly string[], sep = " ") => Array.from({ length: n }, () => pick(pool)).join(sep);
  if (r < 0.55) return words(EN) + (rnd() < 0.05 ? " https://example.com/x" : "");
  if (r < 0.65) return words([...EN, ...FR]);
  if (r < 0.73) return words(RU);
  if (r < 0.83) return words(HAN, "");
  if (r < 0.91) return words(JA, "");
  if (r < 0.96) return words(TH, "");
  return words(AR);
}

const draft = (room: string, ts: number): Draft => {
  const from = pick(SENDERS);
  return { room, from, text: text(), ts, key: `k-${from}` };
};

function percentiles(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(2);
  return `p50 ${at(0.5).padStart(7)}  p95 ${at(0.95).padStart(7)}  p99 ${at(0.99).padStart(7)}`;
}

const dir = await Deno.makeTempDir({ prefix: "search-bench-" });
try {
  // ---- generation
  const t0 = performance.now();
  const store = await SqliteStore.open(dir, { retainMessages: 0, retainMs: 0, durability: "normal" });
  const engine = new EmbeddedEngine(store, { dedupWindowMs: 0 });
  const start = Date.now() - MESSAGES * 100;
  const BATCH = 2000;
  for (let done = 0; done < MESSAGES; done += BATCH) {
    const n = Math.min(BATCH, MESSAGES - done);
    await engine.append(
      Array.from({ length: n }, (_, i) => draft(`r${Math.floor(rnd() * ROOMS)}`, start + (done + i) * 100)),
    );
  }
  const genS = (performance.now() - t0) / 1000;
  await engine.close();

  // ---- size
  const db = new DatabaseSync(`${dir}/chat.db`);
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  let size = "dbstat not available";
  try {
    const rows = db.prepare("SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name").all() as {
      name: string;
      bytes: number;
    }[];
    const total = rows.reduce((a, r) => a + r.bytes, 0);
    const index = rows.filter((r) => r.name.startsWith("message_search")).reduce(
      (a, r) => a + r.bytes,
      0,
    );
    const msgs = rows.filter((r) => r.name === "messages").reduce((a, r) => a + r.bytes, 0);
    size =
      `database ${(total / 2 ** 20).toFixed(0)} MiB, messages table ${(msgs / 2 ** 20).toFixed(0)} MiB, ` +
      `search index ${(index / 2 ** 20).toFixed(0)} MiB = ${
        (100 * index / total).toFixed(1)
      } % of the database`;
  } catch (e) {
    size += `: ${(e as Error).message}`;
  }
  db.close();

  // ---- latency
  const reader = new EmbeddedEngine(
    await SqliteStore.open(dir, { retainMessages: 0, retainMs: 0, durability: "normal" }),
    { dedupWindowMs: 0 },
  );
  const phraseOf = () => {
    const words = text().split(" ").filter((w) => EN.includes(w));
    return words.length >= 2 ? `"${words[0]} ${words[1]}"` : `"${pick(EN)} ${pick(EN)}"`;
  };
  const kinds: [string, () => string, ("newest" | "best")?][] = [
    ["single word", () => `${pick(EN)} `],
    ["word, best first", () => `${pick(EN)} `, "best"],
    ["accented word", () => `${pick(FR).normalize("NFD").replace(/\p{M}/gu, "")} `],
    ["prefix (3 letters)", () => pick(EN).slice(0, 3)],
    ["phrase", phraseOf],
    ["from: + word", () => `from:${pick(SENDERS)} ${pick(EN)} `],
    ["CJK two characters", () => pick(HAN) + pick(HAN)],
    ["two words", () => `${pick(EN)} ${pick(RU)} `],
  ];
  const lines: string[] = [];
  for (const [scope, rooms] of [["20 rooms", true], ["every room", false]] as const) {
    for (const [kind, make, order = "newest"] of kinds) {
      const times: number[] = [];
      let partial = 0, found = 0;
      for (let i = 0; i < QUERIES; i++) {
        const request: SearchRequest = {
          query: parseQuery(make(), 256),
          order,
          bestWindow: 1000,
          limit: 20,
          deadline: performance.now() + 250,
        };
        if (rooms) request.rooms = Array.from({ length: 20 }, () => `r${Math.floor(rnd() * ROOMS)}`);
        const t = performance.now();
        const page = await reader.search!(request);
        times.push(performance.now() - t);
        if (page.partial) partial++;
        found += page.messages.length;
      }
      lines.push(
        `${scope.padEnd(11)} ${kind.padEnd(19)} ${percentiles(times)}  ` +
          `results/page ${(found / QUERIES).toFixed(1).padStart(4)}  cut off ${partial}/${QUERIES}`,
      );
    }
  }
  await reader.close();

  // ---- write cost: acked msgs/s with and without the index, alternated
  const writes: string[] = [];
  for (const durability of ["full", "normal"] as const) {
    const rates: Record<string, number[]> = { with: [], without: [] };
    for (let round = 0; round < 3; round++) {
      for (const indexed of [true, false]) {
        const wdir = await Deno.makeTempDir({ prefix: "search-bench-w-" });
        const e = new EmbeddedEngine(
          await SqliteStore.open(wdir, { retainMessages: 0, retainMs: 0, durability, searchIndex: indexed }),
          { dedupWindowMs: 0 },
        );
        let n = 0;
        const t = performance.now();
        while (performance.now() - t < WRITE_S * 1000) {
          await e.append(
            Array.from({ length: 100 }, () => draft(`r${Math.floor(rnd() * ROOMS)}`, Date.now())),
          );
          n += 100;
        }
        rates[indexed ? "with" : "without"].push(n / ((performance.now() - t) / 1000));
        await e.close();
        await Deno.remove(wdir, { recursive: true });
      }
    }
    const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    const w = med(rates.with), wo = med(rates.without);
    writes.push(
      `durability ${durability.padEnd(6)} with index ${w.toFixed(0).padStart(6)} msgs/s, without ` +
        `${wo.toFixed(0).padStart(6)} msgs/s: indexing costs ${(100 * (1 - w / wo)).toFixed(1)} % ` +
        `(median of 3 alternated ${WRITE_S} s runs, groups of 100)`,
    );
  }

  console.log(
    [
      `search bench: ${MESSAGES.toLocaleString("en")} messages in ${ROOMS} rooms (mixed scripts), ` +
      `generated in ${genS.toFixed(0)} s; deno ${Deno.version.deno}`,
      size,
      `latency of one page of 20, ${QUERIES} queries each (ms):`,
      ...lines.map((l) => `  ${l}`),
      "write cost:",
      ...writes.map((l) => `  ${l}`),
    ].join("\n"),
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}

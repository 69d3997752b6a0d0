/**
 * What one FTS5 row costs the writer, by table shape (#21's write cost): the store's own schema
 * (`openDatabase`), its messages written as the writer writes them (the row and the room's last seq, one
 * transaction a group), with the search index as it is and as it could be, the CPU of the writer's thread
 * alone (`synchronous = OFF`: no fsync, so the figure is not the disk's). The index rows are computed
 * before the clock starts (`indexRow`): this is the FTS5 insert, not the cutting of words.
 *
 *     deno run --allow-read --allow-write --allow-env bench/fts_cost.ts [--messages 50000] [--group 100]
 *         [--rounds 5]
 *
 * Variants, alternated within each round (a fresh database each), medians over the rounds:
 * - `none`: no index row (as `--search off`);
 * - `schema`: the table of `lib/store_sqlite_schema.ts`, one row a message (as the server);
 * - `no-delete`: the same without `contentless_delete` (a delete would then pass the old row's terms);
 * - `detail-column`: the same with `detail = column` (no positions: phrases checked after the match);
 * - `minimal`: one column, `detail = none`, `columnsize = 0` (no positions, no sizes for ranking, no delete
 *   by rowid): what any FTS5 row costs at the least;
 * - `group`: the schema's table, one row for each room of a group (its messages' terms together): the
 *   per-row cost shared by the messages written together (a match would then be checked per message).
 *
 * Bounded: rounds x variants x messages inserts, about 30 s with the defaults; temp files are removed.
 * @module
 */
import { parseArgs } from "node:util";
import { alternated, withHistory } from "./store_probe.ts";
import { indexRow } from "../lib/search_text.ts";

const { values: v } = parseArgs({
  options: {
    messages: { type: "string", default: "50000" },
    group: { type: "string", default: "100" },
    rounds: { type: "string", default: "5" },
  },
});
const MESSAGES = Number(v.messages), GROUP = Number(v.group), ROUNDS = Number(v.rounds);
const ROOMS = 10, SENDERS = 50;

/** A small deterministic random source (the same messages every run). */
let seed = 7;
const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
const WORDS =
  "the meeting deploy release server chat search index message room people decision plan friday link review bug fix test build ship design idea lunch coffee weekend report budget client"
    .split(" ");
/** English messages of 4-15 words, and every fifth the store case's text (one word of 100 letters). */
const texts = Array.from(
  { length: 1000 },
  (_, i) =>
    i % 5 === 0
      ? "s".repeat(100)
      : Array.from({ length: 4 + Math.floor(rnd() * 12) }, () => WORDS[Math.floor(rnd() * WORDS.length)])
        .join(" "),
);

interface Msg {
  room: string;
  seq: number;
  sender: string;
  text: string;
  row: [string, string, string];
}
const seqs = new Map<string, number>();
const msgs: Msg[] = Array.from({ length: MESSAGES }, (_, i) => {
  const room = `r${i % ROOMS}`, sender = `u${(i * 7) % SENDERS}`, text = texts[i % texts.length];
  const seq = (seqs.get(room) ?? 0) + 1;
  seqs.set(room, seq);
  return { room, seq, sender, text, row: indexRow(room, sender, text) };
});

const FTS_COLUMNS = "words, extra, tags, room UNINDEXED, seq UNINDEXED";
const CONTENTLESS = "content = '', contentless_unindexed = 1, tokenize = 'ascii'";
/** Each variant's table (null: the schema's own, undefined: none) and how a group's rows are made. */
const VARIANTS: Record<string, { table: string | null | undefined; grouped?: boolean; oneColumn?: boolean }> =
  {
    none: { table: undefined },
    schema: { table: null },
    "no-delete": { table: `${FTS_COLUMNS}, ${CONTENTLESS}` },
    "detail-column": { table: `${FTS_COLUMNS}, contentless_delete = 1, detail = column, ${CONTENTLESS}` },
    minimal: {
      table: "words, content = '', detail = none, columnsize = 0, tokenize = 'ascii'",
      oneColumn: true,
    },
    group: { table: null, grouped: true },
  };

/** Milliseconds to write every message in groups, as `name`. */
function run(name: string): number {
  const variant = VARIANTS[name];
  return withHistory("fts_cost_", variant.table !== null, (db, { insert, last }) => {
    db.exec("PRAGMA synchronous = OFF; PRAGMA secure_delete = ON");
    if (variant.table) db.exec(`CREATE VIRTUAL TABLE message_search USING fts5 (${variant.table})`);
    const fts = variant.table === undefined ? undefined : db.prepare(
      variant.oneColumn
        ? "INSERT INTO message_search (rowid, words) VALUES (?, ?)"
        : "INSERT INTO message_search (rowid, words, extra, tags, room, seq) VALUES (?, ?, ?, ?, ?, ?)",
    );
    let sid = 0;
    const t0 = performance.now();
    for (let g = 0; g < msgs.length; g += GROUP) {
      db.exec("BEGIN");
      const byRoom = new Map<string, Msg[]>();
      for (const m of msgs.slice(g, g + GROUP)) {
        const ts = Date.now();
        sid = Math.max(ts * 1000, sid + 1);
        insert.run(m.room, m.seq, ts, m.sender, m.text, m.sender, null, null, fts ? sid : null);
        last.run(m.room, m.seq);
        if (variant.grouped) byRoom.set(m.room, [...byRoom.get(m.room) ?? [], m]);
        else if (variant.oneColumn) fts?.run(sid, `${m.row[0]} ${m.row[1]} ${m.row[2]}`);
        else fts?.run(sid, ...m.row, m.room, m.seq);
      }
      for (const [room, ms] of byRoom) {
        const col = (i: number) => ms.map((m) => m.row[i]).join(" ");
        fts?.run(++sid, col(0), col(1), [...new Set(col(2).split(" "))].join(" "), room, ms[0].seq);
      }
      db.exec("COMMIT");
    }
    return performance.now() - t0;
  });
}

const names = Object.keys(VARIANTS);
run("schema"); // warm-up: JIT, page cache
const medians = alternated(names, ROUNDS, run);
const usPerMsg = (n: string) => medians.get(n)! * 1000 / MESSAGES;
const base = usPerMsg("none");
console.log(
  `FTS5 cost per message, the writer's CPU (synchronous off), ${MESSAGES} messages in groups of ${GROUP}, ` +
    `${ROOMS} rooms, median of ${ROUNDS} alternated rounds`,
);
console.log("| variant        | us a message | index adds, us | ratio to none |");
console.log("| -------------- | ------------ | -------------- | ------------- |");
for (const n of names) {
  const us = usPerMsg(n);
  console.log(
    `| ${n.padEnd(14)} | ${us.toFixed(1).padStart(12)} | ${(us - base).toFixed(1).padStart(14)} | ${
      (us / base).toFixed(2).padStart(12)
    }x |`,
  );
}

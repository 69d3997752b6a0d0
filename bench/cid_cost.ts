/**
 * What the `cid` de-duplication index costs the durable write: the store's own schema
 * (`openDatabase`), messages written as the writer writes them (the row and the room's last seq, one
 * transaction a group, `synchronous = FULL` as `deno task start`), from many senders at once, with no
 * `cid`, a per-sender counter for `cid` (as the store case sends), `crypto.randomUUID()` (as the page
 * sent before) and the page's own (`newCid` of static/client/outbox.js: time first, then random bits). The index is keyed by sender and `cid`: with many senders, each message of a group lands
 * on its own page of it, which the commit writes and syncs. No search index (`message_search` emptied
 * of rows: none is written), so the figure is the message write's alone.
 *
 *     deno run -A bench/cid_cost.ts [--senders 200] [--groups 1000] [--group 100] [--rounds 3]
 *
 * Variants alternated within each round (a fresh database each), medians over the rounds; ms a group
 * and the ratio to `none`. Bounded: rounds x 4 x groups commits, about a minute with the defaults on
 * this machine's disk; temp files are removed.
 * @module
 */
import { parseArgs } from "node:util";
import { alternated, withHistory } from "./store_probe.ts";
import { newCid } from "../static/client/outbox.js";

const { values: v } = parseArgs({
  options: {
    senders: { type: "string", default: "200" },
    groups: { type: "string", default: "1000" },
    group: { type: "string", default: "100" },
    rounds: { type: "string", default: "3" },
  },
});
const SENDERS = Number(v.senders), GROUPS = Number(v.groups), GROUP = Number(v.group);
const ROUNDS = Number(v.rounds), ROOMS = 50;
const TEXT = "s".repeat(100);

/** Each variant's `cid` for a sender's `n`th message (null: none). */
const VARIANTS: Record<string, (n: number) => string | null> = {
  none: () => null,
  counter: (n) => `c${n}`,
  uuid: () => crypto.randomUUID(),
  page: () => newCid(),
};

/** A small deterministic random source: the same senders in the same order every run. */
let seed = 11;
const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
const senders = Array.from({ length: GROUPS * GROUP }, () => Math.floor(rnd() * SENDERS));

/** Milliseconds a group, writing every message with `name`'s cids. */
function run(name: string): number {
  const cidOf = VARIANTS[name];
  return withHistory("cid_cost_", false, (db, { insert, last }) => {
    db.exec("PRAGMA synchronous = FULL; PRAGMA secure_delete = ON");
    const seqs = new Map<string, number>();
    const sent = new Map<number, number>();
    const t0 = performance.now();
    for (let g = 0; g < GROUPS; g++) {
      db.exec("BEGIN");
      for (let i = g * GROUP; i < (g + 1) * GROUP; i++) {
        const who = senders[i], room = `r${who % ROOMS}`;
        const seq = (seqs.get(room) ?? 0) + 1;
        const n = (sent.get(who) ?? 0) + 1;
        seqs.set(room, seq);
        sent.set(who, n);
        insert.run(room, seq, Date.now(), `u${who}`, TEXT, `k${who}`, cidOf(n), null, null);
        last.run(room, seq);
      }
      db.exec("COMMIT");
    }
    return (performance.now() - t0) / GROUPS;
  });
}

const names = Object.keys(VARIANTS);
const medians = alternated(names, ROUNDS, run);
const base = medians.get("none")!;
console.log(
  `The cid index and the durable write: ${GROUPS} groups of ${GROUP} messages from ${SENDERS} senders in ` +
    `${ROOMS} rooms, synchronous FULL, median of ${ROUNDS} alternated rounds`,
);
console.log("| cid     | ms a group | us a message | ratio to none |");
console.log("| ------- | ---------- | ------------ | ------------- |");
for (const n of names) {
  const ms = medians.get(n)!;
  console.log(
    `| ${n.padEnd(7)} | ${ms.toFixed(2).padStart(10)} | ${(ms * 1000 / GROUP).toFixed(1).padStart(12)} | ${
      (ms / base).toFixed(2).padStart(12)
    }x |`,
  );
}

/**
 * What the store probes (`fts_cost.ts`, `cid_cost.ts`) share: a history database of the store's own
 * schema in a temp directory, the message statements as the writer prepares them, and variants timed
 * alternately with their medians.
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { openDatabase } from "../lib/store_sqlite_schema.ts";

/** A message's row and its room's last seq, as `lib/store_writer.ts` writes them. */
export interface WriterStatements {
  /** room, seq, ts, sender, text, ukey, cid, meta, sid */
  insert: StatementSync;
  /** room, seq */
  last: StatementSync;
}

/**
 * Runs `fn` on a fresh history database (`openDatabase`, so the schema is the server's) and removes it.
 * With `dropSearch`, `message_search` is gone first (for a probe that makes its own).
 */
export function withHistory<T>(
  prefix: string,
  dropSearch: boolean,
  fn: (db: DatabaseSync, writer: WriterStatements) => T,
): T {
  const dir = Deno.makeTempDirSync({ prefix });
  let db: DatabaseSync | undefined;
  try {
    db = openDatabase(`${dir}/history.db`);
    if (dropSearch) {
      db.exec("DROP TABLE message_search");
      // SQLite leaves the dropped table's content table behind, which only another connection may drop.
      db.close();
      db = new DatabaseSync(`${dir}/history.db`);
      db.exec("DROP TABLE IF EXISTS message_search_content");
    }
    return fn(db, {
      insert: db.prepare(
        "INSERT INTO messages (room, seq, ts, sender, text, ukey, cid, meta, sid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      last: db.prepare(
        "INSERT INTO rooms (room, last_seq) VALUES (?, ?) ON CONFLICT (room) DO UPDATE SET last_seq = excluded.last_seq",
      ),
    });
  } finally {
    db?.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Each of `names` timed by `run` once a round, their order rotated each round; the median of each. */
export function alternated(
  names: readonly string[],
  rounds: number,
  run: (name: string) => number,
): Map<string, number> {
  const times = new Map<string, number[]>(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (const n of names.map((_, i) => names[(i + r) % names.length])) times.get(n)!.push(run(n));
  }
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  return new Map(names.map((n) => [n, median(times.get(n)!)]));
}

/**
 * The SQLite writer, run in a Worker so that a slow disk (fsync) delays acks, never the event loop
 * that delivers messages, presence and typing. It owns every write: batches and retention.
 * Requests and answers are `WriterRequest` / `WriterAnswer` from `store_sqlite.ts`.
 * @module
 */
/// <reference lib="deno.worker" />
import { DatabaseSync } from "node:sqlite";
import type { WriterAnswer, WriterRequest } from "./store_sqlite.ts";

/** Serves one database for the lifetime of the worker. */
class Writer {
  readonly #db: DatabaseSync;
  readonly #insert;
  readonly #setLast;
  readonly #getLast;
  readonly #trimCount;
  readonly #trimAge;
  /** Rooms written since the last prune: count retention only looks at those. */
  readonly #touched = new Set<string>();

  constructor(path: string, synchronous: string) {
    this.#db = new DatabaseSync(path);
    this.#db.exec(
      `PRAGMA journal_mode = WAL; PRAGMA synchronous = ${synchronous}; PRAGMA busy_timeout = 5000`,
    );
    this.#insert = this.#db.prepare(
      "INSERT INTO messages (room, seq, ts, sender, text, ukey, cid) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    this.#setLast = this.#db.prepare(
      "INSERT INTO rooms (room, last_seq) VALUES (?, ?) ON CONFLICT (room) DO UPDATE SET last_seq = excluded.last_seq",
    );
    this.#getLast = this.#db.prepare("SELECT last_seq AS s FROM rooms WHERE room = ?");
    this.#trimCount = this.#db.prepare("DELETE FROM messages WHERE room = ? AND seq <= ?");
    this.#trimAge = this.#db.prepare("DELETE FROM messages WHERE ts < ?");
  }

  append(rows: readonly (string | number | null)[][]): void {
    const last = new Map<string, number>();
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      for (const r of rows) {
        this.#insert.run(...r);
        last.set(r[0] as string, r[1] as number);
      }
      for (const [room, seq] of last) this.#setLast.run(room, seq);
      this.#db.exec("COMMIT");
    } catch (e) {
      try {
        this.#db.exec("ROLLBACK");
      } catch { /* the transaction may be gone already */ }
      throw e;
    }
    for (const room of last.keys()) this.#touched.add(room);
  }

  prune(now: number, retainMessages: number, retainMs: number): number {
    let n = 0;
    if (retainMessages > 0) {
      for (const room of this.#touched) {
        const last = (this.#getLast.get(room) as { s: number } | undefined)?.s ?? 0;
        n += Number(this.#trimCount.run(room, last - retainMessages).changes);
      }
    }
    this.#touched.clear();
    if (retainMs > 0) n += Number(this.#trimAge.run(now - retainMs).changes);
    return n;
  }

  close(): void {
    this.#db.close();
  }
}

/** The message handler; the writer lives in its closure, one per worker. */
function serve(): (e: MessageEvent<WriterRequest>) => void {
  let writer: Writer | undefined;
  return (e) => {
    const req = e.data;
    let answer: WriterAnswer;
    try {
      switch (req.op) {
        case "open":
          // One connection per worker: a second would stay open, unseen, and hold locks after close.
          if (writer) throw new Error("the writer is open already");
          writer = new Writer(req.path, req.synchronous);
          answer = { id: req.id, ok: true };
          break;
        case "append":
          writer!.append(req.rows);
          answer = { id: req.id, ok: true };
          break;
        case "prune":
          answer = { id: req.id, ok: true, count: writer!.prune(req.now, req.retainMessages, req.retainMs) };
          break;
        case "close":
          writer?.close();
          writer = undefined;
          answer = { id: req.id, ok: true };
          break;
      }
    } catch (err) {
      answer = { id: req.id, ok: false, error: (err as Error)?.message ?? String(err) };
    }
    self.postMessage(answer);
  };
}

self.onmessage = serve();

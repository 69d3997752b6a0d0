/**
 * The durable store: SQLite (`node:sqlite`, built into Deno) in WAL mode, one transaction per batch.
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { ChatMessage } from "./protocol.ts";
import { type RetentionOptions, type Store, type StoredMessage, StoreError } from "./store.ts";
import type { Durability } from "./config.ts";

/** Options of {@link SqliteStore.open}. */
export interface SqliteOptions extends RetentionOptions {
  /** `full` fsyncs every commit (survives power loss); `normal` survives a killed process. */
  durability: Durability;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS rooms (room TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  room TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, sender TEXT NOT NULL,
  text TEXT NOT NULL, ukey TEXT NOT NULL, cid TEXT,
  PRIMARY KEY (room, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_cid ON messages (ukey, cid) WHERE cid IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_ts ON messages (ts);
`;

type Row = { room: string; seq: number; ts: number; sender: string; text: string; cid: string | null };

/** History in `<dataDir>/chat.db`. */
export class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  readonly #opts: SqliteOptions;
  readonly #insert: StatementSync;
  readonly #setLast: StatementSync;
  readonly #getLast: StatementSync;
  readonly #after: StatementSync;
  readonly #before: StatementSync;
  readonly #cid: StatementSync;
  readonly #trimCount: StatementSync;
  readonly #trimAge: StatementSync;
  /** Rooms appended to since the last prune: count retention only needs to look at those. */
  readonly #touched = new Set<string>();
  #closed = false;

  private constructor(db: DatabaseSync, opts: SqliteOptions) {
    this.#db = db;
    this.#opts = opts;
    this.#insert = db.prepare(
      "INSERT INTO messages (room, seq, ts, sender, text, ukey, cid) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    this.#setLast = db.prepare(
      "INSERT INTO rooms (room, last_seq) VALUES (?, ?) ON CONFLICT (room) DO UPDATE SET last_seq = excluded.last_seq",
    );
    this.#getLast = db.prepare("SELECT last_seq AS s FROM rooms WHERE room = ?");
    this.#after = db.prepare(
      "SELECT room, seq, ts, sender, text, cid FROM messages WHERE room = ? AND seq > ? ORDER BY seq LIMIT ?",
    );
    this.#before = db.prepare(
      "SELECT room, seq, ts, sender, text, cid FROM messages WHERE room = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
    );
    this.#cid = db.prepare(
      "SELECT room, seq, ts, sender, text, cid FROM messages WHERE ukey = ? AND cid = ? AND ts >= ? LIMIT 1",
    );
    this.#trimCount = db.prepare("DELETE FROM messages WHERE room = ? AND seq <= ?");
    this.#trimAge = db.prepare("DELETE FROM messages WHERE ts < ?");
  }

  /**
   * Opens (or creates) `<dir>/chat.db` and checks it.
   * @throws {StoreError} naming the path when the directory is not writable or the file is corrupt.
   */
  static open(dir: string, opts: SqliteOptions): SqliteStore {
    try {
      Deno.mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new StoreError(`Cannot create the data directory "${dir}": ${(e as Error).message}`);
    }
    const path = `${dir.replace(/\/+$/, "")}/chat.db`;
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path);
      db.exec("PRAGMA journal_mode = WAL");
      const check = db.prepare("PRAGMA quick_check").get() as { quick_check: string } | undefined;
      if (check?.quick_check !== "ok") {
        throw new Error(`integrity check says ${JSON.stringify(check?.quick_check)}`);
      }
      db.exec(`PRAGMA synchronous = ${opts.durability === "full" ? "FULL" : "NORMAL"}`);
      db.exec("PRAGMA busy_timeout = 5000");
      db.exec(SCHEMA);
      return new SqliteStore(db, opts);
    } catch (e) {
      try {
        db?.close();
      } catch { /* already failing; report the first error */ }
      throw new StoreError(`Cannot open the history database "${path}": ${(e as Error).message}`);
    }
  }

  append(batch: readonly StoredMessage[]): void {
    if (batch.length === 0) return;
    const last = new Map<string, number>();
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      for (const m of batch) {
        this.#insert.run(m.room, m.seq, m.ts, m.from, m.text, m.key, m.cid ?? null);
        last.set(m.room, m.seq);
      }
      for (const [room, seq] of last) this.#setLast.run(room, seq);
      this.#db.exec("COMMIT");
    } catch (e) {
      try {
        this.#db.exec("ROLLBACK");
      } catch { /* the transaction may be gone already */ }
      throw new StoreError(`Cannot store ${batch.length} message(s): ${(e as Error).message}`);
    }
    for (const room of last.keys()) this.#touched.add(room);
  }

  lastSeq(room: string): number {
    const row = this.#getLast.get(room) as { s: number } | undefined;
    return row?.s ?? 0;
  }

  after(room: string, after: number, limit: number): ChatMessage[] {
    return (this.#after.all(room, after, limit) as Row[]).map(fromRow);
  }

  before(room: string, before: number, limit: number): ChatMessage[] {
    return (this.#before.all(room, before, limit) as Row[]).map(fromRow).reverse();
  }

  findCid(key: string, cid: string, sinceTs: number): ChatMessage | undefined {
    const row = this.#cid.get(key, cid, sinceTs) as Row | undefined;
    return row && fromRow(row);
  }

  prune(now: number): number {
    let n = 0;
    if (this.#opts.retainMessages > 0) {
      for (const room of this.#touched) {
        n += Number(this.#trimCount.run(room, this.lastSeq(room) - this.#opts.retainMessages).changes);
      }
    }
    this.#touched.clear();
    if (this.#opts.retainMs > 0) n += Number(this.#trimAge.run(now - this.#opts.retainMs).changes);
    return n;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}

function fromRow(r: Row): ChatMessage {
  const m: ChatMessage = { room: r.room, seq: r.seq, from: r.sender, text: r.text, ts: r.ts };
  if (r.cid !== null) m.cid = r.cid;
  return m;
}

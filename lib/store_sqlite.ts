/**
 * The durable store: SQLite (`node:sqlite`, built into Deno) in WAL mode. Reads run on this thread
 * (indexed, no fsync); writes go to a Worker (`store_writer.ts`), one transaction per batch, so a
 * slow disk delays acks but never blocks the event loop.
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { ChatMessage } from "./protocol.ts";
import { newEpoch, type RetentionOptions, type Store, type StoredMessage, StoreError } from "./store.ts";
import type { Durability } from "./config.ts";

/** Options of {@link SqliteStore.open}. */
export interface SqliteOptions extends RetentionOptions {
  /** `full` fsyncs every commit (survives power loss); `normal` survives a killed process. */
  durability: Durability;
}

/** A request to the writer worker. */
export type WriterRequest =
  | { id: number; op: "open"; path: string; synchronous: string }
  | { id: number; op: "append"; rows: (string | number | null)[][] }
  | { id: number; op: "prune"; now: number; retainMessages: number; retainMs: number }
  | { id: number; op: "close" };

/** The writer's answer to the request with the same id. */
export type WriterAnswer = { id: number; ok: true; count?: number } | {
  id: number;
  ok: false;
  error: string;
};

/** Bumped when the schema changes; a file of another version is refused, not misread. */
const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS rooms (room TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  room TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, sender TEXT NOT NULL,
  text TEXT NOT NULL, ukey TEXT NOT NULL, cid TEXT,
  PRIMARY KEY (room, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_cid ON messages (ukey, cid) WHERE cid IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_ts ON messages (ts);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
PRAGMA user_version = ${SCHEMA_VERSION};
`;

type Row = { room: string; seq: number; ts: number; sender: string; text: string; cid: string | null };

/** History in `<dataDir>/chat.db`. */
export class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  readonly #opts: SqliteOptions;
  readonly #getLast: StatementSync;
  readonly #after: StatementSync;
  readonly #before: StatementSync;
  readonly #cid: StatementSync;
  readonly #worker: Worker;
  readonly #waiting = new Map<number, { resolve: (a: WriterAnswer) => void }>();
  #nextId = 1;
  #closed: Promise<void> | undefined;
  /** Why the writer died, if it did: later requests fail at once instead of waiting forever. */
  #dead: string | undefined;

  /** Set when the file is created (see {@link Store.epoch}). */
  readonly epoch: string;

  private constructor(db: DatabaseSync, opts: SqliteOptions) {
    this.epoch = (db.prepare("SELECT v FROM meta WHERE k = 'epoch'").get() as { v: string }).v;
    this.#db = db;
    this.#opts = opts;
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
    this.#worker = new Worker(new URL("./store_writer.ts", import.meta.url), { type: "module" });
    this.#worker.onmessage = (e: MessageEvent<WriterAnswer>) => {
      const w = this.#waiting.get(e.data.id);
      this.#waiting.delete(e.data.id);
      w?.resolve(e.data);
    };
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#dead = e.message;
      const error = `the writer stopped: ${e.message}`;
      for (const [id, w] of this.#waiting) w.resolve({ id, ok: false, error });
      this.#waiting.clear();
    };
  }

  /**
   * Opens (or creates) `<dir>/chat.db`, checks it, and starts its writer.
   * @throws {StoreError} naming the path when the directory is not writable, the file is corrupt
   * or the writer cannot start.
   */
  static async open(dir: string, opts: SqliteOptions): Promise<SqliteStore> {
    try {
      Deno.mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new StoreError(`Cannot create the data directory "${dir}": ${(e as Error).message}`);
    }
    const path = `${dir.replace(/\/+$/, "")}/chat.db`;
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path);
      // First, so that a lock held by another process (or a writer still closing) is waited for.
      db.exec("PRAGMA busy_timeout = 5000");
      db.exec("PRAGMA journal_mode = WAL");
      const check = db.prepare("PRAGMA quick_check").get() as { quick_check: string } | undefined;
      if (check?.quick_check !== "ok") {
        throw new Error(`integrity check says ${JSON.stringify(check?.quick_check)}`);
      }
      const { user_version: version } = db.prepare("PRAGMA user_version").get() as { user_version: number };
      const empty = !db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'messages'").get();
      if (!empty && version !== SCHEMA_VERSION) {
        throw new Error(
          `it holds schema version ${version}, this server reads version ${SCHEMA_VERSION}; ` +
            "move the file away (or use another --data-dir) to start afresh",
        );
      }
      db.exec(SCHEMA);
      db.prepare("INSERT OR IGNORE INTO meta (k, v) VALUES ('epoch', ?)").run(newEpoch());
    } catch (e) {
      try {
        db?.close();
      } catch { /* already failing; report the first error */ }
      throw new StoreError(`Cannot open the history database "${path}": ${(e as Error).message}`);
    }
    const store = new SqliteStore(db, opts);
    const synchronous = opts.durability === "full" ? "FULL" : "NORMAL";
    const a = await store.#request({ id: 0, op: "open", path, synchronous });
    if (!a.ok) {
      await store.close();
      throw new StoreError(`Cannot start the writer of "${path}": ${a.error}`);
    }
    return store;
  }

  async append(batch: readonly StoredMessage[]): Promise<void> {
    if (batch.length === 0) return;
    const rows = batch.map((m) => [m.room, m.seq, m.ts, m.from, m.text, m.key, m.cid ?? null]);
    const a = await this.#request({ id: 0, op: "append", rows });
    if (!a.ok) throw new StoreError(`Cannot store ${batch.length} message(s): ${a.error}`);
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

  async prune(now: number): Promise<number> {
    const { retainMessages, retainMs } = this.#opts;
    const a = await this.#request({ id: 0, op: "prune", now, retainMessages, retainMs });
    if (!a.ok) throw new StoreError(`Cannot apply retention: ${a.error}`);
    return a.count ?? 0;
  }

  close(): Promise<void> {
    return this.#closed ??= (async () => {
      // Requests are answered in order, so this waits for every write before it.
      if (!this.#dead) await this.#request({ id: 0, op: "close" });
      this.#worker.terminate();
      this.#db.close();
    })();
  }

  #request(req: WriterRequest): Promise<WriterAnswer> {
    const id = this.#nextId++;
    if (this.#dead) return Promise.resolve({ id, ok: false, error: `the writer stopped: ${this.#dead}` });
    return new Promise((resolve) => {
      this.#waiting.set(id, { resolve });
      this.#worker.postMessage({ ...req, id });
    });
  }
}

function fromRow(r: Row): ChatMessage {
  const m: ChatMessage = { room: r.room, seq: r.seq, from: r.sender, text: r.text, ts: r.ts };
  if (r.cid !== null) m.cid = r.cid;
  return m;
}

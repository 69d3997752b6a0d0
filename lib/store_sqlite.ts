/**
 * The durable store: SQLite (`node:sqlite`, built into Deno) in WAL mode. Reads run on this thread
 * (indexed, no fsync); writes go to a Worker (`store_writer.ts`), one transaction per batch, so a
 * slow disk delays acks but never blocks the event loop.
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import {
  type AccessList,
  type AuditEntry,
  type ChatMessage,
  type ConversationEntry,
  holds,
  type MessageReactions,
  type Person,
  type RoomAccess,
  type RoomChange,
  type RoomRules,
  type StoredMessage,
} from "./domain.ts";
import { compareNames, type RoomQuery, type StoredRoom } from "./engine.ts";
import { keptUntil, type RetentionOptions, type Store, StoreError } from "./store.ts";
import type { Durability } from "./config.ts";
import { OncePer } from "./limits.ts";
import { openDatabase } from "./store_sqlite_schema.ts";
import {
  auditEntryOf,
  type AuditRecord,
  auditRow,
  MESSAGE_COLUMNS,
  messageOf,
  type MessageRow,
  messageRow,
  rulesOf,
  type RulesRow,
  storedMessageOf,
} from "./store_sqlite_rows.ts";
import type { WriterAnswer, WriterRequest } from "./store_writer_protocol.ts";
import type { SearchPage, SearchRequest } from "./engine.ts";
import { ftsMatch } from "./search_text.ts";

/** Options of {@link SqliteStore.open}. */
export interface SqliteOptions extends RetentionOptions {
  /** `full` fsyncs every commit (survives power loss); `normal` survives a killed process. */
  durability: Durability;
  /**
   * Told how indexing the history from before the search index goes (it runs in the background,
   * the store serving meanwhile): after each step, and once at the end with `done`.
   */
  onIndexProgress?: (p: IndexProgress) => void;
  /**
   * Whether the search index is kept (`--search`). Off: new messages are not indexed, an edit or a
   * delete drops the message's old index row, no rebuild runs, and the file is marked for the rebuild,
   * which indexes everything unindexed when it is next opened with the index on.
   * @default true
   */
  searchIndex?: boolean;
}

/** How far indexing the history written before the search index has got. */
export interface IndexProgress {
  /** Messages looked at so far (of those not deleted). */
  indexed: number;
  /** Messages stored when it started. */
  total: number;
  done: boolean;
}

/** Messages the search index rebuild reads and writes in one step (one transaction). */
const REBUILD_STEP = 500;

/**
 * A bound row limit. SQLite (3.53 here) plans with the value of a plain `LIMIT ?`, so every binding
 * of it prepares the statement again: 14-20 us a query. As an expression it is not looked at: 4 us.
 */
const LIMIT = "LIMIT (? + 0)";

/**
 * Milliseconds directory entries (a person's key, uid and name, recorded at every connect that changes
 * one) wait for company before they are written: one transaction (one fsync) for the connects of that
 * moment instead of one each. Nobody waits for them (a connect does not), and a person online is found
 * through the hub anyway; what is lost to a crash in that moment is rewritten at the next connect.
 */
const PEOPLE_WRITE_DELAY_MS = 20;

/** Directory entries on their way to the writer together. */
interface PeopleBatch {
  rows: (string | number | null)[][];
  answer: Promise<WriterAnswer>;
  /** Sends them now (at close: before the writer's last answer). */
  send(): void;
}

/** How often, at most, an append moves a person's directory entry's forget time (ms). */
const KEEP_EVERY_MS = 60_000;

/** History in `<dataDir>/chat.db`. */
export class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  readonly #opts: SqliteOptions;
  /** Whose directory entry an append kept lately (a guest who writes stays; see `append`). */
  readonly #kept = new OncePer(KEEP_EVERY_MS);
  readonly #getLast: StatementSync;
  readonly #getRev: StatementSync;
  readonly #changes: StatementSync;
  readonly #after: StatementSync;
  readonly #before: StatementSync;
  readonly #cid: StatementSync;
  readonly #message: StatementSync;
  readonly #rules: StatementSync;
  readonly #person: StatementSync;
  readonly #exists: StatementSync;
  readonly #people: StatementSync;
  readonly #audit: StatementSync;
  /** The room directory's listing from a prefix (inclusive), and after a cursor. */
  readonly #roomsFrom: StatementSync;
  readonly #roomsAfter: StatementSync;
  readonly #reactions: StatementSync;
  readonly #mentionCount: StatementSync;
  readonly #personOf: StatementSync;
  readonly #personByName: StatementSync;
  readonly #convList: StatementSync;
  readonly #convPeer: StatementSync;
  readonly #wrote: StatementSync;
  readonly #readOf: StatementSync;
  readonly #search: StatementSync;
  readonly #searchBest: StatementSync;
  readonly #worker: Worker;
  /** The rebuild of the search index for older history, while it runs; `#closed` stops it. */
  #rebuild: Promise<void> | undefined;
  readonly #waiting = new Map<number, { resolve: (a: WriterAnswer) => void }>();
  #nextId = 1;
  /** Directory entries waiting to go to the writer together (see {@link PEOPLE_WRITE_DELAY_MS}). */
  #peopleBatch: PeopleBatch | undefined;
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
    this.#getRev = db.prepare("SELECT rev FROM rooms WHERE room = ?");
    // The rows changed after the client's rev (few), not every row up to its seq (the primary key,
    // which the planner picks without statistics). Preparing fails if the index cannot serve it.
    this.#changes = db.prepare(
      `SELECT ${MESSAGE_COLUMNS} FROM messages INDEXED BY messages_rev
       WHERE room = ? AND rev > ? AND seq <= ? ORDER BY seq ${LIMIT}`,
    );
    this.#after = db.prepare(
      `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE room = ? AND seq > ? ORDER BY seq ${LIMIT}`,
    );
    this.#before = db.prepare(
      `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE room = ? AND seq < ? ORDER BY seq DESC ${LIMIT}`,
    );
    this.#cid = db.prepare(
      `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE ukey = ? AND cid = ? AND ts >= ? LIMIT 1`,
    );
    this.#message = db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE room = ? AND seq = ?`);
    this.#rules = db.prepare(
      "SELECT topic, private, read_only, slow_mode FROM room_rules WHERE room = ?",
    );
    this.#person = db.prepare("SELECT kind, until FROM room_people WHERE room = ? AND uid = ?");
    // Every change to a room's rules or people writes an audit entry (at least one is kept): the two
    // primary-key and index lookups cover everything stored for a room.
    this.#exists = db.prepare(
      "SELECT 1 AS x FROM rooms WHERE room = ? UNION ALL SELECT 1 FROM audit WHERE room = ? LIMIT 1",
    );
    this.#people = db.prepare("SELECT uid, kind, until FROM room_people WHERE room = ? ORDER BY uid");
    this.#audit = db.prepare(
      `SELECT ts, action, by_uid, target, reason, until, seq FROM audit WHERE room = ? AND ts < ? ORDER BY id DESC ${LIMIT}`,
    );
    // Both halves read their primary key or index in name order from one lower bound (two bounds on
    // one column leave SQLite scanning from the looser): a page costs its rows (and the private rooms
    // among them), not every room. `'@'` starts a conversation, never a room; U+10FFFF sorts after
    // every character a room name may hold.
    const listing = (from: string) =>
      db.prepare(
        `SELECT n.room AS room, coalesce(r.topic, '') AS topic FROM (
           SELECT room FROM rooms WHERE room ${from} ?1 AND room < ?2 || char(1114111)
           UNION SELECT room FROM audit WHERE room ${from} ?1 AND room < ?2 || char(1114111)
         ) n LEFT JOIN room_rules r ON r.room = n.room
         WHERE coalesce(r.private, 0) = 0 AND substr(n.room, 1, 1) <> '@'
         ORDER BY n.room LIMIT (?3 + 0)`,
      );
    this.#roomsFrom = listing(">=");
    this.#roomsAfter = listing(">");
    // Emoji of a message in the order they were first used; `mine` from the same rows.
    this.#reactions = db.prepare(
      `SELECT seq, emoji, count(*) AS n, max(ukey = ?) AS mine, min(ts) AS first FROM reactions
       WHERE room = ? AND seq BETWEEN ? AND ? GROUP BY seq, emoji ORDER BY seq, first, emoji`,
    );
    this.#mentionCount = db.prepare(
      "SELECT count(*) AS n FROM mentions WHERE ukey = ? AND room = ? AND seq > ?",
    );
    this.#personOf = db.prepare("SELECT ukey, uid, name FROM people WHERE ukey = ?");
    this.#personByName = db.prepare(
      "SELECT ukey, uid, name FROM people WHERE name_key = ? ORDER BY seen_ts DESC LIMIT 1",
    );
    this.#convList = db.prepare(
      `SELECT conv, peer, last_ts FROM conversations WHERE ukey = ? AND last_ts < ? ORDER BY last_ts DESC ${LIMIT}`,
    );
    this.#convPeer = db.prepare("SELECT peer FROM conversations WHERE ukey = ? AND conv = ?");
    // The room's rows in seq order until one is the person's: in a conversation they answered, one of
    // the first; in one they never did, the other's messages, which first-contact limits keep few.
    this.#wrote = db.prepare("SELECT 1 FROM messages WHERE room = ? AND ukey = ? LIMIT 1");
    this.#readOf = db.prepare("SELECT seq FROM reads WHERE ukey = ? AND room = ?");
    // FTS5 walks its matches newest first, narrowed to the rooms and sender by their tags, and stops
    // at the page's end; each match's room and seq are kept in the index row itself.
    const searchFrom = `FROM message_search WHERE message_search MATCH ?1 AND rowid < ?2 AND rowid >= ?3`;
    this.#search = db.prepare(`SELECT rowid AS id, room, seq ${searchFrom} ORDER BY rowid DESC`);
    // Ranked among the newest ?5 matches: FTS5 ranks every row it orders by rank before the first.
    this.#searchBest = db.prepare(
      `SELECT id, room, seq FROM (SELECT rowid AS id, room, seq, rank AS score ${searchFrom}
         ORDER BY rowid DESC LIMIT ?5) ORDER BY score, id DESC LIMIT -1 OFFSET ?4`,
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
    const db = openDatabase(path);
    const store = new SqliteStore(db, opts);
    const synchronous = opts.durability === "full" ? "FULL" : "NORMAL";
    const search = opts.searchIndex !== false;
    const a = await store.#request({ id: 0, op: "open", path, synchronous, search });
    if (!a.ok) {
      await store.close();
      throw new StoreError(`Cannot start the writer of "${path}": ${a.error}`);
    }
    if (search) store.#rebuild = store.#rebuildIndex();
    return store;
  }

  async append(batch: readonly StoredMessage[]): Promise<void> {
    if (batch.length === 0) return;
    // Directory entries waiting for company go first: a guest's first message keeps the entry that
    // its connect wrote (see keeps below), so that entry must be there when the message is.
    this.#peopleBatch?.send();
    const rows = batch.map(messageRow);
    const mentions: (string | number)[][] = [];
    const reads: (string | number)[][] = [];
    const convs: (string | number)[][] = [];
    const keep = new Map<string, number>();
    for (const m of batch) {
      for (const key of m.mentionKeys ?? []) mentions.push([key, m.room, m.seq]);
      reads.push([m.key, m.room, m.seq]);
      if (m.between) {
        convs.push([m.between[0], m.room, m.between[1], m.ts], [m.between[1], m.room, m.between[0], m.ts]);
      }
      // At most once a minute a person: the entry is kept for the retention's age, a minute is nothing.
      for (const key of [m.key, ...m.between ?? []]) {
        if (keep.has(key) || this.#kept.due(key, m.ts)) keep.set(key, keptUntil(m.ts, this.#opts.retainMs));
      }
    }
    const keeps = [...keep].map(([key, until]) => [until, key]);
    // The writer indexes each message from its row, in the same transaction (lib/store_writer.ts).
    const a = await this.#request({ id: 0, op: "append", rows, mentions, reads, convs, keeps });
    if (!a.ok) {
      for (const key of keep.keys()) this.#kept.forget(key);
      throw new StoreError(`Cannot store ${batch.length} message(s): ${a.error}`);
    }
  }

  lastSeq(room: string): number {
    const row = this.#getLast.get(room) as { s: number } | undefined;
    return row?.s ?? 0;
  }

  after(room: string, after: number, limit: number): ChatMessage[] {
    return (this.#after.all(room, after, limit) as MessageRow[]).map(messageOf);
  }

  before(room: string, before: number, limit: number): ChatMessage[] {
    return (this.#before.all(room, before, limit) as MessageRow[]).map(messageOf).reverse();
  }

  person(key: string): Person | undefined {
    const r = this.#personOf.get(key) as { ukey: string; uid: string; name: string } | undefined;
    return r && { key: r.ukey, uid: r.uid, name: r.name };
  }

  findPerson(nameKeys: readonly string[]): Person | undefined {
    for (const nk of nameKeys) {
      const r = this.#personByName.get(nk) as { ukey: string; uid: string; name: string } | undefined;
      if (r) return { key: r.ukey, uid: r.uid, name: r.name };
    }
    return undefined;
  }

  async rememberPerson(p: Person, nameKey: string, now: number, until?: number): Promise<void> {
    const batch = this.#peopleBatch ??= this.#newPeopleBatch();
    batch.rows.push([p.key, p.uid, p.name, nameKey, now, until ?? null]);
    const a = await batch.answer;
    if (!a.ok) throw new StoreError(`Cannot record person "${p.name}": ${a.error}`);
  }

  /** A batch of directory entries, sent to the writer when its moment is over (or at close). */
  #newPeopleBatch(): PeopleBatch {
    const rows: (string | number | null)[][] = [];
    let resolve = (_: WriterAnswer) => {};
    const answer = new Promise<WriterAnswer>((r) => resolve = r);
    const send = () => {
      clearTimeout(timer);
      if (this.#peopleBatch === batch) this.#peopleBatch = undefined;
      this.#request({ id: 0, op: "people", rows }).then(resolve);
    };
    const timer = setTimeout(send, PEOPLE_WRITE_DELAY_MS);
    const batch: PeopleBatch = { rows, answer, send };
    return batch;
  }

  conversations(key: string, before: number, limit: number): ConversationEntry[] {
    const rows = this.#convList.all(key, Math.min(before, Number.MAX_SAFE_INTEGER), limit) as {
      conv: string;
      peer: string;
      last_ts: number;
    }[];
    return rows.map((r) => ({ conv: r.conv, peer: r.peer, lastTs: r.last_ts }));
  }

  conversationPeer(key: string, conv: string): string | undefined {
    return (this.#convPeer.get(key, conv) as { peer: string } | undefined)?.peer;
  }

  wrote(room: string, key: string): boolean {
    return this.#wrote.get(room, key) !== undefined;
  }

  readPosition(key: string, room: string): number {
    return (this.#readOf.get(key, room) as { seq: number } | undefined)?.seq ?? 0;
  }

  async markRead(key: string, room: string, seq: number): Promise<void> {
    const a = await this.#request({ id: 0, op: "read", key, room, seq });
    if (!a.ok) throw new StoreError(`Cannot store the read position in "${room}": ${a.error}`);
  }

  findCid(key: string, cid: string, sinceTs: number): ChatMessage | undefined {
    const row = this.#cid.get(key, cid, sinceTs) as MessageRow | undefined;
    return row && messageOf(row);
  }

  message(room: string, seq: number): StoredMessage | undefined {
    const row = this.#message.get(room, seq) as MessageRow | undefined;
    return row && storedMessageOf(row);
  }

  async react(room: string, seq: number, emoji: string, key: string, on: boolean, ts: number): Promise<void> {
    const a = await this.#request({ id: 0, op: "react", row: [room, seq, emoji, key, ts], on });
    if (!a.ok) {
      throw new StoreError(`Cannot change a reaction on message ${seq} of room "${room}": ${a.error}`);
    }
  }

  reactions(room: string, from: number, to: number, key: string): Map<number, MessageReactions> {
    const out = new Map<number, MessageReactions>();
    const rows = this.#reactions.all(key, room, from, to) as {
      seq: number;
      emoji: string;
      n: number;
      mine: number;
    }[];
    for (const r of rows) {
      let m = out.get(r.seq);
      if (!m) out.set(r.seq, m = { counts: {}, mine: [] });
      m.counts[r.emoji] = r.n;
      if (r.mine) m.mine.push(r.emoji);
    }
    return out;
  }

  mentionCounts(key: string, rooms: readonly { room: string; after: number }[]): Record<string, number> {
    const out: Record<string, number> = {};
    for (const { room, after } of rooms) {
      const n = (this.#mentionCount.get(key, room, after) as { n: number }).n;
      if (n > 0) out[room] = n;
    }
    return out;
  }

  async changeMessages(
    changes: readonly { message: StoredMessage; audit?: AuditEntry }[],
    auditRetain: number,
  ): Promise<boolean[]> {
    const ms = changes.map((c) => c.message);
    const a = await this.#request({
      id: 0,
      op: "messages",
      rows: ms.map((m) => [
        m.deleted ? "" : m.text,
        m.deleted ? 1 : 0,
        m.deleted ? null : m.editedTs ?? null,
        m.room,
        m.seq,
      ]),
      revs: ms.map((m) => m.rev ?? null),
      audits: changes.map((c) => c.audit ? auditRow(c.message.room, c.audit) : null),
      auditRetain,
      scrub: ms.some((m) => m.deleted),
    });
    if (!a.ok) {
      const what = ms.length === 1 ? `message ${ms[0].seq} of room "${ms[0].room}"` : `${ms.length} messages`;
      throw new StoreError(`Cannot change ${what}: ${a.error}`);
    }
    return a.counts!.map((n) => n === 1);
  }

  rev(room: string): number {
    return (this.#getRev.get(room) as { rev: number } | undefined)?.rev ?? 0;
  }

  changes(room: string, upTo: number, afterRev: number, limit: number): ChatMessage[] {
    return (this.#changes.all(room, afterRev, upTo, limit) as MessageRow[]).map(messageOf);
  }

  rules(room: string): RoomRules {
    return rulesOf(this.#rules.get(room) as RulesRow | undefined);
  }

  access(room: string, uid: string, now: number): RoomAccess {
    const out: RoomAccess = {
      exists: this.#exists.get(room, room) !== undefined,
      rules: this.rules(room),
      allowed: false,
    };
    for (const p of this.#person.all(room, uid) as { kind: string; until: number }[]) {
      if (p.kind === "allow") out.allowed = true;
      else if (holds(p.until, now)) out[p.kind as "ban" | "mute"] = p.until;
    }
    return out;
  }

  accessList(room: string, now: number): AccessList {
    const out: AccessList = { allowed: [], bans: [], mutes: [] };
    for (const p of this.#people.all(room) as { uid: string; kind: string; until: number }[]) {
      if (p.kind === "allow") out.allowed.push(p.uid);
      else if (holds(p.until, now)) {
        out[p.kind === "ban" ? "bans" : "mutes"].push({ uid: p.uid, until: p.until });
      }
    }
    return out;
  }

  async changeRoom(
    room: string,
    change: RoomChange,
    audit: AuditEntry,
    auditRetain: number,
  ): Promise<RoomRules> {
    const a = await this.#request({
      id: 0,
      op: "room",
      room,
      change,
      audit: auditRow(room, audit),
      auditRetain,
    });
    if (!a.ok) throw new StoreError(`Cannot ${change.kind} in room "${room}": ${a.error}`);
    return this.rules(room);
  }

  audit(room: string, before: number, limit: number): AuditEntry[] {
    // node:sqlite binds Infinity as a REAL, which compares right; the bound keeps it an integer anyway.
    const rows = this.#audit.all(room, Math.min(before, Number.MAX_SAFE_INTEGER), limit) as AuditRecord[];
    return rows.map(auditEntryOf);
  }

  publicRooms(query: RoomQuery): StoredRoom[] {
    const { prefix, after, limit } = query;
    const rows =
      (after !== "" && compareNames(after, prefix) >= 0
        ? this.#roomsAfter.all(after, prefix, limit)
        : this.#roomsFrom.all(prefix, prefix, limit)) as unknown as StoredRoom[];
    return rows.map(({ room, topic }) => ({ room, topic }));
  }

  async prune(now: number): Promise<number> {
    const { retainMessages, retainMs } = this.#opts;
    const a = await this.#request({ id: 0, op: "prune", now, retainMessages, retainMs });
    if (!a.ok) throw new StoreError(`Cannot apply retention: ${a.error}`);
    return a.count ?? 0;
  }

  search(request: SearchRequest): SearchPage {
    const { query: q, order, limit, deadline } = request;
    const high = Math.min(
      q.before === undefined ? Number.MAX_SAFE_INTEGER : q.before * 1000,
      order === "newest" && request.cursor !== undefined ? Number(request.cursor) : Number.MAX_SAFE_INTEGER,
    );
    const low = q.after === undefined ? 0 : q.after * 1000;
    if (request.rooms?.length === 0) return { messages: [] };
    const offset = order === "best" && request.cursor !== undefined ? Number(request.cursor.slice(1)) : 0;
    const args = [ftsMatch(q, request.rooms), high, low];
    const rows = order === "best"
      ? this.#searchBest.iterate(...args, offset, request.bestWindow)
      : this.#search.iterate(...args);
    const messages: ChatMessage[] = [];
    let last = 0, more = false, partial = false;
    for (const r of rows as Iterable<{ id: number; room: string; seq: number }>) {
      if (messages.length === limit) {
        more = true;
        break;
      }
      const row = this.#message.get(r.room, r.seq) as MessageRow | undefined;
      // A row retention removed since (its index row goes at the next prune).
      if (row && !row.deleted) messages.push(messageOf(row)), last = r.id;
      if (performance.now() > deadline) {
        partial = true;
        last = r.id;
        break;
      }
    }
    const out: SearchPage = { messages };
    if (more || partial) out.next = order === "best" ? `r${offset + messages.length}` : String(last);
    if (partial) out.partial = true;
    return out;
  }

  /**
   * Indexes the history written before the search index existed, a step at a time in the background
   * (the rows of a step are read here and written by the writer in one transaction with the progress),
   * until it is done or the store closes. New messages are indexed as they are written meanwhile.
   */
  async #rebuildIndex(): Promise<void> {
    const at = this.#db.prepare("SELECT v FROM meta WHERE k = 'search_rebuild'").get() as
      | { v: string }
      | undefined;
    if (!at || at.v === "done") return;
    const next = this.#db.prepare(
      `SELECT room, seq, ts, sender, text FROM messages WHERE deleted = 0 AND (room, seq) > (?, ?)
       ORDER BY room, seq ${LIMIT}`,
    );
    const total =
      (this.#db.prepare("SELECT count(*) AS n FROM messages WHERE deleted = 0").get() as { n: number })
        .n;
    let [room, seq] = JSON.parse(at.v) as [string?, number?];
    let indexed = 0;
    while (!this.#closed && !this.#dead) {
      const batch = next.all(room ?? "", seq ?? -1, REBUILD_STEP) as {
        room: string;
        seq: number;
        ts: number;
        sender: string;
        text: string;
      }[];
      const done = batch.length < REBUILD_STEP;
      const lastRow = batch.at(-1);
      if (lastRow) [room, seq] = [lastRow.room, lastRow.seq];
      const rows = batch.map((m) => [m.room, m.seq, m.ts, m.sender, m.text]);
      const cursor = done ? "done" : JSON.stringify([room, seq]);
      const a = await this.#request({ id: 0, op: "index", rows, cursor });
      if (!a.ok) return;
      indexed += batch.length;
      this.#opts.onIndexProgress?.({ indexed, total, done });
      if (done) return;
      // Sends and reads go between steps.
      await new Promise((r) => setTimeout(r, 0));
    }
  }

  close(): Promise<void> {
    return this.#closed ??= (async () => {
      await this.#rebuild;
      this.#peopleBatch?.send();
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

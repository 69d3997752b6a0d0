/**
 * History storage: the interface every store implements, and the in-memory one.
 * Stores are synchronous: the chat layer groups many messages into one `append` call, and
 * a store answers reads from what has been appended, so join + read is one step with no seam.
 * @module
 */
import type { ChatMessage } from "./protocol.ts";

/** A message as stored: the wire fields plus the sender's key, for de-duplication by `cid`. */
export interface StoredMessage extends ChatMessage {
  /** Stable key of the sending person (a hash of their token). */
  key: string;
}

/** Retention and de-duplication settings a store applies. */
export interface RetentionOptions {
  /** Messages kept per room (0 = all). */
  retainMessages: number;
  /** Milliseconds a message is kept (0 = forever). */
  retainMs: number;
}

/**
 * Where history lives. Reads are synchronous and see every completed `append`; writes are
 * asynchronous, applied in call order. Failures are {@link StoreError}s.
 */
export interface Store {
  /**
   * Names this history: set once when it is created, so a history that started over (a new file, a
   * memory store after a restart) has another one and nobody resumes into restarted seqs.
   */
  readonly epoch: string;
  /** Writes `batch` atomically and durably; when it resolves, every message survives a crash. */
  append(batch: readonly StoredMessage[]): Promise<void>;
  /** The highest `seq` ever stored in `room` (0 if none), even if pruned since. */
  lastSeq(room: string): number;
  /** Messages with `seq > after`, oldest first, at most `limit`. */
  after(room: string, after: number, limit: number): ChatMessage[];
  /** The newest `limit` messages with `seq < before`, oldest first. */
  before(room: string, before: number, limit: number): ChatMessage[];
  /** The message person `key` sent with `cid` at or after `sinceTs`. */
  findCid(key: string, cid: string, sinceTs: number): ChatMessage | undefined;
  /** Applies retention; resolves to how many messages were deleted. */
  prune(now: number): Promise<number>;
  /** Waits for pending writes, then closes files. Idempotent. */
  close(): Promise<void>;
}

/** A store failure: the message says what failed and where. */
export class StoreError extends Error {
  override name = "StoreError";
}

/** A random epoch: 16 bytes, base64url. */
export function newEpoch(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Strips the store-only field. */
export function toWire(m: StoredMessage): ChatMessage {
  const o: ChatMessage = { room: m.room, seq: m.seq, from: m.from, text: m.text, ts: m.ts };
  if (m.cid !== undefined) o.cid = m.cid;
  return o;
}

/** Keeps everything in memory: for tests and `--store memory`. Lost on restart. */
export class MemoryStore implements Store {
  readonly #rooms = new Map<string, { last: number; messages: StoredMessage[] }>();
  readonly #cids = new Map<string, StoredMessage>();
  readonly #opts: RetentionOptions;
  readonly epoch = newEpoch();

  constructor(opts: RetentionOptions) {
    this.#opts = opts;
  }

  append(batch: readonly StoredMessage[]): Promise<void> {
    try {
      this.#append(batch);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #append(batch: readonly StoredMessage[]): void {
    const last = new Map<string, number>();
    for (const m of batch) {
      const prev = last.get(m.room) ?? this.lastSeq(m.room);
      if (m.seq <= prev) throw new StoreError(`seq ${m.seq} in room "${m.room}" is not after ${prev}`);
      last.set(m.room, m.seq);
    }
    for (const m of batch) {
      let r = this.#rooms.get(m.room);
      if (!r) this.#rooms.set(m.room, r = { last: 0, messages: [] });
      r.last = m.seq;
      r.messages.push(m);
      if (m.cid !== undefined) this.#cids.set(`${m.key}\n${m.cid}`, m);
    }
    // Count retention runs at once so memory is bounded between prunes.
    if (this.#opts.retainMessages > 0) {
      for (const m of batch) {
        const r = this.#rooms.get(m.room)!;
        const excess = r.messages.length - this.#opts.retainMessages;
        if (excess > 0) this.#drop(r.messages.splice(0, excess));
      }
    }
  }

  lastSeq(room: string): number {
    return this.#rooms.get(room)?.last ?? 0;
  }

  after(room: string, after: number, limit: number): ChatMessage[] {
    const msgs = this.#rooms.get(room)?.messages ?? [];
    const i = lowerBound(msgs, after + 1);
    return msgs.slice(i, i + limit).map(toWire);
  }

  before(room: string, before: number, limit: number): ChatMessage[] {
    const msgs = this.#rooms.get(room)?.messages ?? [];
    const end = lowerBound(msgs, before);
    return msgs.slice(Math.max(0, end - limit), end).map(toWire);
  }

  findCid(key: string, cid: string, sinceTs: number): ChatMessage | undefined {
    const m = this.#cids.get(`${key}\n${cid}`);
    return m && m.ts >= sinceTs ? toWire(m) : undefined;
  }

  prune(now: number): Promise<number> {
    return Promise.resolve(this.#prune(now));
  }

  #prune(now: number): number {
    if (this.#opts.retainMs <= 0) return 0;
    const cutoff = now - this.#opts.retainMs;
    let n = 0;
    for (const r of this.#rooms.values()) {
      let i = 0;
      while (i < r.messages.length && r.messages[i].ts < cutoff) i++;
      if (i > 0) this.#drop(r.messages.splice(0, i)), n += i;
    }
    return n;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  #drop(gone: StoredMessage[]): void {
    for (const m of gone) if (m.cid !== undefined) this.#cids.delete(`${m.key}\n${m.cid}`);
  }
}

/** First index whose seq is >= `seq` (messages are sorted by seq). */
function lowerBound(msgs: readonly StoredMessage[], seq: number): number {
  let lo = 0, hi = msgs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (msgs[mid].seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

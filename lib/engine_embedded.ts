/**
 * The engine of one process: history in a {@link Store} (SQLite or memory); appends, groups of
 * message changes and retention run one at a time, in call order.
 * @module
 */
import {
  type AccessList,
  type AuditEntry,
  type ChangeGuard,
  type ChangeInfo,
  type ChatMessage,
  checkRoomChange,
  cidKey,
  type ConversationEntry,
  type Draft,
  guardProblem,
  type MessageChange,
  type MessageReactions,
  type Person,
  quoteOf,
  refusedDraft,
  requote,
  type RoomAccess,
  type RoomChange,
  type RoomRules,
  type StoredMessage,
  toWire,
} from "./domain.ts";
import type {
  Appended,
  ChangeResult,
  ChangesPage,
  Engine,
  EngineEvents,
  HistoryPage,
  ReactionCaps,
  ReactResult,
  ReadMark,
  RoomListing,
  RoomQuery,
  SearchPage,
  SearchRequest,
  StoredRoom,
} from "./engine.ts";
import { nameKeys } from "./names.ts";
import type { Store } from "./store.ts";

/** Options of the {@link EmbeddedEngine}. */
export interface EmbeddedOptions {
  /** Milliseconds a `cid` is remembered for de-duplication. */
  dedupWindowMs: number;
  /** Audit entries kept per room (the newest). @default 1000 */
  auditRetain?: number;
  /** Milliseconds a guest who never wrote stays in the people directory. @default Infinity (always) */
  guestForgetMs?: number;
}

/** Audit entries kept per room when the options do not say. */
export const DEFAULT_AUDIT_RETAIN = 1000;

/** A message change waiting for its group's write (see {@link EmbeddedEngine.changeMessage}). */
interface WaitingChange {
  room: string;
  seq: number;
  change: MessageChange;
  guard: ChangeGuard;
  audit?: AuditEntry;
  resolve(r: ChangeResult): void;
  reject(e: unknown): void;
}

/**
 * One process, history in a {@link Store}; appends, groups of message changes and retention run one
 * at a time, in call order.
 */
export class EmbeddedEngine implements Engine {
  readonly #store: Store;
  readonly #opts: EmbeddedOptions;
  readonly #subscribers = new Set<EngineEvents>();
  /** The append in progress: the next waits for it, so numbering reads what is stored. */
  #tail: Promise<unknown> = Promise.resolve();
  /**
   * Per room, the first seq of the append in progress: it may be on disk (and readable) before it
   * is delivered, and a read must not hand it out then, or it would arrive twice.
   */
  readonly #writing = new Map<string, number>();
  /** The message changes that go in the next group's write (queued, not started yet). */
  #changesWaiting: WaitingChange[] | undefined;

  constructor(store: Store, opts: EmbeddedOptions) {
    this.#store = store;
    this.#opts = opts;
  }

  append(batch: readonly Draft[]): Promise<Appended[]> {
    return this.#queue(() => this.#append(batch));
  }

  async #append(batch: readonly Draft[]): Promise<Appended[]> {
    const out: Appended[] = [];
    const fresh: StoredMessage[] = [];
    const next = new Map<string, number>();
    const inBatch = new Map<string, StoredMessage>();
    for (const d of batch) {
      const dedup = d.cid === undefined ? undefined : cidKey(d.key, d.cid);
      if (dedup !== undefined) {
        const earlier = inBatch.get(dedup) ??
          this.#store.findCid(d.key, d.cid!, d.ts - this.#opts.dedupWindowMs);
        if (earlier) {
          out.push({ message: earlier, duplicate: true });
          continue;
        }
      }
      let quote: ChatMessage["replyTo"];
      if (d.replyTo !== undefined) {
        // Earlier in this batch (as the Redis script, which has added it already, finds it) or stored.
        const target = fresh.find((m) => m.room === d.room && m.seq === d.replyTo) ??
          this.#store.message(d.room, d.replyTo);
        if (!target || target.deleted) {
          out.push({ message: refusedDraft(d), duplicate: false, refused: "reply_not_found" });
          continue;
        }
        quote = { seq: target.seq, from: target.from, text: quoteOf(target.text) };
      }
      const seq = (next.get(d.room) ?? this.#store.lastSeq(d.room)) + 1;
      next.set(d.room, seq);
      const m: StoredMessage = { room: d.room, seq, from: d.from, text: d.text, ts: d.ts, key: d.key };
      if (d.cid !== undefined) m.cid = d.cid;
      if (d.display !== undefined) m.display = d.display;
      if (quote) m.replyTo = quote;
      if (d.mentions?.length) {
        m.mentions = d.mentions.map((p) => p.name);
        m.mentionKeys = d.mentions.map((p) => p.key);
      }
      if (d.between !== undefined) m.between = d.between;
      fresh.push(m);
      out.push({ message: m, duplicate: false });
      if (dedup !== undefined) inBatch.set(dedup, m);
    }
    for (const m of fresh) if (!this.#writing.has(m.room)) this.#writing.set(m.room, m.seq);
    try {
      await this.#store.append(fresh);
      for (const m of fresh) for (const s of this.#subscribers) s.message(m);
    } finally {
      this.#writing.clear();
    }
    return out;
  }

  after(room: string, after: number, limit: number): Promise<HistoryPage> {
    const lastSeq = this.#delivered(room);
    const messages = this.#store.after(room, after, limit).filter((m) => m.seq <= lastSeq);
    return Promise.resolve({ messages: this.#quoted(room, messages), lastSeq, epoch: this.#store.epoch });
  }

  before(room: string, before: number, limit: number): Promise<HistoryPage> {
    const lastSeq = this.#delivered(room);
    const messages = this.#store.before(room, Math.min(before, lastSeq + 1), limit);
    return Promise.resolve({ messages: this.#quoted(room, messages), lastSeq, epoch: this.#store.epoch });
  }

  /**
   * `messages` of `room` with each reply's quote made from the message it answers as it is now: a
   * store keeps a reply's reference (seq and sender), so that a change rewrites no reply. When
   * retention removed that message, the quote is what the store kept (no text, for a reply stored
   * by reference).
   */
  #quoted<M extends ChatMessage>(room: string, messages: M[]): M[] {
    return messages.map((m) => {
      if (!m.replyTo || m.deleted) return m;
      const original = this.#store.message(room, m.replyTo.seq);
      return original ? { ...m, replyTo: requote(m.replyTo.seq, m.replyTo.from, original) } : m;
    });
  }

  #delivered(room: string): number {
    const first = this.#writing.get(room);
    return first === undefined ? this.#store.lastSeq(room) : first - 1;
  }

  subscribe(events: EngineEvents): () => void {
    this.#subscribers.add(events);
    return () => this.#subscribers.delete(events);
  }

  rememberPerson(p: Person, guest = false): Promise<void> {
    const known = this.#store.person(p.key);
    // Most connects change nothing: no write then. A silent guest who stays connected past the forget
    // time is forgotten while online (found through the hub meanwhile) and written again at its next connect.
    if (known && known.uid === p.uid && known.name === p.name) return Promise.resolve();
    const now = Date.now();
    const forget = this.#opts.guestForgetMs;
    const until = guest && forget !== undefined && Number.isFinite(forget) ? now + forget : undefined;
    return this.#store.rememberPerson(p, nameKeys(p.name)[0], now, until);
  }

  findPerson(name: string): Promise<Person | undefined> {
    return Promise.resolve(this.#store.findPerson(nameKeys(name)));
  }

  people(keys: readonly string[]): Promise<(Person | undefined)[]> {
    return Promise.resolve(keys.map((k) => this.#store.person(k)));
  }

  conversations(key: string, before: number, limit: number): Promise<ConversationEntry[]> {
    return Promise.resolve(this.#store.conversations(key, before, limit));
  }

  conversationPeer(key: string, conv: string): Promise<string | undefined> {
    return Promise.resolve(this.#store.conversationPeer(key, conv));
  }

  wrote(conv: string, key: string): Promise<boolean> {
    return Promise.resolve(this.#store.wrote(conv, key));
  }

  readPositions(key: string, rooms: readonly string[]): Promise<number[]> {
    return Promise.resolve(rooms.map((r) => this.#store.readPosition(key, r)));
  }

  async markRead(key: string, room: string, seq: number): Promise<ReadMark> {
    const before = this.#store.readPosition(key, room);
    const target = Math.min(seq, this.#store.lastSeq(room));
    if (target <= before) return { seq: before, moved: false };
    await this.#store.markRead(key, room, target);
    const now = this.#store.readPosition(key, room);
    return { seq: now, moved: now > before };
  }

  access(room: string, uid: string): Promise<RoomAccess> {
    return Promise.resolve(this.#store.access(room, uid, Date.now()));
  }

  rules(room: string): Promise<RoomRules> {
    return Promise.resolve(this.#store.rules(room));
  }

  publicRooms(query: RoomQuery): Promise<RoomListing<StoredRoom>> {
    const rooms = this.#store.publicRooms(query);
    return Promise.resolve(
      rooms.length < query.limit ? { rooms } : { rooms, through: rooms.at(-1)!.room },
    );
  }

  accessList(room: string): Promise<AccessList> {
    return Promise.resolve(this.#store.accessList(room, Date.now()));
  }

  audit(room: string, before: number, limit: number): Promise<AuditEntry[]> {
    return Promise.resolve(this.#store.audit(room, before, limit));
  }

  changeRoom(room: string, change: RoomChange, audit: AuditEntry): Promise<RoomRules> {
    try {
      checkRoomChange(change);
    } catch (e) {
      return Promise.reject(e);
    }
    // In line with appends, so every subscriber sees changes and messages in the order they were made.
    return this.#queue(async () => {
      const rules = await this.#store.changeRoom(room, change, audit, this.#auditRetain);
      for (const s of this.#subscribers) s.roomChanged?.(room, change, { ...rules });
      return rules;
    });
  }

  /**
   * Queued with the appends, in groups: the changes that arrive while the engine writes go in one
   * store write together (one transaction, one fsync), as the sends of a moment go in one append. So
   * a flood of edits costs the store what a flood of sends does, and a send waits for at most one
   * group of changes, not for each of them.
   */
  changeMessage(
    room: string,
    seq: number,
    change: MessageChange,
    guard: ChangeGuard,
    audit?: AuditEntry,
  ): Promise<ChangeResult> {
    return new Promise((resolve, reject) => {
      const c: WaitingChange = { room, seq, change, guard, audit, resolve, reject };
      if (this.#changesWaiting) return void this.#changesWaiting.push(c);
      const group = this.#changesWaiting = [c];
      this.#queue(() => {
        this.#changesWaiting = undefined;
        return this.#changeGroup(group);
      }).catch((e) => group.forEach((g) => g.reject(e)));
    });
  }

  /**
   * Checks each change of `group` against the message as the changes before it in the group left it,
   * gives each the room's next change revision, and writes them in one store write.
   */
  async #changeGroup(group: readonly WaitingChange[]): Promise<void> {
    const revs = new Map<string, number>();
    const state = new Map<string, StoredMessage | undefined>();
    const taken: { c: WaitingChange; next: StoredMessage; rev: number }[] = [];
    for (const c of group) {
      const at = `${c.room}\n${c.seq}`;
      const m = state.has(at) ? state.get(at) : this.#store.message(c.room, c.seq);
      const problem = guardProblem(m, c.guard);
      if (problem) {
        c.resolve({ ok: false, problem });
        continue;
      }
      const rev = (revs.get(c.room) ?? this.#store.rev(c.room)) + 1;
      revs.set(c.room, rev);
      const next: StoredMessage = c.change.kind === "delete"
        ? { ...m!, text: "", deleted: true, editedTs: undefined, rev }
        : { ...m!, text: c.change.text, editedTs: c.change.editedTs, rev };
      if (next.editedTs === undefined) delete next.editedTs;
      state.set(at, next);
      taken.push({ c, next, rev });
    }
    if (taken.length === 0) return;
    const done = await this.#store.changeMessages(
      taken.map(({ c, next }) => ({ message: next, audit: c.audit })),
      this.#auditRetain,
    );
    taken.forEach(({ c, next, rev }, i) => {
      // Not stored any more (retention runs in the same queue, so this is a store that lost it).
      if (!done[i]) return c.resolve({ ok: false, problem: "not_found" });
      const [message] = this.#quoted(next.room, [toWire(next)]);
      const info: ChangeInfo = c.change.kind === "delete" ? { rev, by: c.change.by } : { rev };
      for (const s of this.#subscribers) s.messageChanged?.({ ...message }, info);
      c.resolve({ ok: true, message, rev });
    });
  }

  message(room: string, seq: number): Promise<ChatMessage | undefined> {
    const m = this.#store.message(room, seq);
    return Promise.resolve(m && this.#quoted(room, [toWire(m)])[0]);
  }

  react(
    room: string,
    seq: number,
    key: string,
    emoji: string,
    want: boolean | undefined,
    caps: ReactionCaps,
  ): Promise<ReactResult> {
    // Queued like changeMessage: the check and the write see the same message and counts.
    return this.#queue(async (): Promise<ReactResult> => {
      const m = this.#store.message(room, seq);
      if (!m || m.deleted) return { ok: false, problem: "not_found" };
      const now = this.#store.reactions(room, seq, seq, key).get(seq) ?? { counts: {}, mine: [] };
      const had = now.mine.includes(emoji);
      const on = want ?? !had;
      const counts = { ...now.counts };
      if (on === had) return { ok: true, on, counts };
      if (on) {
        if (now.mine.length >= caps.maxPerPerson) return { ok: false, problem: "too_many_mine" };
        if (!(emoji in counts) && Object.keys(counts).length >= caps.maxEmoji) {
          return { ok: false, problem: "too_many_emoji" };
        }
        if (Object.values(counts).reduce((a, b) => a + b, 0) >= caps.maxTotal) {
          return { ok: false, problem: "too_many_total" };
        }
      }
      await this.#store.react(room, seq, emoji, key, on, Date.now());
      counts[emoji] = (counts[emoji] ?? 0) + (on ? 1 : -1);
      if (counts[emoji] <= 0) delete counts[emoji];
      return { ok: true, on, counts };
    });
  }

  reactions(room: string, from: number, to: number, key: string): Promise<Map<number, MessageReactions>> {
    return Promise.resolve(this.#store.reactions(room, from, to, key));
  }

  mentionCounts(
    key: string,
    rooms: readonly { room: string; after: number }[],
  ): Promise<Record<string, number>> {
    return Promise.resolve(this.#store.mentionCounts(key, rooms));
  }

  changes(room: string, upTo: number, afterRev: number, limit: number): Promise<ChangesPage> {
    // Synchronous reads: the rev and the messages are one snapshot. Only delivered seqs count.
    const rev = this.#store.rev(room);
    const bound = Math.min(upTo, this.#delivered(room));
    const messages = limit > 0 ? this.#quoted(room, this.#store.changes(room, bound, afterRev, limit)) : [];
    return Promise.resolve({ rev, epoch: this.#store.epoch, messages });
  }

  get #auditRetain(): number {
    return this.#opts.auditRetain ?? DEFAULT_AUDIT_RETAIN;
  }

  #queue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn);
    this.#tail = run.catch(() => {});
    return run;
  }

  search(request: SearchRequest): Promise<SearchPage> {
    try {
      const page = this.#store.search(request);
      // A message being written is not handed out before it is delivered (as `after` does not).
      const messages = page.messages.filter((m) => m.seq <= this.#delivered(m.room));
      return Promise.resolve({ ...page, messages: messages.map((m) => this.#quoted(m.room, [m])[0]) });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The embedded store reports its failures through the writes that fail. */
  health(): string | undefined {
    return undefined;
  }

  prune(now: number): Promise<number> {
    // Queued: a change checks a message and writes it with no retention in between.
    return this.#queue(() => this.#store.prune(now));
  }

  async close(): Promise<void> {
    await this.#tail;
    await this.#store.close();
  }
}

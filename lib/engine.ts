/**
 * The engine: what several server processes would have to share about rooms. It numbers and stores
 * messages (the `seq` of a room is the engine's, gap-free and never reused), answers history reads,
 * and hands every stored message, once and in order, to the processes that serve the room. `Chat`
 * keeps the per-connection rules and does not know which engine it runs on.
 *
 * This module holds the interface and the embedded engine: one process, history in a {@link Store}.
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
import { nameKeys } from "./names.ts";
import type { Store } from "./store.ts";

// The domain's types, where callers of the engine have always found them.
export {
  type AccessList,
  type AuditEntry,
  type ChangeGuard,
  type ConversationEntry,
  conversationId,
  DEFAULT_RULES,
  type Draft,
  guardProblem,
  type Mention,
  type MessageChange,
  type MessageReactions,
  type Person,
  refusedDraft,
  type RoomAccess,
  type RoomChange,
  type RoomRules,
} from "./domain.ts";

/** What {@link Engine.markRead} did: the stored read position, and whether it moved. */
export interface ReadMark {
  seq: number;
  moved: boolean;
}

/** What {@link Engine.append} made of one draft. */
export interface Appended {
  /**
   * The stored message: the new one, or for a repeated `cid` the one stored before. For a refused
   * draft, the draft as it came with seq 0: nothing was stored.
   */
  message: ChatMessage;
  /** True when the `cid` was stored before (within the dedup window): nothing new was stored. */
  duplicate: boolean;
  /** The draft was not stored: the message its `replyTo` names is not stored (or deleted). */
  refused?: "reply_not_found";
}

/** Caps a reaction is checked against. */
export interface ReactionCaps {
  /** Distinct emoji on one message. */
  maxEmoji: number;
  /** Reactions of one person on one message. */
  maxPerPerson: number;
  /** Reactions on one message, everyone's together: fresh guests cannot grow it past this. */
  maxTotal: number;
}

/** What {@link Engine.react} did. */
export type ReactResult =
  | { ok: true; on: boolean; counts: Record<string, number> }
  | { ok: false; problem: "not_found" | "too_many_emoji" | "too_many_mine" | "too_many_total" };

/** A history read: messages (oldest first) and the room's newest delivered seq when it was read. */
export interface HistoryPage {
  /** None newer than `lastSeq`. */
  messages: ChatMessage[];
  /**
   * The highest seq of the room handed to the subscribers when read: every message up to it is
   * stored and was delivered, every later one will be delivered after the read.
   */
  lastSeq: number;
  /** The room's history epoch: another one means its seqs started over (history was lost). */
  epoch: string;
}

/** The engine cannot be reached (Redis is down): nothing was stored or read; try again later. */
export class UnavailableError extends Error {
  override name = "UnavailableError";
}

/** What {@link Engine.changeMessage} did. */
export type ChangeResult =
  /** `rev`: the room's change revision this change took (see {@link Engine.changes}). */
  | { ok: true; message: ChatMessage; rev: number }
  | { ok: false; problem: "not_found" | "not_author" | "too_old" };

/** What {@link Engine.changes} read. */
export interface ChangesPage {
  /**
   * The room's change revision when read: it counts the room's message changes (deletes and edits),
   * one each, from 1; 0 when none was made.
   */
  rev: number;
  /** The history it counts in (see {@link HistoryPage.epoch}). */
  epoch: string;
  /** The changed messages as they are now (tombstone or edited), oldest seq first. */
  messages: ChatMessage[];
}

/** What an engine tells its subscriber. */
export interface EngineEvents {
  /** A stored message: every one of a watched room, once, in seq order. */
  message(message: ChatMessage): void;
  /**
   * A room has a new epoch: its history was lost and its seqs start over (`from` 0), or its store
   * went back to seq `from` and the seqs after it are given out again.
   */
  restarted?(room: string, epoch: string, from: number): void;
  /** A room's rules or people changed, on any process. */
  roomChanged?(room: string, change: RoomChange, rules: RoomRules): void;
  /**
   * A stored message was deleted (a tombstone) or edited, on any process: told after the message
   * itself, in the room's order, so a change never overtakes what it changes. The `deleted` and
   * `edited` lines come from here (and from nowhere else).
   */
  messageChanged?(message: ChatMessage, info: ChangeInfo): void;
}

/**
 * Where rooms are stored: history, room rules and audit, the people directory, reactions, read
 * positions and conversations. Every engine implements all of it; what processes share (presence,
 * names, live lines) is {@link Sharing}'s (lib/sharing.ts). See the module doc.
 */
export interface Engine {
  /**
   * Numbers and durably stores one group of drafts, in order; each new message reaches the subscribers
   * once (the embedded engine hands it over before it resolves; Redis through pub/sub, maybe after, so
   * a sender's ack can come before its message). A draft whose `cid` the same person used within the
   * dedup window resolves to the message stored then. Rejects (storing nothing of the group) when
   * storing fails.
   */
  append(batch: readonly Draft[]): Promise<Appended[]>;
  /** Messages with `seq > after`, oldest first, at most `limit`. */
  after(room: string, after: number, limit: number): Promise<HistoryPage>;
  /** The newest `limit` messages with `seq < before`, oldest first. */
  before(room: string, before: number, limit: number): Promise<HistoryPage>;
  /** Receives what happens in watched rooms (see {@link EngineEvents}). Returns the function that unsubscribes. */
  subscribe(events: EngineEvents): () => void;
  /**
   * The people directory (durable): records person `p.key`'s uid and current name, so a direct
   * message to that name finds them while they are offline. A `guest`'s entry is forgotten
   * `guestForgetMs` after it was first written, unless the guest writes a message or is in a
   * conversation: then it stays as long as that message may (the retention's age, forever without one).
   */
  rememberPerson(p: Person, guest?: boolean): Promise<void>;
  /** The person the directory knows by `name` (or a lookalike of it), the one seen last if several. */
  findPerson(name: string): Promise<Person | undefined>;
  /** The directory's entry of each key (undefined for a key it does not know). */
  people(keys: readonly string[]): Promise<(Person | undefined)[]>;
  /** Person `key`'s direct conversations, newest first: those whose last message is older than `before` (ms). */
  conversations(key: string, before: number, limit: number): Promise<ConversationEntry[]>;
  /** The other person of conversation `conv`, if person `key` is in it; else undefined. */
  conversationPeer(key: string, conv: string): Promise<string | undefined>;
  /**
   * Whether person `key` has written in direct conversation `conv` (a message of theirs is stored, or on
   * Redis: was, while the conversation lasts). A message to someone who has not is a first contact.
   */
  wrote(conv: string, key: string): Promise<boolean>;
  /** Person `key`'s read position in each of `rooms` (rooms and conversations; 0 when never read). */
  readPositions(key: string, rooms: readonly string[]): Promise<number[]>;
  /**
   * Moves person `key`'s read position in `room` to `seq`, clamped to the room's last seq; never
   * backwards. Resolves to the stored position. A sent message moves its sender's position too (in
   * {@link append}).
   */
  markRead(key: string, room: string, seq: number): Promise<ReadMark>;
  /** What person `uid` may do in `room` (defaults when nothing is stored). */
  access(room: string, uid: string): Promise<RoomAccess>;
  /** The room's rules (defaults when nothing is stored). */
  rules(room: string): Promise<RoomRules>;
  /**
   * Applies `change` durably, appends `audit` to the room's audit log, and tells every process
   * ({@link EngineEvents.roomChanged}). Resolves to the rules after the change.
   */
  changeRoom(room: string, change: RoomChange, audit: AuditEntry): Promise<RoomRules>;
  /**
   * Deletes (the text is gone from the store, the seq stays as a tombstone) or edits one stored message
   * if `guard` allows, appends `audit` when given, and tells every process
   * ({@link EngineEvents.messageChanged}).
   */
  changeMessage(
    room: string,
    seq: number,
    change: MessageChange,
    guard: ChangeGuard,
    audit?: AuditEntry,
  ): Promise<ChangeResult>;
  /**
   * The room's change revision, read before the messages, and the current form of every stored
   * message with `seq <= upTo` whose last change took a rev above `afterRev`: at most `limit`, oldest
   * seq first. A change made after the read has a higher rev than the one returned.
   */
  changes(room: string, upTo: number, afterRev: number, limit: number): Promise<ChangesPage>;
  /** The room's audit log, newest first: entries older than `before` (ms), at most `limit`. */
  audit(room: string, before: number, limit: number): Promise<AuditEntry[]>;
  /** The room's added people, bans and mutes (expired ones left out). */
  accessList(room: string): Promise<AccessList>;
  /** The stored message `seq` of `room` (a tombstone too), or undefined. */
  message(room: string, seq: number): Promise<ChatMessage | undefined>;
  /**
   * Puts (`want` true), takes back (false) or toggles (undefined) person `key`'s reaction `emoji` on
   * message `seq`, within `caps`, and resolves to the message's counts after it. A deleted or unknown
   * message is `not_found`. Nothing is told to the subscribers: the caller tells the room.
   */
  react(
    room: string,
    seq: number,
    key: string,
    emoji: string,
    want: boolean | undefined,
    caps: ReactionCaps,
  ): Promise<ReactResult>;
  /** The reactions of the messages `from`..`to` of `room` that have any, with person `key`'s own. */
  reactions(room: string, from: number, to: number, key: string): Promise<Map<number, MessageReactions>>;
  /**
   * How many messages mention person `key` in each room after the given seq (a read position): rooms
   * without any are left out. Mentions of deleted messages, and of those retention removed, do not count.
   */
  mentionCounts(
    key: string,
    rooms: readonly { room: string; after: number }[],
  ): Promise<Record<string, number>>;
  /** Why the engine cannot serve now (e.g. "redis unavailable"), or undefined while it can. */
  health(): string | undefined;
  /** Applies retention; resolves to how many messages were deleted. */
  prune(now: number): Promise<number>;
  /** Finishes pending writes and closes. Idempotent. */
  close(): Promise<void>;
}

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

/**
 * History storage: the interface every store implements, and the in-memory one.
 * Stores are synchronous: the chat layer groups many messages into one `append` call, and
 * a store answers reads from what has been appended, so join + read is one step with no seam.
 * @module
 */
import {
  type AccessList,
  type AuditEntry,
  type ChatMessage,
  type ConversationEntry,
  DEFAULT_RULES,
  holds,
  mergeRules,
  type MessageReactions,
  newEpoch,
  type Person,
  type RoomAccess,
  type RoomChange,
  type RoomRules,
  type StoredMessage,
  toWire,
} from "./domain.ts";
import { listOf, type RoomQuery, type StoredRoom } from "./engine.ts";
import type { SearchPage, SearchRequest } from "./engine.ts";
import { fold, type IndexTerms, indexTerms, matches, score, searchId } from "./search_text.ts";

// The domain's helpers, where stores have always found them.
export { checkRoomChange, holds, mergeRules, newEpoch, type StoredMessage, toWire } from "./domain.ts";

/** Retention and de-duplication settings a store applies. */
export interface RetentionOptions {
  /** Messages kept per room (0 = all). */
  retainMessages: number;
  /** Milliseconds a message is kept (0 = forever). */
  retainMs: number;
}

/**
 * Until when a guest who wrote (or is in a conversation) at `ts` stays in the people directory: as long as
 * what they wrote may be kept, forever when messages are.
 */
export function keptUntil(ts: number, retainMs: number): number {
  return retainMs > 0 ? ts + retainMs : Number.MAX_SAFE_INTEGER;
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
  /**
   * Writes `batch` atomically and durably; when it resolves, every message survives a crash. In the
   * same write: each sender's read position moves to their message, a message with `between`
   * puts its conversation in both people's lists (last ts), and a guest among its sender and `between`
   * stays in the directory at least until {@link keptUntil} of its ts.
   */
  append(batch: readonly StoredMessage[]): Promise<void>;
  /** The directory's entry of person `key`. */
  person(key: string): Person | undefined;
  /** The person seen last whose name's first name key is one of `nameKeys`. */
  findPerson(nameKeys: readonly string[]): Person | undefined;
  /**
   * Records a person's uid and current name (`nameKey`: the first of its name keys), seen at `now`. A
   * guest's entry has `until` (ms): {@link prune} forgets it then, unless the guest wrote meanwhile (see
   * {@link append}); an entry that has a later `until` keeps it.
   */
  rememberPerson(p: Person, nameKey: string, now: number, until?: number): Promise<void>;
  /** Person `key`'s conversations with a last message older than `before`, newest first. */
  conversations(key: string, before: number, limit: number): ConversationEntry[];
  /** The other person of `conv` when `key` is in it. */
  conversationPeer(key: string, conv: string): string | undefined;
  /** Whether a message of person `key` is stored in `room`. */
  wrote(room: string, key: string): boolean;
  /** Person `key`'s read position in `room` (0 when none). */
  readPosition(key: string, room: string): number;
  /** Sets person `key`'s read position in `room` to `seq` unless it is further already. */
  markRead(key: string, room: string, seq: number): Promise<void>;
  /** The highest `seq` ever stored in `room` (0 if none), even if pruned since. */
  lastSeq(room: string): number;
  /** Messages with `seq > after`, oldest first, at most `limit`. */
  after(room: string, after: number, limit: number): ChatMessage[];
  /** The newest `limit` messages with `seq < before`, oldest first. */
  before(room: string, before: number, limit: number): ChatMessage[];
  /** The message person `key` sent with `cid` at or after `sinceTs`. */
  findCid(key: string, cid: string, sinceTs: number): ChatMessage | undefined;
  /** The stored message `seq` of `room` (a tombstone too), with its author's key. */
  message(room: string, seq: number): StoredMessage | undefined;
  /**
   * Replaces each stored message of `message.room`/`message.seq` with `message` (an edit, or a
   * tombstone whose text is then gone from the store, with its reactions and mention rows) and appends
   * its `audit`, in order, in one write. No other message is written: a reply keeps a reference to
   * what it answers (its seq and sender), and the engine makes its quote when it is read. Resolves to
   * whether each was written (false: not stored any more).
   */
  changeMessages(
    changes: readonly { message: StoredMessage; audit?: AuditEntry }[],
    auditRetain: number,
  ): Promise<boolean[]>;
  /** Adds (`on`) or removes person `key`'s reaction `emoji` on message `seq` of `room`. */
  react(room: string, seq: number, emoji: string, key: string, on: boolean, ts: number): Promise<void>;
  /** The reactions of messages `from`..`to` of `room` that have any, with person `key`'s own. */
  reactions(room: string, from: number, to: number, key: string): Map<number, MessageReactions>;
  /** Per room, the mention rows of person `key` with a seq after `after` (rooms with none left out). */
  mentionCounts(key: string, rooms: readonly { room: string; after: number }[]): Record<string, number>;
  /**
   * The room's change revision: the highest `rev` a {@link changeMessages} stored (0 if none), kept
   * with the room even when retention removed that message. `changeMessages` with `message.rev` sets
   * it, in the same write.
   */
  rev(room: string): number;
  /** Messages with `seq <= upTo` and a `rev` above `afterRev`, oldest seq first, at most `limit`. */
  changes(room: string, upTo: number, afterRev: number, limit: number): ChatMessage[];
  /** The room's rules (the defaults when none were set). */
  rules(room: string): RoomRules;
  /** What person `uid` may do in `room` at `now` (ms): expired bans and mutes read as absent. */
  access(room: string, uid: string, now: number): RoomAccess;
  /** The room's added people, and its bans and mutes that have not expired at `now`. */
  accessList(room: string, now: number): AccessList;
  /**
   * Applies `change` and appends `audit` (keeping the newest `auditRetain` of the room), in one write.
   * Resolves to the rules after it.
   */
  changeRoom(room: string, change: RoomChange, audit: AuditEntry, auditRetain: number): Promise<RoomRules>;
  /** The room's audit log, newest first: entries with `ts < before`, at most `limit`. */
  audit(room: string, before: number, limit: number): AuditEntry[];
  /**
   * The first `query.limit` rooms of the listing `query` asks for among those with stored messages or
   * an audit entry (every change of rules or people writes one), private ones and conversations left
   * out, in name order (see `RoomQuery`), each with its topic.
   */
  publicRooms(query: RoomQuery): StoredRoom[];
  /**
   * Applies retention, forgets expired bans and mutes, and guests whose directory entry's `until` has
   * passed (with their read positions); resolves to how many messages were deleted.
   */
  prune(now: number): Promise<number>;
  /**
   * Held messages that match `request.query`, in its order (see {@link SearchRequest}); every append,
   * change and prune is seen by the next search. Never a deleted message; an edited one by its text now.
   */
  search(request: SearchRequest): SearchPage;
  /** Waits for pending writes, then closes files. Idempotent. */
  close(): Promise<void>;
}

/** How often (in messages looked at) a search looks at the clock. */
const CLOCK_EVERY = 256;

/** A store failure: the message says what failed and where. */
export class StoreError extends Error {
  override name = "StoreError";
}

/** What the memory store keeps of a room besides its messages. */
interface MemoryRoom {
  rules: RoomRules;
  allowed: Set<string>;
  bans: Map<string, number>;
  mutes: Map<string, number>;
  /** Oldest first. */
  audit: AuditEntry[];
}

/** Options of {@link MemoryStore}. */
export interface MemoryOptions extends RetentionOptions {
  /**
   * Whether messages are indexed for search (`--search`); off, none is found.
   * @default true
   */
  searchIndex?: boolean;
}

/** Keeps everything in memory: for tests and `--store memory`. Lost on restart. */
export class MemoryStore implements Store {
  readonly #rooms = new Map<string, { last: number; messages: StoredMessage[]; rev?: number }>();
  readonly #cids = new Map<string, StoredMessage>();
  readonly #people = new Map<string, MemoryRoom>();
  /** Room to seq to emoji to the keys of the people who reacted with it (emoji in first-use order). */
  readonly #reactions = new Map<string, Map<number, Map<string, Set<string>>>>();
  /** Person key to room to the seqs that mention them. */
  readonly #mentions = new Map<string, Map<string, Set<number>>>();
  /** The people directory: key to person, and first name key to the keys holding it (last seen last). */
  readonly #persons = new Map<string, Person & { nameKey: string; until?: number }>();
  readonly #byName = new Map<string, string[]>();
  /** Person key to conversation id to entry. */
  readonly #convs = new Map<string, Map<string, ConversationEntry>>();
  /** `key\nroom` to read position. */
  readonly #reads = new Map<string, number>();
  /** The search index: `room\nseq` to the message's terms, its sender folded and its place. */
  readonly #docs = new Map<string, { id: number; terms: IndexTerms; sender: string }>();
  /** Places in newest-last order (some of messages gone since: skipped, swept as it grows). */
  #places: { id: number; key: string }[] = [];
  #lastId = 0;
  readonly #opts: MemoryOptions;
  readonly epoch = newEpoch();

  constructor(opts: MemoryOptions) {
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
      const { between, ...stored } = m;
      // A reply keeps what it answers by reference: the engine quotes it when read (see changeMessages).
      if (stored.replyTo) stored.replyTo = { seq: stored.replyTo.seq, from: stored.replyTo.from, text: "" };
      r.messages.push(stored);
      if (m.cid !== undefined) this.#cids.set(`${m.key}\n${m.cid}`, stored);
      this.#index(stored);
      for (const key of m.mentionKeys ?? []) {
        let rooms = this.#mentions.get(key);
        if (!rooms) this.#mentions.set(key, rooms = new Map());
        let seqs = rooms.get(m.room);
        if (!seqs) rooms.set(m.room, seqs = new Set());
        seqs.add(m.seq);
      }
      this.#read(m.key, m.room, m.seq);
      for (const key of [m.key, ...between ?? []]) this.#keep(key, keptUntil(m.ts, this.#opts.retainMs));
      if (between) {
        this.#converse(between[0], between[1], m.room, m.ts);
        this.#converse(between[1], between[0], m.room, m.ts);
      }
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

  #read(key: string, room: string, seq: number): void {
    const k = `${key}\n${room}`;
    if ((this.#reads.get(k) ?? 0) < seq) this.#reads.set(k, seq);
  }

  #converse(key: string, peer: string, conv: string, ts: number): void {
    let mine = this.#convs.get(key);
    if (!mine) this.#convs.set(key, mine = new Map());
    const e = mine.get(conv);
    if (!e || e.lastTs < ts) mine.set(conv, { conv, peer, lastTs: ts });
  }

  person(key: string): Person | undefined {
    const p = this.#persons.get(key);
    return p && { key: p.key, uid: p.uid, name: p.name };
  }

  findPerson(nameKeys: readonly string[]): Person | undefined {
    for (const nk of nameKeys) {
      const keys = this.#byName.get(nk);
      if (keys?.length) return this.person(keys[keys.length - 1]);
    }
    return undefined;
  }

  rememberPerson(p: Person, nameKey: string, _now: number, until?: number): Promise<void> {
    const old = this.#persons.get(p.key);
    if (old) this.#unname(p.key, old.nameKey);
    const entry: Person & { nameKey: string; until?: number } = {
      key: p.key,
      uid: p.uid,
      name: p.name,
      nameKey,
    };
    if (until !== undefined) entry.until = Math.max(until, old?.until ?? 0);
    this.#persons.set(p.key, entry);
    this.#byName.set(nameKey, [...(this.#byName.get(nameKey) ?? []), p.key]);
    return Promise.resolve();
  }

  #unname(key: string, nameKey: string): void {
    const list = this.#byName.get(nameKey)!.filter((k) => k !== key);
    if (list.length) this.#byName.set(nameKey, list);
    else this.#byName.delete(nameKey);
  }

  /** A guest's entry lasts at least `until` (people without one, signed or unknown, are not touched). */
  #keep(key: string, until: number): void {
    const p = this.#persons.get(key);
    if (p?.until !== undefined && p.until < until) p.until = until;
  }

  conversations(key: string, before: number, limit: number): ConversationEntry[] {
    return [...(this.#convs.get(key)?.values() ?? [])].filter((e) => e.lastTs < before)
      .sort((a, b) => b.lastTs - a.lastTs).slice(0, limit).map((e) => ({ ...e }));
  }

  conversationPeer(key: string, conv: string): string | undefined {
    return this.#convs.get(key)?.get(conv)?.peer;
  }

  wrote(room: string, key: string): boolean {
    return this.#rooms.get(room)?.messages.some((m) => m.key === key) ?? false;
  }

  readPosition(key: string, room: string): number {
    return this.#reads.get(`${key}\n${room}`) ?? 0;
  }

  markRead(key: string, room: string, seq: number): Promise<void> {
    this.#read(key, room, seq);
    return Promise.resolve();
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

  message(room: string, seq: number): StoredMessage | undefined {
    const msgs = this.#rooms.get(room)?.messages ?? [];
    const m = msgs[lowerBound(msgs, seq)];
    return m?.seq === seq ? m : undefined;
  }

  changeMessages(
    changes: readonly { message: StoredMessage; audit?: AuditEntry }[],
    auditRetain: number,
  ): Promise<boolean[]> {
    return Promise.resolve(changes.map(({ message, audit }) => this.#change(message, audit, auditRetain)));
  }

  #change(m: StoredMessage, audit: AuditEntry | undefined, auditRetain: number): boolean {
    const room = this.#rooms.get(m.room);
    const msgs = room?.messages ?? [];
    const i = lowerBound(msgs, m.seq);
    if (msgs[i]?.seq !== m.seq) return false;
    // A new object: the old one (and its text) is dropped, not kept behind a flag.
    const stored: StoredMessage = m.deleted
      ? { room: m.room, seq: m.seq, from: m.from, text: "", ts: m.ts, key: m.key, deleted: true }
      : { ...m };
    if (m.deleted && m.display !== undefined) stored.display = m.display;
    if (m.deleted && m.cid !== undefined) stored.cid = m.cid;
    if (m.deleted) this.#forgetExtras(msgs[i]);
    else {
      const doc = this.#docs.get(`${m.room}\n${m.seq}`);
      if (doc) doc.terms = indexTerms(m.text);
    }
    if (m.deleted && m.rev !== undefined) stored.rev = m.rev;
    if (m.rev !== undefined) room!.rev = Math.max(room!.rev ?? 0, m.rev);
    msgs[i] = stored;
    if (stored.cid !== undefined) this.#cids.set(`${stored.key}\n${stored.cid}`, stored);
    if (audit) this.#audit(m.room, audit, auditRetain);
    return true;
  }

  react(room: string, seq: number, emoji: string, key: string, on: boolean, _ts: number): Promise<void> {
    let bySeq = this.#reactions.get(room);
    if (!bySeq) this.#reactions.set(room, bySeq = new Map());
    let byEmoji = bySeq.get(seq);
    if (!byEmoji) bySeq.set(seq, byEmoji = new Map());
    let who = byEmoji.get(emoji);
    if (on) {
      if (!who) byEmoji.set(emoji, who = new Set());
      who.add(key);
    } else if (who?.delete(key) && who.size === 0) {
      byEmoji.delete(emoji);
      if (byEmoji.size === 0) bySeq.delete(seq);
      if (bySeq.size === 0) this.#reactions.delete(room);
    }
    return Promise.resolve();
  }

  reactions(room: string, from: number, to: number, key: string): Map<number, MessageReactions> {
    const out = new Map<number, MessageReactions>();
    const bySeq = this.#reactions.get(room);
    if (!bySeq) return out;
    const add = (seq: number, byEmoji: Map<string, Set<string>>) => {
      const r: MessageReactions = { counts: {}, mine: [] };
      for (const [emoji, who] of byEmoji) {
        r.counts[emoji] = who.size;
        if (who.has(key)) r.mine.push(emoji);
      }
      out.set(seq, r);
    };
    // A page is at most a few hundred seqs; a room has reactions on fewer messages than that, or more.
    if (to - from < bySeq.size) {
      for (let seq = from; seq <= to; seq++) {
        const byEmoji = bySeq.get(seq);
        if (byEmoji) add(seq, byEmoji);
      }
    } else {
      for (const [seq, byEmoji] of [...bySeq].sort((a, b) => a[0] - b[0])) {
        if (seq >= from && seq <= to) add(seq, byEmoji);
      }
    }
    return out;
  }

  mentionCounts(key: string, rooms: readonly { room: string; after: number }[]): Record<string, number> {
    const out: Record<string, number> = {};
    const mine = this.#mentions.get(key);
    for (const { room, after } of rooms) {
      let n = 0;
      for (const seq of mine?.get(room) ?? []) if (seq > after) n++;
      if (n > 0) out[room] = n;
    }
    return out;
  }

  rev(room: string): number {
    return this.#rooms.get(room)?.rev ?? 0;
  }

  changes(room: string, upTo: number, afterRev: number, limit: number): ChatMessage[] {
    const out: ChatMessage[] = [];
    // Linear in the room's held messages; the memory store is for tests and small servers.
    for (const m of this.#rooms.get(room)?.messages ?? []) {
      if (m.seq > upTo || out.length >= limit) break;
      if (m.rev !== undefined && m.rev > afterRev) out.push(toWire(m));
    }
    return out;
  }

  rules(room: string): RoomRules {
    return { ...(this.#people.get(room)?.rules ?? DEFAULT_RULES) };
  }

  access(room: string, uid: string, now: number): RoomAccess {
    const r = this.#people.get(room);
    const out: RoomAccess = {
      exists: r !== undefined || this.#rooms.has(room),
      rules: this.rules(room),
      allowed: r?.allowed.has(uid) ?? false,
    };
    const ban = r?.bans.get(uid), mute = r?.mutes.get(uid);
    if (holds(ban, now)) out.ban = ban;
    if (holds(mute, now)) out.mute = mute;
    return out;
  }

  accessList(room: string, now: number): AccessList {
    const r = this.#people.get(room);
    const live = (m: Map<string, number> | undefined) =>
      [...(m ?? [])].filter(([, until]) => holds(until, now)).map(([uid, until]) => ({ uid, until }))
        .sort((a, b) => a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0);
    return { allowed: [...(r?.allowed ?? [])].sort(), bans: live(r?.bans), mutes: live(r?.mutes) };
  }

  changeRoom(room: string, change: RoomChange, audit: AuditEntry, auditRetain: number): Promise<RoomRules> {
    try {
      const r = this.#room(room);
      switch (change.kind) {
        case "rules":
          r.rules = mergeRules(r.rules, change.rules);
          break;
        case "allow":
          r.allowed.add(change.uid);
          break;
        case "disallow":
          r.allowed.delete(change.uid);
          break;
        case "ban":
          r.bans.set(change.uid, change.until);
          break;
        case "unban":
          r.bans.delete(change.uid);
          break;
        case "mute":
          r.mutes.set(change.uid, change.until);
          break;
        case "unmute":
          r.mutes.delete(change.uid);
          break;
      }
      this.#audit(room, audit, auditRetain);
      return Promise.resolve({ ...r.rules });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  audit(room: string, before: number, limit: number): AuditEntry[] {
    const all = this.#people.get(room)?.audit ?? [];
    const out: AuditEntry[] = [];
    for (let i = all.length - 1; i >= 0 && out.length < limit; i--) {
      if (all[i].ts < before) out.push({ ...all[i] });
    }
    return out;
  }

  publicRooms(query: RoomQuery): StoredRoom[] {
    const names = new Set([...this.#rooms.keys(), ...this.#people.keys()]);
    const rooms: StoredRoom[] = [];
    for (const room of names) {
      const rules = this.#people.get(room)?.rules ?? DEFAULT_RULES;
      if (!room.startsWith("@") && !rules.private) rooms.push({ room, topic: rules.topic });
    }
    return listOf(query, rooms).rooms;
  }

  #room(room: string): MemoryRoom {
    let r = this.#people.get(room);
    if (!r) {
      r = { rules: { ...DEFAULT_RULES }, allowed: new Set(), bans: new Map(), mutes: new Map(), audit: [] };
      this.#people.set(room, r);
    }
    return r;
  }

  #audit(room: string, entry: AuditEntry, retain: number): void {
    const log = this.#room(room).audit;
    log.push({ ...entry });
    if (log.length > retain) log.splice(0, log.length - retain);
  }

  prune(now: number): Promise<number> {
    for (const r of this.#people.values()) {
      for (const m of [r.bans, r.mutes]) for (const [uid, until] of m) if (!holds(until, now)) m.delete(uid);
    }
    this.#forgetGuests(now);
    return Promise.resolve(this.#prune(now));
  }

  #forgetGuests(now: number): void {
    const gone = new Set<string>();
    for (const p of this.#persons.values()) {
      if (p.until === undefined || p.until >= now) continue;
      this.#persons.delete(p.key);
      this.#unname(p.key, p.nameKey);
      gone.add(p.key);
    }
    if (gone.size === 0) return;
    for (const k of this.#reads.keys()) if (gone.has(k.slice(0, k.indexOf("\n")))) this.#reads.delete(k);
  }

  #prune(now: number): number {
    if (this.#opts.retainMs <= 0) return 0;
    const cutoff = now - this.#opts.retainMs;
    let n = 0;
    for (const [room, r] of this.#rooms) {
      let i = 0;
      while (i < r.messages.length && r.messages[i].ts < cutoff) i++;
      if (i > 0) this.#drop(r.messages.splice(0, i)), n += i;
      // An emptied conversation leaves both lists, with its read positions (its last seq stays).
      if (i > 0 && r.messages.length === 0 && room.startsWith("@")) this.#forgetConversation(room);
    }
    return n;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  #forgetConversation(conv: string): void {
    for (const [key, mine] of this.#convs) {
      if (!mine.delete(conv)) continue;
      if (mine.size === 0) this.#convs.delete(key);
      this.#reads.delete(`${key}\n${conv}`);
    }
  }

  #drop(gone: StoredMessage[]): void {
    for (const m of gone) {
      if (m.cid !== undefined) this.#cids.delete(`${m.key}\n${m.cid}`);
      this.#forgetExtras(m);
    }
  }

  /** A message is stored: it is found by its words from now on. */
  #index(m: StoredMessage): void {
    if (this.#opts.searchIndex === false) return;
    const id = this.#lastId = searchId(m.ts, this.#lastId);
    const key = `${m.room}\n${m.seq}`;
    this.#docs.set(key, { id, terms: indexTerms(m.text), sender: fold(m.from) });
    this.#places.push({ id, key });
  }

  search(request: SearchRequest): SearchPage {
    const { query: q, order, limit, deadline } = request;
    const rooms = request.rooms && new Set(request.rooms);
    const low = q.after === undefined ? 0 : q.after * 1000;
    let high = q.before === undefined ? Infinity : q.before * 1000;
    if (order === "newest" && request.cursor !== undefined) high = Math.min(high, Number(request.cursor));
    const found: { id: number; key: string; score: number }[] = [];
    let partial = false, stoppedAt = high;
    for (let i = this.#places.length - 1, n = 0; i >= 0; i--, n++) {
      const { id, key } = this.#places[i];
      if (n % CLOCK_EVERY === 0 && performance.now() > deadline) {
        partial = true;
        stoppedAt = Math.min(stoppedAt, id + 1);
        break;
      }
      if (id >= high) continue;
      if (id < low) break;
      const doc = this.#docs.get(key);
      if (doc?.id !== id) continue;
      if (rooms && !rooms.has(key.slice(0, key.indexOf("\n")))) continue;
      if (q.from !== undefined && doc.sender !== q.from) continue;
      if (!matches(doc.terms, q)) continue;
      found.push({ id, key, score: order === "best" ? score(doc.terms, q) : 0 });
      if (order === "newest" && found.length > limit) break;
      if (order === "best" && found.length === request.bestWindow) break;
    }
    let start = 0;
    if (order === "best") {
      found.sort((a, b) => b.score - a.score || b.id - a.id);
      start = request.cursor === undefined ? 0 : Number(request.cursor.slice(1));
    }
    const page = found.slice(start, start + limit);
    const messages = page.map(({ key }) => {
      const at = key.indexOf("\n");
      return toWire(this.message(key.slice(0, at), Number(key.slice(at + 1)))!);
    });
    const out: SearchPage = { messages };
    if (order === "best") {
      if (found.length > start + limit) out.next = `r${start + limit}`;
    } else if (found.length > limit) out.next = String(page.at(-1)!.id);
    else if (partial) out.next = String(stoppedAt);
    if (partial) out.partial = true;
    return out;
  }

  /** A message is gone (deleted or removed by retention): its reactions and mention rows go too. */
  #forgetExtras(m: StoredMessage): void {
    this.#docs.delete(`${m.room}\n${m.seq}`);
    if (this.#places.length > 2 * this.#docs.size + 1024) {
      this.#places = this.#places.filter((p) => this.#docs.get(p.key)?.id === p.id);
    }
    const bySeq = this.#reactions.get(m.room);
    if (bySeq?.delete(m.seq) && bySeq.size === 0) this.#reactions.delete(m.room);
    for (const key of m.mentionKeys ?? []) {
      const rooms = this.#mentions.get(key);
      const seqs = rooms?.get(m.room);
      if (!seqs?.delete(m.seq) || seqs.size > 0) continue;
      rooms!.delete(m.room);
      if (rooms!.size === 0) this.#mentions.delete(key);
    }
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

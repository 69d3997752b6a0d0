/**
 * The engine: what several server processes would have to share about rooms. It numbers and stores
 * messages (the `seq` of a room is the engine's, gap-free and never reused), answers history reads,
 * and hands every stored message, once and in order, to the processes that serve the room. `Chat`
 * keeps the per-connection rules and does not know which engine it runs on.
 *
 * This module holds the interface; `lib/engine_embedded.ts` is the engine of one process, history in a
 * `Store`, and `lib/engine_redis.ts` the one several processes share.
 * @module
 */
import type {
  AccessList,
  AuditEntry,
  ChangeGuard,
  ChangeInfo,
  ChatMessage,
  ConversationEntry,
  Draft,
  MessageChange,
  MessageReactions,
  Person,
  RoomAccess,
  RoomChange,
  RoomRules,
} from "./domain.ts";
import type { SearchQuery } from "./search_text.ts";

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

/**
 * A look into a listing of rooms in name order (the room directory): the rooms whose name starts with
 * `prefix` and comes after `after` (code-unit order; "" for the first page), at most `limit`.
 */
export interface RoomQuery {
  prefix: string;
  after: string;
  limit: number;
}

/**
 * One page of a listing in name order. A listing may stop before `limit` (a source that filters what
 * it reads stops after a bounded read), so it says how far it looked: every room of the listing up to
 * `through` is in `rooms`, and none after it is.
 */
export interface RoomListing<T extends { room: string }> {
  /** In name order. */
  rooms: T[];
  /** Absent: the listing has nothing after `rooms`; set: it may have more after this name. */
  through?: string;
}

/**
 * The order of a room listing: by code point, which is UTF-8 byte order, the order SQLite (`BINARY`)
 * and Redis (`ZRANGEBYLEX`) keep, so every engine pages the same way. (JavaScript's `<` compares UTF-16
 * units, which puts U+E000-U+FFFF after the astral planes.)
 */
export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!, y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** Whether `room` belongs to the listing `query` asks for (its limit aside). */
export function inQuery(query: RoomQuery, room: string): boolean {
  return room.startsWith(query.prefix) && compareNames(room, query.after) > 0;
}

/**
 * The first `query.limit` of `rooms` that `query` asks for, in name order: the listing of a source
 * that holds all its rooms at hand (the memory store, the hub).
 */
export function listOf<T extends { room: string }>(query: RoomQuery, rooms: Iterable<T>): RoomListing<T> {
  const hits: T[] = [];
  for (const r of rooms) if (inQuery(query, r.room)) hits.push(r);
  hits.sort((a, b) => compareNames(a.room, b.room));
  const out = hits.slice(0, query.limit);
  return hits.length > query.limit ? { rooms: out, through: out.at(-1)?.room } : { rooms: out };
}

/** A public room as storage knows it (see {@link Engine.publicRooms}). */
export interface StoredRoom {
  room: string;
  /** "" when none was set. */
  topic: string;
}

/** A search as an engine runs it; who may look where is decided before (lib/chat/search.ts). */
export interface SearchRequest {
  query: SearchQuery;
  /** The rooms and conversations to look in; undefined: every one (the server API). */
  rooms?: readonly string[];
  /** Newest first, or best match first. */
  order: "newest" | "best";
  /** Best match first ranks the newest this many matches (ranking is per match, before any result). */
  bestWindow: number;
  /** The `next` of the page before this one. */
  cursor?: string;
  /** Messages in the page. */
  limit: number;
  /** `performance.now()` past which the search stops with what it found (`partial`). */
  deadline: number;
}

/** What a search found. */
export interface SearchPage {
  /** As stored now (never a deleted one), in the order asked for. */
  messages: ChatMessage[];
  /** The cursor of the next page, when there may be one. */
  next?: string;
  /** The time ran out: there may be more matches than these before `next`. */
  partial?: true;
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
  /**
   * The rooms storage knows that anyone may find: a message was ever stored in them or their rules or
   * people were changed, and they are not private. Never a direct conversation. Name order (see
   * {@link RoomQuery}); who is in them is sharing's to say
   * (lib/sharing.ts).
   */
  publicRooms(query: RoomQuery): Promise<RoomListing<StoredRoom>>;

  /**
   * Finds stored messages by their words (see lib/search_text.ts). Optional, the one capability an
   * engine may lack: a store without a text index (Redis as Debian ships it) leaves it out rather than
   * scan every stream, and the chat answers `unsupported`.
   */
  search?(request: SearchRequest): Promise<SearchPage>;
  /** Why the engine cannot serve now (e.g. "redis unavailable"), or undefined while it can. */
  health(): string | undefined;
  /** Applies retention; resolves to how many messages were deleted. */
  prune(now: number): Promise<number>;
  /** Finishes pending writes and closes. Idempotent. */
  close(): Promise<void>;
}

/**
 * The domain: what a chat message, a draft, a room's rules, a change and a person are, with their pure
 * helpers (the reply quote, whether a ban still holds, the cid key, the stored-to-wire form, ids). Every
 * other module imports these from here; this module imports nothing of the project, so no import cycle
 * can run through it.
 * @module
 */
import { createHash } from "node:crypto";
import { QUOTE_MAX_CHARS, quoteOf } from "../static/shared/quote.js";
import { DEFAULT_RULES } from "../static/shared/rooms.js";

// The quote and the default room rules are the page's too: one definition each, in static/shared/
// (plain JS, served to browsers).
export { DEFAULT_RULES, QUOTE_MAX_CHARS, quoteOf };

/** A stored room message, as it goes on the wire. */
export interface ChatMessage {
  room: string;
  seq: number;
  /** The sender's handle (their unique name). */
  from: string;
  text: string;
  ts: number;
  cid?: string;
  /** The sender's display name when they sent it, when they had one (see lib/display_names.ts). */
  display?: string;
  /** A tombstone: the message was deleted; its text is gone (""). */
  deleted?: true;
  /** When the text was last edited (ms). */
  editedTs?: number;
  /** The message this one answers, quoted as it is now (an edit changes the quote, a delete empties it). */
  replyTo?: ReplyQuote;
  /** The names (as they were then) of the people this message mentions with `@name`. */
  mentions?: string[];
  /** History and resume only: the reactions, emoji to count (absent when none). */
  reactions?: Record<string, number>;
  /** History and resume only: the asking person's own reactions (absent when none). */
  mine?: string[];
}

/** What a reply keeps of the message it answers. */
export interface ReplyQuote {
  seq: number;
  from: string;
  /** The first line of its text, at most {@link QUOTE_MAX_CHARS} code points ("" once it is deleted). */
  text: string;
  /** The message it answers was deleted: its text is gone from the quote too. */
  deleted?: true;
}

/** The quote of a reply to `seq` of `from` (its text now, or its tombstone's) after a change of it. */
export function requote(seq: number, from: string, changed: { text: string; deleted?: true }): ReplyQuote {
  return changed.deleted
    ? { seq, from, text: "", deleted: true }
    : { seq, from, text: quoteOf(changed.text) };
}

/** A room message on its way in: everything but its `seq`. */
export interface Draft {
  room: string;
  from: string;
  text: string;
  ts: number;
  /** The sender's display name, when they have one. */
  display?: string;
  /** The sending person's key, for de-duplication by `cid`. */
  key: string;
  cid?: string;
  /**
   * The seq (in the same room) this message answers: the engine quotes it (see {@link quoteOf}) as the
   * message's `replyTo`, or refuses the draft when that message is not stored or deleted.
   */
  replyTo?: number;
  /** The people it mentions: their key (a row each, for {@link Engine.mentionCounts}) and name (`mentions`). */
  mentions?: Mention[];
  /**
   * For a direct conversation (`room` is its id, see `conversationId`): the two people's keys. The
   * engine puts the conversation in both people's conversation lists, no later than the message.
   */
  between?: readonly [string, string];
}

/** One mentioned person. */
export interface Mention {
  key: string;
  name: string;
}

/**
 * The id of the direct conversation between persons `a` and `b` (either order): `@` and 22 base64url
 * characters of a SHA-256 of both keys. Room names never start with `@`, so it is stored as a room.
 */
export function conversationId(a: string, b: string): string {
  const [lo, hi] = a < b ? [a, b] : [b, a];
  return "@" + createHash("sha256").update(`${lo}\n${hi}`).digest("base64url").slice(0, 22);
}

/** A person in the people directory: who a key is and what they are called now. */
export interface Person {
  key: string;
  uid: string;
  name: string;
}

/** One entry of a person's conversation list. */
export interface ConversationEntry {
  /** The conversation's id (an internal room id starting with `@`). */
  conv: string;
  /** The other person's key. */
  peer: string;
  /** When its newest message was sent (ms). */
  lastTs: number;
}

/** A room's settings, stored durably with its history. */
export interface RoomRules {
  /** Shown under the room's name; "" for none. */
  topic: string;
  /** Only people allowed (by their token's `rooms` claim, by being added, or as moderators) may join. */
  private: boolean;
  /** Only moderators and admins post. */
  readOnly: boolean;
  /** Seconds one person waits between two messages in the room (0 = off). */
  slowModeSeconds: number;
}

/** What one person may do in a room, as the engine knows it. */
export interface RoomAccess {
  /**
   * Something was ever stored for the room: a message, or a change to its rules or people (each
   * leaves an audit entry). A name that does not exist is a room nobody made yet.
   */
  exists: boolean;
  rules: RoomRules;
  /** The person was added to the (private) room. */
  allowed: boolean;
  /** Banned until this time (ms); 0 = forever; absent = not banned (an expired ban is absent). */
  ban?: number;
  /** Muted until this time (ms); 0 = forever; absent = not muted. */
  mute?: number;
}

/** One change to a room's rules or people, made by a moderator, an admin or the API. */
export type RoomChange =
  | { kind: "rules"; rules: Partial<RoomRules> }
  | { kind: "allow" | "disallow"; uid: string }
  | { kind: "ban" | "mute"; uid: string; until: number; told?: Told }
  | { kind: "unban" | "unmute"; uid: string; told?: Told }
  /** Nothing stored but the audit entry: every process takes the person out of the room. */
  | { kind: "kick"; uid: string; told?: Told };

/**
 * What the room is told of a moderation action, carried with the change so that every process tells
 * its members in the room's order: who did it and to whom (names as the room sees them), and why.
 */
export interface Told {
  by: string;
  name: string;
  reason?: string;
}

/** One line of a room's audit log: who did what to whom, when and why. */
export interface AuditEntry {
  ts: number;
  /** `delete`, `edit`, `kick`, `ban`, `unban`, `mute`, `unmute`, `rules`, `allow`, `disallow`. */
  action: string;
  /** The uid that did it (`api` for the server API without a user). */
  by: string;
  /** The uid it was done to. */
  target?: string;
  reason?: string;
  /** For bans and mutes: until when (ms), 0 = forever. */
  until?: number;
  /** For deletes and edits: the message. */
  seq?: number;
}

/** A change to one stored message. `by`: who deleted it, as the room sees them (a name, or `system`). */
export type MessageChange =
  | { kind: "delete"; by: string }
  | { kind: "edit"; text: string; editedTs: number };

/** What subscribers hear of a message change besides the message as it is now. */
export interface ChangeInfo {
  /** The room's change revision the change took. */
  rev: number;
  /** A delete: who deleted it (see {@link MessageChange}). */
  by?: string;
}

/** Who a message change is allowed for; the engine checks it against the stored message. */
export interface ChangeGuard {
  /** Only the message of this person key may be changed. */
  authorKey?: string;
  /** Only a message sent at or after this time (ms) may be changed. */
  sentSince?: number;
}

/** The people lists of a room, for the server API. */
export interface AccessList {
  allowed: string[];
  bans: { uid: string; until: number }[];
  mutes: { uid: string; until: number }[];
}

/**
 * What `guard` says about changing stored message `m`, or undefined when it may be changed. A
 * tombstone counts as not found: it can be neither deleted again nor edited.
 */
export function guardProblem(
  m: { key: string; ts: number; deleted?: true } | undefined,
  guard: ChangeGuard,
): "not_found" | "not_author" | "too_old" | undefined {
  if (!m || m.deleted) return "not_found";
  if (guard.authorKey !== undefined && m.key !== guard.authorKey) return "not_author";
  if (guard.sentSince !== undefined && m.ts < guard.sentSince) return "too_old";
  return undefined;
}

/** A draft that was refused, as the message it would have been (seq 0: nothing was stored). */
export function refusedDraft(d: Draft): ChatMessage {
  const m: ChatMessage = { room: d.room, seq: 0, from: d.from, text: d.text, ts: d.ts };
  if (d.cid !== undefined) m.cid = d.cid;
  return m;
}

/** A message as stored: the wire fields plus the sender's key, for de-duplication by `cid`. */
export interface StoredMessage extends ChatMessage {
  /** Stable key of the sending person (a hash of their token). */
  key: string;
  /** The keys of the people in `mentions`, in the same order: a mention row each. */
  mentionKeys?: string[];
  /** The room's change revision its last change (delete or edit) took; none when never changed. */
  rev?: number;
  /** A direct conversation's two people (see `Draft.between`); not part of the stored row. */
  between?: readonly [string, string];
}

/**
 * A random id: 16 bytes, base64url (22 characters). A history's epoch and a guest's token are both
 * such ids.
 */
export function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * Strips the store-only field. A deleted message goes out as a tombstone: its seq, sender (and their
 * display name) and time stay (no gap in the room), nothing of what it said (not even its cid).
 */
export function toWire(m: StoredMessage | ChatMessage): ChatMessage {
  if (m.deleted) {
    const t: ChatMessage = { room: m.room, seq: m.seq, from: m.from, ts: m.ts, text: "", deleted: true };
    if (m.display !== undefined) t.display = m.display;
    return t;
  }
  const o: ChatMessage = { room: m.room, seq: m.seq, from: m.from, text: m.text, ts: m.ts };
  if (m.cid !== undefined) o.cid = m.cid;
  if (m.display !== undefined) o.display = m.display;
  if (m.editedTs !== undefined) o.editedTs = m.editedTs;
  if (m.replyTo !== undefined) o.replyTo = m.replyTo;
  if (m.mentions !== undefined) o.mentions = m.mentions;
  return o;
}

/** `rules` with `partial` over it. @throws {TypeError} naming the field when a value has the wrong type. */
export function mergeRules(rules: RoomRules, partial: Partial<RoomRules>): RoomRules {
  const out = { ...rules };
  for (const [k, v] of Object.entries(partial) as [keyof RoomRules, unknown][]) {
    if (v === undefined) continue;
    const want = typeof DEFAULT_RULES[k];
    if (want === undefined) throw new TypeError(`Cannot change the room rules: no rule "${k}"`);
    if (typeof v !== want || (k === "slowModeSeconds" && !(Number.isSafeInteger(v) && (v as number) >= 0))) {
      throw new TypeError(`Cannot change the room rules: ${k} must be a ${want}, got ${JSON.stringify(v)}`);
    }
    (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

/**
 * Refuses a change no store could apply.
 * @throws {TypeError} naming what is wrong, e.g. a ban without a uid or a rule of the wrong type.
 */
export function checkRoomChange(change: RoomChange): void {
  const kinds = ["rules", "allow", "disallow", "ban", "unban", "mute", "unmute", "kick"];
  if (!kinds.includes(change?.kind)) {
    throw new TypeError(`Cannot change the room: unknown change ${JSON.stringify(change?.kind)}`);
  }
  if (change.kind === "rules") return void mergeRules(DEFAULT_RULES, change.rules);
  if (typeof change.uid !== "string" || change.uid === "") {
    throw new TypeError(
      `Cannot ${change.kind}: the uid must be a non-empty string, got ${JSON.stringify(change.uid)}`,
    );
  }
  if (
    (change.kind === "ban" || change.kind === "mute") &&
    !(Number.isSafeInteger(change.until) && change.until >= 0)
  ) {
    throw new TypeError(
      `Cannot ${change.kind}: until must be a time in ms or 0 (forever), got ${change.until}`,
    );
  }
}

/** A ban or mute `until` (ms, 0 = forever) still holds at `now`. */
export function holds(until: number | undefined, now: number): until is number {
  return until !== undefined && (until === 0 || until > now);
}

/** The reactions of one message, for a reader: counts, and that reader's own. */
export interface MessageReactions {
  counts: Record<string, number>;
  mine: string[];
}

/** A history's epoch (see `HistoryPage.epoch`): a {@link randomId}. */
export const newEpoch: () => string = randomId;

/**
 * The key under which a person's `cid` is de-duplicated: one person's cid never meets another's.
 * Every engine and the write pipeline use this one form.
 */
export function cidKey(key: string, cid: string): string {
  return `${key}\n${cid}`;
}

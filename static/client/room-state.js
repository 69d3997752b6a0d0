/**
 * What the client holds of one room: its messages in seq order, members, typing, rules, your standing,
 * read position and unread counts; and how a delete or an edit changes what is held.
 * @module
 */
import { quoteOf } from "../shared/quote.js";
import { DEFAULT_RULES } from "../shared/rooms.js";

/** @typedef {import("./types.js").RoomMessage} RoomMessage */
/** @typedef {import("./types.js").RoomRules} RoomRules */
/** @typedef {import("./types.js").ModerationLine} ModerationLine */
/** @typedef {import("./types.js").Removal} Removal */

/** The messages, members and typing state of one room. */
export class RoomState {
  /** @param {string} name */
  constructor(name) {
    /** Canonical room name. */
    this.name = name;
    /** @type {RoomMessage[]} ordered by seq, no duplicates */
    this.messages = [];
    /** @type {Set<string>} everyone here; in a big room, the member pages loaded so far */
    this.members = new Set();
    /** @type {number | undefined} a big room's count of people (the server's); undefined: a small room */
    this.memberCount = undefined;
    /** @type {string | undefined} a big room: the cursor of the next member page, when there is one */
    this.membersNext = undefined;
    /** A big room: the prefix the loaded member pages were searched by ("" for none). */
    this.membersPrefix = "";
    /**
     * @type {Set<string>} a big room: the people `presence` says are here (those of your member page and
     * your direct partners, whom the server tells you about), whether or not on the loaded pages
     */
    this.present = new Set();
    /** Highest seq we have with nothing missing before it since the last join. */
    this.lastSeq = 0;
    /** The server's name for this room's history; another one means its seqs started over. */
    this.epoch = "";
    /**
     * The room's change revision up to which every delete and edit is applied to what we hold:
     * from `joined`, then moved on only by the next one in order (a `deleted`/`edited` line whose
     * `rev` is one more), so a line lost or overtaken is asked for again on the next join.
     */
    this.rev = 0;
    /** Nothing older than `messages[0]` exists on the server. */
    this.complete = false;
    /** Joined on the current connection. */
    this.joined = false;
    /** Joined at least once, so `lastSeq` means something and a rejoin resumes. */
    this.synced = false;
    /**
     * Its messages came from what this device kept (see snapshot.js): their reactions are as they were
     * then, and a resume tells edits and deletes, not reactions, so the first join asks for them again.
     */
    this.kept = false;
    /** A `history` request is out. */
    this.loadingOlder = false;
    /** @type {Map<string, number>} name → when their "typing" expires (ms) */
    this.typing = new Map();
    /** @type {RoomRules} from `joined` and `room` lines */
    this.rules = { ...DEFAULT_RULES };
    /** Your role here ("" until joined: the connection's role counts). */
    this.role = "";
    /** @type {number | undefined} until when you are muted here (ms), 0 = for good */
    this.mutedUntil = undefined;
    /** Slow mode: when you may post here again (ms, local clock), 0 when you may now. */
    this.slowUntil = 0;
    /** The server's sentence of the last slow-mode refusal here. */
    this.slowText = "";
    /** @type {Removal | undefined} why you are not in this room (kicked, banned, refused) */
    this.removed = undefined;
    /** @type {ModerationLine[]} moderation actions seen here, oldest first (this session only) */
    this.moderation = [];
    /** @type {Map<string, number>} others muted here, as the moderation lines told: name → until */
    this.muted = new Map();
    /** Your read position (the server's, for every device) and what is unread after it. */
    this.lastRead = 0;
    this.unread = 0;
    /** Messages after `lastRead` that mention you (the server's count, then kept up here). */
    this.mentions = 0;
  }

  /**
   * The message `seq`, if held.
   * @param {number} seq
   * @returns {RoomMessage | undefined}
   */
  find(seq) {
    const list = this.messages;
    let lo = 0, hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].seq < seq) lo = mid + 1;
      else hi = mid;
    }
    return list[lo]?.seq === seq ? list[lo] : undefined;
  }

  /**
   * Whether you are muted here now.
   * @param {number} [now]
   */
  isMuted(now = Date.now()) {
    return this.mutedUntil !== undefined && (this.mutedUntil === 0 || this.mutedUntil > now);
  }

  /**
   * Adds messages in seq order, skipping seqs already there.
   * @param {RoomMessage[]} msgs
   * @returns {RoomMessage[]} the ones that were new
   */
  add(msgs) {
    /** @type {RoomMessage[]} */
    const added = [];
    for (const m of msgs) {
      const list = this.messages;
      if (list.length === 0 || list[list.length - 1].seq < m.seq) {
        list.push(m);
        added.push(m);
        continue;
      }
      let lo = 0, hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (list[mid].seq < m.seq) lo = mid + 1;
        else hi = mid;
      }
      if (list[lo]?.seq === m.seq) continue;
      list.splice(lo, 0, m);
      added.push(m);
    }
    return added;
  }

  /** Names typing now (not expired), sorted. */
  typers(now = Date.now()) {
    return [...this.typing].filter(([, until]) => until > now).map(([n]) => n).sort();
  }
}

/**
 * Applies a delete (`deleted: true`) or an edit (`text`, `editedTs`) to the held message `seq` of
 * `r`, in place (a tombstone keeps its seq), and to the quote of every held reply to it (as the server
 * stores them: held even when the original is not). Returns what changed: the message when held (not
 * held: older than what we hold, history brings it changed), and the replies. Nothing for a
 * malformed change.
 * @param {RoomState} r
 * @param {number} seq
 * @param {{ deleted?: unknown, text?: unknown, editedTs?: unknown }} change
 * @returns {RoomMessage[]}
 */
export function applyChange(r, seq, change) {
  const deleted = change.deleted === true;
  if (!deleted && typeof change.text !== "string") return [];
  const text = deleted ? "" : /** @type {string} */ (change.text);
  const out = [];
  for (let i = r.messages.length - 1; i >= 0 && r.messages[i].seq > seq; i--) {
    const reply = r.messages[i];
    if (reply.replyTo?.seq !== seq) continue;
    const { from } = reply.replyTo;
    reply.replyTo = deleted ? { seq, from, text: "", deleted: true } : { seq, from, text: quoteOf(text) };
    out.push(reply);
  }
  const msg = r.find(seq);
  if (msg) {
    msg.text = text;
    if (deleted) {
      msg.deleted = true;
      delete msg.editedTs;
    } else if (typeof change.editedTs === "number") msg.editedTs = change.editedTs;
    out.unshift(msg);
  }
  return out;
}

/**
 * The chat protocol client (see docs/protocol.md): connects, splits frames, keeps rooms, members,
 * typing and direct conversations, reconnects with exponential backoff and jitter, resumes rooms
 * with `join {since}`, and keeps an outbox (persisted) whose messages are sent with their `cid` so
 * none is lost or doubled.
 *
 * No DOM access: it runs in a page, in a worker and under Deno. It only needs `WebSocket`,
 * `EventTarget`, `CustomEvent`, timers and (optionally) a `localStorage`-like storage.
 * @module
 */

/**
 * @typedef {object} RoomMessage A stored message of a room, as the server sends it.
 * @property {string} room
 * @property {number} seq
 * @property {string} from
 * @property {string} text
 * @property {number} ts
 * @property {string} [cid]
 * @property {boolean} [deleted] a tombstone: the message was deleted, its text is gone ("")
 * @property {number} [editedTs] when its text was last edited (ms)
 * @property {{ seq: number, from: string, text: string, deleted?: boolean }} [replyTo] the message it
 *   answers, quoted as it is now: its first line ("" and `deleted` once it is deleted)
 * @property {string[]} [mentions] names it mentions with `@name`
 * @property {Record<string, number>} [reactions] emoji to count
 * @property {string[]} [mine] this person's own reactions
 */

/**
 * @typedef {object} RoomRules A room's rules (see docs/protocol.md, "Rooms with rules").
 * @property {string} topic
 * @property {boolean} private
 * @property {boolean} readOnly only moderators post
 * @property {number} slowModeSeconds one message per person per that many seconds (0: off)
 */

/**
 * @typedef {object} ModerationLine A moderation action told to the room.
 * @property {"kick" | "ban" | "unban" | "mute" | "unmute"} action
 * @property {string} name whom it was done to
 * @property {string} uid their user id (for `unban`)
 * @property {string} by who did it
 * @property {number} [until] when a ban or mute ends (ms), 0 = for good
 * @property {string} [reason]
 * @property {number} ts local clock, when it came
 * @property {number} afterSeq the room's newest seq when it came: it shows after that message
 */

/**
 * @typedef {object} Removal Why you are not in a room you asked for.
 * @property {"kicked" | "banned" | "forbidden" | "refused"} reason `refused`: a join was refused
 *   (`forbidden`, or a closed room), `forbidden`: taken out (the room became private to you)
 * @property {string} message the server's sentence, when it gave one
 */

/**
 * @typedef {object} DirectMessage A direct message, stored by the server in conversation `conv` under
 * `convSeq` (not `seq`: the page tells room messages from direct ones by `seq`).
 * @property {string} [conv]
 * @property {number} [convSeq]
 * @property {string} to
 * @property {string} from
 * @property {string} text
 * @property {number} ts
 * @property {string} [cid]
 */

/**
 * @typedef {object} OutboxItem A message typed by this client that the server has not acked yet.
 * @property {string} cid
 * @property {string} [room]
 * @property {string} [to]
 * @property {string} text
 * @property {number} [replyTo] the seq (in `room`) it answers
 * @property {number} createdAt local clock, ms
 * @property {"pending" | "sending" | "failed"} state
 * @property {string} [error] why it failed (the server's message)
 */

/** @typedef {"connecting" | "live" | "reconnecting" | "offline"} ConnState */

/**
 * @typedef {object} KeyValueStorage The part of `Storage` the client uses.
 * @property {(key: string) => string | null} getItem
 * @property {(key: string, value: string) => void} setItem
 * @property {(key: string) => void} removeItem
 */

/**
 * @typedef {object} Limits What the server enforces (from `welcome`).
 * @property {number} textChars
 * @property {number} frameBytes
 * @property {number} roomsPerConnection
 * @property {number} messagesPerSecond
 * @property {number} burst
 * @property {number} historyPage
 * @property {number} editSeconds How long after sending its author may edit a message (0: never).
 */

/**
 * @typedef {object} BackoffOptions
 * @property {number} baseMs first delay (before jitter)
 * @property {number} maxMs cap
 */

/**
 * @typedef {object} ChatClientOptions
 * @property {string} url the WebSocket endpoint, e.g. `ws://host/ws`
 * @property {string} [name] the nickname wanted (used when no identity is stored)
 * @property {KeyValueStorage | null} [storage] where identity, rooms and outbox persist; default `localStorage`
 * @property {string} [storagePrefix] prefix of storage keys, default `chat:`
 * @property {string[]} [rooms] rooms to be in when none are stored, default `["lobby"]`
 * @property {Partial<BackoffOptions>} [backoff]
 * @property {() => number} [random] for jitter, default `Math.random`
 * @property {number} [pingIntervalMs] ping when nothing came for this long, default 25000
 * @property {number} [pongTimeoutMs] then give up on the connection after this long, default 10000
 * @property {number} [ackTimeoutMs] re-send a message (same cid) not acked after this long, default 10000
 * @property {number} [typingTtlMs] how long "x is typing" lasts, default 3000
 * @property {number} [typingThrottleMs] at most one `typing` per room this often, default 2000
 * @property {number} [stableMs] a connection live this long resets the backoff, default 5000
 * @property {() => Promise<string>} [getToken] signed identities: resolves a fresh token from the host
 *   application (see docs/embedding.md). With it the client connects with `?auth=frame`, sends `auth` first,
 *   asks again about 30 s before the token's `exp` (a refresh on the open connection) and before every
 *   reconnect; `name` and the stored guest identity are not used.
 * @property {number} [refreshBeforeMs] how long before `exp` a token is refreshed, default 30000
 * @property {typeof WebSocket} [WebSocket]
 * @property {(direction: "in" | "out", message: Record<string, unknown>) => void} [trace]
 */

const NAME_RE = /^[\p{L}\p{N}_.-]{1,32}$/u;
const ROOM_RE = /^[\p{L}\p{N}_.-]{1,64}$/u;
/** Errors that answer a `send` (the server does not always echo the cid with them). */
const SEND_ERRORS = new Set([
  "text_too_long",
  "bad_message",
  "bad_room",
  "bad_name",
  "not_member",
  "user_not_found",
  "rate_limited",
  "store_failed",
  "shutting_down",
]);
/** Send errors worth retrying later (the message may go through then; after a restart for the last). */
const RETRY_ERRORS = new Set(["rate_limited", "store_failed", "shutting_down"]);
/** Roles that moderate every room they are in. */
const MODERATOR_ROLES = new Set(["moderator", "admin"]);
/** @type {RoomRules} */
const DEFAULT_RULES = Object.freeze({ topic: "", private: false, readOnly: false, slowModeSeconds: 0 });
/** Characters in a room topic (the server's limit). */
export const MAX_TOPIC_CHARS = 200;
/** How many moderation lines a room keeps for the thread. */
const MAX_MODERATION_LINES = 200;
/** Code points of a reply's quote (the server's QUOTE_MAX_CHARS). */
const QUOTE_MAX_CHARS = 100;

/**
 * The quote a reply keeps of `text`, as the server makes it: its first line, at most
 * {@link QUOTE_MAX_CHARS} code points.
 * @param {string} text
 */
function quoteOf(text) {
  const line = text.split(/[\r\n]/, 1)[0];
  return line.length <= QUOTE_MAX_CHARS ? line : [...line].slice(0, QUOTE_MAX_CHARS).join("");
}
const DEFAULT_LIMITS = Object.freeze({
  textChars: 4000,
  frameBytes: 65536,
  roomsPerConnection: 20,
  messagesPerSecond: 10,
  burst: 30,
  historyPage: 200,
  editSeconds: 900,
});

/**
 * Splits one server frame into its messages (one JSON object per line). Lines that do not parse
 * as a JSON object are skipped.
 * @param {string} data
 * @returns {Record<string, any>[]}
 */
export function parseFrame(data) {
  /** @type {Record<string, any>[]} */
  const out = [];
  for (const line of data.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const v = JSON.parse(line);
      if (v && typeof v === "object" && !Array.isArray(v)) out.push(v);
    } catch { /* not JSON: ignore the line, keep the others */ }
  }
  return out;
}

/**
 * Whether `name` is a valid nickname.
 * @param {string} name
 */
export function isValidName(name) {
  return NAME_RE.test(name);
}

/**
 * The canonical (lower-case) room name, or `undefined` when `room` is not a valid room name.
 * A leading `#` is ignored.
 * @param {string} room
 * @returns {string | undefined}
 */
export function normalizeRoom(room) {
  const r = room.trim().replace(/^#/, "");
  return ROOM_RE.test(r) ? r.toLowerCase() : undefined;
}

/**
 * The delay before reconnect attempt `attempt` (0-based): exponential, capped, with "equal jitter"
 * (half fixed, half random) so that clients of a restarted server do not all come back at once.
 * @param {number} attempt
 * @param {BackoffOptions} opts
 * @param {() => number} [random]
 */
export function backoffDelay(attempt, opts, random = Math.random) {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * ceiling / 2);
}

/**
 * Splits `text` into plain parts and http(s) links. Only `http:` and `https:` URLs become links;
 * trailing punctuation stays text.
 * @param {string} text
 * @returns {{ text: string, href?: string }[]}
 */
export function linkify(text) {
  /** @type {{ text: string, href?: string }[]} */
  const parts = [];
  const re = /\bhttps?:\/\/[^\s<>"'`]+/gi;
  let last = 0;
  for (const m of text.matchAll(re)) {
    let url = m[0];
    // Trailing punctuation belongs to the sentence; a ")" only when unbalanced.
    while (/[.,;:!?'")\]}]$/.test(url)) {
      if (url.endsWith(")") && count(url, "(") >= count(url, ")")) break;
      url = url.slice(0, -1);
    }
    const start = m.index ?? 0;
    let href;
    try {
      const u = new URL(url);
      if ((u.protocol === "http:" || u.protocol === "https:") && u.hostname) href = u.href;
    } catch { /* not a URL after all */ }
    if (!href) continue;
    if (start > last) parts.push({ text: text.slice(last, start) });
    parts.push({ text: url, href });
    last = start + url.length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

/**
 * @param {string} s
 * @param {string} ch
 */
function count(s, ch) {
  return s.split(ch).length - 1;
}

/**
 * Whether `text` mentions `name` (as `@name` or the name as a whole word, any case).
 * @param {string} text
 * @param {string} name
 */
export function mentions(text, name) {
  if (!name) return false;
  const escaped = name.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
  return new RegExp(`(^|[^\\p{L}\\p{N}_.-])@?${escaped}(?![\\p{L}\\p{N}_-])`, "iu").test(text);
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
function applyChange(r, seq, change) {
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

/** The messages, members and typing state of one room. */
export class RoomState {
  /** @param {string} name */
  constructor(name) {
    /** Canonical room name. */
    this.name = name;
    /** @type {RoomMessage[]} ordered by seq, no duplicates */
    this.messages = [];
    /** @type {Set<string>} */
    this.members = new Set();
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
 * A time for a sentence: "14:05" today, else with the date.
 * @param {number} ms
 */
export function formatUntil(ms) {
  const d = new Date(ms);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay
    ? d.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" })
    : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/**
 * Why you cannot post in room `r` now, as a sentence for the page, or undefined when you can (slow
 * mode is not counted: a message waits for it rather than fails).
 * @param {RoomState} r
 * @param {boolean} moderator whether you moderate the room (moderators are not held by read-only)
 * @param {number} [now]
 * @returns {{ code: string, text: string } | undefined}
 */
export function postBlock(r, moderator, now = Date.now()) {
  const room = `#${r.name}`;
  if (r.removed) {
    const { reason } = r.removed;
    if (reason === "banned") return { code: "banned", text: `You are banned from ${room}` };
    if (reason === "refused") return { code: "forbidden", text: `You cannot join ${room}` };
    return { code: "kicked", text: `You were removed from ${room}` };
  }
  if (r.isMuted(now)) {
    const until = r.mutedUntil ? ` until ${formatUntil(r.mutedUntil)}` : "";
    return { code: "muted", text: `You are muted in ${room}${until}` };
  }
  if (r.rules.readOnly && !moderator) {
    return { code: "read_only", text: `${room} is read-only: only moderators post` };
  }
  return undefined;
}

/** A direct conversation with one person. */
export class DirectConversation {
  /** @param {string} peer */
  constructor(peer) {
    /** The other person's name. */
    this.peer = peer;
    /** @type {DirectMessage[]} */
    this.messages = [];
    /** The server's id of the conversation ("" until known), its newest seq, your read position, unread. */
    this.conv = "";
    this.lastSeq = 0;
    this.lastRead = 0;
    this.unread = 0;
    /** Nothing older than the oldest message held exists on the server. */
    this.complete = false;
    /** A `history {conv, before}` request is out. */
    this.loadingOlder = false;
    /** A `history {conv, after}` request (catching up after a reconnect) is out. */
    this.catchingUp = false;
    /**
     * Catching up waits for an older page that is out (the answers do not say which they answer):
     * then it asks after this seq (0: no wait).
     */
    this.catchUpAfter = 0;
  }

  /** The newest seq held (0: none). */
  heldSeq() {
    let max = 0;
    for (const m of this.messages) if (m.convSeq !== undefined && m.convSeq > max) max = m.convSeq;
    return max;
  }

  /** When the newest message held was sent (0: none). */
  get lastTs() {
    return this.messages.at(-1)?.ts ?? 0;
  }

  /**
   * Adds a message unless it is here already (same cid, or same sender, time and text).
   * @param {DirectMessage} m
   * @returns {boolean} whether it was new
   */
  add(m) {
    const dup = this.messages.some((x) =>
      m.convSeq !== undefined && x.convSeq !== undefined
        ? x.convSeq === m.convSeq
        : m.cid
        ? x.cid === m.cid && x.from === m.from
        : x.ts === m.ts && x.from === m.from && x.text === m.text
    );
    if (dup) {
      // The same message known before without its seq (from an ack): now it has one.
      const x = this.messages.find((x) => x.cid !== undefined && x.cid === m.cid && x.from === m.from);
      if (x && m.convSeq !== undefined) x.convSeq = m.convSeq, x.conv = m.conv;
      return false;
    }
    if (m.convSeq !== undefined && m.convSeq > this.lastSeq) this.lastSeq = m.convSeq;
    let i = this.messages.length;
    while (i > 0 && this.messages[i - 1].ts > m.ts) i--;
    this.messages.splice(i, 0, m);
    return true;
  }
}

/**
 * The client. Events (all `CustomEvent`s, details in brackets):
 * - `state` {state}: connection state changed (see {@link ChatClient.state}, {@link ChatClient.retryAt})
 * - `welcome` {name, notice?}: connected (and after every reconnect)
 * - `rooms` {}: the set of rooms changed
 * - `joined` {room, added, reset}: (re)joined; `reset` means the list was replaced
 * - `message` {room?, peer?, message}: a new room message (`room`) or direct message (`peer`)
 * - `history` {room, added} or {peer}: older messages arrived (a room's, or a direct conversation's)
 * - `members` {room}: a room's members changed
 * - `typing` {room}: who types in `room` changed
 * - `nick` {old, name}: someone (maybe you: see `me`) changed name
 * - `outbox` {}: the outbox changed
 * - `servererror` {code, message, item?}: the server refused something (item: the outbox entry)
 * - `notice` {message}: something the server wants the user to know
 * - `authed` {exp, name, role, uid}: a refreshed token was taken (signed identities)
 * - `changed` {room, message}: a message was edited or deleted, or the one a reply quotes was (it is
 *   changed in place), live or while we were away (told in `joined.changes` on a resume)
 * - `moderation` {room, line}: a moderation action in a room ({@link ModerationLine})
 * - `rules` {room}: a room's rules (topic, read-only, slow mode) changed
 * - `standing` {room}: what you may do in a room changed (muted, removed, slow-mode wait, role)
 * - `conversations` {}: the list of direct conversations (with unread counts) came from the server
 * - `read` {room?, peer?}: your read position moved (on this device or another)
 */
export class ChatClient extends EventTarget {
  /** @param {ChatClientOptions} opts */
  constructor(opts) {
    super();
    this.url = opts.url;
    /** @type {KeyValueStorage | null} */
    this.storage = opts.storage === undefined ? defaultStorage() : opts.storage;
    this.prefix = opts.storagePrefix ?? "chat:";
    /** @type {BackoffOptions} */
    this.backoff = { baseMs: 500, maxMs: 30_000, ...opts.backoff };
    this.random = opts.random ?? Math.random;
    this.pingIntervalMs = opts.pingIntervalMs ?? 25_000;
    this.pongTimeoutMs = opts.pongTimeoutMs ?? 10_000;
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 10_000;
    this.typingTtlMs = opts.typingTtlMs ?? 3000;
    this.typingThrottleMs = opts.typingThrottleMs ?? 2000;
    this.stableMs = opts.stableMs ?? 5000;
    this.WebSocketImpl = opts.WebSocket ?? globalThis.WebSocket;
    this.trace = opts.trace;
    this.getToken = opts.getToken;
    this.refreshBeforeMs = opts.refreshBeforeMs ?? 30_000;
    /** Signed identities: your user id, role and when the token expires (ms), from `welcome`/`authed`. */
    this.uid = "";
    this.role = "member";
    this.exp = 0;
    /** Whether you are a guest (a first-come name you may change); signed people are not. */
    this.guest = !opts.getToken;

    // A signed person's name comes from the token; the guest identity kept here is not theirs.
    const identity = this.getToken ? undefined : this.#load("identity");
    /** Your name (the server's word after `welcome`). */
    this.me = typeof identity?.name === "string" ? identity.name : opts.name ?? "";
    if (opts.name && !identity?.token && !this.getToken) this.me = opts.name;
    /** @type {string | undefined} */
    this.token = typeof identity?.token === "string" ? identity.token : undefined;
    /** @type {Set<string>} names you have had, to tell your own messages */
    this.myNames = new Set(Array.isArray(identity?.names) ? identity.names : []);
    if (this.me) this.myNames.add(this.me);

    /** @type {Map<string, RoomState>} */
    this.rooms = new Map();
    const stored = this.#load("rooms");
    for (const r of Array.isArray(stored) ? stored : opts.rooms ?? ["lobby"]) {
      const n = typeof r === "string" ? normalizeRoom(r) : undefined;
      if (n) this.rooms.set(n, new RoomState(n));
    }
    /** @type {Map<string, DirectConversation>} keyed by lower-case name */
    this.directs = new Map();
    /** @type {OutboxItem[]} */
    this.outbox = [];
    const ob = this.#load("outbox");
    if (Array.isArray(ob)) {
      for (const i of ob) {
        if (!i || typeof i.cid !== "string" || typeof i.text !== "string") continue;
        if (typeof i.room !== "string" && typeof i.to !== "string") continue;
        this.outbox.push({ ...i, state: i.state === "failed" ? "failed" : "pending" });
      }
    }

    /** @type {ConnState} */
    this.state = "offline";
    /** When the next reconnect attempt starts (ms since epoch), 0 when none is waiting. */
    this.retryAt = 0;
    /** @type {Limits} */
    this.limits = { ...DEFAULT_LIMITS };
    /** Counters, for tests and diagnostics. */
    this.stats = { frames: 0, lines: 0, connects: 0 };
    /** The server's list of direct conversations came on this connection. */
    this.conversationsLoaded = false;

    /** @type {WebSocket | undefined} */
    this.ws = undefined;
    // A name chosen now is kept even if the page goes away before the server answers.
    if (opts.name && !identity?.token && !this.getToken) this.#saveIdentity();
  }

  #welcomed = false;
  #stopped = true;
  #attempt = 0;
  #liveSince = 0;
  #lastInbound = 0;
  /** @type {string | undefined} cid of the one send in flight */
  #inFlight = undefined;
  #tokens = 0;
  #tokensAt = 0;
  /** @type {Map<string, number>} room → when we last sent typing */
  #typingSent = new Map();
  /** @type {Map<string, number>} room → when the throttle last held a `typing` back */
  #typingHeld = new Map();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #retryTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #pingTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #ackTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #pumpTimer;
  /** When {@link #pumpTimer} fires (ms). */
  #pumpDue = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #typingTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #refreshTimer;
  /** Counts connects, so a token that arrives after its connect was given up is not used. */
  #connectSeq = 0;
  /** @type {(() => void) | undefined} */
  #onClosed;

  /** Whether the connection is up and welcomed. */
  get live() {
    return this.state === "live";
  }

  /** Connects (and keeps reconnecting until {@link stop}). */
  start() {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#attempt = 0;
    this.#connect();
  }

  /**
   * Closes the connection and stops reconnecting. Clears every timer.
   * @returns {Promise<void>} resolves once the socket has closed
   */
  stop() {
    this.#stopped = true;
    this.#clearTimers();
    this.retryAt = 0;
    const ws = this.ws;
    /** @type {Promise<void>} */
    let closed = Promise.resolve();
    if (ws && ws.readyState !== 3) {
      closed = new Promise((resolve) => this.#onClosed = resolve);
      try {
        ws.close(1000, "bye");
      } catch { /* closing already */ }
    } else {
      this.ws = undefined;
    }
    this.#setState("offline");
    return closed;
  }

  /** Skips the wait of a pending reconnect (e.g. when the network comes back). */
  reconnectNow() {
    if (this.#stopped || this.ws) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#connect();
  }

  /**
   * Joins `room` (and remembers it). Returns its canonical name, or undefined if invalid.
   * @param {string} room
   * @param {{ resume?: RoomState }} [opts] `resume`: the state {@link leave} returned for this room;
   *   its messages are kept and the join asks only for what came since (an undone leave).
   */
  join(room, opts = {}) {
    const name = normalizeRoom(room);
    if (!name) return undefined;
    if (!this.rooms.has(name)) {
      const kept = opts.resume?.name === name ? opts.resume : undefined;
      if (kept) {
        kept.joined = false;
        kept.loadingOlder = false;
        kept.typing.clear();
      }
      this.rooms.set(name, kept ?? new RoomState(name));
      this.#saveRooms();
      this.#emit("rooms", {});
      if (this.#welcomed) this.#sendJoin(this.rooms.get(name));
    }
    return name;
  }

  /**
   * Leaves `room`; what was waiting in the outbox for it is dropped.
   * @param {string} room
   * @returns {RoomState | undefined} the room as it was, for `join(room, { resume })`
   */
  leave(room) {
    const r = this.rooms.get(room);
    if (!r) return undefined;
    this.rooms.delete(room);
    this.#saveRooms();
    if (r.joined && this.ws?.readyState === 1) this.#send({ type: "leave", room });
    const before = this.outbox.length;
    this.outbox = this.outbox.filter((i) => i.room !== room);
    if (this.outbox.length !== before) this.#outboxChanged();
    this.#emit("rooms", {});
    return r;
  }

  /**
   * Queues a message for a room (`room`, optionally answering its message `replyTo`) or a person
   * (`to`) and sends it when it can.
   * @param {{ room?: string, to?: string, text: string, replyTo?: number }} target
   * @returns {OutboxItem}
   * @throws {RangeError} when the text is empty or too long, or the target is missing
   */
  send(target) {
    const text = target.text;
    if (text.trim() === "") throw new RangeError("The message is empty");
    if (text.length > this.limits.textChars) {
      throw new RangeError(`Messages are at most ${this.limits.textChars} characters`);
    }
    /** @type {OutboxItem} */
    const item = { cid: crypto.randomUUID(), text, createdAt: Date.now(), state: "pending" };
    if (target.to !== undefined) {
      if (!isValidName(target.to)) throw new RangeError(`"${target.to}" is not a valid name`);
      item.to = target.to;
    } else {
      const room = target.room === undefined ? undefined : normalizeRoom(target.room);
      if (!room || !this.rooms.has(room)) throw new RangeError("Join the room before sending to it");
      item.room = room;
      if (target.replyTo !== undefined) {
        if (!Number.isSafeInteger(target.replyTo) || target.replyTo < 1) {
          throw new RangeError(`replyTo must be a message's seq, got ${target.replyTo}`);
        }
        item.replyTo = target.replyTo;
      }
    }
    this.outbox.push(item);
    this.#outboxChanged();
    this.#pump();
    return item;
  }

  /**
   * Toggles (or with `on`, sets) this person's reaction `emoji` on message `seq` of `room`. Not
   * queued: false when it cannot go now (offline, rate limit). The room's `reactions` line updates
   * the message (event `reactions`); a refusal comes back as an `error` event.
   * @param {string} room
   * @param {number} seq
   * @param {string} emoji
   * @param {boolean} [on]
   * @returns {boolean} whether it was sent
   */
  react(room, seq, emoji, on) {
    const r = this.rooms.get(normalizeRoom(room) ?? "");
    if (!r?.joined || !this.live || !this.#takeToken()) return false;
    /** @type {Record<string, unknown>} */
    const msg = { type: "react", room: r.name, seq, emoji };
    if (on !== undefined) msg.on = on;
    this.#send(msg);
    return true;
  }

  /**
   * Sends a failed message again (same cid).
   * @param {string} cid
   */
  retry(cid) {
    const item = this.outbox.find((i) => i.cid === cid);
    if (!item || item.state !== "failed") return;
    item.state = "pending";
    delete item.error;
    this.#outboxChanged();
    this.#pump();
  }

  /**
   * Drops a message from the outbox.
   * @param {string} cid
   */
  discard(cid) {
    if (this.#inFlight === cid) this.#clearInFlight();
    const n = this.outbox.length;
    this.outbox = this.outbox.filter((i) => i.cid !== cid);
    if (n !== this.outbox.length) this.#outboxChanged();
    this.#pump();
  }

  /**
   * Tells the room you are typing (at most once per `typingThrottleMs`).
   * @param {string} room
   */
  typing(room) {
    const r = this.rooms.get(room);
    if (!r?.joined || !this.live) return;
    const now = Date.now();
    if (now - (this.#typingSent.get(room) ?? 0) < this.typingThrottleMs) {
      this.#typingHeld.set(room, now);
      return;
    }
    if (!this.#takeToken()) return;
    this.#typingSent.set(room, now);
    this.#typingHeld.delete(room);
    this.#send({ type: "typing", room });
  }

  /**
   * Asks for another name.
   * @param {string} name
   * @throws {RangeError} when the name is not valid
   */
  nick(name) {
    if (!this.guest) throw new RangeError("Your name comes from your sign-in: change it on that site");
    if (!isValidName(name)) throw new RangeError(`Names are 1-32 letters, digits, "_", "-" or "."`);
    if (!this.live) throw new RangeError("Not connected: try again when live");
    this.#send({ type: "nick", name });
  }

  /**
   * Asks for the page of messages older than the oldest one held.
   * @param {string} room
   * @returns {boolean} whether a request went out
   */
  loadOlder(room) {
    const r = this.rooms.get(room);
    if (!r || r.complete || r.loadingOlder || !r.joined || !this.live) return false;
    r.loadingOlder = true;
    /** @type {Record<string, unknown>} */
    const msg = { type: "history", room };
    if (r.messages.length) msg.before = r.messages[0].seq;
    this.#takeToken();
    this.#send(msg);
    return true;
  }

  /**
   * Tells the server you have read `target` (a room, or the conversation with `peer`) up to its newest
   * message (or `seq`); your other devices hear it.
   * @param {{room: string, seq?: number} | {peer: string, seq?: number}} target
   * @returns {boolean} whether a `read` went out
   */
  markRead(target) {
    if (!this.live) return false;
    // Taken as read here at once (the badge goes now, and the same seq is not sent twice); the
    // server's `read` line confirms it, and a later `joined` or conversation list corrects it.
    if ("room" in target) {
      const r = this.rooms.get(target.room);
      const seq = Math.min(target.seq ?? r?.lastSeq ?? 0, r?.lastSeq ?? 0);
      if (!r?.joined || seq <= r.lastRead) return false;
      this.#send({ type: "read", room: r.name, seq });
      r.lastRead = seq;
      r.unread = Math.max(0, r.lastSeq - r.lastRead);
      this.#recountMentions(r);
      this.#emit("read", { room: r.name });
      return true;
    }
    const c = this.directs.get(target.peer.toLowerCase());
    const seq = Math.min(target.seq ?? c?.lastSeq ?? 0, c?.lastSeq ?? 0);
    if (!c?.conv || seq <= c.lastRead) return false;
    this.#send({ type: "read", conv: c.conv, seq });
    c.lastRead = seq;
    c.unread = Math.max(0, c.lastSeq - c.lastRead);
    this.#emit("read", { peer: c.peer });
    return true;
  }

  /**
   * Whether message `m` mentions you, as the server marked it (`mentions`, the names it mentions).
   * @param {RoomMessage | DirectMessage} m
   */
  mentionsMe(m) {
    return "mentions" in m && Array.isArray(m.mentions) && m.mentions.some((n) => this.isMe(n));
  }

  /**
   * Asks for the page of the direct conversation with `peer` older than what is held (its stored
   * history: the server keeps DMs like room messages).
   * @param {string} peer
   * @returns {boolean} whether a request went out
   */
  loadOlderDirect(peer) {
    const c = this.directs.get(peer.toLowerCase());
    if (!c || c.complete || c.loadingOlder || c.catchingUp || !this.live) return false;
    if (!c.conv) {
      // Not in the server's list: no message was ever stored between you.
      if (this.conversationsLoaded) c.complete = true;
      return false;
    }
    c.loadingOlder = true;
    /** @type {Record<string, unknown>} */
    const msg = { type: "history", conv: c.conv };
    const oldest = c.messages.find((m) => m.convSeq !== undefined)?.convSeq;
    if (oldest !== undefined) msg.before = oldest;
    this.#takeToken();
    this.#send(msg);
    return true;
  }

  /**
   * Counts again the messages after the read position that mention you, from those held when they
   * cover it all; else the count can only shrink with the unread ones.
   * @param {RoomState} r
   */
  #recountMentions(r) {
    if (r.lastRead >= r.lastSeq) return void (r.mentions = 0);
    const first = r.messages[0]?.seq ?? Infinity;
    if (r.complete || first <= r.lastRead + 1) {
      r.mentions = r.messages.filter((m) => m.seq > r.lastRead && !m.deleted && this.mentionsMe(m)).length;
    } else r.mentions = Math.min(r.mentions, r.unread);
  }

  /**
   * The direct conversation with `name`, created if needed.
   * @param {string} name
   */
  direct(name) {
    const key = name.toLowerCase();
    let c = this.directs.get(key);
    if (!c) {
      c = new DirectConversation(name);
      this.directs.set(key, c);
    }
    return c;
  }

  /**
   * Whether `from` is you (under any name you had).
   * @param {string} from
   */
  isMe(from) {
    return from === this.me || this.myNames.has(from);
  }

  /**
   * Whether you moderate `room` (your role there, or the connection's before it is joined).
   * @param {string} room
   */
  moderates(room) {
    return MODERATOR_ROLES.has(this.rooms.get(room)?.role || this.role);
  }

  /**
   * Deletes message `seq` of `room` (yours, or anyone's when you moderate). The room is told
   * `deleted`, which turns it into a tombstone here too (a `changed` event).
   * @param {string} room
   * @param {number} seq
   * @throws {RangeError} when not connected or not in the room
   */
  deleteMessage(room, seq) {
    this.#roomFrame({ type: "delete", room, seq });
  }

  /**
   * Edits your message `seq` of `room` (within the server's edit window); the room is told `edited`.
   * @param {string} room
   * @param {number} seq
   * @param {string} text
   * @throws {RangeError} when the text is empty or too long, or not connected or not in the room
   */
  editMessage(room, seq, text) {
    if (text.trim() === "") throw new RangeError("The message is empty: delete it instead");
    if (text.length > this.limits.textChars) {
      throw new RangeError(`Messages are at most ${this.limits.textChars} characters`);
    }
    this.#roomFrame({ type: "edit", room, seq, text });
  }

  /**
   * A moderator's action on `name` in `room`; the room is told with a `moderation` line.
   * @param {"kick" | "ban" | "mute" | "unmute"} action
   * @param {string} room
   * @param {string} name
   * @param {{ seconds?: number, reason?: string }} [opts] `seconds`: how long a ban or mute lasts
   *   (none: for good); `reason`: one line, at most 200 characters
   * @throws {RangeError} when not connected or not in the room
   */
  moderate(action, room, name, opts = {}) {
    /** @type {Record<string, unknown> & { room: string }} */
    const msg = { type: action, room, name };
    if (opts.seconds !== undefined && action !== "kick" && action !== "unmute") msg.seconds = opts.seconds;
    const reason = opts.reason?.trim();
    if (reason && action !== "unmute") msg.reason = reason;
    this.#roomFrame(msg);
  }

  /**
   * Lifts the ban of user `uid` (from a `moderation` line) in `room`.
   * @param {string} room
   * @param {string} uid
   */
  unban(room, uid) {
    this.#roomFrame({ type: "unban", room, uid });
  }

  /**
   * Changes `room`'s rules (moderators); every member gets the new ones (a `rules` event).
   * @param {string} room
   * @param {Partial<RoomRules>} rules
   */
  setRules(room, rules) {
    this.#roomFrame({ type: "room", room, ...rules });
  }

  /**
   * Asks again to join a room you were removed from or refused (a kick is not a ban).
   * @param {string} room
   */
  rejoin(room) {
    const r = this.rooms.get(room);
    if (!r || r.joined) return;
    r.removed = undefined;
    this.#emit("standing", { room });
    if (this.#welcomed) this.#sendJoin(r);
  }

  /**
   * Sends a frame about a room you are in, or says why it cannot go.
   * @param {Record<string, unknown> & { room: string }} msg
   */
  #roomFrame(msg) {
    if (!this.live) throw new RangeError("Not connected: try again when live");
    if (!this.rooms.get(msg.room)?.joined) throw new RangeError(`You are not in #${msg.room}`);
    this.#takeToken();
    this.#send(msg);
  }

  // ---------------------------------------------------------------------------------------------

  #connect() {
    this.retryAt = 0;
    this.#setState(this.stats.connects === 0 || this.#attempt === 0 ? "connecting" : "reconnecting");
    if (!this.getToken) return this.#open(undefined);
    // A fresh token before every connect: the last one may have expired meanwhile.
    const seq = ++this.#connectSeq;
    this.getToken().then(
      (token) => {
        if (seq !== this.#connectSeq || this.#stopped || this.ws) return;
        if (typeof token !== "string" || token === "") throw new TypeError("getToken() gave no token");
        this.#open(token);
      },
    ).catch((/** @type {unknown} */ e) => {
      if (seq !== this.#connectSeq || this.#stopped) return;
      this.#emit("servererror", { code: "no_token", message: `Cannot sign in: ${String(e)}` });
      this.#scheduleReconnect();
    });
  }

  /** @param {string | undefined} token a signed token, sent as the first frame */
  #open(token) {
    const q = new URLSearchParams({ room: "" });
    if (token !== undefined) q.set("auth", "frame");
    else {
      if (this.me && isValidName(this.me)) q.set("name", this.me);
      if (this.token) q.set("token", this.token);
    }
    /** @type {WebSocket} */
    let ws;
    try {
      ws = new this.WebSocketImpl(`${this.url}?${q}`, ["chat"]);
    } catch {
      this.#scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.stats.connects++;
    ws.onmessage = (e) => {
      if (this.ws !== ws) return;
      this.#lastInbound = Date.now();
      this.stats.frames++;
      for (const m of parseFrame(String(e.data))) {
        this.stats.lines++;
        this.trace?.("in", m);
        this.#handle(m);
      }
    };
    // Not in the URL: a query string ends up in logs, a frame does not.
    if (token !== undefined) ws.onopen = () => this.#send({ type: "auth", token });
    ws.onerror = () => {/* a close event follows */};
    ws.onclose = (e) => this.#closed(ws, e?.code);
  }

  /** Asks the host for a new token `refreshBeforeMs` before `exp`, and sends it on this connection. */
  #scheduleRefresh() {
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    if (!this.getToken || !this.exp) return;
    const getToken = this.getToken;
    const delay = Math.max(1000, this.exp - this.refreshBeforeMs - Date.now());
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = undefined;
      const ws = this.ws;
      getToken().then((token) => {
        if (this.ws === ws && this.#welcomed) this.#send({ type: "auth", token });
      }).catch((/** @type {unknown} */ e) => {
        // Try again shortly; at exp the server closes and the reconnect asks once more.
        this.#emit("servererror", { code: "no_token", message: `Cannot renew the sign-in: ${String(e)}` });
        if (this.exp - Date.now() > 2000) {
          this.exp = Math.max(Date.now() + this.refreshBeforeMs - 1000, this.exp - 1000);
          this.#scheduleRefresh();
        }
      });
    }, delay);
  }

  /**
   * @param {WebSocket} ws
   * @param {number} [code]
   */
  #closed(ws, code) {
    if (this.ws !== ws) return;
    this.ws = undefined;
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    const wasLive = this.#welcomed;
    this.#welcomed = false;
    clearTimeout(this.#pingTimer);
    this.#pingTimer = undefined;
    this.#clearInFlight();
    this.conversationsLoaded = false;
    for (const c of this.directs.values()) {
      c.loadingOlder = c.catchingUp = false;
      c.catchUpAfter = 0;
    }
    for (const r of this.rooms.values()) {
      r.joined = false;
      r.loadingOlder = false;
      if (r.typing.size) {
        r.typing.clear();
        this.#emit("typing", { room: r.name });
      }
    }
    if (this.#onClosed) {
      this.#onClosed();
      this.#onClosed = undefined;
    }
    if (this.#stopped) return this.#setState("offline");
    // A connection that stayed up a while starts the backoff over; one that dropped at once does not.
    if (wasLive && Date.now() - this.#liveSince >= this.stableMs) this.#attempt = 0;
    // An expired sign-in is no fault of the network: come back at once with a new token.
    if (code === 4003) this.#attempt = 0;
    this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    const delay = backoffDelay(this.#attempt++, this.backoff, this.random);
    this.retryAt = Date.now() + delay;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (!this.#stopped) this.#connect();
    }, delay);
    this.#setState("reconnecting");
  }

  /** @param {Record<string, any>} m */
  #handle(m) {
    switch (m.type) {
      case "welcome":
        return this.#welcome(m);
      case "joined":
        return this.#joinedRoom(m);
      case "left": {
        const r = this.rooms.get(m.room);
        if (r) r.joined = false;
        return;
      }
      case "message":
        return typeof m.room === "string" ? this.#roomMessage(m) : this.#directMessage(m);
      case "ack":
        return this.#ack(m);
      case "presence": {
        const r = this.rooms.get(m.room);
        if (!r || typeof m.name !== "string") return;
        if (m.event === "join") r.members.add(m.name);
        else if (m.event === "leave") {
          r.members.delete(m.name);
          r.typing.delete(m.name);
        }
        return this.#emit("members", { room: r.name });
      }
      case "typing": {
        const r = this.rooms.get(m.room);
        if (!r || typeof m.name !== "string" || this.isMe(m.name)) return;
        r.typing.set(m.name, Date.now() + this.typingTtlMs);
        this.#scheduleTypingSweep();
        return this.#emit("typing", { room: r.name });
      }
      case "nick":
        return this.#renamed(m.old, m.name);
      case "history":
        return typeof m.conv === "string" ? this.#convHistory(m) : this.#history(m);
      case "reactions":
        return this.#reactions(m);
      case "conversations":
        return this.#conversations(m);
      case "read":
        return this.#read(m);
      case "pong":
        return;
      case "authed":
        return this.#authed(m);
      case "error":
        return this.#serverError(m);
      case "deleted":
      case "edited":
        return this.#messageChanged(m);
      case "moderation":
        return this.#moderationLine(m);
      case "room":
        return this.#rulesLine(m);
      case "kicked": {
        const r = this.rooms.get(m.room);
        if (!r) return;
        const reason = m.reason === "banned" || m.reason === "forbidden" ? m.reason : "kicked";
        return this.#removed(r, { reason, message: "" });
      }
    }
  }

  /** @param {Record<string, any>} m */
  #welcome(m) {
    this.#welcomed = true;
    this.#liveSince = Date.now();
    this.me = m.name;
    this.myNames.add(m.name);
    if (typeof m.uid === "string") this.uid = m.uid;
    if (typeof m.role === "string") this.role = m.role;
    this.guest = typeof m.guest === "boolean" ? m.guest : !this.getToken;
    if (this.getToken) {
      this.exp = typeof m.exp === "number" ? m.exp : 0;
      this.#scheduleRefresh();
    } else {
      this.token = m.token;
      this.#saveIdentity();
    }
    if (m.limits && typeof m.limits === "object") this.limits = { ...DEFAULT_LIMITS, ...m.limits };
    this.#tokens = this.#capacity();
    this.#tokensAt = Date.now();
    this.#setState("live");
    this.#emit("welcome", { name: m.name, notice: m.notice });
    if (m.notice) this.#emit("notice", { message: m.notice });
    // A room you were taken out of is joined again only when you ask ({@link rejoin}).
    for (const r of this.rooms.values()) if (!r.removed) this.#sendJoin(r);
    this.#schedulePing();
    this.#pump();
  }

  /**
   * A refreshed token was taken: its expiry (and maybe name and role) are now the connection's.
   * @param {Record<string, any>} m
   */
  #authed(m) {
    if (typeof m.exp === "number") this.exp = m.exp;
    if (typeof m.role === "string" && m.role !== this.role) {
      this.role = m.role;
      // A room's role is the connection's (joined.you.role): a new token's role is every room's.
      for (const r of this.rooms.values()) {
        if (!r.role) continue;
        r.role = m.role;
        this.#emit("standing", { room: r.name });
      }
    }
    this.#scheduleRefresh();
    this.#emit("authed", { exp: m.exp, name: m.name, role: m.role, uid: m.uid });
  }

  /** @param {RoomState | undefined} r */
  #sendJoin(r) {
    if (!r) return;
    /** @type {Record<string, unknown>} */
    const msg = { type: "join", room: r.name };
    if (r.synced) {
      msg.since = r.lastSeq;
      if (r.epoch) msg.epoch = r.epoch;
      msg.rev = r.rev;
    }
    this.#takeToken();
    this.#send(msg);
  }

  /** @param {Record<string, any>} m */
  #joinedRoom(m) {
    let r = this.rooms.get(m.room);
    if (!r) {
      // Joined by the server on our behalf (e.g. `?room=`): keep it.
      r = new RoomState(m.room);
      this.rooms.set(m.room, r);
      this.#saveRooms();
      this.#emit("rooms", {});
    }
    /** @type {RoomMessage[]} */
    const msgs = Array.isArray(m.messages) ? m.messages : [];
    r.members = new Set(m.members ?? []);
    // A resume keeps what we have, unless the server's history no longer lines up with it
    // (more missed than it returns, or a store that started over).
    // More changes of held messages than one answer tells: what we hold is reloaded, like a gap.
    const reset = !r.synced || m.truncated || m.changesTruncated === true || m.lastSeq < r.lastSeq ||
      (typeof m.epoch === "string" && r.epoch !== "" && m.epoch !== r.epoch);
    if (reset) {
      r.messages = [];
      r.complete = !m.truncated && m.changesTruncated !== true;
      r.moderation = []; // they sat between messages that are gone
    }
    const added = r.add(msgs);
    // Held messages deleted or edited while we were away, in their form now.
    const changed = [];
    for (const c of Array.isArray(m.changes) && !reset ? m.changes : []) {
      if (c && typeof c.seq === "number") changed.push(...applyChange(r, c.seq, c));
    }
    r.lastSeq = m.lastSeq;
    r.rev = typeof m.rev === "number" ? m.rev : 0;
    if (typeof m.lastRead === "number") r.lastRead = m.lastRead;
    r.unread = Math.max(0, r.lastSeq - r.lastRead);
    if (typeof m.mentions === "number") r.mentions = Math.min(m.mentions, r.unread);
    else this.#recountMentions(r);
    if (typeof m.epoch === "string") r.epoch = m.epoch;
    r.synced = true;
    r.joined = true;
    r.removed = undefined;
    if (m.rules && typeof m.rules === "object") r.rules = { ...DEFAULT_RULES, ...m.rules };
    const you = m.you && typeof m.you === "object" ? m.you : {};
    r.role = typeof you.role === "string" ? you.role : "";
    r.mutedUntil = typeof you.muted === "number" ? you.muted : undefined;
    for (const msg of added) r.typing.delete(msg.from);
    this.#settleByMessages(added);
    this.#emit("joined", { room: r.name, added, reset });
    for (const message of changed) this.#emit("changed", { room: r.name, message });
    // The held messages were dropped: the newest page comes back in its current form.
    if (m.changesTruncated === true) this.loadOlder(r.name);
    this.#emit("members", { room: r.name });
    this.#emit("rules", { room: r.name });
    this.#emit("standing", { room: r.name });
    this.#pump();
  }

  /**
   * `deleted` and `edited`: the message changes in place (a tombstone keeps its seq).
   * @param {Record<string, any>} m
   */
  #messageChanged(m) {
    const r = this.rooms.get(m.room);
    if (!r) return;
    // Counted only in order, and only for a seq we have had (an older one: history brings it
    // changed). A line can overtake its message (another process publishes it): that message may
    // then come with its old text, and the next resume must still list the change.
    if (typeof m.rev === "number" && m.rev <= r.rev) return; // in joined already (it landed during the join)
    if (typeof m.rev === "number" && m.rev === r.rev + 1 && m.seq <= r.lastSeq) r.rev = m.rev;
    const change = m.type === "deleted" ? { deleted: true } : { text: m.text, editedTs: m.editedTs };
    if (typeof m.seq !== "number") return;
    for (const msg of applyChange(r, m.seq, change)) this.#emit("changed", { room: m.room, message: msg });
  }

  /** @param {Record<string, any>} m */
  #moderationLine(m) {
    const r = this.rooms.get(m.room);
    const actions = ["kick", "ban", "unban", "mute", "unmute"];
    if (!r || typeof m.name !== "string" || !actions.includes(m.action)) return;
    /** @type {ModerationLine} */
    const line = {
      action: m.action,
      name: m.name,
      uid: String(m.uid ?? ""),
      by: String(m.by ?? ""),
      ts: Date.now(),
      afterSeq: r.lastSeq,
    };
    if (typeof m.until === "number") line.until = m.until;
    if (typeof m.reason === "string") line.reason = m.reason;
    r.moderation.push(line);
    if (r.moderation.length > MAX_MODERATION_LINES) r.moderation.shift();
    if (line.action === "mute") r.muted.set(line.name, line.until ?? 0);
    else if (line.action === "unmute") r.muted.delete(line.name);
    const aboutMe = this.uid ? line.uid === this.uid : this.isMe(line.name);
    if (aboutMe && (line.action === "mute" || line.action === "unmute")) {
      r.mutedUntil = line.action === "mute" ? line.until ?? 0 : undefined;
      this.#emit("standing", { room: r.name });
      this.#pump();
    }
    this.#emit("moderation", { room: r.name, line });
  }

  /**
   * `room`: the rules changed.
   * @param {Record<string, any>} m
   */
  #rulesLine(m) {
    const r = this.rooms.get(m.room);
    if (!r) return;
    const { type: _, room: __, ...rules } = m;
    r.rules = { ...DEFAULT_RULES, ...rules };
    this.#emit("rules", { room: r.name });
    this.#emit("standing", { room: r.name });
    this.#pump();
  }

  /**
   * You are not (or no longer) in `room`: kicked, banned, or a join was refused. What waits in the
   * outbox for it fails with `message`: it would wait for a join that is not coming.
   * @param {RoomState} r
   * @param {Removal} removal
   */
  #removed(r, removal) {
    r.joined = false;
    r.loadingOlder = false;
    r.removed = removal;
    r.members.clear();
    r.typing.clear();
    this.#failRoom(r, removal.message || postBlock(r, false)?.text || "Not in the room");
    this.#emit("members", { room: r.name });
    this.#emit("typing", { room: r.name });
    this.#emit("standing", { room: r.name });
  }

  /**
   * Fails every outbox entry of room `r` not yet answered.
   * @param {RoomState} r
   * @param {string} error
   */
  #failRoom(r, error) {
    let changed = false;
    for (const item of this.outbox) {
      if (item.room !== r.name || item.state === "failed") continue;
      if (item.cid === this.#inFlight) this.#clearInFlight();
      item.state = "failed";
      item.error = error;
      changed = true;
    }
    if (changed) this.#outboxChanged();
  }

  /** @param {Record<string, any>} m */
  #roomMessage(m) {
    const r = this.rooms.get(m.room);
    if (!r) return;
    /** @type {RoomMessage} */
    const msg = { room: m.room, seq: m.seq, from: m.from, text: m.text, ts: m.ts };
    if (m.cid !== undefined) msg.cid = m.cid;
    if (m.replyTo && typeof m.replyTo === "object") msg.replyTo = m.replyTo;
    if (Array.isArray(m.mentions)) msg.mentions = m.mentions;
    const added = r.add([msg]);
    if (!added.length) this.#completeHeld(r, msg);
    if (m.seq > r.lastSeq) r.lastSeq = m.seq;
    // Your own message reads the room up to it (the server does the same).
    if (this.isMe(m.from) && m.seq > r.lastRead) r.lastRead = m.seq;
    r.unread = Math.max(0, r.lastSeq - r.lastRead);
    if (this.isMe(m.from)) this.#recountMentions(r);
    else if (added.length && m.seq > r.lastRead && this.mentionsMe(msg)) r.mentions++;
    if (r.typing.delete(m.from)) this.#emit("typing", { room: r.name });
    if (this.isMe(m.from)) this.#sentToRoom(r.name, m.cid);
    this.#settleByMessages(added);
    if (added.length) this.#emit("message", { room: r.name, message: msg });
  }

  /**
   * A message line for a seq we already hold: ours, shown from its ack, which can come first (on
   * Redis the line travels through pub/sub). The ack has no quote or mentions; the line has.
   * @param {RoomState} r
   * @param {RoomMessage} line
   */
  #completeHeld(r, line) {
    const held = r.find(line.seq);
    if (!held || held.from !== line.from) return;
    let changed = false;
    if (line.replyTo && !held.replyTo) held.replyTo = line.replyTo, changed = true;
    if (line.mentions && !held.mentions) held.mentions = line.mentions, changed = true;
    if (changed) this.#emit("changed", { room: r.name, message: held });
  }

  /**
   * Our message reached the room, and with it every member cleared our "is typing": the next
   * keystroke must say so again, not wait out the throttle. It is reset here rather than when the
   * message is sent because the server delivers a message only once it is stored, while `typing`
   * goes out at once: a `typing` sent right behind the message would overtake it and be cleared by
   * it. Keystrokes held back since the message was written are reported now.
   * @param {string} room
   * @param {unknown} cid
   */
  #sentToRoom(room, cid) {
    const r = this.rooms.get(room);
    if (r && r.rules.slowModeSeconds > 0 && !this.moderates(room)) {
      // Slow mode counts per person (any tab): the turn is taken, and the next message waits for it
      // instead of being refused (a strike).
      r.slowUntil = Date.now() + r.rules.slowModeSeconds * 1000 + 250;
      r.slowText = "";
      this.#emit("standing", { room });
    }
    this.#typingSent.delete(room);
    const held = this.#typingHeld.get(room);
    this.#typingHeld.delete(room);
    const item = typeof cid === "string" ? this.outbox.find((i) => i.cid === cid) : undefined;
    if (held !== undefined && item && held >= item.createdAt) this.typing(room);
  }

  /** @param {Record<string, any>} m */
  #directMessage(m) {
    if (typeof m.to !== "string" || typeof m.from !== "string") return;
    const peer = this.isMe(m.from) ? m.to : m.from;
    /** @type {DirectMessage} */
    const msg = { to: m.to, from: m.from, text: m.text, ts: m.ts };
    if (m.cid !== undefined) msg.cid = m.cid;
    if (typeof m.conv === "string") msg.conv = m.conv;
    if (typeof m.seq === "number") msg.convSeq = m.seq;
    const c = this.direct(peer);
    if (msg.conv) c.conv = msg.conv;
    const added = c.add(msg);
    if (msg.convSeq !== undefined && this.isMe(msg.from) && msg.convSeq > c.lastRead) {
      c.lastRead = msg.convSeq;
    }
    c.unread = Math.max(0, c.lastSeq - c.lastRead);
    if (added) this.#emit("message", { peer: c.peer, message: msg });
    if (msg.cid && this.isMe(msg.from)) this.#settle(msg.cid);
  }

  /**
   * Our own messages that came back: their outbox entries are done.
   * @param {RoomMessage[]} msgs
   */
  #settleByMessages(msgs) {
    for (const msg of msgs) if (msg.cid && this.isMe(msg.from)) this.#settle(msg.cid);
  }

  /**
   * Removes outbox entry `cid` (delivered).
   * @param {string} cid
   */
  #settle(cid) {
    if (this.#inFlight === cid) this.#clearInFlight();
    const n = this.outbox.length;
    this.outbox = this.outbox.filter((i) => i.cid !== cid);
    if (n !== this.outbox.length) this.#outboxChanged();
  }

  /** @param {Record<string, any>} m */
  #ack(m) {
    const item = this.outbox.find((i) => i.cid === m.cid);
    if (item?.room) this.#sentToRoom(item.room, item.cid);
    if (item) {
      // The message itself normally came just before; a re-send that the server de-duplicated
      // brings only the ack, so make sure the message is shown.
      if (item.room && typeof m.seq === "number") {
        const r = this.rooms.get(item.room);
        const msg = { room: item.room, seq: m.seq, from: this.me, text: item.text, ts: m.ts, cid: item.cid };
        if (r && (r.messages.length === 0 || m.seq >= r.messages[0].seq || r.complete)) {
          const added = r.add([msg]);
          if (added.length) this.#emit("message", { room: r.name, message: msg });
        }
      } else if (item.to) {
        /** @type {DirectMessage} */
        const msg = { to: m.to ?? item.to, from: this.me, text: item.text, ts: m.ts, cid: item.cid };
        if (typeof m.conv === "string" && typeof m.seq === "number") msg.conv = m.conv, msg.convSeq = m.seq;
        const c = this.direct(msg.to);
        if (msg.conv) c.conv = msg.conv;
        if (c.add(msg)) this.#emit("message", { peer: c.peer, message: msg });
      }
    }
    this.#settle(m.cid);
    this.#pump();
  }

  /**
   * The list of direct conversations: each one's id, newest seq, read position and last message.
   * @param {Record<string, any>} m
   */
  #conversations(m) {
    if (!Array.isArray(m.items)) return;
    for (const item of m.items) {
      if (typeof item?.with !== "string" || typeof item.conv !== "string") continue;
      const c = this.direct(item.with);
      c.conv = item.conv;
      // Held messages, then some missed while away: ask for those (after the newest held) first.
      const held = c.heldSeq();
      if (held > 0 && typeof item.lastSeq === "number" && item.lastSeq > held) this.#catchUp(c, held);
      if (typeof item.lastSeq === "number" && item.lastSeq > c.lastSeq) c.lastSeq = item.lastSeq;
      if (typeof item.lastRead === "number" && item.lastRead > c.lastRead) c.lastRead = item.lastRead;
      c.unread = Math.max(0, c.lastSeq - c.lastRead);
      const last = item.last;
      if (last && typeof last.from === "string") {
        c.add({
          conv: item.conv,
          convSeq: last.seq,
          to: this.isMe(last.from) ? c.peer : this.me,
          from: last.from,
          text: last.text,
          ts: last.ts,
          ...(last.cid === undefined ? {} : { cid: last.cid }),
        });
      }
    }
    this.conversationsLoaded = true;
    this.#emit("conversations", {});
  }

  /**
   * Asks for the messages of `c` newer than `after` (they were missed while disconnected).
   * @param {DirectConversation} c
   * @param {number} after
   */
  #catchUp(c, after) {
    if (c.catchingUp || !c.conv) return;
    if (c.loadingOlder) return void (c.catchUpAfter = after);
    c.catchingUp = true;
    this.#takeToken();
    this.#send({ type: "history", conv: c.conv, after });
  }

  /**
   * A page of a direct conversation's history.
   * @param {Record<string, any>} m
   */
  #convHistory(m) {
    const c = [...this.directs.values()].find((x) => x.conv === m.conv);
    if (!c || !Array.isArray(m.messages)) return;
    for (const x of m.messages) {
      c.add({
        conv: m.conv,
        convSeq: x.seq,
        to: this.isMe(x.from) ? c.peer : this.me,
        from: x.from,
        text: x.text,
        ts: x.ts,
        ...(x.cid === undefined ? {} : { cid: x.cid }),
      });
    }
    if (typeof m.lastSeq === "number" && m.lastSeq > c.lastSeq) c.lastSeq = m.lastSeq;
    c.unread = Math.max(0, c.lastSeq - c.lastRead);
    // An answer to `after` (catching up) or to `before` (older history).
    if (c.catchingUp) {
      c.catchingUp = false;
      if (!m.complete && m.messages.length > 0) this.#catchUp(c, m.messages.at(-1).seq);
    } else {
      c.loadingOlder = false;
      if (m.complete) c.complete = true;
      if (c.catchUpAfter) this.#catchUp(c, c.catchUpAfter), c.catchUpAfter = 0;
    }
    this.#emit("history", { peer: c.peer });
  }

  /**
   * Your read position moved (maybe on another device).
   * @param {Record<string, any>} m
   */
  #read(m) {
    if (typeof m.seq !== "number") return;
    if (typeof m.room === "string") {
      const r = this.rooms.get(m.room);
      if (!r) return;
      if (m.seq > r.lastRead) r.lastRead = m.seq;
      r.unread = Math.max(0, r.lastSeq - r.lastRead);
      this.#recountMentions(r);
      return this.#emit("read", { room: r.name });
    }
    const c = [...this.directs.values()].find((x) => x.conv === m.conv);
    if (!c) return;
    if (m.seq > c.lastRead) c.lastRead = m.seq;
    c.unread = Math.max(0, c.lastSeq - c.lastRead);
    this.#emit("read", { peer: c.peer });
  }

  /** @param {Record<string, any>} m */
  #history(m) {
    const r = this.rooms.get(m.room);
    if (!r) return;
    r.loadingOlder = false;
    const added = r.add(Array.isArray(m.messages) ? m.messages : []);
    if (m.complete) r.complete = true;
    this.#emit("history", { room: r.name, added });
  }

  /**
   * A message's reactions changed: its counts, and ours when the change was ours.
   * @param {Record<string, any>} m
   */
  #reactions(m) {
    const r = this.rooms.get(m.room);
    const msg = r?.messages.find((x) => x.seq === m.seq);
    if (!r || !msg || !m.counts || typeof m.counts !== "object") return;
    if (Object.keys(m.counts).length > 0) msg.reactions = m.counts;
    else delete msg.reactions;
    if (this.isMe(m.by)) {
      const mine = (msg.mine ?? []).filter((e) => e !== m.emoji);
      if (m.on) mine.push(m.emoji);
      if (mine.length > 0) msg.mine = mine;
      else delete msg.mine;
    }
    this.#emit("reactions", { room: r.name, seq: m.seq, message: msg });
  }

  /**
   * @param {string} old
   * @param {string} name
   */
  #renamed(old, name) {
    if (typeof old !== "string" || typeof name !== "string") return;
    if (old === this.me) {
      this.me = name;
      this.myNames.add(name);
      this.#saveIdentity();
    }
    for (const r of this.rooms.values()) {
      if (r.members.delete(old)) {
        r.members.add(name);
        this.#emit("members", { room: r.name });
      }
      if (r.typing.delete(old)) this.#emit("typing", { room: r.name });
    }
    const c = this.directs.get(old.toLowerCase());
    if (c && !this.directs.has(name.toLowerCase())) {
      this.directs.delete(old.toLowerCase());
      c.peer = name;
      this.directs.set(name.toLowerCase(), c);
    }
    for (const i of this.outbox) if (i.to === old) i.to = name;
    this.#emit("nick", { old, name });
  }

  /** @param {Record<string, any>} m */
  #serverError(m) {
    /** @type {OutboxItem | undefined} */
    let item;
    if (typeof m.cid === "string") item = this.outbox.find((i) => i.cid === m.cid);
    // The server does not echo the cid with some refusals of a send (a frame refused before it is
    // read as a send); with one send in flight at a time, a send error belongs to that one. An error
    // naming a room without a cid answers something else (a moderation frame).
    else if (this.#inFlight && SEND_ERRORS.has(m.code) && m.room === undefined) {
      item = this.outbox.find((i) => i.cid === this.#inFlight);
    }
    const r = typeof item?.room === "string" ? this.rooms.get(item.room) : undefined;
    if (item) {
      if (item.cid === this.#inFlight) this.#clearInFlight();
      if (RETRY_ERRORS.has(m.code)) {
        item.state = "pending";
        this.#pumpLater(1000);
      } else if (m.code === "slow_mode" && r) {
        // Slow mode: the message waits its turn and goes by itself, rather than failing; a person
        // who writes two lines quickly means both. The room's later messages wait behind it (order).
        const wait = Number(/wait (\d+) s/.exec(String(m.message))?.[1] ?? r.rules.slowModeSeconds) || 5;
        r.slowUntil = Date.now() + wait * 1000 + 250;
        r.slowText = String(m.message ?? "");
        item.state = "pending";
        this.#emit("standing", { room: r.name });
        this.#pump();
      } else {
        item.state = "failed";
        item.error = String(m.message ?? m.code);
        this.#pump();
      }
      this.#outboxChanged();
    }
    if (m.code === "not_member" && typeof m.room === "string") {
      const r = this.rooms.get(m.room);
      if (r) r.joined = false;
    }
    if ((m.code === "forbidden" || m.code === "banned") && !item) this.#joinRefused(m);
    // The server said so before we knew (a mute or read-only on its way): the room's page shows it.
    if (m.code === "muted" || m.code === "read_only") {
      if (r && m.code === "muted" && !r.isMuted()) {
        // Until when is only in the sentence ("until <ISO time>" or "for good").
        const until = /until (\S+Z)\b/.exec(String(m.message))?.[1];
        r.mutedUntil = until ? Date.parse(until) || 0 : 0;
      }
      if (r) this.#emit("standing", { room: r.name });
    }
    this.#emit("servererror", { code: m.code, message: String(m.message ?? m.code), item });
  }

  /**
   * A join was refused (`forbidden`, `banned`). The refusal names no room in a field (unlike a
   * refused send), only in its sentence (`... room "x" ...`; room names hold no quotes): the room is
   * the one named there, if we are waiting to join it.
   * @param {Record<string, any>} m
   */
  #joinRefused(m) {
    const named = typeof m.room === "string" ? m.room : /room "([^"]+)"/.exec(String(m.message))?.[1];
    const r = named === undefined ? undefined : this.rooms.get(named);
    if (!r || r.joined) return;
    this.#removed(r, {
      reason: m.code === "banned" ? "banned" : "refused",
      message: String(m.message ?? m.code),
    });
  }

  /**
   * Sends the next ready outbox entry; one at a time so every refusal is attributable.
   *
   * A message to a room where you know you cannot post (muted, read-only, removed: see
   * {@link postBlock}) fails here with the sentence the page shows, without being sent: each refusal
   * would cost the connection a strike (too many close it). The server's word still decides: what
   * goes out and is refused fails with the server's sentence. Slow mode holds a room's messages
   * until its wait is over, then they go.
   */
  #pump() {
    if (!this.live || this.#inFlight || this.#stopped) return;
    const now = Date.now();
    /** Rooms whose messages wait for slow mode: later ones must not overtake the first. */
    let wake = Infinity;
    for (const item of this.outbox) {
      if (item.state !== "pending") continue;
      if (item.room) {
        const r = this.rooms.get(item.room);
        if (!r) {
          item.state = "failed";
          item.error = "You are not in this room any more";
          this.#outboxChanged();
          continue;
        }
        const block = r.joined || r.removed ? postBlock(r, this.moderates(r.name), now) : undefined;
        if (block) {
          item.state = "failed";
          item.error = block.text;
          this.#outboxChanged();
          continue;
        }
        if (!r.joined) continue;
        if (r.slowUntil > now) {
          wake = Math.min(wake, r.slowUntil);
          continue;
        }
      }
      if (!this.#takeToken()) return this.#pumpLater(Math.ceil(1000 / this.limits.messagesPerSecond));
      item.state = "sending";
      this.#inFlight = item.cid;
      /** @type {Record<string, unknown>} */
      const msg = { type: "send", text: item.text, cid: item.cid };
      if (item.room) msg.room = item.room;
      else msg.to = item.to;
      if (item.replyTo !== undefined) msg.replyTo = item.replyTo;
      this.#send(msg);
      this.#ackTimer = setTimeout(() => {
        this.#ackTimer = undefined;
        if (this.#inFlight !== item.cid) return;
        // No answer: send it again with the same cid (the server answers a duplicate with its ack).
        this.#inFlight = undefined;
        item.state = "pending";
        this.#pump();
      }, this.ackTimeoutMs);
      this.#outboxChanged();
      return;
    }
    if (wake !== Infinity) this.#pumpLater(wake - now);
  }

  /**
   * Runs the pump in `ms` (or sooner, when it is due sooner already).
   * @param {number} ms
   */
  #pumpLater(ms) {
    const due = Date.now() + ms;
    if (this.#pumpTimer !== undefined) {
      if (this.#pumpDue <= due) return;
      clearTimeout(this.#pumpTimer);
    }
    this.#pumpDue = due;
    this.#pumpTimer = setTimeout(() => {
      this.#pumpTimer = undefined;
      this.#pump();
    }, ms);
  }

  #clearInFlight() {
    if (this.#inFlight) {
      const item = this.outbox.find((i) => i.cid === this.#inFlight);
      if (item?.state === "sending") item.state = "pending";
    }
    this.#inFlight = undefined;
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
  }

  /** Client-side token bucket a little under the server's, so we are never rate limited. */
  #capacity() {
    return Math.max(1, this.limits.burst - 5);
  }

  #takeToken() {
    const now = Date.now();
    const rate = this.limits.messagesPerSecond * 0.8 / 1000;
    this.#tokens = Math.min(this.#capacity(), this.#tokens + (now - this.#tokensAt) * rate);
    this.#tokensAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #schedulePing() {
    clearTimeout(this.#pingTimer);
    this.#pingTimer = setTimeout(() => {
      this.#pingTimer = undefined;
      const ws = this.ws;
      if (!ws || !this.#welcomed) return;
      const quiet = Date.now() - this.#lastInbound;
      if (quiet >= this.pingIntervalMs + this.pongTimeoutMs) {
        // Nothing came back, not even a pong: the connection is dead without knowing it.
        try {
          ws.close(4000, "no answer");
        } catch { /* closing */ }
        this.#closed(ws);
        return;
      }
      if (quiet >= this.pingIntervalMs) {
        this.#takeToken();
        this.#send({ type: "ping" });
      }
      this.#schedulePing();
    }, Math.min(this.pingIntervalMs, this.pongTimeoutMs));
  }

  #scheduleTypingSweep() {
    if (this.#typingTimer !== undefined) return;
    this.#typingTimer = setTimeout(() => {
      this.#typingTimer = undefined;
      const now = Date.now();
      let more = false;
      for (const r of this.rooms.values()) {
        let changed = false;
        for (const [name, until] of r.typing) {
          if (until <= now) {
            r.typing.delete(name);
            changed = true;
          } else more = true;
        }
        if (changed) this.#emit("typing", { room: r.name });
      }
      if (more) this.#scheduleTypingSweep();
    }, 250);
  }

  /** @param {Record<string, unknown>} msg */
  #send(msg) {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return false;
    this.trace?.("out", msg);
    ws.send(JSON.stringify(msg));
    return true;
  }

  /** @param {ConnState} state */
  #setState(state) {
    const changed = this.state !== state;
    this.state = state;
    // "reconnecting" fires again when the retry time changes.
    if (changed || state === "reconnecting") this.#emit("state", { state });
  }

  #clearTimers() {
    for (
      const t of [
        this.#retryTimer,
        this.#pingTimer,
        this.#ackTimer,
        this.#pumpTimer,
        this.#typingTimer,
        this.#refreshTimer,
      ]
    ) {
      clearTimeout(t);
    }
    this.#refreshTimer = undefined;
    this.#connectSeq++;
    this.#retryTimer =
      this.#pingTimer =
      this.#ackTimer =
      this.#pumpTimer =
      this.#typingTimer =
        undefined;
  }

  /**
   * @param {string} type
   * @param {Record<string, unknown>} detail
   */
  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #outboxChanged() {
    this.#save(
      "outbox",
      this.outbox.map(({ cid, room, to, text, replyTo, createdAt, state, error }) => ({
        cid,
        room,
        to,
        text,
        replyTo,
        createdAt,
        state: state === "sending" ? "pending" : state,
        error,
      })),
    );
    this.#emit("outbox", {});
  }

  #saveIdentity() {
    if (this.getToken) return; // a signed identity lives with the host application, not here
    this.#save("identity", { name: this.me, token: this.token, names: [...this.myNames].slice(-20) });
  }

  #saveRooms() {
    this.#save("rooms", [...this.rooms.keys()]);
  }

  /**
   * @param {string} key
   * @returns {any}
   */
  #load(key) {
    try {
      const raw = this.storage?.getItem(this.prefix + key);
      return raw ? JSON.parse(raw) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * @param {string} key
   * @param {unknown} value
   */
  #save(key, value) {
    try {
      this.storage?.setItem(this.prefix + key, JSON.stringify(value));
    } catch { /* storage full or denied: the session still works */ }
  }
}

/** @returns {KeyValueStorage | null} */
function defaultStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

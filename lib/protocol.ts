/**
 * The wire format: client messages parsed and validated into a union, server messages encoded.
 * `docs/protocol.md` is the human version of this file.
 * @module
 */
import { canonicalDisplay, displayProblem, handleFromDisplay } from "./display_names.ts";
import { canonicalName, NAME_MAX_CHARS, nameProblem } from "./names.ts";
import { isUid, MAX_UID_CHARS } from "./identity.ts";
import { readForm } from "./protocol_forms.ts";
import { MAX_TOPIC_CHARS, ROOM_NAME_RE, ROOM_PREFIX_RE } from "../static/shared/rooms.js";

// The tutorial pages' forms are read in lib/protocol_forms.ts; the wire format has always exported these.
export { decodeFormValue, isFormFrame } from "./protocol_forms.ts";
// The server's messages are lib/server_messages.ts's; the wire format has always exported them.
export { encode, encodeMessage, wireConvMessage, wireMessage } from "./server_messages.ts";
// The message and its quote are the domain's; the wire format has always exported them.
export { type ChatMessage, QUOTE_MAX_CHARS, quoteOf, type ReplyQuote, requote } from "./domain.ts";

/** Protocol version sent in `welcome`. */
export const PROTOCOL_VERSION = 1;
/** The subprotocol the server speaks when a client offers it. */
export const SUBPROTOCOL = "chat";

/** Close codes the server uses. */
export const CloseCode = Object.freeze({
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_BIG: 1009,
  /** The shared store did not answer in time at connect: try again in a moment. */
  TRY_AGAIN: 1013,
  SLOW_CONSUMER: 4001,
  /** An `auth` frame that was owed did not come in time, or its token was refused. */
  AUTH_FAILED: 4002,
  /** The token's `exp` passed without a refresh. */
  TOKEN_EXPIRED: 4003,
  /** A moderator or the host application disconnected this person. */
  DISCONNECTED: 4004,
});

/** Stable error codes sent in `error` frames. */
export type ErrorCode =
  | "bad_json"
  | "bad_message"
  | "frame_too_big"
  | "text_too_long"
  | "bad_room"
  | "bad_name"
  | "name_taken"
  | "not_member"
  | "too_many_rooms"
  | "server_rooms_full"
  | "user_not_found"
  | "rate_limited"
  | "store_failed"
  | "busy"
  | "shutting_down"
  | "unavailable"
  | "auth_required"
  | "bad_token"
  | "token_expired"
  | "forbidden"
  | "banned"
  | "muted"
  | "read_only"
  | "slow_mode"
  | "not_allowed"
  | "message_not_found"
  | "edit_window_closed"
  | "too_many_reactions"
  | "too_many_contacts"
  | "bad_query"
  | "unsupported";

/**
 * Facts of a refusal that a client acts on, sent as fields of the `error` frame beside the sentence
 * (which says the same for people): a client reads these, never the sentence.
 */
export interface ErrorDetails {
  /** The room the refusal is about: every refused join names the room it refuses. */
  room?: string;
  /**
   * `slow_mode`: whole seconds until the person may post in the room again; `too_many_contacts`:
   * until they may write to someone who has not answered.
   */
  retryAfter?: number;
  /** `muted`, `banned`: when it ends (ms since epoch), 0 = for good. */
  until?: number;
}

/**
 * A refused request: a stable code, a human sentence, the close code when the connection ends, and
 * the details a client needs as fields of the error frame.
 */
export class ProtocolError extends Error {
  override name = "ProtocolError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly closeCode?: number,
    readonly details?: ErrorDetails,
  ) {
    super(message);
  }
}

/** UTF-16 units in one reaction emoji (the longest ZWJ family sequences are about 20). */
export const EMOJI_MAX_UNITS = 32;

/**
 * A direct conversation's history: older than `before` (or the newest), the page centered on `around`
 * (a search result's seq), or newer than `after`; at most one of the three.
 */
export interface ConvHistory {
  type: "history";
  conv: string;
  before?: number;
  around?: number;
  after?: number;
  limit?: number;
}

/** Everything a client may send, after validation. */
export type ClientMessage =
  | { type: "join"; room: string; since?: number; epoch?: string; rev?: number }
  | { type: "leave"; room: string }
  | { type: "send"; room: string; text: string; cid?: string; replyTo?: number }
  | { type: "send"; to: string; text: string; cid?: string }
  | { type: "typing"; room: string }
  /** A new name, a new display name ("" for none), or both (the name first). */
  | { type: "nick"; name?: string; display?: string }
  | { type: "history"; room: string; before?: number; limit?: number }
  /**
   * A room's page centered on `around` (a search result's seq: one request opens the room at it), or
   * the page newer than `after` (paging forward from there).
   */
  | { type: "history"; room: string; around: number; limit?: number }
  | { type: "history"; room: string; after: number; limit?: number }
  | ConvHistory
  /** How far the person has read a room or a direct conversation. */
  | { type: "read"; room: string; seq: number }
  | { type: "read"; conv: string; seq: number }
  /** A page of the person's direct conversations: those whose last message is older than `before` (ms). */
  | { type: "conversations"; before?: number; limit?: number }
  | { type: "ping" }
  | { type: "delete"; room: string; seq: number }
  | { type: "edit"; room: string; seq: number; text: string }
  /** Toggles (or with `on`, sets) the sender's reaction `emoji` on a message. */
  | { type: "react"; room: string; seq: number; emoji: string; on?: boolean }
  | { type: "kick" | "ban" | "mute"; room: string; name: string; seconds?: number; reason?: string }
  | { type: "unmute"; room: string; name: string }
  | { type: "unban"; room: string; uid: string }
  | { type: "allow" | "disallow"; room: string; uid: string }
  | {
    type: "room";
    room: string;
    topic?: string;
    private?: boolean;
    readOnly?: boolean;
    slowModeSeconds?: number;
  }
  | { type: "audit"; room: string; before?: number; limit?: number }
  /** A page of a big room's members: names after `after` (a cursor), starting with `prefix`. */
  | { type: "members"; room: string; after?: string; prefix?: string }
  /** A signed token: the first frame of a connection that must authenticate, later a refresh. */
  | { type: "auth"; token: string }
  /** A page of the room directory: public rooms whose name starts with `q`, after the room `after`. */
  | { type: "rooms"; q?: string; after?: string; limit?: number }
  /** Message search (lib/search_text.ts has the query language; lib/chat/search.ts, where it looks). */
  | SearchFrame
  /** A frame that was not JSON: text for the connection's current room. */
  | { type: "raw"; text: string };

/** A `search` frame: `q`, in one room or conversation or everywhere the person reads, a page after `before`. */
export interface SearchFrame {
  type: "search";
  q: string;
  room?: string;
  conv?: string;
  /** Only messages of this sender (as `from:` in `q`). */
  from?: string;
  /** The `next` of the answer before: the page after it. */
  before?: string;
  limit?: number;
  /** Newest first (the default) or best match first. */
  order?: "newest" | "best";
}

/** A search page cursor (`next`): a place in newest-first order, or `r` and a count for best-first. */
const CURSOR_RE = /^r?\d{1,16}$/;

/** Limits the parser enforces. */
export interface ParseLimits {
  maxTextChars: number;
  maxFrameBytes: number;
}

const CID_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
const EPOCH_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** A direct conversation's id: `@` and 22 base64url characters. */
const CONV_RE = /^@[A-Za-z0-9_-]{22}$/;
/** Characters in a moderation reason. */
export const MAX_REASON_CHARS = 200;
export { MAX_TOPIC_CHARS };
/** Longest ban or mute a moderator can give in seconds (one year); longer is forever (no `seconds`). */
export const MAX_SANCTION_SECONDS = 365 * 86_400;
/** Longest slow mode, in seconds. */
export const MAX_SLOW_MODE_SECONDS = 3600;

/**
 * The name as the server keeps and shows it (NFKC, see `lib/names.ts`), or a {@link ProtocolError}
 * `bad_name` whose sentence starts with `action` (e.g. `Cannot change name`) and says what is wrong.
 */
export function normalizeName(name: string, action: string): string {
  const canonical = canonicalName(name);
  const problem = nameProblem(canonical);
  if (problem) throw new ProtocolError("bad_name", `${action}: ${problem}`);
  return canonical;
}

/**
 * The display name as the server keeps and shows it (see `lib/display_names.ts`), or a
 * {@link ProtocolError} `bad_name` whose sentence starts with `action` and says what is wrong.
 */
export function normalizeDisplay(display: string, action: string): string {
  const canonical = canonicalDisplay(display);
  const problem = displayProblem(canonical);
  if (problem) throw new ProtocolError("bad_name", `${action}: ${problem}`);
  return canonical;
}

/** The canonical (lower-case) room name, or a {@link ProtocolError} `bad_room`. */
export function normalizeRoom(room: string): string {
  if (!ROOM_NAME_RE.test(room)) {
    throw new ProtocolError(
      "bad_room",
      `Room names are 1-64 letters, digits, "_", "-" or ".", got ${quote(room)}`,
    );
  }
  return room.toLowerCase();
}

/** Byte length of `s` in UTF-8 without allocating. */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff) i++, n += 2; // a surrogate pair: 4 bytes for 2 units
    else n += 2;
  }
  return n;
}

/**
 * Parses one client frame. Size first, then JSON, then fields.
 * @throws {ProtocolError} with a stable code; `frame_too_big` carries close code 1009.
 */
export function parseClientFrame(data: string, limits: ParseLimits): ClientMessage {
  // A UTF-16 unit is at most 3 UTF-8 bytes, so only long frames need the exact count.
  if (data.length * 3 > limits.maxFrameBytes && utf8Length(data) > limits.maxFrameBytes) {
    throw new ProtocolError(
      "frame_too_big",
      `Frames are at most ${limits.maxFrameBytes} bytes, got ${utf8Length(data)}`,
      CloseCode.TOO_BIG,
    );
  }
  const first = data.trimStart()[0];
  if (first !== "{" && first !== "[" && first !== '"') {
    // Not JSON at all: what a raw client (websocat, the PHP tutorial pages) sends.
    const form = formFrame(data, limits);
    if (form) return form;
    const text = data.trim();
    if (text === "") throw new ProtocolError("bad_message", "Empty frames carry nothing to send");
    return { type: "raw", text: checkText(text, limits) };
  }
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    throw new ProtocolError("bad_json", "Frames must be one JSON object, this one does not parse");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ProtocolError("bad_json", "Frames must be one JSON object");
  }
  const o = v as Record<string, unknown>;
  switch (o.type) {
    case "join": {
      const join: { type: "join"; room: string; since?: number; epoch?: string; rev?: number } = {
        type: "join",
        room: room(o),
      };
      const since = optInt(o, "since");
      if (since !== undefined) join.since = since;
      const rev = optInt(o, "rev");
      if (rev !== undefined) join.rev = rev;
      if (o.epoch !== undefined) {
        if (typeof o.epoch !== "string" || !EPOCH_RE.test(o.epoch)) {
          throw new ProtocolError(
            "bad_message",
            `"epoch" must be the epoch of an earlier joined (1-64 letters, digits, "_" or "-")`,
          );
        }
        join.epoch = o.epoch;
      }
      return join;
    }
    case "leave":
      return { type: "leave", room: room(o) };
    case "typing":
      return { type: "typing", room: room(o) };
    case "send": {
      const text = checkText(str(o, "text"), limits);
      const cid = optCid(o);
      const replyTo = optInt(o, "replyTo", 1);
      if (o.to !== undefined) {
        if (o.room !== undefined) {
          throw new ProtocolError("bad_message", "A send has either room or to, not both");
        }
        if (replyTo !== undefined) {
          throw new ProtocolError(
            "bad_message",
            "Replies are for room messages: a direct message has no replyTo",
          );
        }
        const raw = str(o, "to");
        const to = normalizeName(raw, `Cannot send to ${quote(raw)}`);
        return cid === undefined ? { type: "send", to, text } : { type: "send", to, text, cid };
      }
      const send: { type: "send"; room: string; text: string; cid?: string; replyTo?: number } = {
        type: "send",
        room: room(o),
        text,
      };
      if (cid !== undefined) send.cid = cid;
      if (replyTo !== undefined) send.replyTo = replyTo;
      return send;
    }
    case "nick": {
      const nick: { type: "nick"; name?: string; display?: string } = { type: "nick" };
      if (o.name !== undefined || o.display === undefined) {
        nick.name = normalizeName(str(o, "name"), "Cannot change name");
      }
      if (o.display !== undefined) {
        const d = str(o, "display");
        nick.display = d.trim() === "" ? "" : normalizeDisplay(d, "Cannot change display name");
      }
      return nick;
    }
    case "history": {
      const given = ["before", "around", "after"].filter((f) => o[f] !== undefined);
      if (given.length > 1) {
        throw new ProtocolError(
          "bad_message",
          `A history has one of "before", "around", "after", got ${given.join(", ")}`,
        );
      }
      if (o.conv !== undefined) {
        const msg: ConvHistory = { type: "history", conv: conv(o) };
        const before = optInt(o, "before");
        const limit = optInt(o, "limit", 1);
        if (before !== undefined) msg.before = before;
        if (o.around !== undefined) msg.around = reqInt(o, "around", 1);
        if (o.after !== undefined) msg.after = reqInt(o, "after", 0);
        if (limit !== undefined) msg.limit = limit;
        return msg;
      }
      const { before: _, ...rest } = page(o);
      if (o.around !== undefined) return { type: "history", ...rest, around: reqInt(o, "around", 1) };
      if (o.after !== undefined) return { type: "history", ...rest, after: reqInt(o, "after", 0) };
      return { type: "history", ...page(o) };
    }
    case "ping":
      return { type: "ping" };
    case "read": {
      const seq = reqInt(o, "seq", 0);
      if (o.conv !== undefined) {
        if (o.room !== undefined) {
          throw new ProtocolError("bad_message", "A read has either room or conv, not both");
        }
        return { type: "read", conv: conv(o), seq };
      }
      return { type: "read", room: room(o), seq };
    }
    case "conversations": {
      const msg: { type: "conversations"; before?: number; limit?: number } = { type: "conversations" };
      const before = optInt(o, "before");
      const limit = optInt(o, "limit", 1);
      if (before !== undefined) msg.before = before;
      if (limit !== undefined) msg.limit = limit;
      return msg;
    }
    case "delete":
      return { type: "delete", room: room(o), seq: reqInt(o, "seq", 1) };
    case "edit":
      return {
        type: "edit",
        room: room(o),
        seq: reqInt(o, "seq", 1),
        text: checkText(str(o, "text"), limits),
      };
    case "react": {
      const msg: { type: "react"; room: string; seq: number; emoji: string; on?: boolean } = {
        type: "react",
        room: room(o),
        seq: reqInt(o, "seq", 1),
        emoji: checkEmoji(str(o, "emoji")),
      };
      if (o.on !== undefined) {
        if (typeof o.on !== "boolean") {
          throw new ProtocolError("bad_message", `"on" must be true or false, got ${typeName(o.on)}`);
        }
        msg.on = o.on;
      }
      return msg;
    }
    case "kick":
    case "ban":
    case "mute": {
      const raw = str(o, "name");
      const msg: {
        type: "kick" | "ban" | "mute";
        room: string;
        name: string;
        seconds?: number;
        reason?: string;
      } = { type: o.type, room: room(o), name: normalizeName(raw, `Cannot ${o.type} ${quote(raw)}`) };
      if (o.type !== "kick") {
        const seconds = optInt(o, "seconds", 1);
        if (seconds !== undefined) msg.seconds = Math.min(seconds, MAX_SANCTION_SECONDS);
      }
      const reason = parseReason(o);
      if (reason !== undefined) msg.reason = reason;
      return msg;
    }
    case "unmute": {
      const raw = str(o, "name");
      return { type: "unmute", room: room(o), name: normalizeName(raw, `Cannot unmute ${quote(raw)}`) };
    }
    case "unban":
    case "allow":
    case "disallow":
      return { type: o.type, room: room(o), uid: uid(o) };
    case "room":
      return { type: "room", room: room(o), ...parseRules(o, `"room"`) };
    case "audit":
      return { type: "audit", ...page(o) };
    case "rooms":
      return parseRoomsQuery(o);
    case "members": {
      const msg: { type: "members"; room: string; after?: string; prefix?: string } = {
        type: "members",
        room: room(o),
      };
      // Names are at most NAME_MAX_CHARS: a longer cursor or prefix matches nothing, so it is refused.
      const after = optString(o, "after", NAME_MAX_CHARS);
      const prefix = optString(o, "prefix", NAME_MAX_CHARS);
      if (after !== undefined) msg.after = after;
      if (prefix !== undefined) msg.prefix = prefix;
      return msg;
    }
    case "auth":
      // Its size is the verifier's to cap (--max-token-bytes), after the frame cap above.
      return { type: "auth", token: str(o, "token") };
    case "search":
      return parseSearch(o);
    default:
      throw new ProtocolError(
        "bad_message",
        typeof o.type === "string"
          ? `Unknown message type ${quote(o.type)}`
          : `Messages need a string "type" field`,
      );
  }
}

/**
 * The client message a tutorial form frame stands for (see lib/protocol_forms.ts), or undefined when
 * `data` is not one (it is then plain text, as before).
 * @throws {ProtocolError} `bad_message` for an empty `msg=`, `text_too_long`, `bad_name` for an
 * `type=add` without a usable `ming`.
 */
function formFrame(data: string, limits: ParseLimits): ClientMessage | undefined {
  const form = readForm(data);
  if (form === undefined) return undefined;
  if (form.kind === "msg") {
    const text = form.text;
    if (text === "") {
      throw new ProtocolError(
        "bad_message",
        "A msg= frame carries the text to send after msg=, this one none",
      );
    }
    return { type: "raw", text: checkText(text, limits) };
  }
  const name = form.name;
  if (!name) {
    throw new ProtocolError("bad_name", "Cannot change name: type=add needs the name as ming=NAME, got none");
  }
  if (nameProblem(canonicalName(name)) === undefined) return { type: "nick", name: canonicalName(name) };
  // A name with spaces or punctuation (the page's users type `Ada Lovelace`): the display name, and
  // the handle made from it when one can be.
  const display = normalizeDisplay(name, `Cannot change name to ${quote(name)}`);
  const handle = handleFromDisplay(display);
  return handle === undefined || handle === display
    ? { type: "nick", display }
    : { type: "nick", name: handle, display };
}

/** `rooms {q?, after?, limit?}`: `q` and `after` lower-cased like room names. @throws bad_message */
function parseRoomsQuery(o: Record<string, unknown>): ClientMessage {
  const msg: { type: "rooms"; q?: string; after?: string; limit?: number } = { type: "rooms" };
  if (o.q !== undefined) {
    if (typeof o.q !== "string" || !ROOM_PREFIX_RE.test(o.q)) {
      throw new ProtocolError(
        "bad_message",
        `"q" must be the start of a room name: up to 64 letters, digits, "_", "-" or ".", got ${
          typeof o.q === "string" ? `${o.q.length} characters: ${quote(o.q)}` : typeName(o.q)
        }`,
      );
    }
    msg.q = o.q.toLowerCase();
  }
  if (o.after !== undefined) {
    if (typeof o.after !== "string" || !ROOM_NAME_RE.test(o.after)) {
      throw new ProtocolError(
        "bad_message",
        `"after" must be the "next" of an earlier rooms answer (a room name), got ${
          typeof o.after === "string" ? quote(o.after) : typeName(o.after)
        }`,
      );
    }
    msg.after = o.after.toLowerCase();
  }
  const limit = optInt(o, "limit", 1);
  if (limit !== undefined) msg.limit = limit;
  return msg;
}

function checkText(text: string, limits: ParseLimits): string {
  if (text.length > limits.maxTextChars) {
    throw new ProtocolError(
      "text_too_long",
      `Messages are at most ${limits.maxTextChars} characters, got ${text.length}`,
    );
  }
  if (text.trim() === "") throw new ProtocolError("bad_message", "Message text must not be empty");
  return text;
}

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });
/** What an emoji may be made of: pictographs, skin tones, ZWJ, variation selectors, flags, keycaps, tags. */
const EMOJI_PARTS_RE =
  /^[\p{Extended_Pictographic}\p{Emoji_Modifier}\p{Regional_Indicator}\u200d\ufe0e\ufe0f\u20e3\u{e0020}-\u{e007f}0-9#*]+$/u;
const PICTOGRAPH_RE = /\p{Extended_Pictographic}/u;
const FLAG_RE = /^\p{Regional_Indicator}{2}$/u;
const KEYCAP_RE = /^[0-9#*]\ufe0f?\u20e3$/u;

/**
 * `emoji` when it is exactly one emoji: one grapheme cluster (Intl.Segmenter) of at most
 * {@link EMOJI_MAX_UNITS} UTF-16 units that holds a pictograph (with skin tones, ZWJ sequences and
 * variation selectors), or is a flag (two regional indicators) or a keycap.
 * @throws {ProtocolError} `bad_message` otherwise (text, control characters, several emoji, too long).
 */
export function checkEmoji(emoji: string): string {
  const bad = (why: string) =>
    new ProtocolError("bad_message", `"emoji" must be exactly one emoji, got ${quote(emoji)}: ${why}`);
  if (emoji.length === 0 || emoji.length > EMOJI_MAX_UNITS) {
    throw bad(`1-${EMOJI_MAX_UNITS} UTF-16 units, got ${emoji.length}`);
  }
  if (!EMOJI_PARTS_RE.test(emoji)) throw bad("it holds characters that are not part of an emoji");
  if (!PICTOGRAPH_RE.test(emoji) && !FLAG_RE.test(emoji) && !KEYCAP_RE.test(emoji)) {
    throw bad("no pictograph, flag or keycap");
  }
  let n = 0;
  for (const _ of graphemes.segment(emoji)) if (++n > 1) throw bad("more than one character");
  return emoji;
}

function str(o: Record<string, unknown>, field: string): string {
  const v = o[field];
  if (typeof v !== "string") {
    throw new ProtocolError("bad_message", `"${o.type}" needs a string "${field}", got ${typeName(v)}`);
  }
  return v;
}

function room(o: Record<string, unknown>): string {
  return normalizeRoom(str(o, "room"));
}

function conv(o: Record<string, unknown>): string {
  const v = str(o, "conv");
  if (!CONV_RE.test(v)) {
    throw new ProtocolError(
      "bad_message",
      `"conv" must be a conversation id ("@" and 22 characters), got ${quote(v)}`,
    );
  }
  return v;
}

function optInt(o: Record<string, unknown>, field: string, min = 0): number | undefined {
  const v = o[field];
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    throw new ProtocolError(
      "bad_message",
      `"${field}" must be a whole number of ${min} or more, got ${typeof v === "number" ? v : typeName(v)}`,
    );
  }
  return v;
}

/** A page request: `room`, and `before`/`limit` when given. */
function page(o: Record<string, unknown>): { room: string; before?: number; limit?: number } {
  const out: { room: string; before?: number; limit?: number } = { room: room(o) };
  const before = optInt(o, "before");
  // An empty page could only say "complete" falsely or "not complete" uselessly: limit starts at 1.
  const limit = optInt(o, "limit", 1);
  if (before !== undefined) out.before = before;
  if (limit !== undefined) out.limit = limit;
  return out;
}

function reqInt(o: Record<string, unknown>, field: string, min: number): number {
  const v = optInt(o, field, min);
  if (v === undefined) throw new ProtocolError("bad_message", `"${o.type}" needs a whole number "${field}"`);
  return v;
}

function uid(o: Record<string, unknown>): string {
  return parseUid(str(o, "uid"));
}

/** A person id (a token's `sub`, or a guest's key) as the socket and the API take it. @throws bad_message */
export function parseUid(v: string): string {
  if (!isUid(v)) {
    throw new ProtocolError(
      "bad_message",
      `"uid" must be 1-${MAX_UID_CHARS} characters without control characters`,
    );
  }
  return v;
}

/** A moderation reason: one line of at most {@link MAX_REASON_CHARS}, when given. @throws bad_message */
export function parseReason(o: Record<string, unknown>): string | undefined {
  return optString(o, "reason", MAX_REASON_CHARS);
}

/**
 * The room rules `o` sets (a `room` frame, or the API's settings): any of `topic`, `private`,
 * `readOnly`, `slowModeSeconds`, at least one. `what` names the request in the refusal.
 * @throws {ProtocolError} bad_message
 */
export function parseRules(
  o: Record<string, unknown>,
  what: string,
): { topic?: string; private?: boolean; readOnly?: boolean; slowModeSeconds?: number } {
  const rules: { topic?: string; private?: boolean; readOnly?: boolean; slowModeSeconds?: number } = {};
  const topic = optString(o, "topic", MAX_TOPIC_CHARS, true);
  if (topic !== undefined) rules.topic = topic;
  for (const f of ["private", "readOnly"] as const) {
    if (o[f] === undefined) continue;
    if (typeof o[f] !== "boolean") {
      throw new ProtocolError("bad_message", `"${f}" must be true or false, got ${typeName(o[f])}`);
    }
    rules[f] = o[f];
  }
  const slow = optInt(o, "slowModeSeconds");
  if (slow !== undefined) {
    if (slow > MAX_SLOW_MODE_SECONDS) {
      throw new ProtocolError(
        "bad_message",
        `"slowModeSeconds" is at most ${MAX_SLOW_MODE_SECONDS}, got ${slow}`,
      );
    }
    rules.slowModeSeconds = slow;
  }
  if (Object.keys(rules).length === 0) {
    throw new ProtocolError(
      "bad_message",
      `${what} needs at least one of "topic", "private", "readOnly", "slowModeSeconds"`,
    );
  }
  return rules;
}

/**
 * The fields of a `search` (the frame, or the API's query parameters as strings): the query's own
 * length and syntax are the search feature's to check, against its settings.
 * @throws {ProtocolError} bad_message
 */
export function parseSearch(o: Record<string, unknown>): SearchFrame {
  const msg: SearchFrame = { type: "search", q: str(o, "q") };
  if (o.room !== undefined && o.conv !== undefined) {
    throw new ProtocolError("bad_message", "A search has either room or conv, not both");
  }
  if (o.room !== undefined) msg.room = room(o);
  if (o.conv !== undefined) msg.conv = conv(o);
  if (o.from !== undefined) msg.from = normalizeName(str(o, "from"), "Cannot search");
  if (o.before !== undefined) {
    const before = str(o, "before");
    if (!CURSOR_RE.test(before)) {
      throw new ProtocolError(
        "bad_message",
        `"before" must be the "next" of an earlier search, got ${quote(before)}`,
      );
    }
    msg.before = before;
  }
  const limit = optInt(o, "limit", 1);
  if (limit !== undefined) msg.limit = limit;
  if (o.order !== undefined) {
    if (o.order !== "newest" && o.order !== "best") {
      throw new ProtocolError("bad_message", `"order" is "newest" or "best", got ${typeName(o.order)}`);
    }
    msg.order = o.order;
  }
  return msg;
}

/** An optional one-line string of at most `max` characters (control characters refused). */
function optString(
  o: Record<string, unknown>,
  field: string,
  max: number,
  emptyOk = false,
): string | undefined {
  const v = o[field];
  if (v === undefined) return undefined;
  if (typeof v !== "string") {
    throw new ProtocolError("bad_message", `"${field}" must be a string, got ${typeName(v)}`);
  }
  // deno-lint-ignore no-control-regex
  if (v.length > max || /[\u0000-\u001f\u007f]/.test(v) || (!emptyOk && v.trim() === "")) {
    throw new ProtocolError(
      "bad_message",
      `"${field}" must be one line of ${emptyOk ? 0 : 1}-${max} characters`,
    );
  }
  return v.trim();
}

function optCid(o: Record<string, unknown>): string | undefined {
  const v = o.cid;
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !CID_RE.test(v)) {
    throw new ProtocolError("bad_message", `"cid" must be 1-64 letters, digits, "_", "-", "." or ":"`);
  }
  return v;
}

function typeName(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "string" ? `the string ${quote(v)}` : `a ${typeof v}`;
}

function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? s.slice(0, 40) + "…" : s);
}

/**
 * Encodes an `error` frame line: the code, the sentence, the error's {@link ErrorDetails}, then
 * `extra` (what the refused frame was about: its cid, room or conversation). Absent values are left out.
 */
export function encodeError(
  err: ProtocolError,
  extra?: { cid?: string; room?: string; conv?: string; q?: string; after?: string },
): string {
  const frame: Record<string, unknown> = { type: "error", code: err.code, message: err.message };
  for (const fields of [err.details, extra]) {
    for (const [k, v] of Object.entries(fields ?? {})) if (v !== undefined) frame[k] = v;
  }
  return JSON.stringify(frame);
}

/**
 * What the server sends: every server message type as one member of {@link ServerMessage}, and the
 * one encoder for them, so a line that is not of the protocol does not type-check. docs/protocol.md
 * ("Server → client") is the human version of this file.
 * @module
 */
import type { AuditEntry, ChatMessage, RoomRules } from "./domain.ts";
import type { Role } from "./identity.ts";

/** A stored room message on the wire (see {@link wireMessage}); field order is fixed. */
export type WireMessage = { type: "message"; room: string } & Omit<ChatMessage, "room">;

/** A stored direct-conversation message on the wire (see {@link wireConvMessage}). */
export type WireConvMessage =
  & {
    type: "message";
    conv: string;
    /** Live only: the other person's name when it was sent. */
    to?: string;
  }
  & Pick<ChatMessage, "seq" | "from" | "text" | "ts" | "cid" | "display" | "deleted" | "editedTs">;

/** One entry of a `conversations` answer. */
export interface ConversationItem {
  conv: string;
  with: string;
  /** The other person's display name, when known (see docs/protocol.md, "Direct conversations"). */
  display?: string;
  uid: string;
  lastSeq: number;
  lastTs: number;
  last: WireConvMessage | null;
  lastRead: number;
  unread: number;
  mentions: number;
}

/** The limits `welcome` tells a client. */
export interface WelcomeLimits {
  textChars: number;
  frameBytes: number;
  roomsPerConnection: number;
  messagesPerSecond: number;
  burst: number;
  historyPage: number;
  editSeconds: number;
  /** Characters in a search query; 0: this server has no search (its store keeps no text index). */
  searchQueryChars: number;
  /** Most results per `search` answer. */
  searchPage: number;
}

/** One result of a `search` answer: the message, and the ranges of its text the query matched. */
export type SearchResult = (WireMessage | WireConvMessage) & {
  /** `[start, end)` UTF-16 offsets into `text`, sorted, not overlapping: what to highlight. */
  matches: [number, number][];
};

/** Every message the server sends (the `error` frame is `encodeError`'s in lib/protocol.ts). */
export type ServerMessage =
  | {
    type: "welcome";
    id: number;
    name: string;
    /** The person's display name, when they have one. */
    display?: string;
    uid: string;
    role: Role;
    guest?: boolean;
    rooms: string[];
    limits: WelcomeLimits;
    version: number;
    /** The server's release (`deno.json`'s version); `version` is the protocol's. */
    release: string;
    token?: string;
    exp?: number;
    notice?: string;
  }
  | { type: "authed"; exp?: number; name: string; display?: string; role: Role; uid: string }
  | {
    type: "joined";
    room: string;
    /** Everyone in the room; in a big room, the first page of them (see `memberCount`). */
    members: string[];
    /** The display names of the members who have one, by name. */
    displays?: Record<string, string>;
    /** A big room only: how many people are in it (then `members` is a page and `next` its cursor). */
    memberCount?: number;
    /** A big room only: the `after` of the next `members` page, when there is one. */
    next?: string;
    messages: WireMessage[];
    lastSeq: number;
    truncated: boolean;
    epoch: string;
    rules?: RoomRules;
    you?: { role: Role; muted?: number };
    lastRead?: number;
    unread?: number;
    mentions?: number;
    rev?: number;
    changes?: WireMessage[];
    changesTruncated?: true;
  }
  | { type: "left"; room: string }
  | { type: "kicked"; room: string; reason: "kicked" | "banned" | "forbidden" }
  | WireMessage
  | WireConvMessage
  | { type: "ack"; cid?: string; seq: number; ts: number; room: string }
  | { type: "ack"; cid?: string; seq: number; ts: number; conv: string; to: string }
  | { type: "conversations"; items: ConversationItem[]; complete: boolean }
  | { type: "read"; room: string; seq: number }
  | { type: "read"; conv: string; seq: number }
  | { type: "presence"; room: string; event: "join" | "leave"; name: string; display?: string }
  | { type: "typing"; room: string; name: string; display?: string }
  /** A big room's member count, at most once per `--count-interval` (its presence is not told). */
  | { type: "count"; room: string; members: number }
  /** A page of a big room's members, answering `members {room, after?, prefix?}`. */
  | {
    type: "members";
    room: string;
    names: string[];
    displays?: Record<string, string>;
    next?: string;
    count: number;
    /** The request's `after` and `prefix`, so a client with several out knows which this answers. */
    after?: string;
    prefix?: string;
  }
  /** A rename, or (`old` = `name`) a new display name; `display` is the person's display name now. */
  | { type: "nick"; old: string; name: string; display?: string }
  | {
    type: "history";
    room: string;
    messages: WireMessage[];
    /** Nothing older than these exists. */
    complete: boolean;
    /** The seq a centered page was asked around (`history {room, around}`). */
    around?: number;
    /** The seq a forward page was asked after (`history {room, after}`). */
    after?: number;
    /** A centered or forward page: newer messages exist between it and what the member has live. */
    more?: boolean;
  }
  | { type: "history"; conv: string; messages: WireConvMessage[]; complete: boolean; lastSeq: number }
  | { type: "pong"; ts: number }
  /** A `search` answered: `q` as asked, a page of results, the cursor of the next one. */
  | { type: "search"; q: string; results: SearchResult[]; next?: string; partial?: true }
  | {
    type: "reactions";
    room: string;
    seq: number;
    counts: Record<string, number>;
    by: string;
    emoji: string;
    on: boolean;
  }
  | { type: "deleted"; room: string; seq: number; by: string; rev: number }
  | { type: "edited"; room: string; seq: number; text: string; editedTs: number; rev: number }
  | {
    type: "moderation";
    room: string;
    action: "kick" | "ban" | "unban" | "mute" | "unmute";
    name: string;
    uid: string;
    by: string;
    until?: number;
    reason?: string;
  }
  | ({ type: "room"; room: string } & RoomRules)
  | { type: "audit"; room: string; entries: AuditEntry[]; complete: boolean }
  | { type: "disconnected"; reason: string }
  /** A page of the room directory: public rooms, name order; `next` is the `after` of the next page. */
  | {
    type: "rooms";
    q: string;
    after?: string;
    items: { room: string; topic: string; members: number }[];
    next?: string;
  };

/** Encodes one server message as one line (no trailing newline). */
export function encode(msg: ServerMessage): string {
  return JSON.stringify(msg);
}

/** The `nick` message telling that `old` is now `person` (their name and display name now). */
export function nickMessage(old: string, person: { name: string; display?: string }): ServerMessage {
  return person.display === undefined
    ? { type: "nick", old, name: person.name }
    : { type: "nick", old, name: person.name, display: person.display };
}

/** Encodes a stored message for the wire. */
export function encodeMessage(m: ChatMessage): string {
  return JSON.stringify(wireMessage(m));
}

/** A stored message as the wire object (field order fixed so the frame is stable). */
export function wireMessage(m: ChatMessage): WireMessage {
  const o: WireMessage = { type: "message", room: m.room, seq: m.seq, from: m.from, text: m.text, ts: m.ts };
  if (m.cid !== undefined) o.cid = m.cid;
  if (m.display !== undefined) o.display = m.display;
  if (m.deleted) o.deleted = true;
  if (m.editedTs !== undefined) o.editedTs = m.editedTs;
  if (m.replyTo !== undefined) o.replyTo = m.replyTo;
  if (m.mentions !== undefined) o.mentions = m.mentions;
  if (m.reactions !== undefined) o.reactions = m.reactions;
  if (m.mine !== undefined) o.mine = m.mine;
  return o;
}

/**
 * A stored message of a direct conversation as the wire object: `conv` instead of `room`, and, live,
 * `to` (the other person's name then).
 */
export function wireConvMessage(m: ChatMessage, to?: string): WireConvMessage {
  const o = { type: "message", conv: m.room, seq: m.seq } as WireConvMessage;
  if (to !== undefined) o.to = to;
  o.from = m.from;
  o.text = m.text;
  o.ts = m.ts;
  if (m.cid !== undefined) o.cid = m.cid;
  if (m.display !== undefined) o.display = m.display;
  if (m.deleted) o.deleted = true;
  if (m.editedTs !== undefined) o.editedTs = m.editedTs;
  return o;
}

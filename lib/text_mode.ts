/**
 * Text mode: each server message as one human line, for clients that print what arrives (the PHP
 * tutorials' pages, `websocat`, `curl`). docs/protocol.md ("Text mode") lists every line format; a
 * test pins each one.
 * @module
 */
import type { RoomRules } from "./domain.ts";
import type { ServerMessage, WireConvMessage, WireMessage } from "./server_messages.ts";

/** Names listed in a `joined` line; more are counted, not named. */
const MEMBERS_SHOWN = 20;

/** Everything a line may be made from: every server message, and the `error` frame. */
type Line = ServerMessage | { type: "error"; code: string; message: string; room?: string };

/**
 * How a person is named in an event line: `Ada Lovelace (@Ada_Lovelace)` when the line's message gives
 * them a display name (the handle beside it, since the handle is what `/msg` and mentions take),
 * else the handle alone. Every event line names people through here.
 */
function who(name: string, from: Line): string {
  const display = displayIn(name, from);
  return display === undefined ? name : `${display} (@${name})`;
}

/** The display name `from` gives the person `name`, if any. */
function displayIn(name: string, from: Line): string | undefined {
  switch (from.type) {
    case "joined":
      return from.displays?.[name];
    case "welcome":
    case "authed":
    case "presence":
    case "nick":
      return name === from.name ? from.display : undefined;
    case "message":
      return name === from.from ? from.display : undefined;
  }
  return undefined;
}

/** Line breaks inside a text: each would start a new line, so they are shown as `↵`. */
const BREAKS_RE = /\r\n|[\r\n\u2028\u2029]/g;

const HAS_BREAK_RE = /[\r\n\u2028\u2029]/;

function oneLine(text: string): string {
  return HAS_BREAK_RE.test(text) ? text.replace(BREAKS_RE, " ↵ ") : text;
}

/**
 * One connection's text mode: turns each JSON line the server sends it into the line to send
 * instead. It remembers who the connection is (from `welcome`, `authed` and its own `nick`) and the
 * room it joined last, so that lines can say `you` and leave out the current room's name.
 */
export class TextMode {
  readonly #parse: (json: string) => unknown;
  #me = "";
  /** The rooms joined, the current one (where plain text goes) last, as the server keeps them. */
  #rooms: string[] = [];

  /**
   * @param parse reads a server line (the socket adapter shares one that remembers the last line read,
   * since a room's members get the same line one after another); it must not throw on the server's lines
   * @default JSON.parse
   */
  constructor(parse: (json: string) => unknown = JSON.parse) {
    this.#parse = parse;
  }

  /**
   * Who the connection is and the rooms it is in (the current one last), as the chat knows them when a
   * connection that got JSON switches to text mode: its lines then say `you` and leave out the current
   * room as if it had always been on.
   */
  seed(me: string, rooms: readonly string[]): void {
    this.#me = me;
    this.#rooms = [...rooms];
  }

  /**
   * The human line for `json` (one line the server encoded), or undefined for the messages a person
   * does not read (`ack`, `read`, `typing`: the page's bookkeeping and a passing hint).
   */
  line(json: string): string | undefined {
    let msg: Line;
    try {
      msg = this.#parse(json) as Line;
    } catch {
      return json; // every line is the server's own JSON; should one not be, it goes out as it is
    }
    return this.#format(msg);
  }

  #format(m: Line): string | undefined {
    switch (m.type) {
      case "welcome":
        this.#me = m.name;
        return `* Hello, welcome: you are ${who(m.name, m)}${m.notice ? ` (${oneLine(m.notice)})` : ""}`;
      case "authed":
        this.#me = m.name;
        return `* signed in as ${who(m.name, m)}`;
      case "conversations": {
        if (m.items.length === 0) return "* no direct conversations";
        const shown = m.items.map((c) => `${who(c.with, m)}${c.unread ? ` (${c.unread} unread)` : ""}`);
        return `* direct conversations: ${shown.join(", ")}${m.complete ? "" : ", …"}`;
      }
      case "joined": {
        this.#leave(m.room);
        this.#rooms.push(m.room);
        const names = m.members.slice(0, MEMBERS_SHOWN).map((n) => who(n, m));
        // A big room's `members` is a page: the count says how many are here.
        const here = m.memberCount ?? m.members.length;
        const more = here > names.length ? `, … ${here - names.length} more` : "";
        return `* you joined ${m.room} (${here} here: ${names.join(", ")}${more})`;
      }
      case "left":
        this.#leave(m.room);
        return `* you left ${m.room}`;
      case "kicked":
        this.#leave(m.room);
        return m.reason === "kicked"
          ? `* you were kicked out of ${m.room}`
          : m.reason === "banned"
          ? `* you are banned from ${m.room}`
          : `* you may no longer be in ${m.room}`;
      case "message":
        return this.#message(m);
      case "ack":
      case "read":
      case "typing":
      case "count":
        return undefined;
      case "members": {
        const names = m.names.map((n) => who(n, m));
        return `* ${m.count} in ${m.room}${m.prefix ? `, starting with ${m.prefix}` : ""}: ${
          names.join(", ")
        }${m.next ? ", …" : ""}`;
      }
      case "presence":
        return `* ${who(m.name, m)} ${m.event === "join" ? "joined" : "left"} ${m.room}`;
      case "nick":
        if (m.old === this.#me) {
          this.#me = m.name;
          return `* you are now ${who(m.name, m)}`;
        }
        // The display name is the one after the change: the old name goes as it was written.
        return `* ${m.old} is now ${who(m.name, m)}`;
      case "history": {
        const where = "room" in m ? m.room : "the conversation";
        const n = m.messages.length;
        return `* ${n} earlier message${n === 1 ? "" : "s"} of ${where}${
          m.complete ? " (from the start)" : ""
        }`;
      }
      case "pong":
        return "* pong";
      case "rooms": {
        if (m.items.length === 0) return `* no rooms${m.q ? ` starting with ${m.q}` : ""}`;
        const shown = m.items.map((r) =>
          `${r.room} (${r.members} here${r.topic ? `: ${oneLine(r.topic)}` : ""})`
        );
        return `* rooms: ${shown.join(", ")}${m.next ? ", …" : ""}`;
      }
      case "search": {
        const n = m.results.length;
        return `* ${n} message${n === 1 ? "" : "s"} found for ${JSON.stringify(oneLine(m.q))}${
          m.next !== undefined ? ", more after them" : ""
        }${m.partial ? " (the search ran out of time)" : ""}`;
      }
      case "reactions":
        return `* ${who(m.by, m)} ${m.on ? "reacted" : "took back"} ${m.emoji} ${
          m.on ? "to" : "on"
        } #${m.seq} ` +
          `in ${m.room}`;
      case "deleted":
        return `* ${who(m.by, m)} deleted #${m.seq} in ${m.room}`;
      case "edited":
        return `* #${m.seq} in ${m.room} now reads: ${oneLine(m.text)}`;
      case "moderation": {
        const verb = {
          kick: "kicked",
          ban: "banned",
          unban: "unbanned",
          mute: "muted",
          unmute: "unmuted",
        }[m.action];
        const where = m.action === "kick" || m.action === "ban" ? "from" : "in";
        const until = m.until ? ` until ${new Date(m.until).toISOString()}` : "";
        const reason = m.reason ? `: ${oneLine(m.reason)}` : "";
        return `* ${who(m.by, m)} ${verb} ${who(m.name, m)} ${where} ${m.room}${until}${reason}`;
      }
      case "room":
        return `* ${m.room} rules: ${rules(m)}`;
      case "audit": {
        const n = m.entries.length;
        return `* ${n} audit entr${n === 1 ? "y" : "ies"} of ${m.room}${
          m.complete ? " (from the start)" : ""
        }`;
      }
      case "disconnected":
        return `* disconnected: ${oneLine(m.reason)}`;
      case "error":
        return `! ${m.code}: ${oneLine(m.message)}`;
    }
    // A server message type with no line here is a compile error.
    const unknown: never = m;
    return unknown;
  }

  #leave(room: string): void {
    const i = this.#rooms.indexOf(room);
    if (i >= 0) this.#rooms.splice(i, 1);
  }

  /**
   * `alice: hello` in the current room, `[dev] alice: hello` in another, `[@bob] bob: hi` in a
   * direct conversation (named after the other person).
   */
  #message(m: WireMessage | WireConvMessage): string {
    let where = "";
    if ("room" in m) {
      if (m.room !== this.#rooms.at(-1)) where = `[${m.room}] `;
    } else {
      const other = m.from === this.#me && m.to !== undefined ? m.to : m.from;
      where = `[@${other}] `;
    }
    const text = m.deleted ? "(deleted)" : oneLine(m.text) + (m.editedTs !== undefined ? " (edited)" : "");
    // A message names its sender as people see them; the handle is in the presence lines.
    return `${where}${m.display ?? m.from}: ${text}`;
  }
}

/** `topic "x", private, read-only, slow mode 10 s`, or `open to all` for the default rules. */
function rules(r: RoomRules): string {
  const parts: string[] = [];
  if (r.topic) parts.push(`topic ${JSON.stringify(r.topic)}`);
  parts.push(r.private ? "private" : "open to all");
  if (r.readOnly) parts.push("read-only");
  if (r.slowModeSeconds) parts.push(`slow mode ${r.slowModeSeconds} s`);
  return parts.join(", ");
}

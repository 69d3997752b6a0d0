/**
 * The chat client: one object the page (or a worker, or a Deno program) talks to. It holds your
 * identity and the server's limits, wires the parts (connection, outbox, rooms, typing, direct
 * conversations, moderation; each owns its state and shares one {@link Context}), and sends each line
 * the server writes to the part it is for.
 * @module
 */
import { Connection } from "./connection.js";
import { Directs } from "./directs.js";
import { RoomDirectory } from "./directory.js";
import { ModerationState } from "./moderation.js";
import { lineHandlers } from "./lines.js";
import { isValidName } from "./names.js";
import { Outbox } from "./outbox.js";
import { Rooms } from "./rooms.js";
import { Persisted } from "./storage.js";
import { Typing } from "./typing.js";

/** @typedef {import("./types.js").ChatClientOptions} ChatClientOptions */
/** @typedef {import("./types.js").ChatClientEvents} ChatClientEvents */
/** @typedef {import("./types.js").Context} Context */
/** @typedef {import("./types.js").DirectMessage} DirectMessage */
/** @typedef {import("./types.js").DirectoryPage} DirectoryPage */
/** @typedef {import("./types.js").Limits} Limits */
/** @typedef {import("./types.js").OutboxItem} OutboxItem */
/** @typedef {import("./types.js").RoomMessage} RoomMessage */
/** @typedef {import("./types.js").RoomRules} RoomRules */
/** @typedef {import("./room-state.js").RoomState} RoomState */

/** @type {Readonly<Limits>} */
const DEFAULT_LIMITS = Object.freeze({
  textChars: 4000,
  frameBytes: 65536,
  roomsPerConnection: 20,
  messagesPerSecond: 10,
  burst: 30,
  historyPage: 200,
  editSeconds: 900,
  // Unknown until welcome says: no search box before.
  searchQueryChars: 0,
  searchPage: 20,
});

/**
 * The client. Events (all `CustomEvent`s, details in brackets; {@link ChatClient.on} gives them typed):
 * - `state` {state}: connection state changed (see {@link ChatClient.state}, {@link ChatClient.retryAt})
 * - `welcome` {name, notice?}: connected (and after every reconnect)
 * - `rooms` {}: the set of rooms changed
 * - `joined` {room, added, reset}: (re)joined; `reset` means the list was replaced
 * - `message` {room?, peer?, message}: a new room message (`room`) or direct message (`peer`)
 * - `history` {room, added, around?} or {peer, around?}: older messages arrived (a room's, or a direct
 *   conversation's), or with `around` the page a {@link ChatClient.jumpTo} (or `jumpToDirect`) asked for
 * - `search` {q, results, next?, partial?}: the answer to {@link ChatClient.search}
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
    this.getToken = opts.getToken;
    /** Signed identities: your user id and role, from `welcome`/`authed`. */
    this.uid = "";
    this.role = "member";
    /** Whether you are a guest (a first-come name you may change); signed people are not. */
    this.guest = !opts.getToken;
    /** @type {Limits} what the server enforces (from `welcome`) */
    this.limits = { ...DEFAULT_LIMITS };

    const persisted = new Persisted(opts.storage, opts.storagePrefix ?? "chat:");
    // A signed person's name comes from the token; the guest identity kept here is not theirs.
    const identity = this.getToken ? undefined : persisted.load("identity");
    /** Your name (the server's word after `welcome`). */
    this.me = typeof identity?.name === "string" ? identity.name : opts.name ?? "";
    if (opts.name && !identity?.token && !this.getToken) this.me = opts.name;
    /** @type {string | undefined} */
    this.token = typeof identity?.token === "string" ? identity.token : undefined;
    /** @type {Set<string>} names you have had, to tell your own messages */
    this.myNames = new Set(Array.isArray(identity?.names) ? identity.names : []);
    if (this.me) this.myNames.add(this.me);
    /**
     * Your display name (any script, spaces, punctuation: what people see beside your handle `me`), if
     * you have one; a guest chooses it (`opts.display`, {@link setDisplay}), a signed person's is the token's.
     * @type {string | undefined}
     */
    this.display = typeof identity?.display === "string" ? identity.display : opts.display;
    if (opts.display && !identity?.token && !this.getToken) this.display = opts.display;
    /** @type {Map<string, string>} the display names of the people seen, by handle */
    this.displays = new Map();

    /** @type {Pick<Context, "client" | "send" | "takeToken" | "emit" | "persisted">} */
    const core = {
      client: this,
      send: (msg) => this.#ctx.connection.send(msg),
      takeToken: () => this.#ctx.connection.takeToken(),
      emit: (type, detail) => this.dispatchEvent(new CustomEvent(type, { detail })),
      persisted,
    };
    // The parts are added below: they reach each other through `ctx` once all are in, never before.
    const ctx = /** @type {Context} */ (core);
    this.#ctx = ctx;
    ctx.connection = new Connection(opts, {
      line: (m) => (this.#learnDisplays(m), handlers[m.type]?.(m)),
      closed: () => (
        ctx.outbox.clearInFlight(), ctx.directs.closed(), ctx.rooms.closed(), ctx.directory.closed()
      ),
      state: (state) => ctx.emit("state", { state }),
      noToken: (message) => ctx.emit("servererror", { code: "no_token", message }),
      guest: () => ({
        name: this.me && isValidName(this.me) ? this.me : undefined,
        display: this.display,
        token: this.token,
      }),
      limits: () => this.limits,
    });
    ctx.rooms = new Rooms(ctx, opts.rooms, new Map((opts.kept ?? []).map((s) => [s?.room, s])));
    ctx.typing = new Typing(ctx, opts);
    ctx.directs = new Directs(ctx);
    ctx.outbox = new Outbox(ctx, opts.ackTimeoutMs ?? 10_000);
    ctx.moderation = new ModerationState(ctx);
    ctx.directory = new RoomDirectory(ctx);
    const handlers = lineHandlers(ctx, {
      welcome: (m) => this.#welcome(m),
      authed: (m) => this.#authed(m),
      nick: (m) => this.#renamed(m.old, m.name),
    });
    // A name chosen now is kept even if the page goes away before the server answers.
    if ((opts.name || opts.display) && !identity?.token && !this.getToken) this.#saveIdentity();
  }

  /** @type {Context} */
  #ctx;

  /** @type {import("./types.js").ConnState} */
  get state() {
    return this.#ctx.connection.state;
  }

  /** When the next reconnect attempt starts (ms since epoch), 0 when none is waiting. */
  get retryAt() {
    return this.#ctx.connection.retryAt;
  }

  /** Counters, for tests and diagnostics: frames and lines received, connects. */
  get stats() {
    return this.#ctx.connection.stats;
  }

  /** The transport of the current (or last) connection: `websocket`, or `sse` (the fallback). */
  get transport() {
    return this.#ctx.connection.transport;
  }

  /** The socket, while one is open or opening. */
  get ws() {
    return this.#ctx.connection.ws;
  }

  /** Signed identities: when the token expires (ms), from `welcome`/`authed`. */
  get exp() {
    return this.#ctx.connection.exp;
  }

  /** @type {Map<string, RoomState>} your rooms, by canonical name */
  get rooms() {
    return this.#ctx.rooms.map;
  }

  /** @type {Map<string, import("./directs.js").DirectConversation>} keyed by lower-case name */
  get directs() {
    return this.#ctx.directs.map;
  }

  /** The server's list of direct conversations came on this connection. */
  get conversationsLoaded() {
    return this.#ctx.directs.loaded;
  }

  /** @type {OutboxItem[]} messages not acked yet, oldest first */
  get outbox() {
    return this.#ctx.outbox.items;
  }

  /** Whether the connection is up and welcomed. */
  get live() {
    return this.state === "live";
  }

  /**
   * Calls `listener` with the detail of every `type` event, typed ({@link ChatClientEvents}); the same
   * events as `addEventListener`, without the cast.
   * @template {keyof ChatClientEvents} K
   * @param {K} type
   * @param {(detail: ChatClientEvents[K]) => void} listener
   * @returns {() => void} removes the listener
   */
  on(type, listener) {
    /** @param {Event} e */
    const handler = (e) => listener(/** @type {CustomEvent<ChatClientEvents[K]>} */ (e).detail);
    this.addEventListener(type, handler);
    return () => this.removeEventListener(type, handler);
  }

  /** Connects (and keeps reconnecting until {@link stop}). */
  start() {
    this.#ctx.connection.start();
  }

  /**
   * Closes the connection and stops reconnecting. Clears every timer.
   * @returns {Promise<void>} resolves once the socket has closed
   */
  stop() {
    this.#ctx.outbox.halt();
    this.#ctx.typing.halt();
    return this.#ctx.connection.stop();
  }

  /** Skips the wait of a pending reconnect (e.g. when the network comes back). */
  reconnectNow() {
    this.#ctx.connection.reconnectNow();
  }

  /**
   * Joins `room` (and remembers it). Returns its canonical name, or undefined if invalid.
   * @param {string} room
   * @param {{ resume?: RoomState }} [opts] `resume`: the state {@link leave} returned for this room;
   *   its messages are kept and the join asks only for what came since (an undone leave).
   */
  join(room, opts = {}) {
    return this.#ctx.rooms.join(room, opts);
  }

  /**
   * Leaves `room`; what was waiting in the outbox for it is dropped.
   * @param {string} room
   * @returns {RoomState | undefined} the room as it was, for `join(room, { resume })`
   */
  leave(room) {
    return this.#ctx.rooms.leave(room);
  }

  /**
   * Queues a message for a room (`room`, optionally answering its message `replyTo`) or a person
   * (`to`) and sends it when it can.
   * @param {{ room?: string, to?: string, text: string, replyTo?: number }} target
   * @returns {OutboxItem}
   * @throws {RangeError} when the text is empty or too long, or the target is missing
   */
  send(target) {
    return this.#ctx.outbox.add(target);
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
    return this.#ctx.rooms.react(room, seq, emoji, on);
  }

  /**
   * Sends a failed message again (same cid).
   * @param {string} cid
   */
  retry(cid) {
    this.#ctx.outbox.retry(cid);
  }

  /**
   * Drops a message from the outbox.
   * @param {string} cid
   */
  discard(cid) {
    this.#ctx.outbox.discard(cid);
  }

  /**
   * Tells the room you are typing (at most once per `typingThrottleMs`).
   * @param {string} room
   */
  typing(room) {
    this.#ctx.typing.send(room);
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
    this.#ctx.send({ type: "nick", name });
  }

  /**
   * Asks for another display name ("" for none): any script, spaces and punctuation, at most 64
   * characters. The server answers with a `nick` line (or `error bad_name`).
   * @param {string} display
   * @throws {RangeError} for a signed person, or when not connected
   */
  setDisplay(display) {
    if (!this.guest) throw new RangeError("Your name comes from your sign-in: change it on that site");
    if (!this.live) throw new RangeError("Not connected: try again when live");
    this.#ctx.send({ type: "nick", display: display.trim() });
  }

  /**
   * The display name of the person `name` (a handle), as last seen in a room, a presence line, a
   * rename or a message; undefined when they have none (show the handle).
   * @param {string} name
   * @returns {string | undefined}
   */
  displayOf(name) {
    return name === this.me ? this.display : this.displays.get(name);
  }

  /**
   * How to show the person `name`: their display name, or the handle when they have none.
   * @param {string} name
   */
  shownName(name) {
    return this.displayOf(name) ?? name;
  }

  /**
   * Asks for the page of messages older than the oldest one held.
   * @param {string} room
   * @returns {boolean} whether a request went out
   */
  loadOlder(room) {
    return this.#ctx.rooms.loadOlder(room);
  }

  /**
   * Tells the server you have read `target` (a room, or the conversation with `peer`) up to its newest
   * message (or `seq`); your other devices hear it.
   * @param {{room: string, seq?: number} | {peer: string, seq?: number}} target
   * @returns {boolean} whether a `read` went out
   */
  markRead(target) {
    if (!this.live) return false;
    if ("room" in target) return this.#ctx.rooms.markRead(target.room, target.seq);
    return this.#ctx.directs.markRead(target.peer, target.seq);
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
    return this.#ctx.directs.loadOlder(peer);
  }

  /**
   * The direct conversation with `name`, created if needed.
   * @param {string} name
   */
  direct(name) {
    return this.#ctx.directs.get(name);
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
    return this.#ctx.moderation.moderates(room);
  }

  /**
   * Deletes message `seq` of `room` (yours, or anyone's when you moderate). The room is told
   * `deleted`, which turns it into a tombstone here too (a `changed` event).
   * @param {string} room
   * @param {number} seq
   * @throws {RangeError} when not connected or not in the room
   */
  deleteMessage(room, seq) {
    this.#ctx.rooms.frame({ type: "delete", room, seq });
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
    this.#ctx.rooms.frame({ type: "edit", room, seq, text });
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
    this.#ctx.moderation.act(action, room, name, opts);
  }

  /**
   * Lifts the ban of user `uid` (from a `moderation` line) in `room`.
   * @param {string} room
   * @param {string} uid
   */
  unban(room, uid) {
    this.#ctx.rooms.frame({ type: "unban", room, uid });
  }

  /**
   * Changes `room`'s rules (moderators); every member gets the new ones (a `rules` event).
   * @param {string} room
   * @param {Partial<RoomRules>} rules
   */
  setRules(room, rules) {
    this.#ctx.rooms.frame({ type: "room", room, ...rules });
  }

  /**
   * One page of the room directory: the public rooms whose name starts with `q` (any case), after
   * the room `after` (the `next` of the page before), at most `limit` (the server's cap when larger),
   * each with its topic and how many people are in it. Private rooms are never listed.
   * @param {{ q?: string, after?: string, limit?: number }} [query]
   * @returns {Promise<DirectoryPage>} rejects with a `RangeError` for a bad query or when offline,
   *   and when no answer comes in time or the connection closes first
   */
  findRooms(query = {}) {
    return this.#ctx.directory.find(query);
  }

  /**
   * Searches your rooms and conversations (or the one `room`/`conv` names); the answer comes as a
   * `search` event, a refusal (`bad_query`, `rate_limited`, `unsupported`) as a `servererror`.
   * @param {string} q the query (docs/protocol.md, "Search")
   * @param {{ room?: string, conv?: string, before?: string }} [opts] `before`: the `next` of the page before
   * @returns {boolean} false when it could not be sent (not connected, no search on this server)
   */
  search(q, opts = {}) {
    if (!this.live || this.limits.searchQueryChars === 0 || q.length > this.limits.searchQueryChars) {
      return false;
    }
    if (!this.#ctx.takeToken()) return false;
    return this.#ctx.send({ type: "search", q, ...opts });
  }

  /**
   * Brings message `seq` of joined room `room` into the held messages: at once when it is held (true),
   * else with one `history {around}` request, answered by a `history` event with `around: seq`.
   * @param {string} room
   * @param {number} seq
   * @returns {boolean} whether it is held now
   */
  jumpTo(room, seq) {
    return this.#ctx.rooms.around(room, seq);
  }

  /**
   * Brings message `seq` of the direct conversation with `peer` into the held messages: at once when
   * it is held (true), else with one `history {conv, around}` request, answered by a `history` event
   * with `peer` and `around: seq`.
   * @param {string} peer
   * @param {number} seq
   * @param {string} [conv] the conversation's id (a search result's `conv`), for one not in the list
   * @returns {boolean} whether it is held now
   */
  jumpToDirect(peer, seq, conv) {
    return this.#ctx.directs.around(peer, seq, conv);
  }

  /**
   * Asks for a page of a room's members (a big room's `joined` holds only the first): `after` the
   * last name shown (the room's `membersNext`) for more, or `prefix` for those whose name or display
   * name starts with it. The answer updates the room's `members` (a `members` event).
   * @param {string} room
   * @param {{ after?: string, prefix?: string }} [query]
   */
  members(room, query = {}) {
    this.#ctx.rooms.askMembers(room, query);
  }

  /**
   * Asks again to join a room you were removed from or refused (a kick is not a ban).
   * @param {string} room
   */
  rejoin(room) {
    this.#ctx.moderation.rejoin(room);
  }

  /**
   * Keeps the display names a server line tells: members of a joined room, presence, renames, typing,
   * and the sender of a message not seen otherwise (a message's is what they were shown as then).
   * @param {Record<string, any>} m
   */
  #learnDisplays(m) {
    const learn = (/** @type {unknown} */ name, /** @type {unknown} */ display) => {
      if (typeof name !== "string") return;
      if (typeof display === "string") this.displays.set(name, display);
      else this.displays.delete(name);
    };
    switch (m.type) {
      case "joined":
        if (!Array.isArray(m.members)) return;
        for (const name of m.members) learn(name, m.displays?.[name]);
        return;
      case "members":
        if (!Array.isArray(m.names)) return;
        for (const name of m.names) learn(name, m.displays?.[name]);
        return;
      case "presence":
      case "typing":
        return learn(m.name, m.display);
      case "nick":
        if (m.old !== m.name) this.displays.delete(m.old);
        if (m.old === this.me || m.name === this.me) {
          this.display = typeof m.display === "string" ? m.display : undefined;
        }
        return learn(m.name, m.display);
      case "message":
        if (typeof m.display === "string" && !this.displays.has(m.from)) learn(m.from, m.display);
        return;
      case "conversations":
        if (!Array.isArray(m.items)) return;
        for (const c of m.items) if (typeof c.display === "string") learn(c.with, c.display);
        return;
    }
  }

  /** @param {Record<string, any>} m */
  #welcome(m) {
    this.display = typeof m.display === "string" ? m.display : undefined;
    this.me = m.name;
    this.myNames.add(m.name);
    if (typeof m.uid === "string") this.uid = m.uid;
    if (typeof m.role === "string") this.role = m.role;
    this.guest = typeof m.guest === "boolean" ? m.guest : !this.getToken;
    if (!this.getToken) {
      this.token = m.token;
      this.#saveIdentity();
    }
    if (m.limits && typeof m.limits === "object") this.limits = { ...DEFAULT_LIMITS, ...m.limits };
    this.#ctx.connection.welcome(m.exp);
    this.#ctx.emit("welcome", { name: m.name, display: this.display, notice: m.notice });
    if (m.notice) this.#ctx.emit("notice", { message: m.notice });
    // A room you were taken out of is joined again only when you ask ({@link rejoin}).
    for (const r of this.rooms.values()) if (!r.removed) this.#ctx.rooms.sendJoin(r);
    this.#ctx.outbox.pump();
  }

  /**
   * A refreshed token was taken: its expiry (and maybe name and role) are now the connection's.
   * @param {Record<string, any>} m
   */
  #authed(m) {
    this.display = typeof m.display === "string" ? m.display : undefined;
    if (typeof m.role === "string" && m.role !== this.role) {
      this.role = m.role;
      this.#ctx.moderation.roleChanged(m.role);
    }
    this.#ctx.connection.authed(m.exp);
    this.#ctx.emit("authed", { exp: m.exp, name: m.name, role: m.role, uid: m.uid });
  }

  /**
   * @param {unknown} old
   * @param {unknown} name
   */
  #renamed(old, name) {
    if (typeof old !== "string" || typeof name !== "string") return;
    if (old === this.me) {
      this.me = name;
      this.myNames.add(name);
      this.#saveIdentity();
    }
    this.#ctx.rooms.renamed(old, name);
    this.#ctx.directs.renamed(old, name);
    this.#ctx.outbox.renamed(old, name);
    this.#ctx.emit("nick", { old, name });
  }

  #saveIdentity() {
    if (this.getToken) return; // a signed identity lives with the host application, not here
    const names = [...this.myNames].slice(-20);
    this.#ctx.persisted.save("identity", { name: this.me, display: this.display, token: this.token, names });
  }
}

/**
 * The chat service: one entry (open / message / closed / close) and a table from client message type
 * to the feature that handles it. Each feature lives in `lib/chat/` with what it owns and gets the
 * shared {@link ChatContext}. Transport-free: it drives {@link Peer}s, so tests can use fakes.
 * @module
 */
import { displaysOf } from "./display_names.ts";
import type { Verifier } from "./auth.ts";
import { type Config, ms } from "./config.ts";
import type { AccessList, AuditEntry, ChatMessage, RoomChange, RoomRules } from "./domain.ts";
import type { Engine } from "./engine.ts";
import { Hub, type Peer } from "./hub.ts";
import { type Identity, keyOfUid } from "./identity.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { type Actor, Moderation } from "./moderation.ts";
import { CloseCode, parseClientFrame, ProtocolError, type SearchFrame } from "./protocol.ts";
import { type ConversationItem, encode, encodeMessage, type ServerMessage } from "./server_messages.ts";
import { LocalSharing, type Sharing } from "./sharing.ts";
import { Admission, type OpenParams } from "./chat/admission.ts";
import { AnswerBudget } from "./chat/answers.ts";
import { type Conn, Connections } from "./chat/connections.ts";
import { type ChatContext, nameOf } from "./chat/context.ts";
import { Direct } from "./chat/direct.ts";
import { Directory } from "./chat/directory.ts";
import { Edits } from "./chat/edits.ts";
import { engineError, SHUTTING_DOWN } from "./chat/errors.ts";
import { Messages } from "./chat/messages.ts";
import { Moderate, type Target } from "./chat/moderate.ts";
import { Naming } from "./chat/naming.ts";
import { Presence } from "./chat/presence.ts";
import { Reactions } from "./chat/reactions.ts";
import { ReadState } from "./chat/read_state.ts";
import { Rooms } from "./chat/rooms.ts";
import { Search, type SearchAnswer } from "./chat/search.ts";
import { Writer } from "./chat/writer.ts";
import { type Handler, type Handlers, handlers } from "./chat/handlers.ts";

export type { OpenParams } from "./chat/admission.ts";
export { CONVERSATIONS_PAGE } from "./chat/direct.ts";

/** What a {@link Chat} needs from outside. */
export interface ChatDeps {
  /** Where rooms are stored. */
  engine: Engine;
  /** What processes share; without it, this process is the only one (built on the hub). */
  sharing?: Sharing;
  log: Logger;
  metrics: Metrics;
  /** Checks signed tokens (`auth` frames); without it only guests can connect. */
  verifier?: Verifier;
  /** Wall clock for `ts` (ms). @default Date.now */
  now?: () => number;
}

const MAINTENANCE_MS = 30_000;
/** How every typing line starts (see {@link encode}: the type is the first field). */
const TYPING_LINE = '{"type":"typing",';
/** How often expired tokens and owed `auth` frames are looked for (one sweep, no timer per connection). */
const AUTH_SWEEP_MS = 1000;
/** How often a shutdown looks for silent connections, and how late a timer may fire on a server that keeps up. */
const SILENCE_TICK_MS = 10;

/** One chat service: a hub, an engine, sharing, and the features between clients and them. */
export class Chat {
  readonly hub: Hub;
  readonly #ctx: ChatContext;
  readonly #conns: Connections;
  readonly #engine: Engine;
  readonly #writer: Writer;
  readonly #presence: Presence;
  readonly #naming: Naming;
  readonly #rooms: Rooms;
  readonly #messages: Messages;
  readonly #direct: Direct;
  readonly #moderate: Moderate;
  readonly #search: Search;
  readonly #edits: Edits;
  readonly #admission: Admission;
  readonly #handlers: Handlers;
  readonly #unsubscribe: (() => void)[];
  readonly #maintenance: ReturnType<typeof setInterval>;
  readonly #authSweep: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(config: Config, deps: ChatDeps) {
    this.#engine = deps.engine;
    this.#conns = new Connections(config, deps.log, deps.metrics);
    this.hub = new Hub({
      maxRoomsPerConnection: config.maxRoomsPerConnection,
      maxRooms: config.maxRooms,
      nameHoldMs: ms(config, "nameHoldSeconds"),
      onPresenceQueued: config.presenceDelayMs > 0 ? () => this.#presence.soon() : undefined,
      externalPresence: deps.sharing?.spansProcesses ?? false,
      bigRoom: config.bigRoom,
      onCountQueued: () => this.#presence.countSoon(),
      maxTypers: config.maxTypers,
      typingWindowMs: config.typingWindowMs,
      // A watch list is at most one member page, partners too.
      maxPartners: config.membersPage,
    });
    const sharing = deps.sharing ?? new LocalSharing(this.hub);
    const ctx: ChatContext = this.#ctx = {
      cfg: config,
      hub: this.hub,
      engine: deps.engine,
      sharing,
      conns: this.#conns,
      moderation: new Moderation({ createRooms: config.createRooms }),
      log: deps.log,
      metrics: deps.metrics,
      now: deps.now ?? Date.now,
      closing: () => this.#closed,
    };
    const budget = new AnswerBudget(config);
    const presence = this.#presence = new Presence(ctx);
    const reactions = new Reactions(ctx);
    const reads = new ReadState(ctx);
    this.#writer = new Writer(ctx);
    this.#naming = new Naming(ctx);
    this.#rooms = new Rooms(ctx, { budget, presence, reactions, reads, frame: (c, d) => this.#frame(c, d) });
    this.#messages = new Messages(ctx, this.#writer, this.#naming);
    this.#direct = new Direct(ctx, { writer: this.#writer, naming: this.#naming, reads, budget, presence });
    this.#moderate = new Moderate(ctx, { naming: this.#naming, rooms: this.#rooms, budget });
    this.#edits = new Edits(ctx);
    this.#admission = new Admission(ctx, {
      verifier: deps.verifier,
      naming: this.#naming,
      rooms: this.#rooms,
      direct: this.#direct,
    });
    this.#search = new Search(ctx);
    this.#handlers = handlers(ctx, {
      admission: this.#admission,
      naming: this.#naming,
      rooms: this.#rooms,
      messages: this.#messages,
      direct: this.#direct,
      reads,
      reactions,
      edits: this.#edits,
      moderate: this.#moderate,
      directory: new Directory(ctx, { budget }),
      search: this.#search,
    });
    this.#unsubscribe = [
      // Stored messages reach this process's members from the engine, once each and in seq order.
      deps.engine.subscribe({
        message: (m) => this.hub.publish(m.room, encodeMessage(m), m.seq),
        restarted: (room, epoch, from) => this.#rooms.restarted(room, epoch, from),
        roomChanged: (room, change, rules) => this.#moderate.roomChanged(room, change, rules),
        messageChanged: (m, info) => this.#edits.changed(m, info),
      }),
      sharing.subscribe({
        line: (room, line) => this.#line(room, line),
        presence: (room, name, line) => this.#presence.announce(room, name, line),
        person: (key, msg) => this.#toPerson(key, msg),
        renamed: (old, name, rooms, display) => this.#naming.renamedElsewhere(old, name, rooms, display),
      }),
    ];
    this.#maintenance = setInterval(() => this.#maintain(), MAINTENANCE_MS);
    // Node's typings (pulled in by node:sqlite) say Timeout; Deno's timers are numbers.
    Deno.unrefTimer(this.#maintenance as unknown as number);
    // Only signed tokens expire and only a server with a key has connections owing an `auth` frame.
    if (deps.verifier) {
      this.#authSweep = setInterval(() => this.#admission.sweep(), AUTH_SWEEP_MS);
      Deno.unrefTimer(this.#authSweep as unknown as number);
    }
  }

  /** Who connection `id` is (role, uid, rooms claim, exp), or undefined (gone, or not authenticated yet). */
  identityOf(id: number): Identity | undefined {
    return this.#conns.get(id)?.identity;
  }

  /**
   * Who connection `id` is here and the rooms it is in, the one raw text goes to last (what text mode
   * needs when a connection switches to it); undefined when it is gone.
   */
  whereIs(id: number): { name: string; rooms: string[] } | undefined {
    const conn = this.#conns.get(id);
    if (!conn) return undefined;
    const all = this.hub.roomsOf(id);
    const rooms = all.filter((r) => r !== conn.current);
    if (rooms.length < all.length) rooms.push(conn.current);
    return { name: this.hub.nameOf(conn.key) ?? "", rooms };
  }

  /** Messages waiting for their durable write (queued or being written). */
  get pendingCount(): number {
    return this.#writer.pendingCount;
  }

  /**
   * Whether the last durable write succeeded. A failed write turns it false, the next successful
   * one turns it back: there is no probe, each new send tries the store again.
   */
  get storeHealthy(): boolean {
    return this.problem === undefined;
  }

  /** Why rooms cannot be served now ("store failing", "redis unavailable"), or undefined. */
  get problem(): string | undefined {
    return this.#engine.health() ?? (this.#writer.failing ? "store failing" : undefined);
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.#conns.size;
  }

  /** Rooms and people served here, for metrics. */
  get size(): { rooms: number; people: number } {
    return this.hub.size;
  }

  /** Members per room served here, for the server API. */
  roomCounts(): ReturnType<Hub["roomCounts"]> {
    return this.hub.roomCounts();
  }

  /**
   * A new connection: resolves identity and name, sends `welcome`, joins the first room. One that
   * owes an `auth` frame gets nothing until the frame comes (see {@link OpenParams.authenticate}).
   */
  open(peer: Peer, params: OpenParams): void {
    if (this.#closed) return peer.close(CloseCode.GOING_AWAY, "server restarting");
    const conn = this.#conns.add(peer);
    this.#ctx.metrics.connectionsOpened++;
    this.#admission.open(conn, params);
  }

  /** One text frame from connection `id`. Never throws. */
  message(id: number, data: string): void {
    const conn = this.#conns.get(id);
    if (!conn) return;
    this.#ctx.metrics.messagesIn++;
    conn.heardAt = performance.now();
    if (this.#closed) return this.#turnAway(conn, data);
    if (conn.queue) {
      if (conn.queue.length < this.#ctx.cfg.burst) return void conn.queue.push(data);
      return this.#conns.run(id, () => this.#conns.takeToken(conn, 0));
    }
    this.#conns.run(id, () => this.#frame(conn, data));
  }

  #frame(conn: Conn, data: string): void {
    // A frame that waited for a join check while the shutdown began is answered like one read now.
    if (this.#closed) return this.#turnAway(conn, data);
    this.#conns.takeToken(conn);
    const msg = parseClientFrame(data, this.#ctx.cfg);
    if (msg.type !== "auth" && !conn.identity) {
      throw new ProtocolError(
        "auth_required",
        "Send auth {token} first: this server needs to know who you are",
      );
    }
    (this.#handlers[msg.type] as Handler<typeof msg.type>)(conn, msg);
  }

  /** A binary frame: not part of the protocol. */
  binary(id: number, bytes: number): void {
    const conn = this.#conns.get(id);
    if (!conn) return;
    this.#ctx.metrics.messagesIn++;
    const max = this.#ctx.cfg.maxFrameBytes;
    this.#conns.run(id, () => {
      if (bytes > max) {
        throw new ProtocolError(
          "frame_too_big",
          `Frames are at most ${max} bytes, got ${bytes}`,
          CloseCode.TOO_BIG,
        );
      }
      throw new ProtocolError("bad_message", "Binary frames are not part of this protocol; send JSON text");
    });
  }

  /** Connection `id` closed. Idempotent. */
  closed(id: number): void {
    const conn = this.#conns.delete(id);
    if (!conn?.identity) return; // gone already, or never authenticated: not in the hub
    const { hub, sharing, moderation, now } = this.#ctx;
    for (const room of hub.soleTabRooms(id)) this.#presence.present(room, nameOf(this.#ctx, conn), false);
    if (hub.tabsOf(conn.key) === 1) sharing.releaseName(conn.key);
    for (const room of hub.disconnect(id, now())) {
      sharing.unwatch(room);
      moderation.forget(room);
    }
  }

  /**
   * Stops taking messages, writes and delivers what is pending, tells every client the server is
   * going (1001), closes the store. Idempotent. Every frame read meanwhile is answered
   * `shutting_down` (a send with its `cid`), before the 1001; what was taken before is acked.
   */
  close(): Promise<void> {
    return this.#closing ??= (async () => {
      this.#closed = true;
      const began = performance.now();
      clearInterval(this.#maintenance);
      clearInterval(this.#authSweep);
      this.#presence.close();
      await this.#writer.flush();
      await this.#closeWhenSilent(began, performance.now());
      for (const off of this.#unsubscribe) off();
      await this.#engine.close();
    })();
  }

  /**
   * Closes each connection 1001 once it has been silent for `shutdownQuietMs`: a frame it sent
   * before it could know is still in its socket when the stop begins, and is answered only if read
   * before the close. Silence counts only while the server keeps up (its timers fire on time): a
   * server that is behind has not read everything yet. Connections that go on talking are closed
   * at half the shutdown timeout (or when the writes are done, if later), so the rest of it is left
   * for the store.
   */
  async #closeWhenSilent(began: number, flushed: number): Promise<void> {
    const { shutdownQuietMs: quiet, shutdownTimeoutMs } = this.#ctx.cfg;
    const last = Math.max(began + shutdownTimeoutMs / 2, flushed);
    const tick = Math.max(1, Math.min(quiet / 4, SILENCE_TICK_MS));
    const told = new Set<number>();
    let behind = flushed;
    let due = flushed;
    for (;;) {
      const t = performance.now();
      // A timer late by more than a tick: frames may be waiting to be read, so nobody is silent yet.
      if (t - due > tick) behind = t;
      for (const conn of this.#conns.values()) {
        if (told.has(conn.peer.id)) continue;
        if (Math.max(conn.heardAt, behind) + quiet <= t || last <= t) {
          told.add(conn.peer.id);
          conn.peer.close(CloseCode.GOING_AWAY, "server restarting");
        }
      }
      if (
        last <= t || this.#conns.size === 0 || [...this.#conns.values()].every((c) => told.has(c.peer.id))
      ) {
        return;
      }
      due = t + tick;
      await new Promise((r) => setTimeout(r, tick));
    }
  }

  /**
   * Shutdown has begun: the frame is answered, not handled, so that no send goes unanswered
   * before the 1001. No strike and no token: the refusal is the server's doing.
   */
  #turnAway(conn: Conn, data: string): void {
    let about: { cid?: string; room?: string } | undefined;
    try {
      const msg = parseClientFrame(data, this.#ctx.cfg);
      if (msg.type === "send") about = { cid: msg.cid, room: "room" in msg ? msg.room : undefined };
      else if (msg.type === "raw") about = { room: conn.current || undefined };
    } catch { /* a bad frame is answered the same: nothing is handled any more */ }
    this.#conns.answer(conn.peer, SHUTTING_DOWN, about);
  }

  // ---- the host application's side (the server API) ----------------------------------------------

  /**
   * Stores and delivers `text` in `room` from `actor`, with no connection (see {@link Messages.post}).
   * @throws {ProtocolError} `unavailable`, `store_failed`, `shutting_down`.
   */
  post(actor: Actor, room: string, text: string, cid?: string): Promise<ChatMessage> {
    return this.#messages.post(actor, room, text, cid);
  }

  /**
   * Searches every room and conversation (or the one named) for the server API (see {@link Search.find}).
   * @throws {ProtocolError} `unsupported`, `bad_query`, `bad_message`, `store_failed`, `unavailable`.
   */
  search(msg: Omit<SearchFrame, "type">): Promise<SearchAnswer> {
    return this.#search.find(msg);
  }

  /** A page of `room`'s history older than `before`, oldest first, and whether it reaches the start. */
  async page(
    room: string,
    before: number,
    limit: number,
  ): Promise<{ messages: ChatMessage[]; complete: boolean }> {
    const n = Math.min(limit, this.#ctx.cfg.historyPage);
    try {
      const page = await this.#engine.before(room, before, n + 1);
      const complete = page.messages.length <= n;
      return { messages: complete ? page.messages : page.messages.slice(1), complete };
    } catch (e) {
      throw engineError({ reading: room }, e);
    }
  }

  /** Everyone in `room` (on every process when sharing spans several). */
  async presence(room: string): Promise<string[]> {
    try {
      return await this.#ctx.sharing.members(room);
    } catch (e) {
      throw engineError({ reading: room }, e);
    }
  }

  /**
   * Everyone in `room` (on every process when sharing spans several), with the display names of those
   * who have one.
   */
  async presenceShown(room: string): Promise<{ members: string[]; displays?: Record<string, string> }> {
    const { sharing } = this.#ctx;
    try {
      const [members, shown] = await Promise.all([sharing.members(room), sharing.displays(room)]);
      const displays = displaysOf(members, shown);
      return displays === undefined ? { members } : { members, displays };
    } catch (e) {
      throw engineError({ reading: room }, e);
    }
  }

  /** The room's rules as stored. */
  rulesOf(room: string): Promise<RoomRules> {
    return this.#moderate.rulesOf(room);
  }

  /** The room's added people, bans and mutes. */
  accessList(room: string): Promise<AccessList> {
    return this.#moderate.accessList(room);
  }

  /** A page of the room's audit log, newest first, older than `before` (ms). */
  auditPage(
    room: string,
    before: number,
    limit: number,
  ): Promise<{ entries: AuditEntry[]; complete: boolean }> {
    return this.#moderate.auditPage(room, before, limit);
  }

  /** The display name of person `uid` while they are online or within the name hold, else `uid`. */
  nameOfUid(uid: string): Promise<string> {
    return this.#naming.nameOfUid(uid);
  }

  /**
   * Who other than person `key` holds `name` or a lookalike (online or within the name hold, on any
   * process): their key, or undefined when `key` may post under it.
   * @throws {ProtocolError} `unavailable` when the names of other processes cannot be read.
   */
  async nameHolder(key: string, name: string): Promise<string | undefined> {
    try {
      return await this.#naming.holderOf(key, name);
    } catch (e) {
      throw engineError("people", e);
    }
  }

  /**
   * Closes every connection of person `uid` (a signed user) on every process with 4004, after a
   * `disconnected` line saying why. Resolves to how many were closed here.
   */
  async disconnectPerson(uid: string, reason: string): Promise<number> {
    const key = keyOfUid(uid);
    // Counted first: in one process the line closes them at once.
    const here = this.hub.tabsOf(key);
    try {
      await this.#ctx.sharing.sendToPerson(key, { type: "disconnected", reason });
    } catch (e) {
      throw engineError("people", e);
    }
    return here;
  }

  /** Takes `target` out of `room` on every process (their tabs get `kicked`); the room is told. */
  kick(actor: Actor, room: string, target: Target, reason?: string): Promise<void> {
    return this.#moderate.kick(actor, room, target, reason);
  }

  /** Bans, mutes, unmutes or unbans `target` in `room`, durably; a ban also takes them out of the room. */
  sanction(...args: Parameters<Moderate["sanction"]>): Promise<void> {
    return this.#moderate.sanction(...args);
  }

  /** Applies `change` to `room` durably with an audit entry; every process applies it to its members. */
  changeRoom(actor: Actor, room: string, change: RoomChange, reason?: string): Promise<RoomRules> {
    return this.#moderate.changeRoom(actor, room, change, reason);
  }

  /**
   * Deletes message `seq` of `room` for `actor`: its author, or a moderator.
   * @throws {ProtocolError} `message_not_found`, `not_allowed`.
   */
  deleteMessage(actor: Actor, room: string, seq: number): Promise<void> {
    return this.#edits.delete(actor, room, seq);
  }

  /** A page of the person's conversations, newest first (see docs/protocol.md, Direct conversations). */
  conversationsOf(
    key: string,
    before: number,
    limit: number,
  ): Promise<{ items: ConversationItem[]; complete: boolean }> {
    return this.#direct.page(key, before, limit);
  }

  /** A message for person `key` from any process; `disconnected` also closes their connections. */
  /**
   * A room's line from sharing (this process's or another's). Typing in a big room goes through the
   * hub's cap on typers; the check is on the line's start, as `encode` puts the type first.
   */
  #line(room: string, line: string): void {
    if (!line.startsWith(TYPING_LINE) || !this.hub.isBig(room)) return this.hub.publish(room, line);
    const name = (JSON.parse(line) as { name?: unknown }).name;
    if (typeof name === "string") this.hub.typing(room, name, line, this.#ctx.now());
  }

  #toPerson(key: string, msg: ServerMessage): void {
    this.hub.sendToPerson(key, encode(msg));
    if (msg.type === "message" && "conv" in msg && msg.to !== undefined) {
      // Someone they write to or hear from: told about in their big rooms from now on.
      this.#presence.watchPartners(key, [msg.from === this.hub.nameOf(key) ? msg.to : msg.from]);
    }
    if (msg.type !== "disconnected") return;
    for (const id of this.hub.tabsOfPerson(key)) {
      this.#conns.get(id)?.peer.close(CloseCode.DISCONNECTED, "disconnected");
    }
  }

  #maintain(): void {
    const { hub, moderation, engine, log } = this.#ctx;
    const now = this.#ctx.now();
    hub.sweep(now);
    moderation.sweep(now);
    this.#direct.sweep(now);
    engine.prune(now).then(
      (n) => n && log.info("retention", { deleted: n }),
      (e) => log.error("retention failed", { error: (e as Error).message }),
    );
  }
}

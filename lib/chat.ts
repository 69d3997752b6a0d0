/**
 * What each client message does: identity, rate limits, strikes, and the path of a room message
 * (sequence number, grouped durable write, then delivery and ack). Transport-free: it drives
 * {@link Peer}s, so tests can use fakes.
 * @module
 */
import { createHash } from "node:crypto";
import { setImmediate } from "node:timers";
import type { Verifier } from "./auth.ts";
import type { Config } from "./config.ts";
import { Hub, type Peer } from "./hub.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { canonicalName, nameProblem, withSuffix } from "./names.ts";
import {
  type ChatMessage,
  type ClientMessage,
  CloseCode,
  encode,
  encodeError,
  encodeMessage,
  parseClientFrame,
  PROTOCOL_VERSION,
  ProtocolError,
  wireConvMessage,
  wireMessage,
} from "./protocol.ts";
import {
  type AccessList,
  type Appended,
  type AuditEntry,
  conversationId,
  DEFAULT_RULES,
  type Draft,
  type Engine,
  type Mention,
  type RoomChange,
  type RoomRules,
  UnavailableError,
} from "./engine.ts";
import { type Identity, isSignedKey, keyOfUid, moderates, roomAllowedByClaim, uidOfKey } from "./identity.ts";
import { type Actor, forbidden, Moderation } from "./moderation.ts";

/** What the caller of {@link Chat.open} learned from the upgrade request (already validated). */
export interface OpenParams {
  name?: string;
  /** Canonical room name, or "" for none. */
  room: string;
  /** A guest's opaque token (from an earlier `welcome`). */
  token?: string;
  /** A signed identity the HTTP layer verified (`?token=` holding a JWT). */
  identity?: Identity;
  /** The connection owes an `auth {token}` frame: no identity, no welcome, no room until it comes. */
  authenticate?: boolean;
}

/** What a {@link Chat} needs from outside. */
export interface ChatDeps {
  engine: Engine;
  log: Logger;
  metrics: Metrics;
  /** Checks signed tokens (`auth` frames); without it only guests can connect. */
  verifier?: Verifier;
  /** Wall clock for `ts` (ms). @default Date.now */
  now?: () => number;
}

interface Conn {
  peer: Peer;
  /** The person's key ({@link Identity.key}); "" until an owed `auth` frame has come. */
  key: string;
  /** Who this is; undefined while an owed `auth` frame has not come. */
  identity?: Identity;
  /** An owed `auth` frame: the room to join once it comes, and when to stop waiting (ms). */
  awaiting?: { room: string; until: number };
  /** An `auth` frame is being verified. */
  verifying?: boolean;
  /**
   * Frames that arrived while a join was being checked, in order: they are handled after it, so a
   * client may send `join` and then `send` to the room at once.
   */
  queue?: string[];
  /** The room a raw (non-JSON) frame goes to: the last one joined. */
  current: string;
  tokens: number;
  refilledAt: number;
  strikes: number;
  strikesSince: number;
  /** When its last message was queued (performance.now ms; see {@link BULK_SENDER_GAP_MS}). */
  sentAt: number;
  /**
   * The name claim across processes in flight (at connect, or a `nick`): the next one waits for it,
   * so the name asked for last is the one held.
   */
  naming?: Promise<unknown>;
}

interface Pending {
  draft: Draft;
  /** A direct message: the other person's name when it was sent. */
  to?: string;
  sender: Peer;
  /** Connections that re-sent the same cid while this was being written: they get the ack too. */
  waiters: Peer[];
  /** Its mentions of people on other processes are being looked up: the write waits for it. */
  ready?: Promise<void>;
}

/** A history read failed: the room's history cannot be given now. */
const UNREADABLE = (room: string, e: unknown) =>
  e instanceof UnavailableError
    ? new ProtocolError("unavailable", `Room "${room}" cannot be reached now; join it again in a moment`)
    : new ProtocolError(
      "store_failed",
      `The history of room "${room}" cannot be read now; join it again later`,
    );
/** A lookup of people across processes failed. */
const UNREADABLE_PERSON = (e: unknown) =>
  e instanceof UnavailableError
    ? new ProtocolError("unavailable", "People on other servers cannot be reached now; try again in a moment")
    : new ProtocolError("store_failed", "That could not be done now; try again later");
const SHUTTING_DOWN = new ProtocolError(
  "shutting_down",
  "The server is restarting and took nothing more; reconnect in a moment and send it again",
);
const TOKEN_RE = /^[A-Za-z0-9_-]{22,64}$/;
const STRIKE_WINDOW_MS = 60_000;
const MAINTENANCE_MS = 30_000;
/** How often expired tokens and owed `auth` frames are looked for (one sweep, no timer per connection). */
const AUTH_SWEEP_MS = 1000;
/**
 * A sender whose previous message came less than this many ms before is sending in a loop, not
 * typing: its messages do not make an idle writer wait for company (see `commitDelayMs`).
 */
const BULK_SENDER_GAP_MS = 100;

/** Direct conversations in one `conversations` answer (the first comes right after `welcome`). */
export const CONVERSATIONS_PAGE = 50;
/** What an engine of the message-extras work adds: mentions of a person per room after a seq. */
type MentionCounts = (
  key: string,
  rooms: { room: string; after: number }[],
) => Promise<Record<string, number>>;
/** JSON around one message in an answer (`{"type":"message","room":…,"seq":…}`), for the size budget. */
const ANSWER_OVERHEAD_CHARS = 160;
/**
 * An `@name` in a message: `@` not inside a word (so `a@b.example` mentions nobody), then name
 * characters (see lib/names.ts; marks too, as NFKC may compose them).
 */
const MENTION_RE = /(?<![\p{L}\p{N}\p{M}_.@-])@([\p{L}\p{N}\p{M}_.-]{1,128})/gu;

/** One chat service: a hub, an engine, and the rules between clients and them. */
export class Chat {
  readonly hub: Hub;
  readonly #moderation = new Moderation();
  readonly #cfg: Config;
  readonly #engine: Engine;
  readonly #unsubscribe: () => void;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #now: () => number;
  readonly #conns = new Map<number, Conn>();
  #pending: Pending[] = [];
  /** Messages in the write in flight. */
  #writing = 0;
  readonly #pendingByCid = new Map<string, Pending>();
  #commitQueued = false;
  /** The wait of an idle writer for company (see `commitDelayMs`); cleared by the commit (or close). */
  #commitTimer: ReturnType<typeof setTimeout> | undefined;
  #presenceTimer: ReturnType<typeof setTimeout> | undefined;
  #inFlight: Promise<void> | undefined;
  readonly #maintenance: ReturnType<typeof setInterval>;
  readonly #verifier: Verifier | undefined;
  readonly #authSweep: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Characters one `joined`/`history` answer may hold: at most half of what a client may have queued. */
  readonly #answerChars: number;
  /** Writes failed in a row; 0 while the store works. */
  #storeFailures = 0;

  constructor(config: Config, deps: ChatDeps) {
    this.#cfg = config;
    this.#answerChars = Math.min(config.maxAnswerBytes, Math.floor(config.maxBufferedBytes / 2));
    this.#engine = deps.engine;
    this.#log = deps.log;
    this.#metrics = deps.metrics;
    this.#now = deps.now ?? Date.now;
    this.#verifier = deps.verifier;
    this.hub = new Hub({
      maxRoomsPerConnection: config.maxRoomsPerConnection,
      maxRooms: config.maxRooms,
      nameHoldMs: config.nameHoldSeconds * 1000,
      onPresenceQueued: config.presenceDelayMs > 0 ? () => this.#presenceSoon() : undefined,
      externalPresence: deps.engine.presence !== undefined,
    });
    // Stored messages reach this process's members from the engine, once each and in seq order.
    this.#unsubscribe = this.#engine.subscribe({
      message: (m) => this.hub.publish(m.room, encodeMessage(m), m.seq),
      restarted: (room, epoch) => this.#restarted(room, epoch),
      line: (room, line) => this.#lineFromEngine(room, line),
      person: (key, line) => this.#toPerson(key, line),
      // Our own renames were told here already (the hub); names are unique, so a local holder is us.
      renamed: (old, name, rooms) => {
        if (this.hub.personByName(name) === undefined) {
          this.hub.tellRooms(rooms, encode({ type: "nick", old, name }));
        }
      },
      roomChanged: (room, change, rules) => this.#roomChanged(room, change, rules),
    });
    this.#maintenance = setInterval(() => this.#maintain(), MAINTENANCE_MS);
    // Node's typings (pulled in by node:sqlite) say Timeout; Deno's timers are numbers.
    Deno.unrefTimer(this.#maintenance as unknown as number);
    // Only signed tokens expire and only a server with a key has connections owing an `auth` frame.
    if (this.#verifier) {
      this.#authSweep = setInterval(() => this.#sweepAuth(), AUTH_SWEEP_MS);
      Deno.unrefTimer(this.#authSweep as unknown as number);
    }
  }

  /** Who connection `id` is (role, uid, rooms claim, exp), or undefined (gone, or not authenticated yet). */
  identityOf(id: number): Identity | undefined {
    return this.#conns.get(id)?.identity;
  }

  /** Messages waiting for their durable write (queued or being written). */
  get pendingCount(): number {
    return this.#pending.length + this.#writing;
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
    return this.#engine.health?.() ?? (this.#storeFailures > 0 ? "store failing" : undefined);
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.#conns.size;
  }

  /**
   * A new connection: resolves identity and name, sends `welcome`, joins the first room. One that
   * owes an `auth` frame gets nothing until the frame comes (see {@link OpenParams.authenticate}).
   */
  open(peer: Peer, params: OpenParams): void {
    if (this.#closed) return peer.close(CloseCode.GOING_AWAY, "server restarting");
    const t = performance.now();
    const conn: Conn = {
      peer,
      key: "",
      current: "",
      tokens: this.#cfg.burst,
      refilledAt: t,
      strikes: 0,
      strikesSince: t,
      sentAt: -Infinity,
    };
    this.#conns.set(peer.id, conn);
    this.#metrics.connectionsOpened++;
    if (params.authenticate) {
      conn.awaiting = { room: params.room, until: this.#now() + this.#cfg.authTimeoutMs };
      return;
    }
    if (params.identity) return this.#admit(conn, params.identity, params.room);
    const token = params.token && TOKEN_RE.test(params.token) ? params.token : newToken();
    const key = keyOf(token);
    const guest: Identity = { key, uid: key, role: "member", guest: true };
    this.#admit(conn, guest, params.room, { token, name: params.name });
  }

  /**
   * Gives `conn` its identity and name, sends `welcome` and joins `room`. A guest's name is
   * first-come (`?name=`, else the one its token holds); a signed person's comes from the token.
   */
  #admit(conn: Conn, identity: Identity, room: string, guest?: { token: string; name?: string }): void {
    const { peer } = conn;
    const key = identity.key;
    const now = this.#now();
    conn.key = key;
    conn.identity = identity;
    // A token owns its name: a second tab (or a reconnect within the hold) gets the same one.
    const held = this.hub.nameOf(key);
    const wanted = held ??
      (guest
        ? guest.name ?? `guest-${guest.token.slice(0, 4).toLowerCase().replace(/[^a-z0-9]/g, "x")}`
        : identity.name!);
    const name = guest || held !== undefined
      ? this.hub.freeName(key, wanted, now)
      : this.#signedName(key, wanted);
    this.hub.connect(peer, key, name, now);
    const cfg = this.#cfg;
    const welcome: Record<string, unknown> = {
      type: "welcome",
      id: peer.id,
      name,
      uid: identity.uid,
      role: identity.role,
      guest: identity.guest,
      rooms: [],
      limits: {
        textChars: cfg.maxTextChars,
        frameBytes: cfg.maxFrameBytes,
        roomsPerConnection: cfg.maxRoomsPerConnection,
        messagesPerSecond: cfg.messagesPerSecond,
        burst: cfg.burst,
        historyPage: cfg.historyPage,
        editSeconds: cfg.editWindowSeconds,
      },
      version: PROTOCOL_VERSION,
    };
    // A signed person's token belongs to the host application: it is never echoed.
    if (guest) welcome.token = guest.token;
    if (identity.exp !== undefined) welcome.exp = identity.exp;
    if (name !== wanted) {
      welcome.notice = `The name "${wanted}" is taken (or looks like one that is); you are "${name}"`;
    }
    peer.send(encode(welcome));
    this.#remember(key, name);
    this.#sendConversations(conn, Number.MAX_SAFE_INTEGER, CONVERSATIONS_PAGE);
    if (this.#engine.claimName) this.#claimEverywhere(conn, name);
    if (room) this.#run(peer.id, () => this.#join(conn, room), { room });
  }

  /**
   * The name a signed person gets for `wanted` (the token's): names from signed tokens are not
   * first-come, so a guest holding it (or a lookalike) here is renamed `name-2`, … (a `nick` line tells
   * its rooms); another signed person holding it keeps it, and this one gets the suffix.
   */
  #signedName(key: string, wanted: string): string {
    const now = this.#now();
    const holder = this.hub.holderOf(key, wanted, now);
    if (holder !== undefined && !isSignedKey(holder)) {
      const old = this.hub.nameOf(holder)!;
      let moved = old;
      for (let i = 2; moved === old || !this.hub.nameFreeFor(holder, moved, now); i++) {
        moved = withSuffix(old, `-${i}`);
      }
      this.#renamePerson(holder, moved);
      this.#engine.claimName?.(holder, moved).catch(() => {/* its name here moved already */});
    }
    return this.hub.freeName(key, wanted, now);
  }

  /** One text frame from connection `id`. Never throws. */
  message(id: number, data: string): void {
    const conn = this.#conns.get(id);
    if (!conn) return;
    this.#metrics.messagesIn++;
    if (this.#closed) return this.#turnAway(conn, data);
    if (conn.queue) {
      if (conn.queue.length < this.#cfg.burst) return void conn.queue.push(data);
      return this.#run(id, () => this.#takeToken(conn, 0));
    }
    this.#run(id, () => this.#frame(conn, data));
  }

  #frame(conn: Conn, data: string): void {
    this.#takeToken(conn);
    const msg = parseClientFrame(data, this.#cfg);
    if (msg.type === "auth") return this.#auth(conn, msg.token);
    if (!conn.identity) {
      throw new ProtocolError(
        "auth_required",
        "Send auth {token} first: this server needs to know who you are",
      );
    }
    this.#handle(conn, msg);
  }

  /**
   * An `auth` frame: the identity a connection owed (a bad token closes it with 4002), or a refresh of
   * a signed one (same `sub`; a bad token is an error and the connection keeps its old token).
   */
  #auth(conn: Conn, token: string): void {
    const verifier = this.#verifier;
    const first = conn.identity === undefined;
    const fail = (e: ProtocolError) =>
      this.#refuse(conn.peer.id, first ? new ProtocolError(e.code, e.message, CloseCode.AUTH_FAILED) : e);
    if (!verifier) {
      return fail(new ProtocolError("bad_token", "This server takes no signed tokens: connect as a guest"));
    }
    if (conn.identity?.guest) {
      throw new ProtocolError(
        "bad_token",
        "This connection is a guest's: to sign in, connect again with auth=frame and send auth first",
      );
    }
    if (conn.verifying) {
      throw new ProtocolError("bad_message", "An auth frame is still being checked: wait for its answer");
    }
    conn.verifying = true;
    const id = conn.peer.id;
    verifier.verify(token).then(
      (identity) => {
        conn.verifying = false;
        if (this.#conns.get(id) !== conn || this.#closed) return;
        if (conn.awaiting) {
          const room = conn.awaiting.room;
          conn.awaiting = undefined;
          return this.#admit(conn, identity, room);
        }
        this.#run(id, () => this.#refresh(conn, identity));
      },
      (e) => {
        conn.verifying = false;
        if (this.#conns.get(id) !== conn) return;
        if (e instanceof ProtocolError) return fail(e);
        this.#log.error("token verification failed", { conn: id, error: String((e as Error)?.stack ?? e) });
        fail(new ProtocolError("bad_token", "The token could not be checked"));
      },
    );
  }

  /** A new token for a signed connection: later expiry, and the token's name, role and rooms. */
  #refresh(conn: Conn, identity: Identity): void {
    const old = conn.identity!;
    if (identity.key !== old.key) {
      throw new ProtocolError(
        "bad_token",
        "A refreshed token must be for the same user (sub) as the connection",
      );
    }
    conn.identity = identity;
    // The token's display name changed: a rename, with the same rules as at connect.
    if (identity.name !== old.name) this.#renamePerson(conn.key, this.#signedName(conn.key, identity.name!));
    // Rooms the new token no longer allows are left.
    for (const room of this.hub.roomsOf(conn.peer.id)) {
      if (roomAllowedByClaim(identity, room) || !this.#left(conn, room)) continue;
      if (conn.current === room) conn.current = this.hub.roomsOf(conn.peer.id).at(-1) ?? "";
      conn.peer.send(encode({ type: "left", room }));
    }
    conn.peer.send(encode({
      type: "authed",
      exp: identity.exp,
      name: this.#name(conn),
      role: identity.role,
      uid: identity.uid,
    }));
  }

  /** Closes connections whose token expired (4003) and those that owed an `auth` frame too long (4002). */
  #sweepAuth(): void {
    const now = this.#now();
    for (const conn of this.#conns.values()) {
      if (conn.awaiting && now >= conn.awaiting.until && !conn.verifying) {
        this.#refuse(
          conn.peer.id,
          new ProtocolError(
            "auth_required",
            `No auth frame within ${this.#cfg.authTimeoutMs} ms of connecting`,
            CloseCode.AUTH_FAILED,
          ),
        );
      } else if (conn.identity?.exp !== undefined && conn.identity.exp <= now) {
        this.#refuse(
          conn.peer.id,
          new ProtocolError(
            "token_expired",
            "Your sign-in expired: connect again with a new token",
            CloseCode.TOKEN_EXPIRED,
          ),
        );
      }
    }
  }

  /** A binary frame: not part of the protocol. */
  binary(id: number, bytes: number): void {
    const conn = this.#conns.get(id);
    if (!conn) return;
    this.#metrics.messagesIn++;
    this.#run(id, () => {
      if (bytes > this.#cfg.maxFrameBytes) {
        throw new ProtocolError(
          "frame_too_big",
          `Frames are at most ${this.#cfg.maxFrameBytes} bytes, got ${bytes}`,
          CloseCode.TOO_BIG,
        );
      }
      throw new ProtocolError("bad_message", "Binary frames are not part of this protocol; send JSON text");
    });
  }

  /** Connection `id` closed. Idempotent. */
  closed(id: number): void {
    const conn = this.#conns.get(id);
    if (!conn || !this.#conns.delete(id)) return;
    if (!conn.identity) return; // never authenticated: not in the hub
    for (const room of this.hub.soleTabRooms(id)) this.#present(room, this.#name(conn), false);
    if (this.hub.tabsOf(conn.key) === 1) this.#engine.releaseName?.(conn.key);
    for (const room of this.hub.disconnect(id, this.#now())) {
      this.#engine.unwatch?.(room);
      this.#moderation.forget(room);
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
      clearInterval(this.#maintenance);
      clearInterval(this.#authSweep);
      clearTimeout(this.#presenceTimer);
      this.#commit();
      while (this.#inFlight) await this.#inFlight;
      this.hub.closeAll(CloseCode.GOING_AWAY, "server restarting");
      this.#unsubscribe();
      this.hub.dispose();
      await this.#engine.close();
    })();
  }

  /**
   * Shutdown has begun: the frame is answered, not handled, so that no send goes unanswered
   * before the 1001. No strike and no token: the refusal is the server's doing.
   */
  #turnAway(conn: Conn, data: string): void {
    let extra: { cid?: string; room?: string } | undefined;
    try {
      const msg = parseClientFrame(data, this.#cfg);
      if (msg.type === "send") extra = { cid: msg.cid, room: "room" in msg ? msg.room : undefined };
      else if (msg.type === "raw") extra = { room: conn.current || undefined };
    } catch { /* a bad frame is answered the same: nothing is handled any more */ }
    this.#answer(conn.peer, SHUTTING_DOWN, extra);
  }

  /** Runs `fn`; a refusal it throws is answered, with `extra` (the room or send it is about). */
  #run(id: number, fn: () => void, extra?: { cid?: string; room?: string }): void {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof ProtocolError)) {
        this.#log.error("handler failed", { conn: id, error: String((e as Error)?.stack ?? e) });
        return;
      }
      this.#refuse(id, e, extra);
    }
  }

  #refuse(id: number, e: ProtocolError, extra?: { cid?: string; room?: string; conv?: string }): void {
    const conn = this.#conns.get(id);
    if (!conn) return;
    this.#answer(conn.peer, e, extra);
    if (e.closeCode) return conn.peer.close(e.closeCode, e.code);
    const t = performance.now();
    if (t - conn.strikesSince > STRIKE_WINDOW_MS) conn.strikes = 0, conn.strikesSince = t;
    if (++conn.strikes > this.#cfg.maxStrikes) conn.peer.close(CloseCode.POLICY, "too many bad frames");
  }

  /** Sends `e` as an error frame, with no strike: for refusals that are not the client's fault. */
  #answer(peer: Peer, e: ProtocolError, extra?: { cid?: string; room?: string; conv?: string }): void {
    if (!this.#conns.has(peer.id)) return;
    this.#metrics.error(e.code);
    peer.send(encodeError(e, extra));
  }

  /** Takes one token of the connection's bucket; `cap` 0 refuses at once (a full queue). */
  #takeToken(conn: Conn, cap = this.#cfg.burst): void {
    const t = performance.now();
    const cfg = this.#cfg;
    conn.tokens = Math.min(cap, conn.tokens + (t - conn.refilledAt) * cfg.messagesPerSecond / 1000);
    conn.refilledAt = t;
    if (conn.tokens < 1) {
      throw new ProtocolError(
        "rate_limited",
        `Slow down: at most ${cfg.messagesPerSecond} messages a second (bursts of ${cfg.burst})`,
      );
    }
    conn.tokens -= 1;
  }

  #handle(conn: Conn, msg: ClientMessage): void {
    switch (msg.type) {
      case "join":
        // A refused join names its room, so a client with several joins out knows which.
        return this.#run(conn.peer.id, () => this.#join(conn, msg.room, msg.since, msg.epoch, msg.rev), {
          room: msg.room,
        });
      case "leave":
        return this.#leave(conn, msg.room);
      case "send":
        try {
          if ("to" in msg) return this.#direct(conn, msg.to, msg.text, msg.cid);
          return this.#send(conn, msg.room, msg.text, msg.cid, msg.replyTo);
        } catch (e) {
          // The refusal names the send it refuses, so a client with several in flight knows which.
          if (!(e instanceof ProtocolError)) throw e;
          const room = "room" in msg ? { room: msg.room } : {};
          return this.#refuse(conn.peer.id, e, msg.cid === undefined ? room : { cid: msg.cid, ...room });
        }
      case "raw":
        if (!conn.current) {
          throw new ProtocolError(
            "not_member",
            "Join a room before sending text (for example /ws?room=lobby)",
          );
        }
        return this.#send(conn, conn.current, msg.text);
      case "typing":
        this.#member(conn, msg.room, "type in");
        return this.#roomLine(msg.room, encode({ type: "typing", room: msg.room, name: this.#name(conn) }));
      case "nick":
        if (!conn.identity!.guest) {
          throw new ProtocolError(
            "not_allowed",
            "Your name comes from your sign-in: change it on the site you signed in with",
          );
        }
        if (!this.#engine.claimName) return this.#rename(conn, msg.name);
        return this.#renameEverywhere(conn, msg.name);
      case "history":
        if ("conv" in msg) return this.#convHistory(conn, msg.conv, msg.before, msg.after, msg.limit);
        return this.#history(conn, msg.room, msg.before, msg.limit);
      case "read":
        return "conv" in msg
          ? this.#readConv(conn, msg.conv, msg.seq)
          : this.#readRoom(conn, msg.room, msg.seq);
      case "conversations":
        return this.#sendConversations(
          conn,
          msg.before ?? Number.MAX_SAFE_INTEGER,
          Math.min(msg.limit ?? CONVERSATIONS_PAGE, CONVERSATIONS_PAGE),
          true,
        );
      case "ping":
        return void conn.peer.send(encode({ type: "pong", ts: this.#now() }));
      case "react":
        return this.#reply(conn, this.#react(conn, msg.room, msg.seq, msg.emoji, msg.on), msg.room);
      case "delete":
        this.#member(conn, msg.room, "delete in");
        return this.#reply(conn, this.deleteMessage(this.#actor(conn), msg.room, msg.seq), msg.room);
      case "edit":
        this.#member(conn, msg.room, "edit in");
        return this.#reply(conn, this.#edit(conn, msg.room, msg.seq, msg.text), msg.room);
      case "kick":
      case "ban":
      case "mute":
      case "unmute": {
        this.#moderator(conn, msg.room);
        const act = this.#resolve(msg.name).then((target) =>
          msg.type === "kick"
            ? this.kick(this.#actor(conn), msg.room, target, msg.reason)
            : msg.type === "unmute"
            ? this.sanction(this.#actor(conn), msg.room, target, { kind: "unmute", uid: target.uid })
            : this.sanction(this.#actor(conn), msg.room, target, {
              kind: msg.type,
              uid: target.uid,
              until: msg.seconds === undefined ? 0 : this.#now() + msg.seconds * 1000,
            }, msg.reason)
        );
        return this.#reply(conn, act, msg.room);
      }
      case "unban": {
        this.#moderator(conn, msg.room);
        const actor = this.#actor(conn);
        const act = this.nameOfUid(msg.uid).then((name) =>
          this.sanction(actor, msg.room, { uid: msg.uid, name }, { kind: "unban", uid: msg.uid })
        );
        return this.#reply(conn, act, msg.room);
      }
      case "allow":
      case "disallow":
        this.#moderator(conn, msg.room);
        return this.#reply(
          conn,
          this.changeRoom(this.#actor(conn), msg.room, { kind: msg.type, uid: msg.uid }),
          msg.room,
        );
      case "room": {
        this.#moderator(conn, msg.room);
        const { type: _, room, ...rules } = msg;
        return this.#reply(conn, this.changeRoom(this.#actor(conn), room, { kind: "rules", rules }), room);
      }
      case "audit":
        return this.#audit(conn, msg.room, msg.before, msg.limit);
    }
  }

  // ---- the host application's side (the server API) ----------------------------------------------

  /**
   * Stores and delivers `text` in `room` from `actor` (a user the host names, or the system), with no
   * connection: no membership, rate limit or room rule applies, the host is trusted.
   * @throws {ProtocolError} `unavailable`, `store_failed`, `shutting_down`.
   */
  async post(actor: Actor, room: string, text: string, cid?: string): Promise<ChatMessage> {
    if (this.#closed) throw SHUTTING_DOWN;
    const draft: Draft = { room, from: actor.name, text, ts: this.#now(), key: actor.key || "api" };
    if (cid !== undefined) draft.cid = cid;
    try {
      const [stored] = await this.#engine.append([draft]);
      if (!stored.duplicate) this.#metrics.messagesStored++;
      return stored.message;
    } catch (e) {
      throw e instanceof UnavailableError
        ? new ProtocolError("unavailable", "Storage is out of reach for a moment; nothing was stored")
        : new ProtocolError("store_failed", "The message could not be stored; nothing was stored");
    }
  }

  /** A page of `room`'s history older than `before`, oldest first, and whether it reaches the start. */
  async page(
    room: string,
    before: number,
    limit: number,
  ): Promise<{ messages: ChatMessage[]; complete: boolean }> {
    const n = Math.min(limit, this.#cfg.historyPage);
    try {
      const page = await this.#engine.before(room, before, n + 1);
      const complete = page.messages.length <= n;
      return { messages: complete ? page.messages : page.messages.slice(1), complete };
    } catch (e) {
      throw UNREADABLE(room, e);
    }
  }

  /** Everyone in `room` (on every process when the engine spans several). */
  async presence(room: string): Promise<string[]> {
    try {
      return this.#engine.members ? await this.#engine.members(room) : this.hub.members(room);
    } catch (e) {
      throw UNREADABLE(room, e);
    }
  }

  /** The room's rules as stored. */
  async rulesOf(room: string): Promise<RoomRules> {
    const rules = this.#engine.rules;
    if (!rules) return DEFAULT_RULES;
    try {
      return await rules.call(this.#engine, room);
    } catch (e) {
      throw UNREADABLE(room, e);
    }
  }

  /** The room's added people, bans and mutes. */
  async accessList(room: string): Promise<AccessList> {
    const list = this.#engine.accessList;
    if (!list) return { allowed: [], bans: [], mutes: [] };
    try {
      return await list.call(this.#engine, room);
    } catch (e) {
      throw UNREADABLE(room, e);
    }
  }

  /** A page of the room's audit log, newest first, older than `before` (ms). */
  async auditPage(
    room: string,
    before: number,
    limit: number,
  ): Promise<{ entries: AuditEntry[]; complete: boolean }> {
    const n = Math.min(limit, this.#cfg.historyPage);
    let entries: AuditEntry[];
    try {
      entries = await this.#rulesEngine().audit(room, before, n + 1);
    } catch (e) {
      if (e instanceof ProtocolError) throw e;
      throw UNREADABLE(room, e);
    }
    return { entries: entries.slice(0, n), complete: entries.length <= n };
  }

  /** The display name of person `uid` while they are online or within the name hold, else `uid`. */
  async nameOfUid(uid: string): Promise<string> {
    const key = keyOfUid(uid);
    return this.hub.nameOf(key) ?? this.hub.nameOf(uid) ?? await this.#engine.nameOf?.(key) ?? uid;
  }

  /**
   * Closes every connection of person `uid` (a signed user) on every process with 4004, after a
   * `disconnected` line saying why. Resolves to how many were closed here.
   */
  async disconnectPerson(uid: string, reason: string): Promise<number> {
    const key = keyOfUid(uid);
    const line = encode({ type: "disconnected", reason });
    if (this.#engine.sendToPerson) {
      try {
        await this.#engine.sendToPerson(key, line);
      } catch (e) {
        throw UNREADABLE_PERSON(e);
      }
      return this.hub.tabsOf(key);
    }
    return this.#toPerson(key, line);
  }

  /** A line for person `key` from any process; a `disconnected` line also closes their connections. */
  #toPerson(key: string, line: string): number {
    const n = this.hub.sendToPerson(key, line);
    if (line.startsWith('{"type":"disconnected"')) {
      for (const id of this.hub.tabsOfPerson(key)) {
        this.#conns.get(id)?.peer.close(CloseCode.DISCONNECTED, "disconnected");
      }
    }
    return n;
  }

  // ---- moderation -------------------------------------------------------------------------------

  /** The actor a connection is. */
  #actor(conn: Conn): Actor {
    return { key: conn.key, uid: conn.identity!.uid, name: this.#name(conn), role: conn.identity!.role };
  }

  /** Moderation frames need a moderator or an admin, and the room joined (they act on what they see). */
  #moderator(conn: Conn, room: string): void {
    if (!moderates(conn.identity!.role)) {
      throw new ProtocolError("not_allowed", `Only moderators and admins can do that in room "${room}"`);
    }
    this.#member(conn, room, "moderate");
  }

  /** Answers a refusal of `act` as an error frame; success is told to the room, not the actor. */
  #reply(conn: Conn, act: Promise<unknown>, room: string): void {
    const id = conn.peer.id;
    act.catch((e) => {
      if (e instanceof ProtocolError) return this.#refuse(id, e, { room });
      this.#log.error("moderation failed", { room, error: (e as Error).message });
      this.#answer(conn.peer, UNREADABLE_PERSON(e), { room });
    });
  }

  /** The person called `name`, here or on another process. */
  async #resolve(name: string): Promise<{ key: string; uid: string; name: string }> {
    const local = this.hub.personByName(name);
    const found = local !== undefined
      ? { key: local, name: this.hub.nameOf(local)! }
      : await this.#engine.whoIs?.(name);
    if (!found) throw new ProtocolError("user_not_found", `No one called "${name}" is online`);
    return { ...found, uid: uidOfKey(found.key) };
  }

  #rulesEngine(): Required<Pick<Engine, "access" | "changeRoom" | "changeMessage" | "audit">> {
    const e = this.#engine;
    if (!e.access || !e.changeRoom || !e.changeMessage || !e.audit) {
      throw new ProtocolError("not_allowed", "This server keeps no room rules");
    }
    return e as Required<Pick<Engine, "access" | "changeRoom" | "changeMessage" | "audit">>;
  }

  /**
   * Deletes message `seq` of `room` for `actor`: its author, or a moderator. The seq stays as a
   * tombstone; every member is told `deleted`.
   * @throws {ProtocolError} `message_not_found`, `not_allowed`.
   */
  async deleteMessage(actor: Actor, room: string, seq: number): Promise<void> {
    const now = this.#now();
    const mod = moderates(actor.role);
    const result = await this.#rulesEngine().changeMessage(
      room,
      seq,
      { kind: "delete", by: actor.uid },
      mod ? {} : { authorKey: actor.key },
      { ts: now, action: "delete", by: actor.uid, seq },
    );
    if (!result.ok) {
      if (result.problem === "not_author") {
        throw new ProtocolError("not_allowed", `Only its author or a moderator can delete message ${seq}`);
      }
      throw new ProtocolError("message_not_found", `Room "${room}" has no message ${seq} to delete`);
    }
    this.#roomLine(room, encode({ type: "deleted", room, seq, by: actor.name, rev: result.rev }));
  }

  /** Edits one's own message within the edit window; every member is told `edited`. */
  async #edit(conn: Conn, room: string, seq: number, text: string): Promise<void> {
    const now = this.#now();
    const window = this.#cfg.editWindowSeconds * 1000;
    if (window === 0) throw new ProtocolError("not_allowed", "Messages cannot be edited on this server");
    const result = await this.#rulesEngine().changeMessage(
      room,
      seq,
      { kind: "edit", text, editedTs: now },
      { authorKey: conn.key, sentSince: now - window },
      { ts: now, action: "edit", by: conn.identity!.uid, seq },
    );
    if (!result.ok) {
      if (result.problem === "not_author") {
        throw new ProtocolError("not_allowed", `Only its author can edit message ${seq}`);
      }
      if (result.problem === "too_old") {
        throw new ProtocolError(
          "edit_window_closed",
          `Messages can be edited for ${this.#cfg.editWindowSeconds} s after they are sent; message ${seq} is older`,
        );
      }
      throw new ProtocolError("message_not_found", `Room "${room}" has no message ${seq} to edit`);
    }
    this.#roomLine(room, encode({ type: "edited", room, seq, text, editedTs: now, rev: result.rev }));
  }

  /** Takes `target` out of `room` on every process (their tabs get `kicked`); the room is told. */
  async kick(
    actor: Actor,
    room: string,
    target: { uid: string; name: string },
    reason?: string,
  ): Promise<void> {
    const audit: AuditEntry = { ts: this.#now(), action: "kick", by: actor.uid, target: target.uid };
    if (reason !== undefined) audit.reason = reason;
    await this.#rulesEngine().changeRoom(room, { kind: "kick", uid: target.uid }, audit);
    this.#announce(room, "kick", actor, target, undefined, reason);
  }

  /** Bans, mutes or unmutes `target` in `room`, durably; a ban also takes them out of the room. */
  async sanction(
    actor: Actor,
    room: string,
    target: { uid: string; name: string },
    change: Extract<RoomChange, { kind: "ban" | "mute" | "unmute" | "unban" }>,
    reason?: string,
  ): Promise<void> {
    await this.changeRoom(actor, room, change, reason);
    const until = "until" in change ? change.until : undefined;
    this.#announce(room, change.kind, actor, target, until, reason);
  }

  /** Applies `change` to `room` durably with an audit entry; every process applies it to its members. */
  async changeRoom(actor: Actor, room: string, change: RoomChange, reason?: string): Promise<RoomRules> {
    const audit: AuditEntry = { ts: this.#now(), action: change.kind, by: actor.uid };
    if ("uid" in change) audit.target = change.uid;
    if ("until" in change) audit.until = change.until;
    if (reason !== undefined) audit.reason = reason;
    return await this.#rulesEngine().changeRoom(room, change, audit);
  }

  #announce(
    room: string,
    action: string,
    actor: Actor,
    target: { uid: string; name: string },
    until?: number,
    reason?: string,
  ): void {
    const line: Record<string, unknown> = {
      type: "moderation",
      room,
      action,
      name: target.name,
      uid: target.uid,
      by: actor.name,
    };
    if (until !== undefined) line.until = until;
    if (reason !== undefined) line.reason = reason;
    this.#roomLine(room, encode(line));
  }

  /** A change to a room from any process: rules to its members here, removals where due. */
  #roomChanged(room: string, change: RoomChange, rules: RoomRules): void {
    if (!this.hub.hasRoom(room)) return;
    const recheck = this.#moderation.changed(room, change, rules);
    if (change.kind === "rules") this.hub.publish(room, encode({ type: "room", room, ...rules }));
    if (change.kind === "kick") return this.#removeUid(room, change.uid, "kicked");
    if (!recheck) return;
    const now = this.#now();
    for (const conn of this.#conns.values()) {
      if (!this.hub.isMember(conn.peer.id, room)) continue;
      if ("uid" in change && conn.identity!.uid !== change.uid) continue;
      if (this.#moderation.mayStay(conn.identity!, room, now)) continue;
      this.#removeFrom(conn, room, change.kind === "ban" ? "banned" : "forbidden");
    }
  }

  #removeUid(room: string, uid: string, why: string): void {
    for (const conn of this.#conns.values()) {
      if (conn.identity?.uid === uid && this.hub.isMember(conn.peer.id, room)) {
        this.#removeFrom(conn, room, why);
      }
    }
  }

  /** Takes one connection out of `room` and tells it why (`kicked`, `banned`, `forbidden`). */
  #removeFrom(conn: Conn, room: string, why: string): void {
    this.#left(conn, room);
    if (conn.current === room) conn.current = this.hub.roomsOf(conn.peer.id).at(-1) ?? "";
    conn.peer.send(encode({ type: "kicked", room, reason: why }));
  }

  /** An admin reads the room's audit log, newest first. */
  #audit(conn: Conn, room: string, before?: number, limit?: number): void {
    if (conn.identity!.role !== "admin") {
      throw new ProtocolError("not_allowed", `Only admins read the audit log of room "${room}"`);
    }
    this.#roomForAnswer(conn);
    const id = conn.peer.id;
    this.auditPage(room, before ?? Number.MAX_SAFE_INTEGER, limit ?? this.#cfg.historyPage).then(
      (page) => this.#conns.get(id) === conn && conn.peer.send(encode({ type: "audit", room, ...page })),
      (e) => this.#refuse(id, e, { room }),
    );
  }

  /**
   * Joins at once and answers `joined` when the history is read: meanwhile the room's lines for
   * this member wait in the hub, and after the answer only messages newer than it follow.
   */
  #join(conn: Conn, room: string, since?: number, epoch?: string, rev?: number): void {
    // No hint of why (a private room or a token's limit): the same sentence either way.
    if (!roomAllowedByClaim(conn.identity!, room)) throw forbidden(room);
    this.#roomForAnswer(conn);
    const access = this.#engine.access;
    if (!access || this.hub.isMember(conn.peer.id, room)) return this.#enter(conn, room, since, epoch, rev);
    // Refused before any room is touched: no presence, no history, no hint. Frames that come
    // meanwhile wait, so the client may send to the room right after its join.
    const id = conn.peer.id;
    conn.queue = [];
    access.call(this.#engine, room, conn.identity!.uid).then(
      (acc) => {
        if (this.#conns.get(id) !== conn) return;
        this.#run(id, () => {
          this.#moderation.admit(conn.identity!, room, acc, this.#now());
          this.#enter(conn, room, since, epoch, rev);
        }, { room });
      },
      (e) => {
        if (this.#conns.get(id) !== conn) return;
        this.#answer(conn.peer, UNREADABLE(room, e), { room });
      },
    ).finally(() => this.#drain(conn));
  }

  /** Handles the frames that waited for a join check, in order, until another check starts. */
  #drain(conn: Conn): void {
    const waiting = conn.queue ?? [];
    conn.queue = undefined;
    const checking = () => (conn.queue as string[] | undefined) !== undefined;
    while (waiting.length > 0 && !checking() && this.#conns.get(conn.peer.id) === conn) {
      const data = waiting.shift()!;
      this.#run(conn.peer.id, () => this.#frame(conn, data));
    }
    // A join among them started another check: the rest waits for that one.
    if (checking()) conn.queue!.unshift(...waiting);
  }

  #enter(conn: Conn, room: string, since?: number, epoch?: string, rev?: number): void {
    const { added, firstTab } = this.hub.join(conn.peer.id, room, true);
    conn.current = room;
    if (!added) return this.hub.settle(conn.peer.id, room, this.hub.knownSeq(conn.peer.id, room));
    const id = conn.peer.id;
    this.#readJoin(room, since, epoch, firstTab ? this.#name(conn) : undefined, conn.key, rev).then(
      ({ messages, lastSeq, truncated, epoch, members, changed, lastRead, mentions }) => {
        if (this.#conns.get(id) !== conn || !this.hub.isMember(id, room)) return;
        const you: Record<string, unknown> = { role: conn.identity!.role };
        const muted = this.#moderation.mutedUntil(room, conn.identity!.uid, this.#now());
        if (muted !== undefined) you.muted = muted;
        const joined: Record<string, unknown> = {
          type: "joined",
          room,
          members,
          messages: messages.map(wireMessage),
          lastSeq,
          truncated,
          epoch,
          rules: this.#moderation.rules(room),
          you,
          lastRead,
          unread: Math.max(0, lastSeq - lastRead),
        };
        if (mentions !== undefined) joined.mentions = mentions;
        if (changed) {
          joined.rev = changed.rev;
          if (changed.messages) joined.changes = changed.messages.map(wireMessage);
          if (changed.truncated) joined.changesTruncated = true;
        }
        conn.peer.send(encode(joined));
        this.hub.settle(id, room, lastSeq);
      },
      (e) => {
        if (this.#conns.get(id) !== conn) return;
        this.#log.error("history read failed", { room, error: (e as Error).message });
        this.#left(conn, room);
        if (conn.current === room) conn.current = this.hub.roomsOf(id).at(-1) ?? "";
        this.#answer(conn.peer, UNREADABLE(room, e), { room });
      },
    );
  }

  /**
   * What `joined` holds: the missed messages after `since`, or the last `historyOnJoin`. A `since`
   * of another epoch means nothing here: that history is gone, and the answer says `truncated`.
   * With `rev` (and a `since` of this epoch), also the held messages (seq <= since) changed since.
   */
  async #readJoin(
    room: string,
    since?: number,
    epoch?: string,
    arriving?: string,
    key = "",
    rev?: number,
  ): Promise<
    {
      messages: ChatMessage[];
      lastSeq: number;
      truncated: boolean;
      epoch: string;
      members: string[];
      changed?: { rev: number; messages?: ChatMessage[]; truncated?: boolean };
      lastRead: number;
      mentions?: number;
    }
  > {
    let messages: ChatMessage[];
    let truncated: boolean;
    let lastSeq: number;
    // Live messages first, then the read: whatever the read misses is on its way (the hub holds it).
    await this.#engine.watch?.(room);
    if (arriving !== undefined) await this.#engine.presence?.(room, arriving, true);
    // The rev is read before the messages: a change after it reaches this member as a line (held
    // like the live messages), with a higher rev; one before it is in the answer.
    const resuming = since !== undefined && rev !== undefined;
    const cap = this.#cfg.resumeCap;
    const revPage = await this.#engine.changes?.(
      room,
      resuming ? since : 0,
      rev ?? 0,
      resuming ? cap + 1 : 0,
    );
    let page = since === undefined
      ? undefined
      : await this.#engine.after(room, since, this.#cfg.resumeCap + 1);
    const lost = page !== undefined && epoch !== undefined && epoch !== page.epoch;
    if (page && !lost) {
      lastSeq = page.lastSeq;
      // A page holds nothing newer than its lastSeq (the engine's promise).
      messages = page.messages;
      truncated = messages.length > cap;
      if (truncated) messages = (await this.#engine.before(room, lastSeq + 1, cap)).messages;
    } else {
      const n = this.#cfg.historyOnJoin;
      page = await this.#engine.before(room, Number.MAX_SAFE_INTEGER, n + 1);
      lastSeq = page.lastSeq;
      messages = n === 0 ? [] : page.messages;
      truncated = lost || messages.length > n;
      if (messages.length > n) messages = messages.slice(-n);
    }
    // Independent reads, together: on Redis each is a round trip a join would otherwise wait for in turn.
    const [reacted, members, [lastRead]] = await Promise.all([
      this.#withReactions(room, messages, key),
      this.#engine.members ? this.#engine.members(room) : this.hub.members(room),
      this.#engine.readPositions?.(key, [room]) ?? [0],
    ]);
    messages = reacted;
    const fitted = this.#fit(messages);
    if (fitted.length < messages.length) messages = fitted, truncated = true;
    const mentions = (await this.#mentionCounts(key, [{ room, after: lastRead }]))?.[room];
    const base = { messages, lastSeq, truncated, epoch: page.epoch, members, lastRead, mentions };
    if (!revPage) return base;
    // A rev of another history (lost between the two reads) would be too high: 0 is always safe.
    const changed: { rev: number; messages?: ChatMessage[]; truncated?: boolean } = {
      rev: revPage.epoch === page.epoch ? revPage.rev : 0,
    };
    if (resuming && !lost && revPage.epoch === page.epoch) {
      // More than resumeCap, or more than fits beside the messages: the client reloads instead.
      const fits =
        this.#fit([...messages, ...revPage.messages]).length === messages.length + revPage.messages.length;
      if (revPage.messages.length > cap || !fits) changed.messages = [], changed.truncated = true;
      else changed.messages = revPage.messages;
    }
    return { ...base, changed };
  }

  #leave(conn: Conn, room: string): void {
    if (!this.#left(conn, room)) throw new ProtocolError("not_member", `You are not in room "${room}"`);
    if (conn.current === room) conn.current = this.hub.roomsOf(conn.peer.id).at(-1) ?? "";
    conn.peer.send(encode({ type: "left", room }));
  }

  #send(conn: Conn, room: string, text: string, cid?: string, replyTo?: number): void {
    this.#member(conn, room, "send to");
    this.#moderation.checkPost(conn.identity!, room, this.#now());
    if (cid !== undefined) {
      // Sent again while the first is still being written: it gets the same ack. A cid stored
      // before is the engine's to recognise (it may have been sent to another process).
      const waiting = this.#pendingByCid.get(`${conn.key}\n${cid}`);
      if (waiting) return void waiting.waiters.push(conn.peer);
    }
    const draft: Draft = { room, from: this.#name(conn), text, ts: this.#now(), key: conn.key };
    if (cid !== undefined) draft.cid = cid;
    if (replyTo !== undefined) draft.replyTo = replyTo;
    const p: Pending = { draft, sender: conn.peer, waiters: [] };
    // Most messages hold no "@": one indexOf is all they cost.
    if (text.includes("@")) this.#mentions(p, conn.key);
    this.#queue(p, this.#steadySender(conn));
  }

  /**
   * Whether `conn` sends at a person's pace (its previous message was not within
   * {@link BULK_SENDER_GAP_MS}); takes note of this message.
   */
  #steadySender(conn: Conn): boolean {
    const now = performance.now();
    const steady = now - conn.sentAt >= BULK_SENDER_GAP_MS;
    conn.sentAt = now;
    return steady;
  }

  /**
   * Queues `p` for the next durable write; `mayWait`: its sender sends at a person's pace, so the
   * write may wait a moment for other people's messages.
   */
  #queue(p: Pending, mayWait: boolean): void {
    this.#pending.push(p);
    if (p.draft.cid !== undefined) this.#pendingByCid.set(`${p.draft.key}\n${p.draft.cid}`, p);
    // At the end of this turn of the event loop, so every frame read in this turn goes in one write
    // (setImmediate runs after the turn's I/O events and costs microseconds; setTimeout(0) costs
    // about 2 ms in Deno). While a write is in flight, what arrives goes in the next one. An idle
    // writer waits commitDelayMs for company: at a few messages a second per room, several rooms'
    // messages then share one transaction (one fsync) instead of one each. Not for a sender in a loop
    // (a bot, an import, a benchmark's publisher): its next message waits for this one, so the wait
    // would slow it and find no company (S1 with 100 members: 3x fewer deliveries).
    if (!this.#commitQueued) {
      this.#commitQueued = true;
      const wait = this.#cfg.commitDelayMs;
      if (wait > 0 && mayWait && !this.#inFlight) this.#commitTimer = setTimeout(this.#commitNow, wait);
      else setImmediate(this.#commitNow);
    }
  }

  readonly #commitNow = () => this.#commit();

  /**
   * Starts one durable write with everything pending, unless one is in flight: then what arrives
   * meanwhile waits and goes in the next write, so batches grow with disk latency.
   */
  #commit(): void {
    this.#commitQueued = false;
    clearTimeout(this.#commitTimer);
    this.#commitTimer = undefined;
    if (this.#inFlight || this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#writing = batch.length;
    // Mentions of people elsewhere are looked up first; the batch keeps its order.
    const lookups = batch.filter((p) => p.ready).map((p) => p.ready);
    const appended = lookups.length === 0
      ? this.#engine.append(batch.map((p) => p.draft))
      : Promise.all(lookups).then(() => this.#engine.append(batch.map((p) => p.draft)));
    this.#inFlight = appended
      .then((stored) => this.#written(batch, stored), (e) => this.#failed(batch, e as Error))
      .catch((e) => this.#log.error("delivery failed", { error: String((e as Error)?.stack ?? e) }))
      .finally(() => {
        this.#writing = 0;
        this.#inFlight = undefined;
        this.#commit();
      });
  }

  /** The batch is durable and the engine has delivered it: ack it, in order. */
  #written(batch: readonly Pending[], stored: readonly Appended[]): void {
    this.#metrics.storeBatches++;
    this.#metrics.messagesStored += stored.filter((a) => !a.duplicate).length;
    if (this.#storeFailures > 0) {
      this.#log.warn("store recovered", { failedWrites: this.#storeFailures });
      this.#storeFailures = 0;
    }
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i];
      if (stored[i].refused) {
        const err = new ProtocolError(
          "message_not_found",
          `Room "${p.draft.room}" has no message ${p.draft.replyTo} to reply to (or it was deleted)`,
        );
        for (const peer of [p.sender, ...p.waiters]) {
          this.#refuse(peer.id, err, { cid: p.draft.cid, room: p.draft.room });
        }
        this.#forget(p);
        continue;
      }
      if (p.draft.between) {
        const m = stored[i].message;
        if (!stored[i].duplicate) this.#deliverDirect(p, m);
        if (p.draft.cid !== undefined) {
          const ack = encode({ type: "ack", cid: m.cid, seq: m.seq, ts: m.ts, conv: m.room, to: p.to });
          p.sender.send(ack);
          for (const peer of p.waiters) peer.send(ack);
        }
      } else if (p.draft.cid !== undefined) {
        const ack = ackLine(stored[i].message);
        p.sender.send(ack);
        for (const peer of p.waiters) peer.send(ack);
      }
      this.#forget(p);
    }
  }

  /** Nothing of the batch was stored or delivered. */
  #failed(batch: readonly Pending[], e: Error): void {
    this.#metrics.storeFailures++;
    const all = batch;
    const unavailable = e instanceof UnavailableError;
    // The first failure is the news; on a full disk every later write fails too, and an error
    // line each would flood the log (which may live on that disk). An engine out of reach says
    // so itself (its health and its own log line), and is well again when it is back.
    if (!unavailable) {
      const level = this.#storeFailures++ === 0 ? "error" : "debug";
      this.#log[level]("store write failed", { messages: all.length, error: e.message });
    }
    const err = unavailable
      ? new ProtocolError(
        "unavailable",
        "The message could not be stored now (storage is out of reach for a moment) and was not delivered; send it again",
      )
      : new ProtocolError(
        "store_failed",
        "The message could not be stored and was not delivered; send it again",
      );
    for (const p of all) {
      this.#forget(p);
      // The server's fault, not the client's: an answer, never a strike.
      for (const peer of [p.sender, ...p.waiters]) {
        this.#answer(
          peer,
          err,
          p.draft.between ? { cid: p.draft.cid } : { cid: p.draft.cid, room: p.draft.room },
        );
      }
    }
  }

  #forget(p: Pending): void {
    if (p.draft.cid !== undefined) this.#pendingByCid.delete(`${p.draft.key}\n${p.draft.cid}`);
  }

  /**
   * A direct message: found by name (online here, online elsewhere, then the people directory), it is
   * stored in the two people's conversation like a room message (same batch, same ack rule).
   */
  #direct(conn: Conn, to: string, text: string, cid?: string): void {
    // Online here, or gone moments ago and still holding the name here: the directory may not have
    // their entry written yet, and they are the person so called.
    const local = this.hub.personByName(to, true);
    if (local !== undefined) {
      return this.#queueDirect(conn, { key: local, name: this.hub.nameOf(local)! }, text, cid);
    }
    const id = conn.peer.id;
    this.#findPerson(to).then(
      (found) => {
        if (this.#conns.get(id) !== conn) return;
        if (!found) {
          return this.#refuse(id, new ProtocolError("user_not_found", `No one is called "${to}"`), { cid });
        }
        try {
          this.#queueDirect(conn, found, text, cid);
        } catch (e) {
          if (!(e instanceof ProtocolError)) throw e;
          this.#refuse(id, e, { cid });
        }
      },
    ).catch((e) => this.#answer(conn.peer, UNREADABLE_PERSON(e), { cid }));
  }

  /** Who is called `name`: someone online on another process, else the directory's. */
  async #findPerson(name: string): Promise<{ key: string; name: string } | undefined> {
    const online = await this.#engine.whoIs?.(name);
    if (online) return online;
    const known = await this.#engine.findPerson?.(name);
    return known && { key: known.key, name: this.hub.nameOf(known.key) ?? known.name };
  }

  #queueDirect(conn: Conn, target: { key: string; name: string }, text: string, cid?: string): void {
    if (target.key === conn.key) {
      throw new ProtocolError("bad_message", "You cannot send a direct message to yourself");
    }
    if (this.#closed) return this.#answer(conn.peer, SHUTTING_DOWN, { cid });
    if (cid !== undefined) {
      const waiting = this.#pendingByCid.get(`${conn.key}\n${cid}`);
      if (waiting) return void waiting.waiters.push(conn.peer);
    }
    const draft: Draft = {
      room: conversationId(conn.key, target.key),
      from: this.#name(conn),
      text,
      ts: this.#now(),
      key: conn.key,
      between: [conn.key, target.key],
    };
    if (cid !== undefined) draft.cid = cid;
    this.#queue({ draft, to: target.name, sender: conn.peer, waiters: [] }, this.#steadySender(conn));
  }

  /** A stored direct message goes to every connection of both people, on every process. */
  #deliverDirect(p: Pending, m: ChatMessage): void {
    const line = encode(wireConvMessage(m, p.to));
    const [a, b] = p.draft.between!;
    const everywhere = this.#engine.sendToPerson;
    if (!everywhere) {
      this.hub.sendToPerson(a, line);
      this.hub.sendToPerson(b, line);
      return;
    }
    // Stored already: a lost publish costs only the live copy (the conversation's history has it).
    for (const key of [a, b]) {
      everywhere.call(this.#engine, key, line).catch((e) =>
        this.#log.warn("direct message not delivered live", { error: (e as Error).message })
      );
    }
  }

  /** A line to every connection of person `key`, on every process. */
  #toPersonEverywhere(key: string, line: string): Promise<unknown> {
    if (!this.#engine.sendToPerson) return Promise.resolve(this.hub.sendToPerson(key, line));
    return this.#engine.sendToPerson(key, line);
  }

  /** Records person `key` in the people directory under `name` (best effort: logged when it fails). */
  #remember(key: string, name: string): void {
    this.#engine.rememberPerson?.({ key, uid: uidOfKey(key), name }).catch((e) =>
      this.#log.warn("person not recorded", { error: (e as Error).message })
    );
  }

  /** Mention counts when the engine keeps mentions; undefined when it does not. */
  #mentionCounts(
    key: string,
    rooms: { room: string; after: number }[],
  ): Promise<Record<string, number>> | undefined {
    const counts = (this.#engine as Engine & { mentionCounts?: MentionCounts }).mentionCounts;
    if (!counts || rooms.length === 0) return undefined;
    return counts.call(this.#engine, key, rooms);
  }

  /** A page of the person's conversations, newest first (see docs/protocol.md, Direct conversations). */
  async conversationsOf(
    key: string,
    before: number,
    limit: number,
  ): Promise<{ items: Record<string, unknown>[]; complete: boolean }> {
    const e = this.#engine;
    if (!e.conversations) return { items: [], complete: true };
    const found = await e.conversations(key, before, limit + 1);
    const page = found.slice(0, limit);
    const convs = page.map((c) => c.conv);
    const [people, reads, lasts] = await Promise.all([
      e.people?.(page.map((c) => c.peer)) ?? [],
      e.readPositions?.(key, convs) ?? [],
      Promise.all(convs.map((conv) => e.before(conv, Number.MAX_SAFE_INTEGER, 1))),
    ]);
    const mentions = await this.#mentionCounts(key, convs.map((room, i) => ({ room, after: reads[i] ?? 0 })));
    const items = page.map((c, i) => {
      const last = lasts[i].messages.at(-1);
      const lastRead = reads[i] ?? 0;
      const item: Record<string, unknown> = {
        conv: c.conv,
        with: this.hub.nameOf(c.peer) ?? people[i]?.name ?? uidOfKey(c.peer),
        uid: people[i]?.uid ?? uidOfKey(c.peer),
        lastSeq: lasts[i].lastSeq,
        lastTs: c.lastTs,
        last: last ? wireConvMessage(last) : null,
        lastRead,
        unread: Math.max(0, lasts[i].lastSeq - lastRead),
      };
      if (mentions) item.mentions = mentions[c.conv] ?? 0;
      return item;
    });
    return { items, complete: found.length <= limit };
  }

  /** Sends `conversations {items, complete}`; `asked`: an answer to the client (errors go back to it). */
  #sendConversations(conn: Conn, before: number, limit: number, asked = false): void {
    if (!this.#engine.conversations) {
      if (asked) throw new ProtocolError("not_allowed", "This server keeps no conversations");
      return;
    }
    if (asked) this.#roomForAnswer(conn);
    const id = conn.peer.id;
    this.conversationsOf(conn.key, before, limit).then(
      (page) => this.#conns.get(id) === conn && conn.peer.send(encode({ type: "conversations", ...page })),
      (e) => {
        this.#log.error("conversations read failed", { error: (e as Error).message });
        this.#answer(conn.peer, UNREADABLE_PERSON(e));
      },
    );
  }

  /** Throws `not_member` unless the person of `conn` is in conversation `conv`. */
  async #inConversation(conn: Conn, conv: string): Promise<void> {
    const peer = await this.#engine.conversationPeer?.(conn.key, conv);
    if (peer === undefined) {
      throw new ProtocolError("not_member", `You are not in conversation "${conv}"`);
    }
  }

  /** `history {conv}`: older than `before`, or newer than `after` (oldest first either way). */
  #convHistory(conn: Conn, conv: string, before?: number, after?: number, limit?: number): void {
    this.#roomForAnswer(conn);
    const n = Math.min(limit ?? this.#cfg.historyPage, this.#cfg.historyPage);
    const id = conn.peer.id;
    (async () => {
      await this.#inConversation(conn, conv);
      let messages: ChatMessage[];
      let complete: boolean;
      let lastSeq: number;
      if (after !== undefined) {
        const page = await this.#engine.after(conv, after, n + 1);
        lastSeq = page.lastSeq;
        messages = page.messages.slice(0, n);
        complete = page.messages.length <= n;
        // Forward: the oldest that fit, so the client asks again after the last one.
        let size = 0;
        for (let i = 0; i < messages.length; i++) {
          size += messages[i].text.length + messages[i].from.length + ANSWER_OVERHEAD_CHARS;
          if (size > this.#answerChars) {
            messages = messages.slice(0, i), complete = false;
            break;
          }
        }
      } else {
        const page = await this.#engine.before(conv, before ?? Number.MAX_SAFE_INTEGER, n + 1);
        lastSeq = page.lastSeq;
        messages = page.messages;
        complete = messages.length <= n;
        if (!complete) messages = messages.slice(1);
        const fitted = this.#fit(messages);
        if (fitted.length < messages.length) messages = fitted, complete = false;
      }
      if (this.#conns.get(id) !== conn) return;
      conn.peer.send(encode({
        type: "history",
        conv,
        messages: messages.map((m) => wireConvMessage(m)),
        complete,
        lastSeq,
      }));
    })().catch((e) => {
      if (e instanceof ProtocolError) return this.#refuse(id, e, { conv });
      this.#log.error("history read failed", { conv, error: (e as Error).message });
      this.#answer(conn.peer, UNREADABLE(conv, e), { conv });
    });
  }

  /** `read {room, seq}`: the person's position, stored, told to all their connections. */
  #readRoom(conn: Conn, room: string, seq: number): void {
    this.#member(conn, room, "mark as read");
    this.#markRead(conn, { room }, seq);
  }

  #readConv(conn: Conn, conv: string, seq: number): void {
    const id = conn.peer.id;
    this.#inConversation(conn, conv).then(
      () => this.#markRead(conn, { conv }, seq),
      (e) =>
        e instanceof ProtocolError
          ? this.#refuse(id, e, { conv })
          : this.#answer(conn.peer, UNREADABLE_PERSON(e)),
    );
  }

  #markRead(conn: Conn, where: { room: string } | { conv: string }, seq: number): void {
    const markRead = this.#engine.markRead;
    if (!markRead) throw new ProtocolError("not_allowed", "This server keeps no read positions");
    const room = "room" in where ? where.room : where.conv;
    markRead.call(this.#engine, conn.key, room, seq).then(
      (mark) => {
        const line = encode({ type: "read", ...where, seq: mark.seq });
        // Moved: every connection of the person hears it; not moved: only the asker, as the answer.
        if (!mark.moved) return void conn.peer.send(line);
        return this.#toPersonEverywhere(conn.key, line);
      },
    ).catch((e) => this.#answer(conn.peer, UNREADABLE_PERSON(e), where));
  }

  #history(conn: Conn, room: string, before?: number, limit?: number): void {
    this.#member(conn, room, "read the history of");
    this.#roomForAnswer(conn);
    const n = Math.min(limit ?? this.#cfg.historyPage, this.#cfg.historyPage);
    // Nothing newer than what this member has: that is on its way live.
    const id = conn.peer.id;
    const end = Math.min(before ?? Infinity, this.hub.knownSeq(id, room) + 1);
    // n >= 1 (the parser refuses limit 0), so an answer with fewer than n + 1 rows really is the start.
    this.#engine.before(room, end, n + 1).then(
      (page) => {
        if (this.#conns.get(id) !== conn || !this.hub.isMember(id, room)) return;
        let messages = page.messages;
        let complete = messages.length <= n;
        if (!complete) messages = messages.slice(1);
        return this.#withReactions(room, messages, conn.key).then((read) => {
          if (this.#conns.get(id) !== conn || !this.hub.isMember(id, room)) return;
          const messages = this.#fit(read);
          if (messages.length < read.length) complete = false;
          conn.peer.send(encode({ type: "history", room, messages: messages.map(wireMessage), complete }));
        });
      },
    ).catch((e) => {
      this.#log.error("history read failed", { room, error: (e as Error).message });
      this.#answer(conn.peer, UNREADABLE(room, e), { room });
    });
  }

  /**
   * Refuses to produce a `joined` or `history` answer for a client that has not taken the earlier
   * ones yet: what one connection makes the server hold is counted before the work is done, so a
   * client that asks and never reads gets small errors, not pages.
   */
  #roomForAnswer(conn: Conn): void {
    const backlog = conn.peer.backlog?.() ?? 0;
    if (backlog + this.#answerChars > this.#cfg.maxBufferedBytes) {
      throw new ProtocolError(
        "busy",
        "Earlier answers are still on their way to you; read them before asking for more",
      );
    }
  }

  /** The newest of `messages` (oldest first) whose texts fit in one answer. */
  #fit(messages: ChatMessage[]): ChatMessage[] {
    let size = 0;
    for (let i = messages.length - 1; i >= 0; i--) {
      const m = messages[i];
      size += m.text.length + m.from.length + ANSWER_OVERHEAD_CHARS;
      if (m.replyTo || m.mentions || m.reactions) size += extrasChars(m);
      if (size > this.#answerChars) return messages.slice(i + 1);
    }
    return messages;
  }

  /**
   * `messages` (one room's, oldest first) with their reactions and person `key`'s own: one read for
   * the page, none when the engine keeps no reactions.
   */
  async #withReactions(room: string, messages: ChatMessage[], key: string): Promise<ChatMessage[]> {
    if (!this.#engine.reactions || messages.length === 0) return messages;
    const got = await this.#engine.reactions(room, messages[0].seq, messages.at(-1)!.seq, key);
    if (got.size === 0) return messages;
    return messages.map((m) => {
      const r = got.get(m.seq);
      if (!r || m.deleted) return m;
      const out: ChatMessage = { ...m, reactions: r.counts };
      if (r.mine.length > 0) out.mine = r.mine;
      return out;
    });
  }

  /**
   * Finds who the `@name`s of `p`'s text mention (the first `maxMentions` distinct valid names): people
   * online (or holding the name) here at once, others through the engine, online elsewhere or known to
   * the people directory (then `p.ready` holds the write back until known).
   * A name nobody holds, and the sender, are not recorded.
   */
  #mentions(p: Pending, self: string): void {
    const max = this.#cfg.maxMentions;
    const names: string[][] = [];
    const seen = new Set<string>();
    for (const match of p.draft.text.matchAll(MENTION_RE)) {
      if (names.length >= max) break;
      // "@bob." at the end of a sentence: "bob." first (a valid name), then "bob".
      const raw = canonicalName(match[1]);
      const tries = [raw, raw.replace(/[.\-_]+$/, "")].filter((n, i, a) =>
        n !== "" && a.indexOf(n) === i && nameProblem(n) === undefined
      );
      if (tries.length === 0 || seen.has(tries[0])) continue;
      seen.add(tries[0]);
      names.push(tries);
    }
    if (names.length === 0) return;
    const found: (Mention | undefined)[] = new Array(names.length);
    const remote: number[] = [];
    names.forEach((tries, i) => {
      for (const n of tries) {
        const key = this.hub.personByName(n, true);
        if (key !== undefined) return void (found[i] = { key, name: this.hub.nameOf(key)! });
      }
      remote.push(i);
    });
    const done = () => {
      const keys = new Set<string>([self]);
      const mentions: Mention[] = [];
      for (const m of found) if (m && !keys.has(m.key)) keys.add(m.key), mentions.push(m);
      if (mentions.length > 0) p.draft.mentions = mentions;
    };
    if (remote.length === 0 || (!this.#engine.whoIs && !this.#engine.findPerson)) return done();
    // Online on another process, else known to the people directory (offline): a mention counts for
    // the person on every device, whenever they come back.
    p.ready = Promise.all(remote.map(async (i) => {
      for (const n of names[i]) {
        const got = await this.#findPerson(n);
        if (got) return void (found[i] = got);
      }
    })).catch((e) => {
      // A mention is worth less than the message: it goes without the people not found.
      this.#log.debug("mentions not looked up", { error: (e as Error).message });
    }).then(done);
  }

  /** Puts, takes back or toggles the person's reaction; the room hears the new counts. */
  async #react(conn: Conn, room: string, seq: number, emoji: string, on?: boolean): Promise<void> {
    this.#member(conn, room, "react in");
    const muted = this.#moderation.mutedUntil(room, conn.identity!.uid, this.#now());
    if (muted !== undefined) throw new ProtocolError("muted", `You are muted in room "${room}"`);
    const react = this.#engine.react;
    if (!react) throw new ProtocolError("not_allowed", "This server keeps no reactions");
    const caps = { maxEmoji: this.#cfg.maxReactionEmoji, maxPerPerson: this.#cfg.maxReactionsPerPerson };
    const r = await react.call(this.#engine, room, seq, conn.key, emoji, on, caps);
    if (!r.ok) {
      if (r.problem === "not_found") {
        throw new ProtocolError("message_not_found", `Room "${room}" has no message ${seq} to react to`);
      }
      throw new ProtocolError(
        "too_many_reactions",
        r.problem === "too_many_emoji"
          ? `Message ${seq} has ${caps.maxEmoji} different reactions already: add to one of them`
          : `You have ${caps.maxPerPerson} reactions on message ${seq} already: take one back first`,
      );
    }
    this.#roomLine(
      room,
      encode({ type: "reactions", room, seq, counts: r.counts, by: this.#name(conn), emoji, on: r.on }),
    );
  }

  #member(conn: Conn, room: string, verb: string): void {
    if (!this.hub.isMember(conn.peer.id, room)) {
      throw new ProtocolError("not_member", `Cannot ${verb} room "${room}": join it first`);
    }
  }

  #name(conn: Conn): string {
    return this.hub.nameOf(conn.key)!;
  }

  /**
   * The room's history was lost and its seqs start over: every member here is told with a fresh
   * `joined` (nothing in it, `truncated`, the new epoch), so no client takes new seqs for old ones.
   */
  #restarted(room: string, epoch: string): void {
    const line = encode({
      type: "joined",
      room,
      members: this.hub.members(room),
      messages: [],
      lastSeq: 0,
      truncated: true,
      epoch,
      // The new history's rev is not read here; 0 is below it, so a later resume misses nothing.
      rev: 0,
    });
    this.hub.restart(room, line);
  }

  /**
   * With names shared across processes: the name given at connect is checked everywhere; if another
   * process's person holds it, this person gets the first free `name-2`, `name-3`, … (a `nick` line).
   */
  #claimEverywhere(conn: Conn, name: string): void {
    const claim = async () => {
      // A token owns its name on every process: a tab elsewhere has it already.
      const owned = await this.#engine.nameOf?.(conn.key);
      if (owned !== undefined && owned !== name && (await this.#engine.claimName!(conn.key, owned))) {
        return owned;
      }
      for (let i = 1; i < 100; i++) {
        const candidate = i === 1 ? name : withSuffix(name, `-${i}`);
        if (i > 1 && !this.hub.nameFreeFor(conn.key, candidate, this.#now())) continue;
        if (await this.#engine.claimName!(conn.key, candidate)) return candidate;
      }
      return undefined;
    };
    conn.naming = claim().then((got) => {
      if (got === undefined || got === this.hub.nameOf(conn.key) || !this.#conns.has(conn.peer.id)) return;
      this.#rename(conn, got);
    }).catch((e) => this.#log.warn("name not claimed everywhere", { error: (e as Error).message }));
  }

  /** Renames the person of `conn` here, and in the engine's presence when it spans processes. */
  #rename(conn: Conn, name: string): void {
    this.#renamePerson(conn.key, name);
  }

  /** Renames person `key` here, and in the engine's presence when it spans processes. */
  #renamePerson(key: string, name: string): void {
    const old = this.hub.nameOf(key)!;
    this.hub.rename(key, name, this.#now());
    if (old === name) return;
    this.#remember(key, name);
    this.#engine.publishRename?.(old, name, this.hub.roomsOfPerson(key));
    this.#engine.renamed?.(old, name).catch((e) =>
      this.#log.debug("rename not recorded in presence", { error: (e as Error).message })
    );
  }

  /** `nick` when names are shared across processes: taken everywhere first, then here. */
  #renameEverywhere(conn: Conn, name: string): void {
    const id = conn.peer.id;
    if (!this.hub.nameFreeFor(conn.key, name, this.#now())) {
      throw new ProtocolError("name_taken", `The name "${name}" is taken`);
    }
    const before = conn.naming ?? Promise.resolve();
    // Gone by its turn: nothing to claim (its names were released when it closed).
    conn.naming = before.then(() => this.#conns.has(id) && this.#engine.claimName!(conn.key, name)).then(
      (ok) => {
        if (!this.#conns.has(id)) return;
        if (!ok) return this.#refuse(id, new ProtocolError("name_taken", `The name "${name}" is taken`));
        this.#run(id, () => this.#rename(conn, name));
      },
      (e) => this.#answer(conn.peer, UNREADABLE_PERSON(e)),
    );
  }

  /** Connection `conn` leaves `room`: the engine hears when it was the person's last tab or the room's last member. */
  #left(conn: Conn, room: string): boolean {
    const { removed, deleted, lastTab } = this.hub.leave(conn.peer.id, room);
    if (lastTab) this.#present(room, this.#name(conn), false);
    if (deleted) this.#engine.unwatch?.(room), this.#moderation.forget(room);
    return removed;
  }

  /** Tells the engine (when presence spans processes) that `name` arrived in or left `room` here. */
  #present(room: string, name: string, present: boolean): void {
    this.#engine.presence?.(room, name, present).catch((e) =>
      this.#log.debug("presence not recorded", { room, error: (e as Error).message })
    );
  }

  /** A line the engine brings from any process: presence goes through the hub's grouping. */
  #lineFromEngine(room: string, line: string): void {
    if (!line.startsWith('{"type":"presence"')) return this.hub.publish(room, line);
    try {
      this.hub.announce(room, line, (JSON.parse(line) as { name: string }).name);
    } catch { /* not ours */ }
  }

  /** A line for `room`'s members in every process (through the engine when it spans several). */
  #roomLine(room: string, line: string): void {
    if (this.#engine.publishLine) this.#engine.publishLine(room, line);
    else this.hub.publish(room, line);
  }

  #presenceSoon(): void {
    if (this.#closed || this.#presenceTimer !== undefined) return;
    this.#presenceTimer = setTimeout(() => {
      this.#presenceTimer = undefined;
      this.hub.flushPresence();
    }, this.#cfg.presenceDelayMs);
  }

  #maintain(): void {
    const now = this.#now();
    this.hub.sweep(now);
    this.#moderation.sweep(now);
    this.#engine.prune(now).then(
      (n) => n && this.#log.info("retention", { deleted: n }),
      (e) => this.#log.error("retention failed", { error: (e as Error).message }),
    );
  }
}

/** About the characters a message's reply quote, mentions and reactions add to an answer. */
function extrasChars(m: ChatMessage): number {
  let n = 0;
  if (m.replyTo) n += m.replyTo.text.length + m.replyTo.from.length + 40;
  for (const name of m.mentions ?? []) n += name.length + 3;
  for (const e in m.reactions ?? {}) n += 2 * e.length + 12;
  return n;
}

function ackLine(m: ChatMessage): string {
  return encode({ type: "ack", cid: m.cid, seq: m.seq, ts: m.ts, room: m.room });
}

function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Tokens are secrets; the store and the hub only ever see this hash of one. */
function keyOf(token: string): string {
  return createHash("sha256").update(token).digest("base64url").slice(0, 22);
}

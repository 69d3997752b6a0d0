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
import { type Identity, roomAllowedByClaim } from "./identity.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { withSuffix } from "./names.ts";
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
  wireMessage,
} from "./protocol.ts";
import { type Appended, type Draft, type Engine, UnavailableError } from "./engine.ts";

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
  /** The room a raw (non-JSON) frame goes to: the last one joined. */
  current: string;
  tokens: number;
  refilledAt: number;
  strikes: number;
  strikesSince: number;
}

interface Pending {
  draft: Draft;
  sender: Peer;
  /** Connections that re-sent the same cid while this was being written: they get the ack too. */
  waiters: Peer[];
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
/** Direct-message cids remembered in memory (they are not stored). */
const MAX_DIRECT_CIDS = 10_000;
/** JSON around one message in an answer (`{"type":"message","room":…,"seq":…}`), for the size budget. */
const ANSWER_OVERHEAD_CHARS = 160;

/** One chat service: a hub, an engine, and the rules between clients and them. */
export class Chat {
  readonly hub: Hub;
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
  readonly #directCids = new Map<string, { ack: string; ts: number }>();
  #commitQueued = false;
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
      person: (key, line) => this.hub.sendToPerson(key, line),
      // Our own renames were told here already (the hub); names are unique, so a local holder is us.
      renamed: (old, name, rooms) => {
        if (this.hub.personByName(name) === undefined) {
          this.hub.tellRooms(rooms, encode({ type: "nick", old, name }));
        }
      },
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
    if (this.#engine.claimName) this.#claimEverywhere(conn, name);
    if (room) this.#run(peer.id, () => this.#join(conn, room));
  }

  /**
   * The name a signed person gets for `wanted` (the token's): names from signed tokens are not
   * first-come, so a guest holding it (or a lookalike) here is renamed `name-2`, … (a `nick` line tells
   * its rooms); another signed person holding it keeps it, and this one gets the suffix.
   */
  #signedName(key: string, wanted: string): string {
    const now = this.#now();
    const holder = this.hub.holderOf(key, wanted, now);
    if (holder !== undefined && !holder.startsWith("u:")) {
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
    this.#run(id, () => {
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
    });
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
    for (const room of this.hub.disconnect(id, this.#now())) this.#engine.unwatch?.(room);
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

  #run(id: number, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof ProtocolError)) {
        this.#log.error("handler failed", { conn: id, error: String((e as Error)?.stack ?? e) });
        return;
      }
      this.#refuse(id, e);
    }
  }

  #refuse(id: number, e: ProtocolError, extra?: { cid?: string; room?: string }): void {
    const conn = this.#conns.get(id);
    if (!conn) return;
    this.#answer(conn.peer, e, extra);
    if (e.closeCode) return conn.peer.close(e.closeCode, e.code);
    const t = performance.now();
    if (t - conn.strikesSince > STRIKE_WINDOW_MS) conn.strikes = 0, conn.strikesSince = t;
    if (++conn.strikes > this.#cfg.maxStrikes) conn.peer.close(CloseCode.POLICY, "too many bad frames");
  }

  /** Sends `e` as an error frame, with no strike: for refusals that are not the client's fault. */
  #answer(peer: Peer, e: ProtocolError, extra?: { cid?: string; room?: string }): void {
    if (!this.#conns.has(peer.id)) return;
    this.#metrics.error(e.code);
    peer.send(encodeError(e, extra));
  }

  #takeToken(conn: Conn): void {
    const t = performance.now();
    const cfg = this.#cfg;
    conn.tokens = Math.min(cfg.burst, conn.tokens + (t - conn.refilledAt) * cfg.messagesPerSecond / 1000);
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
        return this.#join(conn, msg.room, msg.since, msg.epoch);
      case "leave":
        return this.#leave(conn, msg.room);
      case "send":
        if ("to" in msg) return this.#direct(conn, msg.to, msg.text, msg.cid);
        return this.#send(conn, msg.room, msg.text, msg.cid);
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
        return this.#history(conn, msg.room, msg.before, msg.limit);
      case "ping":
        conn.peer.send(encode({ type: "pong", ts: this.#now() }));
    }
  }

  /**
   * Joins at once and answers `joined` when the history is read: meanwhile the room's lines for
   * this member wait in the hub, and after the answer only messages newer than it follow.
   */
  #join(conn: Conn, room: string, since?: number, epoch?: string): void {
    // No hint of why (a private room or a token's limit): the same sentence either way.
    if (!roomAllowedByClaim(conn.identity!, room)) {
      throw new ProtocolError("forbidden", `You cannot join room "${room}"`);
    }
    this.#roomForAnswer(conn);
    const { added, firstTab } = this.hub.join(conn.peer.id, room, true);
    conn.current = room;
    if (!added) return this.hub.settle(conn.peer.id, room, this.hub.knownSeq(conn.peer.id, room));
    const id = conn.peer.id;
    this.#readJoin(room, since, epoch, firstTab ? this.#name(conn) : undefined).then(
      ({ messages, lastSeq, truncated, epoch, members }) => {
        if (this.#conns.get(id) !== conn || !this.hub.isMember(id, room)) return;
        conn.peer.send(
          encode({
            type: "joined",
            room,
            members,
            messages: messages.map(wireMessage),
            lastSeq,
            truncated,
            epoch,
          }),
        );
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
   */
  async #readJoin(
    room: string,
    since?: number,
    epoch?: string,
    arriving?: string,
  ): Promise<
    { messages: ChatMessage[]; lastSeq: number; truncated: boolean; epoch: string; members: string[] }
  > {
    let messages: ChatMessage[];
    let truncated: boolean;
    let lastSeq: number;
    // Live messages first, then the read: whatever the read misses is on its way (the hub holds it).
    await this.#engine.watch?.(room);
    if (arriving !== undefined) await this.#engine.presence?.(room, arriving, true);
    let page = since === undefined
      ? undefined
      : await this.#engine.after(room, since, this.#cfg.resumeCap + 1);
    const lost = page !== undefined && epoch !== undefined && epoch !== page.epoch;
    if (page && !lost) {
      const cap = this.#cfg.resumeCap;
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
    const fitted = this.#fit(messages);
    if (fitted.length < messages.length) messages = fitted, truncated = true;
    const members = this.#engine.members ? await this.#engine.members(room) : this.hub.members(room);
    return { messages, lastSeq, truncated, epoch: page.epoch, members };
  }

  #leave(conn: Conn, room: string): void {
    if (!this.#left(conn, room)) throw new ProtocolError("not_member", `You are not in room "${room}"`);
    if (conn.current === room) conn.current = this.hub.roomsOf(conn.peer.id).at(-1) ?? "";
    conn.peer.send(encode({ type: "left", room }));
  }

  #send(conn: Conn, room: string, text: string, cid?: string): void {
    this.#member(conn, room, "send to");
    if (cid !== undefined) {
      // Sent again while the first is still being written: it gets the same ack. A cid stored
      // before is the engine's to recognise (it may have been sent to another process).
      const waiting = this.#pendingByCid.get(`${conn.key}\n${cid}`);
      if (waiting) return void waiting.waiters.push(conn.peer);
    }
    const draft: Draft = { room, from: this.#name(conn), text, ts: this.#now(), key: conn.key };
    if (cid !== undefined) draft.cid = cid;
    const p: Pending = { draft, sender: conn.peer, waiters: [] };
    this.#pending.push(p);
    if (cid !== undefined) this.#pendingByCid.set(`${conn.key}\n${cid}`, p);
    // At the end of this turn of the event loop, so every frame read in this turn goes in one write
    // (setImmediate runs after the turn's I/O events and costs microseconds; setTimeout(0) costs
    // about 2 ms in Deno). While a write is in flight, what arrives goes in the next one.
    if (!this.#commitQueued) {
      this.#commitQueued = true;
      setImmediate(this.#commitNow);
    }
  }

  readonly #commitNow = () => this.#commit();

  /**
   * Starts one durable write with everything pending, unless one is in flight: then what arrives
   * meanwhile waits and goes in the next write, so batches grow with disk latency.
   */
  #commit(): void {
    this.#commitQueued = false;
    if (this.#inFlight || this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#writing = batch.length;
    this.#inFlight = this.#engine.append(batch.map((p) => p.draft))
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
      if (p.draft.cid !== undefined) {
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
        this.#answer(peer, err, { cid: p.draft.cid, room: p.draft.room });
      }
    }
  }

  #forget(p: Pending): void {
    if (p.draft.cid !== undefined) this.#pendingByCid.delete(`${p.draft.key}\n${p.draft.cid}`);
  }

  #direct(conn: Conn, to: string, text: string, cid?: string): void {
    const now = this.#now();
    const dedupKey = cid === undefined ? undefined : `${conn.key}\n${cid}`;
    if (dedupKey) {
      const seen = this.#directCids.get(dedupKey);
      if (seen && now - seen.ts < this.#cfg.dedupWindowSeconds * 1000) return void conn.peer.send(seen.ack);
    }
    const local = this.hub.personByName(to);
    const whoIs = this.#engine.whoIs;
    if (local || !whoIs) {
      if (!local) throw new ProtocolError("user_not_found", `No one called "${to}" is online`);
      return this.#deliverDirect(conn, { key: local, name: this.hub.nameOf(local)! }, text, now, cid);
    }
    // Not here: maybe on another process.
    const id = conn.peer.id;
    whoIs.call(this.#engine, to).then(
      (found) => {
        if (this.#conns.get(id) !== conn) return;
        if (!found) {
          return this.#refuse(id, new ProtocolError("user_not_found", `No one called "${to}" is online`), {
            cid,
          });
        }
        this.#deliverDirect(conn, found, text, now, cid);
      },
      (e) => this.#answer(conn.peer, UNREADABLE_PERSON(e), { cid }),
    );
  }

  #deliverDirect(
    conn: Conn,
    target: { key: string; name: string },
    text: string,
    now: number,
    cid?: string,
  ): void {
    const dedupKey = cid === undefined ? undefined : `${conn.key}\n${cid}`;
    const msg: Record<string, unknown> = {
      type: "message",
      to: target.name,
      from: this.#name(conn),
      text,
      ts: now,
    };
    if (cid !== undefined) msg.cid = cid;
    const line = encode(msg);
    const ack = dedupKey === undefined ? "" : encode({ type: "ack", cid, ts: now, to: msg.to });
    const acked = () => {
      if (!dedupKey) return;
      conn.peer.send(ack);
      if (this.#directCids.size >= MAX_DIRECT_CIDS) {
        this.#directCids.delete(this.#directCids.keys().next().value!);
      }
      this.#directCids.set(dedupKey, { ack, ts: now });
    };
    const everywhere = this.#engine.sendToPerson;
    if (!everywhere) {
      this.hub.sendToPerson(target.key, line);
      if (target.key !== conn.key) this.hub.sendToPerson(conn.key, line);
      return acked();
    }
    // On every process: acked once handed over, or answered unavailable (never dropped unsaid). A cid
    // already delivered through another process gets that ack again, and nothing is sent twice.
    const engine = this.#engine;
    (async () => {
      const earlier = cid === undefined ? undefined : await engine.directAck?.(conn.key, cid);
      if (earlier !== undefined) return void conn.peer.send(earlier);
      const copies = [everywhere.call(engine, target.key, line)];
      if (target.key !== conn.key) copies.push(everywhere.call(engine, conn.key, line));
      await Promise.all(copies);
      acked();
      if (cid !== undefined) await engine.rememberDirect?.(conn.key, cid, ack);
    })().catch((e) => this.#answer(conn.peer, UNREADABLE_PERSON(e), { cid }));
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
        const fitted = this.#fit(messages);
        if (fitted.length < messages.length) messages = fitted, complete = false;
        conn.peer.send(encode({ type: "history", room, messages: messages.map(wireMessage), complete }));
      },
      (e) => {
        this.#log.error("history read failed", { room, error: (e as Error).message });
        this.#answer(conn.peer, UNREADABLE(room, e), { room });
      },
    );
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
      size += messages[i].text.length + messages[i].from.length + ANSWER_OVERHEAD_CHARS;
      if (size > this.#answerChars) return messages.slice(i + 1);
    }
    return messages;
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
    claim().then((got) => {
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
    this.#engine.claimName!(conn.key, name).then(
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
    if (deleted) this.#engine.unwatch?.(room);
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
    const window = this.#cfg.dedupWindowSeconds * 1000;
    for (const [k, v] of this.#directCids) if (now - v.ts >= window) this.#directCids.delete(k);
    this.#engine.prune(now).then(
      (n) => n && this.#log.info("retention", { deleted: n }),
      (e) => this.#log.error("retention failed", { error: (e as Error).message }),
    );
  }
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

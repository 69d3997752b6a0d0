/**
 * Admission: who a new connection is (a guest by its token, a signed person by a verified token, or
 * one that owes an `auth` frame), its name, its `welcome`, its first room; later token refreshes, and
 * the sweep that closes expired sign-ins and connections that never authenticated.
 * @module
 */
import { createHash } from "node:crypto";
import type { Verifier } from "../auth.ts";
import { randomId } from "../domain.ts";
import { type Identity, roomAllowedByClaim } from "../identity.ts";
import { CloseCode, PROTOCOL_VERSION, ProtocolError } from "../protocol.ts";
import { encode, type ServerMessage } from "../server_messages.ts";
import { RELEASE } from "../version.ts";
import type { Conn } from "./connections.ts";
import { type ChatContext, nameOf } from "./context.ts";
import { CONVERSATIONS_PAGE, type Direct } from "./direct.ts";
import type { Naming } from "./naming.ts";
import type { Rooms } from "./rooms.ts";
import { searchRefusal } from "./search.ts";

/** What the caller of `Chat.open` learned from the upgrade request (already validated). */
export interface OpenParams {
  name?: string;
  /** A guest's display name (`?display=`, already normalised). */
  display?: string;
  /** Canonical room name, or "" for none. */
  room: string;
  /** A guest's opaque token (from an earlier `welcome`). */
  token?: string;
  /** A signed identity the HTTP layer verified (`?token=` holding a JWT). */
  identity?: Identity;
  /** The connection owes an `auth {token}` frame: no identity, no welcome, no room until it comes. */
  authenticate?: boolean;
  /** The IP address it connects from: limits per address, and bans by address for guests. */
  address?: string;
}

const TOKEN_RE = /^[A-Za-z0-9_-]{22,64}$/;

/** The `conversations` answer of a person who has none. */
const NO_CONVERSATIONS = encode({ type: "conversations", items: [], complete: true });

/** The shared store did not say in time which name a connecting guest holds: try again, no name made up. */
const NAME_UNSETTLED = new ProtocolError(
  "unavailable",
  "Your name could not be looked up in time; connect again in a moment",
  CloseCode.TRY_AGAIN,
);

/** The admission feature. */
export class Admission {
  readonly #ctx: ChatContext;
  readonly #verifier: Verifier | undefined;
  readonly #naming: Naming;
  readonly #rooms: Rooms;
  readonly #direct: Direct;

  constructor(
    ctx: ChatContext,
    parts: { verifier: Verifier | undefined; naming: Naming; rooms: Rooms; direct: Direct },
  ) {
    this.#ctx = ctx;
    this.#verifier = parts.verifier;
    this.#naming = parts.naming;
    this.#rooms = parts.rooms;
    this.#direct = parts.direct;
  }

  /** A new connection: a guest or a signed person is admitted now; one owing `auth` waits for it. */
  open(conn: Conn, params: OpenParams): void {
    if (params.address !== undefined) conn.address = params.address;
    if (params.authenticate) {
      conn.awaiting = { room: params.room, until: this.#ctx.now() + this.#ctx.cfg.authTimeoutMs };
      return;
    }
    if (params.identity) return this.#admit(conn, params.identity, params.room);
    const kept = params.token !== undefined && TOKEN_RE.test(params.token);
    const token = kept ? params.token! : randomId();
    const key = keyOf(token);
    const guest: Identity = { key, uid: key, role: "member", guest: true };
    if (params.display !== undefined) guest.display = params.display;
    this.#admit(conn, guest, params.room, { token, name: params.name, fresh: !kept });
  }

  /**
   * Gives `conn` its identity and name, sends `welcome` and joins `room`. A guest's name is
   * first-come (`?name=`, else the one its token holds); a signed person's comes from the token.
   * A guest's name is settled first (frames wait): not a signed person's, and with names shared
   * across processes claimed everywhere, so it is never announced under a placeholder that is
   * renamed a moment later.
   */
  #admit(
    conn: Conn,
    identity: Identity,
    room: string,
    guest?: { token: string; name?: string; fresh: boolean },
  ): void {
    const { hub, cfg, conns, log } = this.#ctx;
    conn.key = identity.key;
    // A token owns its name: a second tab (or a reconnect within the hold) gets the same one.
    const held = hub.nameOf(identity.key);
    const wanted = held ??
      (guest
        ? guest.name ?? `guest-${guest.token.slice(0, 4).toLowerCase().replace(/[^a-z0-9]/g, "x")}`
        : identity.name!);
    if (!guest || held !== undefined) {
      return this.#welcome(
        conn,
        identity,
        room,
        wanted,
        guest && { ...guest, settled: false, asked: wanted },
      );
    }
    conn.queue = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("name lookup timed out")), cfg.nameLookupMs);
    });
    Promise.race([this.#naming.settle(conn, wanted, true), late]).then(
      (name) => {
        if (!conns.alive(conn)) return;
        const waiting = conn.queue ?? [];
        conn.queue = undefined;
        conns.run(conn.peer.id, () =>
          this.#welcome(conn, identity, room, name?.name ?? wanted, {
            ...guest,
            settled: name !== undefined,
            asked: name?.held ? name.name : wanted,
          }));
        // A join check the welcome started keeps them waiting behind it.
        if (conn.queue) (conn.queue as string[]).unshift(...waiting);
        else conn.queue = waiting, this.#rooms.drain(conn);
      },
      (e) => {
        if (!conns.alive(conn)) return;
        log.warn("name not settled at connect", { error: (e as Error).message });
        conns.refuse(conn.peer.id, NAME_UNSETTLED);
      },
    ).finally(() => clearTimeout(timer));
  }

  /** Sends `welcome` under `wanted` (or the first free name like it here) and joins `room`. */
  #welcome(
    conn: Conn,
    identity: Identity,
    room: string,
    wanted: string,
    guest?: { token: string; name?: string; fresh: boolean; settled: boolean; asked: string },
  ): void {
    const { hub, cfg, conns } = this.#ctx;
    const { peer } = conn;
    const key = identity.key;
    const now = this.#ctx.now();
    conn.identity = identity;
    const name = guest || hub.nameOf(key) !== undefined
      ? hub.freeName(key, wanted, now)
      : this.#naming.signedName(key, wanted);
    hub.connect(peer, key, name, now, identity.display);
    const display = hub.displayOf(key);
    const welcome: Extract<ServerMessage, { type: "welcome" }> = {
      type: "welcome",
      id: peer.id,
      name,
      ...(display !== undefined && { display }),
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
        searchQueryChars: searchRefusal(this.#ctx) ? 0 : cfg.searchMaxQueryChars,
        searchPage: cfg.searchPage,
      },
      version: PROTOCOL_VERSION,
      release: RELEASE,
    };
    // A signed person's token belongs to the host application: it is never echoed.
    if (guest) welcome.token = guest.token;
    if (identity.exp !== undefined) welcome.exp = identity.exp;
    const asked = guest?.asked ?? wanted;
    if (name !== asked) {
      welcome.notice = `The name "${asked}" is taken (or looks like one that is); you are "${name}"`;
    }
    peer.send(encode(welcome));
    this.#naming.remember(key, name);
    // A guest whose token was made just now is a person no one has written to: no read for that.
    if (guest?.fresh) peer.send(NO_CONVERSATIONS);
    else this.#direct.list(conn, Number.MAX_SAFE_INTEGER, CONVERSATIONS_PAGE);
    if (!guest?.settled || name !== wanted) this.#naming.claimEverywhere(conn, name);
    if (room) conns.run(peer.id, () => this.#rooms.join(conn, room), { room });
  }

  /**
   * An `auth` frame: the identity a connection owed (a bad token closes it with 4002), or a refresh of
   * a signed one (same `sub`; a bad token is an error and the connection keeps its old token).
   */
  auth(conn: Conn, token: string): void {
    const { conns, log } = this.#ctx;
    const verifier = this.#verifier;
    const first = conn.identity === undefined;
    const fail = (e: ProtocolError) =>
      conns.refuse(conn.peer.id, first ? new ProtocolError(e.code, e.message, CloseCode.AUTH_FAILED) : e);
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
        if (!conns.alive(conn) || this.#ctx.closing()) return;
        if (conn.awaiting) {
          const room = conn.awaiting.room;
          conn.awaiting = undefined;
          return this.#admit(conn, identity, room);
        }
        conns.run(id, () => this.#refresh(conn, identity));
      },
      (e) => {
        conn.verifying = false;
        if (!conns.alive(conn)) return;
        if (e instanceof ProtocolError) return fail(e);
        log.error("token verification failed", { conn: id, error: String((e as Error)?.stack ?? e) });
        fail(new ProtocolError("bad_token", "The token could not be checked"));
      },
    );
  }

  /** A new token for a signed connection: later expiry, and the token's name, role and rooms. */
  #refresh(conn: Conn, identity: Identity): void {
    const { hub, moderation } = this.#ctx;
    const old = conn.identity!;
    if (identity.key !== old.key) {
      throw new ProtocolError(
        "bad_token",
        "A refreshed token must be for the same user (sub) as the connection",
      );
    }
    conn.identity = identity;
    // The token's handle or display name changed: a rename, with the same rules as at connect.
    if (identity.name !== old.name || identity.display !== old.display) {
      const name = identity.name === old.name
        ? nameOf(this.#ctx, conn)
        : this.#naming.signedName(conn.key, identity.name!);
      this.#naming.rename(conn.key, name, identity.display ?? null);
    }
    // Rooms the new token no longer allows are left: by its rooms claim, or by the room's rules as at
    // join (a private room a demoted moderator may no longer see).
    const now = this.#ctx.now();
    for (const room of hub.roomsOf(conn.peer.id)) {
      if (!roomAllowedByClaim(identity, room) || !moderation.mayStay(identity, room, now)) {
        this.#rooms.drop(conn, room);
      }
    }
    conn.peer.send(encode({
      type: "authed",
      exp: identity.exp,
      name: nameOf(this.#ctx, conn),
      ...(hub.displayOf(conn.key) !== undefined && { display: hub.displayOf(conn.key) }),
      role: identity.role,
      uid: identity.uid,
    }));
  }

  /** Closes connections whose token expired (4003) and those that owed an `auth` frame too long (4002). */
  sweep(): void {
    const { conns, cfg } = this.#ctx;
    const now = this.#ctx.now();
    for (const conn of conns.values()) {
      if (conn.awaiting && now >= conn.awaiting.until && !conn.verifying) {
        conns.refuse(
          conn.peer.id,
          new ProtocolError(
            "auth_required",
            `No auth frame within ${cfg.authTimeoutMs} ms of connecting`,
            CloseCode.AUTH_FAILED,
          ),
        );
      } else if (conn.identity?.exp !== undefined && conn.identity.exp <= now) {
        conns.refuse(
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
}

/** Tokens are secrets; the store and the hub only ever see this hash of one. */
function keyOf(token: string): string {
  return createHash("sha256").update(token).digest("base64url").slice(0, 22);
}

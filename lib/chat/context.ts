/**
 * What every feature of the chat service is given: the hub, the engine and sharing, the connections
 * and their replies, the clock, the settings. Features get this and the few other features they use,
 * never each other's private state.
 * @module
 */
import type { Config } from "../config.ts";
import type { RoomAccess } from "../domain.ts";
import { addressUid } from "../identity.ts";
import type { Engine } from "../engine.ts";
import type { Hub } from "../hub.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { Moderation } from "../moderation.ts";
import type { Sharing } from "../sharing.ts";
import { ProtocolError } from "../protocol.ts";
import type { Conn, Connections } from "./connections.ts";
import { engineError } from "./errors.ts";

/** The shared context of the chat features. */
export interface ChatContext {
  readonly cfg: Config;
  readonly hub: Hub;
  readonly engine: Engine;
  readonly sharing: Sharing;
  readonly conns: Connections;
  /** Rules and sanctions of the rooms served here. */
  readonly moderation: Moderation;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Wall clock (ms). */
  readonly now: () => number;
  /** Whether shutdown has begun: nothing new is taken. */
  readonly closing: () => boolean;
}

/**
 * What `conn`'s person may do in `room`, read from the engine: with `--guest-bans address`, a guest
 * is also banned while its address is (the later of the two bans holds).
 */
export async function accessOf(ctx: ChatContext, conn: Conn, room: string): Promise<RoomAccess> {
  const identity = conn.identity!;
  if (!identity.guest || conn.address === undefined || ctx.cfg.guestBans !== "address") {
    return await ctx.engine.access(room, identity.uid);
  }
  const [own, byAddress] = await Promise.all([
    ctx.engine.access(room, identity.uid),
    ctx.engine.access(room, addressUid(conn.address)),
  ]);
  const ban = byAddress.ban;
  if (ban !== undefined && own.ban !== 0 && (own.ban === undefined || ban === 0 || ban > own.ban)) {
    own.ban = ban;
  }
  return own;
}

/** The display name of a connection's person (it has one once it is admitted). */
export function nameOf(ctx: ChatContext, conn: Conn): string {
  return ctx.hub.nameOf(conn.key)!;
}

/** Throws `not_member` unless `conn` is in `room`; `verb` says what it tried ("send to"). */
export function mustBeMember(ctx: ChatContext, conn: Conn, room: string, verb: string): void {
  if (!ctx.hub.isMember(conn.peer.id, room)) {
    throw new ProtocolError("not_member", `Cannot ${verb} room "${room}": join it first`);
  }
}

/**
 * Answers a refusal of `act` (a reaction, an edit, a moderation action) as an error frame naming
 * `room`; success is told to the room, not the actor. A failure below the rules is logged as what it
 * was (`action`: "react", "edit", "ban", …).
 */
export function settle(
  ctx: ChatContext,
  conn: Conn,
  act: Promise<unknown>,
  room: string,
  action: string,
): void {
  act.catch((e) => {
    if (e instanceof ProtocolError) return ctx.conns.refuse(conn.peer.id, e, { room });
    ctx.log.error(`${action} failed`, { room, error: (e as Error).message });
    ctx.conns.answer(conn.peer, engineError({ acting: room }, e), { room });
  });
}

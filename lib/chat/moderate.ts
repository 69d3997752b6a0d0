/**
 * Moderation: kicks, bans, mutes, who may join a private room, the room's rules and its audit log,
 * from moderators' frames and from the server API; and what every process does when a room changes
 * (its members here get the new rules, removals where due). Who may do what is `lib/moderation.ts`'s.
 * @module
 */
import type { AccessList, AuditEntry, RoomChange, RoomRules, Told } from "../domain.ts";
import { addressOfUid, addressUid, moderates, outranks, type Role, uidOfKey as uidOf } from "../identity.ts";
import type { Actor } from "../moderation.ts";
import { type ClientMessage, ProtocolError } from "../protocol.ts";
import { encode, type ServerMessage } from "../server_messages.ts";
import type { AnswerBudget } from "./answers.ts";
import type { Conn } from "./connections.ts";
import { type ChatContext, mustBeMember, nameOf, settle } from "./context.ts";
import { engineError } from "./errors.ts";
import type { Naming } from "./naming.ts";
import type { Rooms } from "./rooms.ts";

/** A person a moderation action is about. */
export interface Target {
  uid: string;
  name: string;
}

/** Moderation frames that name their target. */
type Sanction = Extract<ClientMessage, { type: "kick" | "ban" | "mute" | "unmute" }>;

/** The moderation feature. */
export class Moderate {
  readonly #ctx: ChatContext;
  readonly #naming: Naming;
  readonly #rooms: Rooms;
  readonly #budget: AnswerBudget;

  constructor(ctx: ChatContext, parts: { naming: Naming; rooms: Rooms; budget: AnswerBudget }) {
    this.#ctx = ctx;
    this.#naming = parts.naming;
    this.#rooms = parts.rooms;
    this.#budget = parts.budget;
  }

  /** The actor a connection is. */
  actor(conn: Conn): Actor {
    return {
      key: conn.key,
      uid: conn.identity!.uid,
      name: nameOf(this.#ctx, conn),
      role: conn.identity!.role,
    };
  }

  /** Moderation frames need a moderator or an admin, and the room joined (they act on what they see). */
  #moderator(conn: Conn, room: string): void {
    if (!moderates(conn.identity!.role)) {
      throw new ProtocolError("not_allowed", `Only moderators and admins can do that in room "${room}"`);
    }
    mustBeMember(this.#ctx, conn, room, "moderate");
  }

  /** `kick`, `ban`, `mute`, `unmute` {name}: the person is found by name, here or elsewhere. */
  sanctionFrame(conn: Conn, msg: Sanction): void {
    this.#moderator(conn, msg.room);
    const actor = this.actor(conn);
    const act = this.#target(msg.name).then((target) => {
      if (msg.type === "kick") return this.kick(actor, msg.room, target, msg.reason);
      if (msg.type === "unmute") {
        return this.sanction(actor, msg.room, target, { kind: "unmute", uid: target.uid });
      }
      const until = msg.seconds === undefined ? 0 : this.#ctx.now() + msg.seconds * 1000;
      return this.sanction(actor, msg.room, target, { kind: msg.type, uid: target.uid, until }, msg.reason);
    });
    settle(this.#ctx, conn, act, msg.room, msg.type);
  }

  /** `unban {uid}`: by uid, as the banned person is not in the room to be named. */
  unbanFrame(conn: Conn, room: string, uid: string): void {
    this.#moderator(conn, room);
    const actor = this.actor(conn);
    const act = this.#naming.nameOfUid(uid).then((name) =>
      this.sanction(actor, room, { uid, name }, { kind: "unban", uid })
    );
    settle(this.#ctx, conn, act, room, "unban");
  }

  /** `allow`, `disallow` {uid} and `room` {rules}: a change to the room. */
  changeFrame(conn: Conn, room: string, change: RoomChange): void {
    this.#moderator(conn, room);
    settle(this.#ctx, conn, this.changeRoom(this.actor(conn), room, change), room, change.kind);
  }

  /** The person called `name`, online here or on another process. */
  async #target(name: string): Promise<Target> {
    const found = await this.#naming.findPerson(name, { held: false, directory: false });
    if (!found) throw new ProtocolError("user_not_found", `No one called "${name}" is online`);
    return { uid: uidOf(found.key), name: found.name };
  }

  /**
   * Nobody acts on a higher role: a moderator cannot kick, ban, mute, unmute or unban an admin. The
   * target's role is the highest of their connections here (their token's), else a member's.
   * @throws {ProtocolError} `not_allowed`.
   */
  #mustNotBeAbove(actor: Actor, room: string, target: Target, action: string): void {
    let role: Role = "member";
    for (const conn of this.#ctx.conns.values()) {
      const id = conn.identity;
      if (id && !id.guest && id.uid === target.uid && outranks(id.role, role)) role = id.role;
    }
    if (outranks(role, actor.role)) {
      throw new ProtocolError(
        "not_allowed",
        `Cannot ${action} "${target.name}" in room "${room}": their role (${role}) is above yours (${actor.role})`,
      );
    }
  }

  /** Takes `target` out of `room` on every process (their tabs get `kicked`); the room is told. */
  async kick(actor: Actor, room: string, target: Target, reason?: string): Promise<void> {
    this.#mustNotBeAbove(actor, room, target, "kick");
    const audit: AuditEntry = { ts: this.#ctx.now(), action: "kick", by: actor.uid, target: target.uid };
    if (reason !== undefined) audit.reason = reason;
    const change: RoomChange = { kind: "kick", uid: target.uid, told: told(actor, target, reason) };
    await this.#ctx.engine.changeRoom(room, change, audit);
  }

  /** Bans, mutes or unmutes `target` in `room`, durably; a ban also takes them out of the room. */
  async sanction(
    actor: Actor,
    room: string,
    target: Target,
    change: Extract<RoomChange, { kind: "ban" | "mute" | "unmute" | "unban" }>,
    reason?: string,
  ): Promise<void> {
    this.#mustNotBeAbove(actor, room, target, change.kind);
    await this.changeRoom(actor, room, { ...change, told: told(actor, target, reason) }, reason);
    if (change.kind === "ban") await this.#banAddress(actor, room, target, change.until, reason);
  }

  /**
   * With `--guest-bans address`, a ban of a guest connected here also bans its address in the room
   * (under {@link addressUid}), untold: the room learns of the ban, not of an address. A guest who drops
   * its token comes back as a new guest; from the same address it is refused all the same.
   */
  async #banAddress(
    actor: Actor,
    room: string,
    target: Target,
    until: number,
    reason?: string,
  ): Promise<void> {
    const { cfg, conns } = this.#ctx;
    if (cfg.guestBans !== "address") return;
    const addresses = new Set<string>();
    for (const conn of conns.values()) {
      if (conn.identity?.guest && conn.identity.uid === target.uid && conn.address !== undefined) {
        addresses.add(conn.address);
      }
    }
    for (const address of addresses) {
      await this.changeRoom(actor, room, { kind: "ban", uid: addressUid(address), until }, reason);
    }
  }

  /** Applies `change` to `room` durably with an audit entry; every process applies it to its members. */
  changeRoom(actor: Actor, room: string, change: RoomChange, reason?: string): Promise<RoomRules> {
    const audit: AuditEntry = { ts: this.#ctx.now(), action: change.kind, by: actor.uid };
    if ("uid" in change) audit.target = change.uid;
    if ("until" in change) audit.until = change.until;
    if (reason !== undefined) audit.reason = reason;
    return this.#ctx.engine.changeRoom(room, change, audit);
  }

  /** A change to a room from any process: rules to its members here, removals where due. */
  roomChanged(room: string, change: RoomChange, rules: RoomRules): void {
    const { hub, moderation, conns, now } = this.#ctx;
    if (!hub.hasRoom(room)) return;
    const recheck = moderation.changed(room, change, rules);
    if (change.kind === "rules") hub.publish(room, encode({ type: "room", room, ...rules }));
    if (change.kind === "kick") this.#removeUid(room, change.uid, "kicked");
    else if (change.kind === "ban" && addressOfUid(change.uid) !== undefined) {
      // A ban of an address takes out the guests here who came from it.
      const address = addressOfUid(change.uid);
      for (const conn of conns.values()) {
        if (conn.identity?.guest && conn.address === address && hub.isMember(conn.peer.id, room)) {
          this.#rooms.remove(conn, room, "banned");
        }
      }
    } else if (recheck) {
      const t = now();
      for (const conn of conns.values()) {
        if (!hub.isMember(conn.peer.id, room)) continue;
        if ("uid" in change && conn.identity!.uid !== change.uid) continue;
        if (moderation.mayStay(conn.identity!, room, t)) continue;
        this.#rooms.remove(conn, room, change.kind === "ban" ? "banned" : "forbidden");
      }
    }
    // After the removals it makes: the people taken out hear `kicked`, the rest the moderation line.
    if ("told" in change && change.told) hub.publish(room, encode(announcement(room, change, change.told)));
  }

  #removeUid(room: string, uid: string, why: "kicked"): void {
    const { hub, conns } = this.#ctx;
    for (const conn of conns.values()) {
      if (conn.identity?.uid === uid && hub.isMember(conn.peer.id, room)) this.#rooms.remove(conn, room, why);
    }
  }

  /** `audit`: an admin reads the room's audit log, newest first. */
  audit(conn: Conn, room: string, before?: number, limit?: number): void {
    const { conns, cfg } = this.#ctx;
    if (conn.identity!.role !== "admin") {
      throw new ProtocolError("not_allowed", `Only admins read the audit log of room "${room}"`);
    }
    this.#budget.during(
      conn,
      () => this.auditPage(room, before ?? Number.MAX_SAFE_INTEGER, limit ?? cfg.historyPage),
    ).then(
      (page) => conns.alive(conn) && conn.peer.send(encode({ type: "audit", room, ...page })),
      (e) => conns.refuse(conn.peer.id, e, { room }),
    );
  }

  /** A page of the room's audit log, newest first, older than `before` (ms). */
  async auditPage(
    room: string,
    before: number,
    limit: number,
  ): Promise<{ entries: AuditEntry[]; complete: boolean }> {
    const n = Math.min(limit, this.#ctx.cfg.historyPage);
    let entries: AuditEntry[];
    try {
      entries = await this.#ctx.engine.audit(room, before, n + 1);
    } catch (e) {
      throw engineError({ reading: room }, e);
    }
    return { entries: entries.slice(0, n), complete: entries.length <= n };
  }

  /** The room's rules as stored. */
  async rulesOf(room: string): Promise<RoomRules> {
    try {
      return await this.#ctx.engine.rules(room);
    } catch (e) {
      throw engineError({ reading: room }, e);
    }
  }

  /** The room's added people, bans and mutes. */
  async accessList(room: string): Promise<AccessList> {
    try {
      return await this.#ctx.engine.accessList(room);
    } catch (e) {
      throw engineError({ reading: room }, e);
    }
  }
}

/** What the room is told of `actor` acting on `target`. */
function told(actor: Actor, target: Target, reason?: string): Told {
  const t: Told = { by: actor.name, name: target.name };
  if (reason !== undefined) t.reason = reason;
  return t;
}

/** The `moderation` line for a change that tells the room. */
function announcement(
  room: string,
  change: Extract<RoomChange, { told?: Told }>,
  t: Told,
): Extract<ServerMessage, { type: "moderation" }> {
  const line: Extract<ServerMessage, { type: "moderation" }> = {
    type: "moderation",
    room,
    action: change.kind,
    name: t.name,
    uid: change.uid,
    by: t.by,
  };
  if ("until" in change) line.until = change.until;
  if (t.reason !== undefined) line.reason = t.reason;
  return line;
}

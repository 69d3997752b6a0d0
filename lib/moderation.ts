/**
 * Who may do what in a room: private rooms, bans, mutes, read-only rooms, slow mode and the roles that
 * moderate. It decides; `Chat` acts (joins, lines, closes). It keeps, for the rooms that have members
 * in this process, their rules and what each person who joined here may do, fresh from the engine's
 * `roomChanged` events, so a send is checked without a round trip.
 * @module
 */
import { DEFAULT_RULES, holds, type RoomAccess, type RoomChange, type RoomRules } from "./domain.ts";
import { claimNamesRoom, type Identity, moderates, roomInClaim } from "./identity.ts";
import { ProtocolError } from "./protocol.ts";

/** Someone who acts: a connected person, or the host application through the server API. */
export interface Actor {
  key: string;
  uid: string;
  name: string;
  /** The display name a message posted for them carries. */
  display?: string;
  role: Identity["role"];
}

/** The host application acting through the API without naming a user. */
export const SYSTEM_ACTOR: Actor = Object.freeze({ key: "", uid: "api", name: "system", role: "admin" });

/** A sanction as the wire shows it: until when (ms), 0 = forever. */
export interface Sanctions {
  ban?: number;
  mute?: number;
}

interface RoomState {
  rules: RoomRules;
  /** Per uid that joined here: its sanctions and whether it was added to the room. */
  people: Map<string, { allowed: boolean } & Sanctions>;
  /** Per uid: when it last posted, for slow mode. */
  posted: Map<string, number>;
}

/** A room that exists only as a name, as it would be if it were private. */
const PRIVATE: Pick<RoomAccess, "rules" | "allowed"> = Object.freeze({
  rules: Object.freeze({ ...DEFAULT_RULES, private: true }),
  allowed: false,
});

/** The sentence for every refused join of a room one may not see: no hint of what it holds. */
export function forbidden(room: string): ProtocolError {
  return new ProtocolError("forbidden", `You cannot join room "${room}"`, undefined, { room });
}

/** Options of {@link Moderation}. */
export interface ModerationOptions {
  /**
   * Who makes a room by joining a name never used: `anyone`, or `moderators`: those who could enter
   * it were it private (moderators, admins, a token whose `rooms` claim names it).
   * @default "anyone"
   */
  createRooms?: "anyone" | "moderators";
}

/** Rules and sanctions of the rooms this process serves. */
export class Moderation {
  readonly #rooms = new Map<string, RoomState>();
  readonly #createRooms: "anyone" | "moderators";

  constructor(opts: ModerationOptions = {}) {
    this.#createRooms = opts.createRooms ?? "anyone";
  }

  /**
   * Checks a join against `access` (read from the engine for this person and room) and remembers it.
   * @throws {ProtocolError} `forbidden` or `banned` (with `until`), each with `room`.
   */
  admit(identity: Identity, room: string, access: RoomAccess, now: number): void {
    this.check(identity, room, access, now);
    const state = this.#state(room, access.rules);
    state.rules = access.rules;
    const entry: { allowed: boolean } & Sanctions = { allowed: access.allowed };
    if (access.mute !== undefined) entry.mute = access.mute;
    state.people.set(identity.uid, entry);
  }

  /**
   * Throws what {@link admit} throws when `identity` may not enter `room`, and does nothing else: who
   * may join a room may read it (search reads rooms without joining them).
   */
  check(identity: Identity, room: string, access: RoomAccess, now: number): void {
    if (!mayEnter(identity, room, access)) throw forbidden(room);
    // Only someone who could enter it were it private makes a room: to anyone else a name never
    // used and a private room answer alike, so refusals tell no private room's name.
    if (!access.exists && this.#createRooms === "moderators" && !mayEnter(identity, room, PRIVATE)) {
      throw forbidden(room);
    }
    if (holds(access.ban, now)) {
      throw new ProtocolError(
        "banned",
        `You are banned from room "${room}" ${access.ban === 0 ? "for good" : `until ${iso(access.ban)}`}`,
        undefined,
        { room, until: access.ban },
      );
    }
  }

  /** The room's rules as last seen (defaults for a room not served here). */
  rules(room: string): RoomRules {
    return this.#rooms.get(room)?.rules ?? DEFAULT_RULES;
  }

  /** Until when `uid` is muted in `room` (0 = forever), if they are. */
  mutedUntil(room: string, uid: string, now: number): number | undefined {
    const mute = this.#rooms.get(room)?.people.get(uid)?.mute;
    return holds(mute, now) ? mute : undefined;
  }

  /**
   * Whether `identity` may post in `room` now; takes the slow-mode turn when it may.
   * @throws {ProtocolError} `muted` (with `until`), `read_only` or `slow_mode` (with `retryAfter`), each
   *   with `room`.
   */
  checkPost(identity: Identity, room: string, now: number): void {
    const state = this.#rooms.get(room);
    if (!state) return;
    const muted = this.mutedUntil(room, identity.uid, now);
    if (muted !== undefined) {
      throw new ProtocolError(
        "muted",
        `You are muted in room "${room}" ${muted === 0 ? "for good" : `until ${iso(muted)}`}`,
        undefined,
        { room, until: muted },
      );
    }
    if (moderates(identity.role)) return;
    if (state.rules.readOnly) {
      throw new ProtocolError(
        "read_only",
        `Room "${room}" is read-only: only moderators post`,
        undefined,
        { room },
      );
    }
    const slow = state.rules.slowModeSeconds * 1000;
    if (slow > 0) {
      const last = state.posted.get(identity.uid);
      if (last !== undefined && now - last < slow) {
        const retryAfter = Math.ceil((slow - (now - last)) / 1000);
        throw new ProtocolError(
          "slow_mode",
          `Room "${room}" is in slow mode: wait ${retryAfter} s before posting again`,
          undefined,
          { room, retryAfter },
        );
      }
      state.posted.set(identity.uid, now);
    }
  }

  /**
   * A change from any process: updates what is kept. Returns true when `uid`'s people here should
   * be checked again (a room turned private, someone was removed from it).
   */
  changed(room: string, change: RoomChange, rules: RoomRules): boolean {
    const state = this.#rooms.get(room);
    if (!state) return false;
    const wasPrivate = state.rules.private;
    state.rules = rules;
    if (change.kind === "rules") return rules.private && !wasPrivate;
    const person = state.people.get(change.uid);
    if (!person) return false;
    switch (change.kind) {
      case "allow":
        person.allowed = true;
        return false;
      case "disallow":
        person.allowed = false;
        return rules.private;
      case "ban":
        person.ban = change.until;
        return true;
      case "unban":
        delete person.ban;
        return false;
      case "mute":
        person.mute = change.until;
        return false;
      case "unmute":
        delete person.mute;
        return false;
      case "kick":
        return false;
    }
  }

  /** Whether `identity`, already in `room`, may stay after a change (see {@link changed}). */
  mayStay(identity: Identity, room: string, now: number): boolean {
    const state = this.#rooms.get(room);
    if (!state) return true;
    const person = state.people.get(identity.uid) ?? { allowed: false };
    if (holds(person.ban, now)) return false;
    return mayEnter(identity, room, { rules: state.rules, allowed: person.allowed });
  }

  /** The room has no members here any more. */
  forget(room: string): void {
    this.#rooms.delete(room);
  }

  /** Drops slow-mode turns that are over, so the map holds only recent posters. */
  sweep(now: number): void {
    for (const state of this.#rooms.values()) {
      const slow = state.rules.slowModeSeconds * 1000;
      for (const [uid, ts] of state.posted) if (now - ts >= slow) state.posted.delete(uid);
    }
  }

  #state(room: string, rules: RoomRules): RoomState {
    let state = this.#rooms.get(room);
    if (!state) this.#rooms.set(room, state = { rules, people: new Map(), posted: new Map() });
    return state;
  }
}

/**
 * Private rooms: by name in the token's claim (not by a pattern), by being added, or as a moderator;
 * never as a guest.
 */
function mayEnter(identity: Identity, room: string, access: Pick<RoomAccess, "rules" | "allowed">): boolean {
  if (identity.rooms !== undefined && !roomInClaim(identity.rooms, room)) return false;
  if (!access.rules.private) return true;
  if (identity.guest) return false;
  return moderates(identity.role) || access.allowed || claimNamesRoom(identity, room);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

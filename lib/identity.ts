/**
 * Who a connection is: a guest (an opaque token the server handed out) or a person the host
 * application signed a token for. `lib/auth.ts` makes identities; everything else only reads them.
 * @module
 */

/** What a person may do beyond posting: moderators and admins moderate rooms, admins read audit logs. */
export type Role = "member" | "moderator" | "admin";

/** One person, as the chat layer sees them. */
export interface Identity {
  /** Stable person key (store, hub, engine): a guest token's hash, or `u:` + the signed `sub`. */
  key: string;
  /** The id the host application knows: the signed `sub`, or the key for a guest. */
  uid: string;
  /** The handle the token gives (signed identities only; see `handleOf` in lib/auth.ts). */
  name?: string;
  /**
   * The display name (see lib/display_names.ts), when it differs from the handle: a signed token's
   * `name` claim, or the `?display=` a guest connected with.
   */
  display?: string;
  role: Role;
  /**
   * Rooms the token limits this person to: names, `prefix*` patterns, `*` (every room); absent = no
   * limit. A name also opens that room when it is private; a pattern never opens a private room.
   */
  rooms?: string[];
  /** When the signed token expires (ms); absent for guests. */
  exp?: number;
  guest: boolean;
}

/** Longest user id (a token's `sub`), in characters: it becomes a person key in the store and in Redis. */
export const MAX_UID_CHARS = 128;

/**
 * Whether `uid` is a user id: 1-{@link MAX_UID_CHARS} characters, none of them a control character.
 * The one rule for a token's `sub`, a frame's `uid` and the server API's, so anyone who can sign in
 * can also be moderated by id.
 */
export function isUid(uid: unknown): uid is string {
  return typeof uid === "string" && uid !== "" && [...uid].length <= MAX_UID_CHARS && !/\p{Cc}/u.test(uid);
}

/** The person key of signed user `uid` (the token's `sub`). */
export function keyOfUid(uid: string): string {
  return `u:${uid}`;
}

/** The id the host application knows for person `key`: a signed user's `sub`, or a guest's key. */
export function uidOfKey(key: string): string {
  return isSignedKey(key) ? key.slice(2) : key;
}

/** Whether `key` is a signed user's (guest keys never hold a `:`). */
export function isSignedKey(key: string): boolean {
  return key.startsWith("u:");
}

const RANK: Record<Role, number> = { member: 0, moderator: 1, admin: 2 };

/** Whether `a` is a higher role than `b` (admin above moderator above member): `b` cannot act on `a`. */
export function outranks(a: Role, b: Role): boolean {
  return RANK[a] > RANK[b];
}

/**
 * The uid a room's ban of guests from `address` is stored under (`--guest-bans address`): guests
 * come back as new guests, their address does not change as easily.
 */
export function addressUid(address: string): string {
  return `${ADDRESS_PREFIX}${address}`;
}

/** The address an {@link addressUid} names, or undefined for any other uid. */
export function addressOfUid(uid: string): string | undefined {
  return uid.startsWith(ADDRESS_PREFIX) ? uid.slice(ADDRESS_PREFIX.length) : undefined;
}

const ADDRESS_PREFIX = "ip:";

/** Whether `role` moderates rooms. */
export function moderates(role: Role): boolean {
  return role === "moderator" || role === "admin";
}

/** Whether the token's `rooms` claim lets this person into `room` (no claim: any room). */
export function roomAllowedByClaim(identity: Identity, room: string): boolean {
  return identity.rooms === undefined || roomInClaim(identity.rooms, room);
}

/** Whether `room` is named by one of `patterns` (exact, or `prefix*`; `*` alone names every room). */
export function roomInClaim(patterns: readonly string[], room: string): boolean {
  return patterns.some((p) => p.endsWith("*") ? room.startsWith(p.slice(0, -1)) : p === room);
}

/**
 * Whether the token's `rooms` claim names `room` exactly, which opens it when it is private. A pattern
 * does not: `*` or `team-*` would otherwise open every private room it matches, including rooms the
 * host application never meant for this person, and rooms made private after the token was signed.
 */
export function claimNamesRoom(identity: Identity, room: string): boolean {
  return identity.rooms?.includes(room) ?? false;
}

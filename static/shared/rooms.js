/**
 * What a room is, one definition for the server and the page: the pattern of its name, the limit of
 * its topic and the rules of a room nobody has set any for.
 * @module
 */

/**
 * @typedef {object} RoomRules A room's rules (see docs/protocol.md, "Rooms with rules").
 * @property {string} topic shown under the room's name; "" for none
 * @property {boolean} private only people allowed (by their token's `rooms` claim, by being added, or as
 *   moderators) may join
 * @property {boolean} readOnly only moderators and admins post
 * @property {number} slowModeSeconds seconds one person waits between two messages in the room (0: off)
 */

/** A room name: 1-64 letters, digits, `_`, `-` or `.` (compared lower-cased). */
export const ROOM_NAME_RE = /^[\p{L}\p{N}_.-]{1,64}$/u;

/**
 * What a room directory search (`rooms {q}`) may be: the start of a room name, 0-64 of its characters
 * (compared lower-cased).
 */
export const ROOM_PREFIX_RE = /^[\p{L}\p{N}_.-]{0,64}$/u;

/** Characters in a room topic. */
export const MAX_TOPIC_CHARS = 200;

/** The rules of a room nobody has set any for. */
export const DEFAULT_RULES = /** @type {Readonly<RoomRules>} */ (Object.freeze({
  topic: "",
  private: false,
  readOnly: false,
  slowModeSeconds: 0,
}));

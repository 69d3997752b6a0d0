/**
 * Names on the page: what a nickname and a room name may be, and whether a text mentions someone.
 * @module
 */
import { ROOM_NAME_RE } from "../shared/rooms.js";

const NAME_RE = /^[\p{L}\p{N}_.-]{1,32}$/u;

/**
 * Whether `name` is a valid nickname.
 * @param {string} name
 */
export function isValidName(name) {
  return NAME_RE.test(name);
}

/**
 * The canonical (lower-case) room name, or `undefined` when `room` is not a valid room name.
 * A leading `#` is ignored.
 * @param {string} room
 * @returns {string | undefined}
 */
export function normalizeRoom(room) {
  const r = room.trim().replace(/^#/, "");
  return ROOM_NAME_RE.test(r) ? r.toLowerCase() : undefined;
}

/**
 * Whether `text` mentions `name` (as `@name` or the name as a whole word, any case).
 * @param {string} text
 * @param {string} name
 */
export function mentions(text, name) {
  if (!name) return false;
  const escaped = name.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
  return new RegExp(`(^|[^\\p{L}\\p{N}_.-])@?${escaped}(?![\\p{L}\\p{N}_-])`, "iu").test(text);
}

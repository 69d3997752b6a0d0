/**
 * Unread counts, worked out in one place: what is unread lies after your read position (the server's,
 * for every device); for a room, also how many of those messages mention you.
 * @module
 */
import { RoomState } from "./room-state.js";

/** @typedef {import("./types.js").RoomMessage} RoomMessage */
/** @typedef {import("./directs.js").DirectConversation} DirectConversation */

/**
 * Sets `target.unread` from its newest seq and read position, and, for a room, `mentions`: `told` (the
 * server's count, or the count kept so far with a new mention) capped by the unread; without `told`,
 * counted again from the held messages when they cover all that is unread, else it can only shrink
 * with the unread. Call it after every change of `lastSeq`, `lastRead` or the held messages.
 * @param {RoomState | DirectConversation} target
 * @param {(m: RoomMessage) => boolean} [mentionsMe] whether a message mentions you (as the server
 *   marked it); a room's count needs it
 * @param {number} [told]
 */
export function recount(target, mentionsMe = () => false, told = undefined) {
  target.unread = Math.max(0, target.lastSeq - target.lastRead);
  if (!(target instanceof RoomState)) return;
  const r = target;
  if (told !== undefined) r.mentions = Math.min(told, r.unread);
  else if (r.lastRead >= r.lastSeq) r.mentions = 0;
  else if (r.complete || (r.messages[0]?.seq ?? Infinity) <= r.lastRead + 1) {
    r.mentions = r.messages.filter((m) => m.seq > r.lastRead && !m.deleted && mentionsMe(m)).length;
  } else r.mentions = Math.min(r.mentions, r.unread);
}

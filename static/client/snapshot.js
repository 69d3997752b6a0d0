/**
 * A room's history as a device keeps it between page loads (the page keeps it in IndexedDB, see
 * static/offline/history.js): the newest messages held, and where they stand (`lastSeq`, `epoch`, `rev`),
 * so a page opened again shows them at once and resumes with `join {since}`, asking only for what is newer.
 * Plain data: what the client restores from one is checked field by field, since it was written by
 * another version of the page, maybe.
 * @module
 */
import { normalizeRoom } from "./names.js";
import { RoomState } from "./room-state.js";

/** @typedef {import("./types.js").RoomMessage} RoomMessage */

/**
 * @typedef {object} RoomSnapshot
 * @property {string} room canonical name
 * @property {RoomMessage[]} messages the newest messages held, in seq order
 * @property {number} lastSeq
 * @property {string} epoch
 * @property {number} rev
 * @property {boolean} complete nothing older than `messages[0]` exists on the server
 * @property {number} lastRead
 */

/**
 * What to keep of `r`: at most its `max` newest messages (the older ones come back with `history` when
 * scrolled to). Undefined for a room never joined (nothing it holds lines up with the server yet).
 * @param {RoomState} r
 * @param {number} max
 * @returns {RoomSnapshot | undefined}
 */
export function snapshotOf(r, max) {
  if (!r.synced) return undefined;
  // A message past lastSeq (ours, shown from its ack before its line) comes again with the resume.
  const upTo = r.messages.filter((m) => m.seq <= r.lastSeq);
  const messages = max > 0 ? upTo.slice(-max) : [];
  return {
    room: r.name,
    messages,
    lastSeq: r.lastSeq,
    epoch: r.epoch,
    rev: r.rev,
    complete: r.complete && messages.length === r.messages.length,
    lastRead: r.lastRead,
  };
}

/**
 * A room as `snap` kept it, ready to resume; undefined when `snap` is not a usable snapshot of `room`.
 * @param {string} room canonical name
 * @param {unknown} snap
 * @returns {RoomState | undefined}
 */
export function restoreRoom(room, snap) {
  if (!snap || typeof snap !== "object") return undefined;
  const s = /** @type {Record<string, unknown>} */ (snap);
  if (s.room !== room || normalizeRoom(room) !== room) return undefined;
  if (!isSeq(s.lastSeq) || !isSeq(s.rev) || !isSeq(s.lastRead) || typeof s.epoch !== "string") {
    return undefined;
  }
  if (!Array.isArray(s.messages)) return undefined;
  /** @type {RoomMessage[]} */
  const messages = [];
  let prev = 0;
  for (const m of s.messages) {
    // In order, no duplicates, nothing past lastSeq: else it would not line up with what a resume brings.
    if (!m || typeof m !== "object" || !isSeq(m.seq) || m.seq <= prev || m.seq > s.lastSeq) return undefined;
    if (typeof m.from !== "string" || typeof m.text !== "string" || typeof m.ts !== "number") {
      return undefined;
    }
    messages.push({ ...m, room });
    prev = m.seq;
  }
  const r = new RoomState(room);
  r.messages = messages;
  r.lastSeq = s.lastSeq;
  r.epoch = s.epoch;
  r.rev = s.rev;
  r.lastRead = s.lastRead;
  r.complete = s.complete === true;
  // What it holds lines up with the server's history: the next join resumes from it.
  r.synced = true;
  r.kept = true;
  return r;
}

/**
 * @param {unknown} n
 * @returns {n is number}
 */
function isSeq(n) {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

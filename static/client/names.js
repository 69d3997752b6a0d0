/**
 * Names on the page: what a nickname and a room name may be, and whether a text mentions someone (the
 * server's rule, from `static/shared/`).
 * @module
 */
import { mentionCandidates } from "../shared/mentions.js";
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
 * Whether `text` mentions `name` as the server counts mentions: an `@name` (a bare name is no mention),
 * compared in NFKC and case-insensitively, as the server's canonical names are; `@bob.` mentions `bob`.
 * The server also folds lookalike letters and keeps the first `maxMentions` names only, so a message
 * the server recorded is better told by its `mentions` field ({@link ChatClient.mentionsMe}).
 * @param {string} text
 * @param {string} name
 */
export function mentions(text, name) {
  if (!name || !text.includes("@")) return false;
  const me = folded(name);
  return mentionCandidates(text, canonical).some((tries) => tries.some((n) => folded(n) === me));
}

/**
 * A name in NFKC, as the server keeps names (lib/names.ts `canonicalName`: the same for every name a
 * mention can hold, at most 128 code points).
 * @param {string} raw
 */
function canonical(raw) {
  return raw.normalize("NFKC");
}

/** @param {string} name */
function folded(name) {
  return canonical(name).toLowerCase();
}

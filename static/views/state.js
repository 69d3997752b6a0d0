/**
 * What the views of the page share: the client, the open conversation, the unread counts and the
 * way to open a conversation. app.js owns it; the views read it and never import one another.
 * @module
 */

/** @typedef {import("../chat-client.js").ChatClient} ChatClient */

/**
 * @typedef {object} AppState
 * @property {ChatClient} client
 * @property {string} active the open conversation: a room name, `@name`, or "" for none
 * @property {Map<string, number>} unread unread messages per conversation
 * @property {(key: string) => void} go opens a conversation through the address (`#room`, `#@name`)
 */

/** Prefix of what the page keeps in `localStorage`. */
export const STORAGE_PREFIX = "chat:";

/**
 * Whether a conversation key names a direct conversation (`@name`) rather than a room.
 * @param {string} key
 */
export function isDirect(key) {
  return key.startsWith("@");
}

/**
 * How a conversation is named on screen: `#room` or `@name`.
 * @param {string} key
 */
export function viewTitle(key) {
  return isDirect(key) ? key : `#${key}`;
}

/**
 * Lower-case names of everyone seen in any room.
 * @param {ChatClient} client
 */
export function onlineNames(client) {
  const s = new Set();
  for (const r of client.rooms.values()) for (const m of r.members) s.add(m.toLowerCase());
  return s;
}

/**
 * Unread messages in all conversations.
 * @param {AppState} state
 */
export function totalUnread(state) {
  let total = 0;
  for (const n of state.unread.values()) total += n;
  return total;
}

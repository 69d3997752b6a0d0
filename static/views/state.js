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
  for (const r of client.rooms.values()) {
    for (const m of r.members) s.add(m.toLowerCase());
    for (const m of r.present) s.add(m.toLowerCase()); // a big room's partners, off its loaded pages
  }
  return s;
}

/**
 * What is unread in conversation `key`, as the server counts it for the person (so it is the same on
 * every device and after a reload): messages after the read position, and those of them that
 * mention you (a direct message counts as one).
 * @param {AppState} state
 * @param {string} key
 * @returns {{ unread: number, mentions: number }}
 */
export function unreadOf(state, key) {
  const { client } = state;
  if (isDirect(key)) {
    const c = client.directs.get(key.slice(1).toLowerCase());
    return { unread: c?.unread ?? 0, mentions: c?.unread ?? 0 };
  }
  const r = client.rooms.get(key);
  return { unread: r?.unread ?? 0, mentions: r?.mentions ?? 0 };
}

/**
 * Unread messages in all conversations.
 * @param {AppState} state
 */
export function totalUnread(state) {
  let total = 0;
  for (const r of state.client.rooms.values()) total += r.unread;
  for (const c of state.client.directs.values()) total += c.unread;
  return total;
}

/**
 * The chat protocol client (see docs/protocol.md): connects, splits frames, keeps rooms, members,
 * typing and direct conversations, reconnects with exponential backoff and jitter, resumes rooms
 * with `join {since}`, and keeps an outbox (persisted) whose messages are sent with their `cid` so
 * none is lost or doubled.
 *
 * No DOM access: it runs in a page, in a worker and under Deno. It only needs `WebSocket`,
 * `EventTarget`, `CustomEvent`, timers and (optionally) a `localStorage`-like storage. This file is
 * the public entry; the parts live in `client/` (one concern each) and the rules the server shares
 * with the page in `shared/`. Plain ES modules: serve the three together, no build step.
 * @module
 */
export { ChatClient } from "./client/client.js";
export { backoffDelay, parseFrame } from "./client/connection.js";
export { DirectConversation } from "./client/directs.js";
export { postBlock } from "./client/moderation.js";
export { isValidName, mentions, normalizeRoom } from "./client/names.js";
export { RoomState } from "./client/room-state.js";
export { restoreRoom, snapshotOf } from "./client/snapshot.js";
export { formatUntil, linkify } from "./client/text.js";
export { MAX_TOPIC_CHARS } from "./shared/rooms.js";
export { canonicalDisplay, DISPLAY_MAX_CHARS, displayProblem } from "./shared/display.js";

/** @typedef {import("./client/types.js").RoomMessage} RoomMessage */
/** @typedef {import("./client/types.js").RoomRules} RoomRules */
/** @typedef {import("./client/types.js").ModerationLine} ModerationLine */
/** @typedef {import("./client/types.js").Removal} Removal */
/** @typedef {import("./client/types.js").DirectMessage} DirectMessage */
/** @typedef {import("./client/types.js").OutboxItem} OutboxItem */
/** @typedef {import("./client/types.js").ConnState} ConnState */
/** @typedef {import("./client/types.js").KeyValueStorage} KeyValueStorage */
/** @typedef {import("./client/types.js").Limits} Limits */
/** @typedef {import("./client/types.js").BackoffOptions} BackoffOptions */
/** @typedef {import("./client/types.js").ChatClientOptions} ChatClientOptions */
/** @typedef {import("./client/types.js").ChatClientEvents} ChatClientEvents */
/** @typedef {import("./client/snapshot.js").RoomSnapshot} RoomSnapshot */

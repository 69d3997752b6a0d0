/**
 * The shapes the client keeps and is given (JSDoc types only; `static/chat-client.js` re-exports them).
 * @module
 */

/**
 * @typedef {object} RoomMessage A stored message of a room, as the server sends it.
 * @property {string} room
 * @property {number} seq
 * @property {string} from the sender's handle
 * @property {string} text
 * @property {number} ts
 * @property {string} [cid]
 * @property {string} [display] the sender's display name when they sent it, if they had one
 * @property {boolean} [deleted] a tombstone: the message was deleted, its text is gone ("")
 * @property {number} [editedTs] when its text was last edited (ms)
 * @property {{ seq: number, from: string, text: string, deleted?: boolean }} [replyTo] the message it
 *   answers, quoted as it is now: its first line ("" and `deleted` once it is deleted)
 * @property {string[]} [mentions] names it mentions with `@name`
 * @property {Record<string, number>} [reactions] emoji to count
 * @property {string[]} [mine] this person's own reactions
 */

/** @typedef {import("../shared/rooms.js").RoomRules} RoomRules */

/**
 * @typedef {object} ModerationLine A moderation action told to the room.
 * @property {"kick" | "ban" | "unban" | "mute" | "unmute"} action
 * @property {string} name whom it was done to
 * @property {string} uid their user id (for `unban`)
 * @property {string} by who did it
 * @property {number} [until] when a ban or mute ends (ms), 0 = for good
 * @property {string} [reason]
 * @property {number} ts local clock, when it came
 * @property {number} afterSeq the room's newest seq when it came: it shows after that message
 */

/**
 * @typedef {object} Removal Why you are not in a room you asked for.
 * @property {"kicked" | "banned" | "forbidden" | "refused"} reason `refused`: a join was refused
 *   (`forbidden`, or a closed room), `forbidden`: taken out (the room became private to you)
 * @property {string} message the server's sentence, when it gave one
 */

/**
 * @typedef {object} DirectMessage A direct message, stored by the server in conversation `conv` under
 * `convSeq` (not `seq`: the page tells room messages from direct ones by `seq`).
 * @property {string} [conv]
 * @property {number} [convSeq]
 * @property {string} to
 * @property {string} from
 * @property {string} text
 * @property {number} ts
 * @property {string} [cid]
 * @property {string} [display] the sender's display name when they sent it, if they had one
 */

/**
 * @typedef {object} OutboxItem A message typed by this client that the server has not acked yet.
 * @property {string} cid
 * @property {string} [room]
 * @property {string} [to]
 * @property {string} text
 * @property {number} [replyTo] the seq (in `room`) it answers
 * @property {number} createdAt local clock, ms
 * @property {"pending" | "sending" | "failed"} state
 * @property {string} [error] why it failed (the server's message)
 */

/**
 * @typedef {object} DirectoryPage One page of the room directory (`ChatClient.findRooms`).
 * @property {string} q the search it answers (lower-cased)
 * @property {{ room: string, topic: string, members: number }[]} items public rooms in name order:
 *   topic ("" for none) and how many people are in each now
 * @property {string} [next] pass as `after` for the next page; absent on the last
 */

/** @typedef {"connecting" | "live" | "reconnecting" | "offline"} ConnState */

/**
 * @typedef {object} KeyValueStorage The part of `Storage` the client uses.
 * @property {(key: string) => string | null} getItem
 * @property {(key: string, value: string) => void} setItem
 * @property {(key: string) => void} removeItem
 */

/**
 * @typedef {object} Limits What the server enforces (from `welcome`).
 * @property {number} textChars
 * @property {number} frameBytes
 * @property {number} roomsPerConnection
 * @property {number} messagesPerSecond
 * @property {number} burst
 * @property {number} historyPage
 * @property {number} editSeconds How long after sending its author may edit a message (0: never).
 * @property {number} searchQueryChars Characters in a search query (0: the server has no search).
 * @property {number} searchPage Results per search answer.
 */

/**
 * @typedef {object} SearchHit One `search` result: a message (`room`, or `conv` for a direct one) and
 *   the `[start, end)` UTF-16 ranges of its text the query matched.
 * @property {string} [room]
 * @property {string} [conv]
 * @property {number} seq
 * @property {string} from
 * @property {string} [display]
 * @property {string} text
 * @property {number} ts
 * @property {[number, number][]} matches
 */

/**
 * @typedef {object} BackoffOptions
 * @property {number} baseMs first delay (before jitter)
 * @property {number} maxMs cap
 */

/**
 * @typedef {object} ChatClientOptions
 * @property {string} url the WebSocket endpoint, e.g. `ws://host/ws`
 * @property {string} [name] the nickname wanted (used when no identity is stored)
 * @property {string} [display] the display name wanted (any script, spaces, punctuation; with no
 *   `name`, the server makes the handle from it: `Ada Lovelace` is `Ada_Lovelace`)
 * @property {KeyValueStorage | null} [storage] where identity, rooms and outbox persist; default `localStorage`
 * @property {string} [storagePrefix] prefix of storage keys, default `chat:`
 * @property {string[]} [rooms] rooms to be in when none are stored, default `["lobby"]`
 * @property {import("./snapshot.js").RoomSnapshot[]} [kept] what this device kept of its rooms' history
 *   (see `snapshotOf`): those rooms show it before connecting and resume from it with `join {since}`
 * @property {Partial<BackoffOptions>} [backoff]
 * @property {() => number} [random] for jitter, default `Math.random`
 * @property {number} [pingIntervalMs] ping when nothing came for this long, default 25000
 * @property {number} [pongTimeoutMs] then give up on the connection after this long, default 10000
 * @property {number} [ackTimeoutMs] re-send a message (same cid) not acked after this long, default 10000
 * @property {number} [typingTtlMs] how long "x is typing" lasts, default 3000
 * @property {number} [typingThrottleMs] at most one `typing` per room this often, default 2000
 * @property {number} [stableMs] a connection live this long resets the backoff, default 5000
 * @property {() => Promise<string>} [getToken] signed identities: resolves a fresh token from the host
 *   application (see docs/embedding.md). With it the client connects with `?auth=frame`, sends `auth` first,
 *   asks again about 30 s before the token's `exp` (a refresh on the open connection) and before every
 *   reconnect; `name` and the stored guest identity are not used.
 * @property {number} [refreshBeforeMs] how long before `exp` a token is refreshed, default 30000
 * @property {typeof WebSocket} [WebSocket]
 * @property {"auto" | "websocket" | "sse"} [transport] `auto` (the default): a WebSocket, and the fallback
 *   transport (Server-Sent Events down, POST up) after `fallbackAfter` WebSockets in a row failed to open
 *   while the server answered HTTP
 * @property {number} [fallbackAfter] WebSockets in a row that fail to open (the server answering HTTP) before
 *   the fallback, default 2
 * @property {number} [websocketRetryMs] on the fallback, how often a WebSocket is tried again, default 60000
 * @property {typeof fetch} [fetch] what the fallback transport requests with, default `globalThis.fetch`
 * @property {(direction: "in" | "out", message: Record<string, unknown>) => void} [trace]
 */

/**
 * @typedef {object} ChatClientEvents The `detail` of each event a `ChatClient` dispatches, by event type
 * (what {@link import("./client.js").ChatClient.on} hands its listener).
 * @property {{ state: ConnState }} state
 * @property {{ name: string, display?: string, notice?: string }} welcome
 * @property {{}} rooms
 * @property {{ room: string, added: RoomMessage[], reset: boolean }} joined
 * @property {{ room: string, peer?: undefined, message: RoomMessage }
 *   | { room?: undefined, peer: string, message: DirectMessage }} message
 * @property {{ room: string, added: RoomMessage[], around?: number } | { room?: undefined, peer: string, around?: number }} history
 * @property {{ q: string, results: SearchHit[], next?: string, partial?: boolean }} search
 * @property {{ room: string }} members
 * @property {{ room: string }} typing
 * @property {{ old: string, name: string }} nick
 * @property {{}} outbox
 * @property {{ code: string, message: string, item?: OutboxItem }} servererror
 * @property {{ message: string }} notice
 * @property {{ exp: number, name: string, role: string, uid: string }} authed
 * @property {{ room: string, message: RoomMessage }} changed
 * @property {{ room: string, seq: number, message: RoomMessage }} reactions
 * @property {{ room: string, line: ModerationLine }} moderation
 * @property {{ room: string }} rules
 * @property {{ room: string }} standing
 * @property {{}} conversations
 * @property {{ room: string } | { peer: string }} read
 */

/**
 * @typedef {object} Context What the parts of one client share: the client's public state, the wire
 * and the events, and each other (each part owns its own state; they call each other's methods only).
 * @property {import("./client.js").ChatClient} client rooms, directs, me, limits, live, isMe, moderates
 * @property {(msg: Record<string, unknown>) => boolean} send one frame on the open connection
 * @property {() => boolean} takeToken one token of the client's rate bucket (false: none left)
 * @property {(type: string, detail: Record<string, unknown>) => void} emit one event of the client
 * @property {import("./storage.js").Persisted} persisted
 * @property {import("./connection.js").Connection} connection
 * @property {import("./outbox.js").Outbox} outbox
 * @property {import("./rooms.js").Rooms} rooms
 * @property {import("./typing.js").Typing} typing
 * @property {import("./directs.js").Directs} directs
 * @property {import("./moderation.js").ModerationState} moderation
 * @property {import("./directory.js").RoomDirectory} directory
 */

export {};

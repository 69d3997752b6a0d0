/**
 * Your standing in each room, as moderation and the room's rules make it: removed (kicked, banned, a
 * refused join), muted, slow mode's wait, your role; the moderation lines a room is told; and whether
 * you may post now ({@link postBlock}), so the outbox does not send what the server would refuse.
 * The server's details come as fields of its error frames (`room`, `retryAfter`, `until`; see
 * docs/protocol.md, "Errors"), never read out of its sentences.
 * @module
 */
import { DEFAULT_RULES } from "../shared/rooms.js";
import { formatUntil } from "./text.js";

/** @typedef {import("./types.js").Context} Context */
/** @typedef {import("./types.js").ModerationLine} ModerationLine */
/** @typedef {import("./types.js").OutboxItem} OutboxItem */
/** @typedef {import("./types.js").Removal} Removal */
/** @typedef {import("./room-state.js").RoomState} RoomState */

/** Roles that moderate every room they are in. */
const MODERATOR_ROLES = new Set(["moderator", "admin"]);
/** How many moderation lines a room keeps for the thread. */
const MAX_MODERATION_LINES = 200;
const ACTIONS = ["kick", "ban", "unban", "mute", "unmute"];
/** Slow mode's wait when neither the refusal nor the room's rules give one (seconds). */
const SLOW_FALLBACK_SECONDS = 5;

/**
 * Why you cannot post in room `r` now, as a sentence for the page, or undefined when you can (slow
 * mode is not counted: a message waits for it rather than fails).
 * @param {RoomState} r
 * @param {boolean} moderator whether you moderate the room (moderators are not held by read-only)
 * @param {number} [now]
 * @returns {{ code: string, text: string } | undefined}
 */
export function postBlock(r, moderator, now = Date.now()) {
  const room = `#${r.name}`;
  if (r.removed) {
    const { reason } = r.removed;
    if (reason === "banned") return { code: "banned", text: `You are banned from ${room}` };
    if (reason === "refused") return { code: "forbidden", text: `You cannot join ${room}` };
    return { code: "kicked", text: `You were removed from ${room}` };
  }
  if (r.isMuted(now)) {
    const until = r.mutedUntil ? ` until ${formatUntil(r.mutedUntil)}` : "";
    return { code: "muted", text: `You are muted in ${room}${until}` };
  }
  if (r.rules.readOnly && !moderator) {
    return { code: "read_only", text: `${room} is read-only: only moderators post` };
  }
  return undefined;
}

/** Moderation as one client sees it. */
export class ModerationState {
  /** @param {Context} ctx */
  constructor(ctx) {
    this.#ctx = ctx;
  }

  #ctx;

  /**
   * Whether you moderate `room` (your role there, or the connection's before it is joined).
   * @param {string} room
   */
  moderates(room) {
    return MODERATOR_ROLES.has(this.#ctx.client.rooms.get(room)?.role || this.#ctx.client.role);
  }

  /**
   * Your role changed with a refreshed token: a room's role is the connection's (`joined.you.role`).
   * @param {string} role
   */
  roleChanged(role) {
    for (const r of this.#ctx.client.rooms.values()) {
      if (!r.role) continue;
      r.role = role;
      this.#ctx.emit("standing", { room: r.name });
    }
  }

  /**
   * Sends a moderator's action on `name` in `room` (see {@link import("./client.js").ChatClient.moderate}).
   * @param {"kick" | "ban" | "mute" | "unmute"} action
   * @param {string} room
   * @param {string} name
   * @param {{ seconds?: number, reason?: string }} opts
   */
  act(action, room, name, opts) {
    /** @type {Record<string, unknown> & { room: string }} */
    const msg = { type: action, room, name };
    if (opts.seconds !== undefined && action !== "kick" && action !== "unmute") msg.seconds = opts.seconds;
    const reason = opts.reason?.trim();
    if (reason && action !== "unmute") msg.reason = reason;
    this.#ctx.rooms.frame(msg);
  }

  /**
   * Asks again to join a room you were removed from or refused (a kick is not a ban).
   * @param {string} room
   */
  rejoin(room) {
    const r = this.#ctx.client.rooms.get(room);
    if (!r || r.joined) return;
    r.removed = undefined;
    this.#ctx.emit("standing", { room });
    if (this.#ctx.connection.welcomed) this.#ctx.rooms.sendJoin(r);
  }

  /**
   * `moderation`: an action in a room; about you, a mute or unmute changes what you may do.
   * @param {Record<string, any>} m
   */
  line(m) {
    const { client } = this.#ctx;
    const r = client.rooms.get(m.room);
    if (!r || typeof m.name !== "string" || !ACTIONS.includes(m.action)) return;
    /** @type {ModerationLine} */
    const line = {
      action: m.action,
      name: m.name,
      uid: String(m.uid ?? ""),
      by: String(m.by ?? ""),
      ts: Date.now(),
      afterSeq: r.lastSeq,
    };
    if (typeof m.until === "number") line.until = m.until;
    if (typeof m.reason === "string") line.reason = m.reason;
    r.moderation.push(line);
    if (r.moderation.length > MAX_MODERATION_LINES) r.moderation.shift();
    if (line.action === "mute") r.muted.set(line.name, line.until ?? 0);
    else if (line.action === "unmute") r.muted.delete(line.name);
    const aboutMe = client.uid ? line.uid === client.uid : client.isMe(line.name);
    if (aboutMe && (line.action === "mute" || line.action === "unmute")) {
      r.mutedUntil = line.action === "mute" ? line.until ?? 0 : undefined;
      this.#ctx.emit("standing", { room: r.name });
      this.#ctx.outbox.pump();
    }
    this.#ctx.emit("moderation", { room: r.name, line });
  }

  /**
   * `room`: the rules changed.
   * @param {Record<string, any>} m
   */
  rules(m) {
    const r = this.#ctx.client.rooms.get(m.room);
    if (!r) return;
    const { type: _, room: __, ...rules } = m;
    r.rules = { ...DEFAULT_RULES, ...rules };
    this.#ctx.emit("rules", { room: r.name });
    this.#ctx.emit("standing", { room: r.name });
    this.#ctx.outbox.pump();
  }

  /**
   * `kicked`: you were taken out of a room.
   * @param {Record<string, any>} m
   */
  kicked(m) {
    const r = this.#ctx.client.rooms.get(m.room);
    if (!r) return;
    const reason = m.reason === "banned" || m.reason === "forbidden" ? m.reason : "kicked";
    this.#removed(r, { reason, message: "" });
  }

  /**
   * Our message reached room `r`: in slow mode its turn is taken (per person, on any tab), and the
   * next message waits for it instead of being refused (a strike).
   * @param {RoomState} r
   */
  tookTurn(r) {
    if (r.rules.slowModeSeconds <= 0 || this.moderates(r.name)) return;
    r.slowUntil = Date.now() + r.rules.slowModeSeconds * 1000 + 250;
    r.slowText = "";
    this.#ctx.emit("standing", { room: r.name });
  }

  /**
   * A send to `r` was refused with `slow_mode`: you may post again in `retryAfter` seconds.
   * @param {RoomState} r
   * @param {Record<string, any>} m the error
   */
  slowed(r, m) {
    // Never read out of the sentence: a server without the field (an older process during a rolling
    // upgrade) makes the page wait the room's whole slow-mode time instead.
    const wait = typeof m.retryAfter === "number" && m.retryAfter > 0
      ? m.retryAfter
      : r.rules.slowModeSeconds || SLOW_FALLBACK_SECONDS;
    r.slowUntil = Date.now() + wait * 1000 + 250;
    r.slowText = String(m.message ?? "");
    this.#ctx.emit("standing", { room: r.name });
  }

  /**
   * An `error` (after the outbox took the one it refused, `item`): what it says about a room.
   * @param {Record<string, any>} m
   * @param {OutboxItem | undefined} item
   */
  refused(m, item) {
    const { rooms } = this.#ctx.client;
    const r = typeof item?.room === "string" ? rooms.get(item.room) : undefined;
    if (m.code === "not_member" && typeof m.room === "string") {
      const left = rooms.get(m.room);
      if (left) left.joined = false;
    }
    // A refused join names its room in `room` (servers did long before `until` and `retryAfter`):
    // the room we are waiting to join.
    if ((m.code === "forbidden" || m.code === "banned") && !item && typeof m.room === "string") {
      const refused = rooms.get(m.room);
      if (refused && !refused.joined) {
        this.#removed(refused, {
          reason: m.code === "banned" ? "banned" : "refused",
          message: String(m.message ?? m.code),
        });
      }
    }
    // The server said so before we knew (a mute or read-only on its way): the room's page shows it.
    if (m.code === "muted" || m.code === "read_only") {
      // `until`: ms, 0 = for good. Without it (an older server) the page knows no end: for good, until a
      // moderation line or the next join says otherwise.
      if (r && m.code === "muted" && !r.isMuted()) r.mutedUntil = typeof m.until === "number" ? m.until : 0;
      if (r) this.#ctx.emit("standing", { room: r.name });
    }
  }

  /**
   * You are not (or no longer) in room `r`: kicked, banned, or a join was refused. What waits in the
   * outbox for it fails with the server's sentence.
   * @param {RoomState} r
   * @param {Removal} removal
   */
  #removed(r, removal) {
    r.joined = false;
    r.loadingOlder = false;
    r.removed = removal;
    r.members.clear();
    r.typing.clear();
    this.#ctx.outbox.failRoom(r.name, removal.message || postBlock(r, false)?.text || "Not in the room");
    this.#ctx.emit("members", { room: r.name });
    this.#ctx.emit("typing", { room: r.name });
    this.#ctx.emit("standing", { room: r.name });
  }
}

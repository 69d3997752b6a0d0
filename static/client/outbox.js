/**
 * The outbox: messages typed here that the server has not acked yet, kept in storage across page loads
 * and sent one at a time with their `cid` (so every refusal is attributable, and a re-send after a lost
 * answer is de-duplicated by the server, never doubled). A message to a room where you cannot post fails
 * here without costing the connection a strike; slow mode holds it until its turn.
 * @module
 */
import { postBlock } from "./moderation.js";
import { isValidName, normalizeRoom } from "./names.js";

/** @typedef {import("./types.js").Context} Context */
/** @typedef {import("./types.js").OutboxItem} OutboxItem */
/** @typedef {import("./types.js").RoomMessage} RoomMessage */

/** Errors that answer a `send` (the server does not always echo the cid with them). */
const SEND_ERRORS = new Set([
  "text_too_long",
  "bad_message",
  "bad_room",
  "bad_name",
  "not_member",
  "user_not_found",
  "rate_limited",
  "store_failed",
  "unavailable",
  "shutting_down",
]);
/**
 * Send errors worth retrying later: the message may go through then (`unavailable`: the store was out
 * of reach for a moment, as on Redis during a failover; `shutting_down`: after the restart).
 */
const RETRY_ERRORS = new Set(["rate_limited", "store_failed", "unavailable", "shutting_down"]);

/**
 * A new message's `cid`: the time in ms then 48 random bits, both in base 36 at a fixed width. Unique to a
 * person across their tabs, and growing with time, so that the server's index of a person's `cid`s
 * takes each at its end: a random one (a UUID) lands each message on its own page of that index, which
 * every durable write then writes and syncs (bench/cid_cost.ts, a group's durable write against one
 * without cids: 3.05x with UUIDs and 1.44x with these from 10 senders, 2.78x and 2.38x from 200).
 * @returns {string}
 */
export function newCid() {
  const [high, low] = crypto.getRandomValues(new Uint32Array(2));
  // 48 random bits: the tabs of one person sending in the same millisecond never collide in practice.
  const random = ((high & 0xffff) * 2 ** 32 + low).toString(36).padStart(10, "0");
  return `${Date.now().toString(36).padStart(9, "0")}-${random}`;
}

/** Messages waiting for the server's ack. */
export class Outbox {
  /**
   * @param {Context} ctx
   * @param {number} ackTimeoutMs re-send a message (same cid) not acked after this long
   */
  constructor(ctx, ackTimeoutMs) {
    this.#ctx = ctx;
    this.#ackTimeoutMs = ackTimeoutMs;
    const stored = ctx.persisted.load("outbox");
    for (const i of Array.isArray(stored) ? stored : []) {
      if (!i || typeof i.cid !== "string" || typeof i.text !== "string") continue;
      if (typeof i.room !== "string" && typeof i.to !== "string") continue;
      this.items.push({ ...i, state: i.state === "failed" ? "failed" : "pending" });
    }
  }

  /** @type {OutboxItem[]} oldest first */
  items = [];
  #ctx;
  #ackTimeoutMs;
  /** @type {string | undefined} cid of the one send in flight */
  #inFlight = undefined;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #ackTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #pumpTimer;
  /** When {@link #pumpTimer} fires (ms). */
  #pumpDue = 0;

  /**
   * Queues a message (see {@link import("./client.js").ChatClient.send}) and sends it when it can.
   * @param {{ room?: string, to?: string, text: string, replyTo?: number }} target
   * @returns {OutboxItem}
   * @throws {RangeError} when the text is empty or too long, or the target is missing
   */
  add(target) {
    const { client } = this.#ctx;
    const text = target.text;
    if (text.trim() === "") throw new RangeError("The message is empty");
    if (text.length > client.limits.textChars) {
      throw new RangeError(`Messages are at most ${client.limits.textChars} characters`);
    }
    /** @type {OutboxItem} */
    const item = { cid: newCid(), text, createdAt: Date.now(), state: "pending" };
    if (target.to !== undefined) {
      if (!isValidName(target.to)) throw new RangeError(`"${target.to}" is not a valid name`);
      item.to = target.to;
    } else {
      const room = target.room === undefined ? undefined : normalizeRoom(target.room);
      if (!room || !client.rooms.has(room)) throw new RangeError("Join the room before sending to it");
      item.room = room;
      if (target.replyTo !== undefined) {
        if (!Number.isSafeInteger(target.replyTo) || target.replyTo < 1) {
          throw new RangeError(`replyTo must be a message's seq, got ${target.replyTo}`);
        }
        item.replyTo = target.replyTo;
      }
    }
    this.items.push(item);
    this.#changed();
    this.pump();
    return item;
  }

  /**
   * The entry `cid`, if it waits here.
   * @param {unknown} cid
   */
  find(cid) {
    return typeof cid === "string" ? this.items.find((i) => i.cid === cid) : undefined;
  }

  /**
   * Sends a failed message again (same cid).
   * @param {string} cid
   */
  retry(cid) {
    const item = this.find(cid);
    if (!item || item.state !== "failed") return;
    item.state = "pending";
    delete item.error;
    this.#changed();
    this.pump();
  }

  /**
   * Drops a message.
   * @param {string} cid
   */
  discard(cid) {
    if (this.#inFlight === cid) this.clearInFlight();
    this.#drop((i) => i.cid !== cid);
    this.pump();
  }

  /**
   * Drops what waits for `room` (it was left).
   * @param {string} room
   */
  dropRoom(room) {
    this.#drop((i) => i.room !== room);
  }

  /**
   * Removes entry `cid`: it was delivered.
   * @param {string} cid
   */
  settle(cid) {
    if (this.#inFlight === cid) this.clearInFlight();
    this.#drop((i) => i.cid !== cid);
  }

  /**
   * Our own messages that came back: their entries are done.
   * @param {RoomMessage[]} msgs
   */
  settleMine(msgs) {
    for (const msg of msgs) if (msg.cid && this.#ctx.client.isMe(msg.from)) this.settle(msg.cid);
  }

  /**
   * Fails every entry of `room` not yet answered: it would wait for a join that is not coming.
   * @param {string} room
   * @param {string} error
   */
  failRoom(room, error) {
    let changed = false;
    for (const item of this.items) {
      if (item.room !== room || item.state === "failed") continue;
      if (item.cid === this.#inFlight) this.clearInFlight();
      item.state = "failed";
      item.error = error;
      changed = true;
    }
    if (changed) this.#changed();
  }

  /**
   * Someone was renamed: messages to them go to the new name.
   * @param {string} old
   * @param {string} name
   */
  renamed(old, name) {
    for (const i of this.items) if (i.to === old) i.to = name;
  }

  /**
   * `ack`: the message is stored. It normally came just before; a re-send that the server
   * de-duplicated brings only the ack, so make sure the message is shown.
   * @param {Record<string, any>} m
   */
  acked(m) {
    const item = this.find(m.cid);
    if (item?.room) this.#ctx.rooms.sentToRoom(item.room, item.cid);
    if (item?.room && typeof m.seq === "number") this.#ctx.rooms.showAcked(item.room, item, m);
    else if (item?.to) this.#ctx.directs.showAcked(item.to, item, m);
    this.settle(m.cid);
    this.pump();
  }

  /**
   * An `error`: the entry it refuses, if any, is sent again later (a passing refusal), waits its turn
   * (slow mode) or fails with the server's sentence.
   * @param {Record<string, any>} m
   * @returns {OutboxItem | undefined} the entry it refused
   */
  refused(m) {
    /** @type {OutboxItem | undefined} */
    let item;
    if (typeof m.cid === "string") item = this.find(m.cid);
    // The server does not echo the cid with some refusals of a send (a frame refused before it is
    // read as a send); with one send in flight at a time, a send error belongs to that one. An error
    // naming a room without a cid answers something else (a moderation frame).
    else if (this.#inFlight && SEND_ERRORS.has(m.code) && m.room === undefined) {
      item = this.find(this.#inFlight);
    }
    if (!item) return undefined;
    const r = typeof item.room === "string" ? this.#ctx.client.rooms.get(item.room) : undefined;
    if (item.cid === this.#inFlight) this.clearInFlight();
    if (RETRY_ERRORS.has(m.code)) {
      item.state = "pending";
      this.pumpLater(1000);
    } else if (m.code === "slow_mode" && r) {
      // The message waits its turn and goes by itself, rather than failing; a person who writes two
      // lines quickly means both. The room's later messages wait behind it (order).
      this.#ctx.moderation.slowed(r, m);
      item.state = "pending";
      this.pump();
    } else {
      item.state = "failed";
      item.error = String(m.message ?? m.code);
      this.pump();
    }
    this.#changed();
    return item;
  }

  /** The send in flight is answered or given up: the next may go. */
  clearInFlight() {
    if (this.#inFlight) {
      const item = this.find(this.#inFlight);
      if (item?.state === "sending") item.state = "pending";
    }
    this.#inFlight = undefined;
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
  }

  /**
   * Sends the next ready entry; one at a time so every refusal is attributable.
   *
   * A message to a room where you know you cannot post (muted, read-only, removed: see
   * {@link postBlock}) fails here with the sentence the page shows, without being sent: each refusal
   * would cost the connection a strike (too many close it). The server's word still decides: what
   * goes out and is refused fails with the server's sentence. Slow mode holds a room's messages
   * until its wait is over, then they go.
   */
  pump() {
    const { client, connection } = this.#ctx;
    if (!client.live || this.#inFlight || connection.stopped) return;
    const now = Date.now();
    /** Rooms whose messages wait for slow mode: later ones must not overtake the first. */
    let wake = Infinity;
    for (const item of this.items) {
      if (item.state !== "pending") continue;
      if (item.room) {
        const r = client.rooms.get(item.room);
        if (!r) {
          item.state = "failed";
          item.error = "You are not in this room any more";
          this.#changed();
          continue;
        }
        const block = r.joined || r.removed ? postBlock(r, client.moderates(r.name), now) : undefined;
        if (block) {
          item.state = "failed";
          item.error = block.text;
          this.#changed();
          continue;
        }
        if (!r.joined) continue;
        if (r.slowUntil > now) {
          wake = Math.min(wake, r.slowUntil);
          continue;
        }
      }
      if (!this.#ctx.takeToken()) return this.pumpLater(Math.ceil(1000 / client.limits.messagesPerSecond));
      item.state = "sending";
      this.#inFlight = item.cid;
      /** @type {Record<string, unknown>} */
      const msg = { type: "send", text: item.text, cid: item.cid };
      if (item.room) msg.room = item.room;
      else msg.to = item.to;
      if (item.replyTo !== undefined) msg.replyTo = item.replyTo;
      this.#ctx.send(msg);
      this.#ackTimer = setTimeout(() => {
        this.#ackTimer = undefined;
        if (this.#inFlight !== item.cid) return;
        // No answer: send it again with the same cid (the server answers a duplicate with its ack).
        this.#inFlight = undefined;
        item.state = "pending";
        this.pump();
      }, this.#ackTimeoutMs);
      this.#changed();
      return;
    }
    if (wake !== Infinity) this.pumpLater(wake - now);
  }

  /**
   * Runs the pump in `ms` (or sooner, when it is due sooner already).
   * @param {number} ms
   */
  pumpLater(ms) {
    const due = Date.now() + ms;
    if (this.#pumpTimer !== undefined) {
      if (this.#pumpDue <= due) return;
      clearTimeout(this.#pumpTimer);
    }
    this.#pumpDue = due;
    this.#pumpTimer = setTimeout(() => {
      this.#pumpTimer = undefined;
      this.pump();
    }, ms);
  }

  /** The client stops: no timer of the outbox fires any more. */
  halt() {
    clearTimeout(this.#ackTimer);
    clearTimeout(this.#pumpTimer);
    this.#ackTimer = this.#pumpTimer = undefined;
  }

  /**
   * Keeps the entries for which `keep` holds; stores and tells when any went.
   * @param {(item: OutboxItem) => boolean} keep
   */
  #drop(keep) {
    const n = this.items.length;
    this.items = this.items.filter(keep);
    if (n !== this.items.length) this.#changed();
  }

  /** Stores the outbox (a message being sent is stored as pending) and tells the page. */
  #changed() {
    this.#ctx.persisted.save(
      "outbox",
      this.items.map(({ cid, room, to, text, replyTo, createdAt, state, error }) => ({
        cid,
        room,
        to,
        text,
        replyTo,
        createdAt,
        state: state === "sending" ? "pending" : state,
        error,
      })),
    );
    this.#ctx.emit("outbox", {});
  }
}

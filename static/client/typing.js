/**
 * "x is typing": what you tell a room (throttled, and said again after your message cleared it) and
 * who types in each room (each for a few seconds after their last `typing`).
 * @module
 */

/** @typedef {import("./types.js").Context} Context */

/** Typing, both ways. */
export class Typing {
  /**
   * @param {Context} ctx
   * @param {{ typingTtlMs?: number, typingThrottleMs?: number }} opts
   */
  constructor(ctx, opts) {
    this.#ctx = ctx;
    this.#ttlMs = opts.typingTtlMs ?? 3000;
    this.#throttleMs = opts.typingThrottleMs ?? 2000;
  }

  #ctx;
  #ttlMs;
  #throttleMs;
  /** @type {Map<string, number>} room → when we last sent typing */
  #sent = new Map();
  /** @type {Map<string, number>} room → when the throttle last held a `typing` back */
  #held = new Map();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #sweepTimer;

  /**
   * Tells the room you are typing (at most once per `typingThrottleMs`).
   * @param {string} room
   */
  send(room) {
    const { client } = this.#ctx;
    const r = client.rooms.get(room);
    if (!r?.joined || !client.live) return;
    const now = Date.now();
    if (now - (this.#sent.get(room) ?? 0) < this.#throttleMs) {
      this.#held.set(room, now);
      return;
    }
    if (!this.#ctx.takeToken()) return;
    this.#sent.set(room, now);
    this.#held.delete(room);
    this.#ctx.send({ type: "typing", room });
  }

  /**
   * Our message reached the room, and with it every member cleared our "is typing": the next
   * keystroke must say so again, not wait out the throttle. It is reset here rather than when the
   * message is sent because the server delivers a message only once it is stored, while `typing`
   * goes out at once: a `typing` sent right behind the message would overtake it and be cleared by
   * it. Keystrokes held back since the message was written (`createdAt`) are reported now.
   * @param {string} room
   * @param {number | undefined} createdAt when our message was written, if the outbox holds it
   */
  cleared(room, createdAt) {
    this.#sent.delete(room);
    const held = this.#held.get(room);
    this.#held.delete(room);
    if (held !== undefined && createdAt !== undefined && held >= createdAt) this.send(room);
  }

  /**
   * `typing`: someone else types in a room.
   * @param {Record<string, any>} m
   */
  line(m) {
    const r = this.#ctx.client.rooms.get(m.room);
    if (!r || typeof m.name !== "string" || this.#ctx.client.isMe(m.name)) return;
    r.typing.set(m.name, Date.now() + this.#ttlMs);
    this.#scheduleSweep();
    this.#ctx.emit("typing", { room: r.name });
  }

  /** The client stops: the sweep does not fire any more. */
  halt() {
    clearTimeout(this.#sweepTimer);
    this.#sweepTimer = undefined;
  }

  #scheduleSweep() {
    if (this.#sweepTimer !== undefined) return;
    this.#sweepTimer = setTimeout(() => {
      this.#sweepTimer = undefined;
      const now = Date.now();
      let more = false;
      for (const r of this.#ctx.client.rooms.values()) {
        let changed = false;
        for (const [name, until] of r.typing) {
          if (until <= now) {
            r.typing.delete(name);
            changed = true;
          } else more = true;
        }
        if (changed) this.#ctx.emit("typing", { room: r.name });
      }
      if (more) this.#scheduleSweep();
    }, 250);
  }
}

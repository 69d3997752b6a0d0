/**
 * Presence held to be sent together: per room, the `presence` lines not yet sent, and when the room last
 * sent some, so that a room filling up sends its members one frame an interval instead of one a join.
 * Who gets each line is the hub's to decide (lib/hub.ts): this module only holds them and says when.
 * @module
 */

/** A presence line waiting to be sent, with the room's join count when it happened. */
export interface HeldPresence {
  line: string;
  /** The room's join count when it happened: members who joined later do not get it. */
  at: number;
  /** The person it is about: their own connections do not get it. */
  about?: string;
  /** In a big room, the name whose watchers get it (see lib/hub_watch.ts). */
  watched?: string;
}

/** The presence lines each room holds until it sends them. */
export class PresenceQueue {
  /** By room, oldest first; a room is here only while it holds lines. */
  readonly #held = new Map<string, HeldPresence[]>();
  /** When each room last sent its lines (the caller's clock, ms), until the room is forgotten. */
  readonly #sentAt = new Map<string, number>();
  readonly #onHeld: () => void;

  /** `onHeld` runs when a room that held nothing gets a line: its owner then flushes after a delay. */
  constructor(onHeld: () => void) {
    this.#onHeld = onHeld;
  }

  /** Holds `p` for `room`. */
  hold(room: string, p: HeldPresence): void {
    const lines = this.#held.get(room);
    if (lines) return void lines.push(p);
    this.#held.set(room, [p]);
    this.#onHeld();
  }

  /** What `room` holds, now no longer held (undefined: nothing). */
  take(room: string): HeldPresence[] | undefined {
    const lines = this.#held.get(room);
    this.#held.delete(room);
    return lines;
  }

  /**
   * Calls `send` for each room holding lines, except, with `interval`, those that sent less than
   * `interval` ago; `send` says whether the room still exists (its time is then kept). Returns when the
   * first room still holding lines is due (undefined: none is).
   */
  due(now: number, interval: number, send: (room: string) => boolean): number | undefined {
    let due: number | undefined;
    for (const room of this.#held.keys()) {
      const sent = this.#sentAt.get(room);
      if (interval > 0 && sent !== undefined && sent + interval > now) {
        if (due === undefined || sent + interval < due) due = sent + interval;
        continue;
      }
      if (send(room)) this.#sentAt.set(room, now);
    }
    return due;
  }

  /** `room` is gone: nothing it held is sent, and a new room of that name starts afresh. */
  forget(room: string): void {
    this.#held.delete(room);
    this.#sentAt.delete(room);
  }
}

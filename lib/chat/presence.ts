/**
 * Presence: who is in a room. In one process the hub announces arrivals and departures itself; when
 * rooms span processes, sharing decides a name's first join and last leave anywhere and the lines come
 * back through it. Either way announcements are grouped for `presenceDelayMs`, and a room sends them
 * at most once a `presenceIntervalMs`.
 * @module
 */
import type { Elsewhere } from "../hub.ts";
import type { ChatContext } from "./context.ts";

/** The presence side of the chat service. */
export class Presence {
  readonly #ctx: ChatContext;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When {@link #timer} fires (performance.now ms). */
  #timerAt = 0;
  #countTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(ctx: ChatContext) {
    this.#ctx = ctx;
  }

  /** Tells sharing that `name` arrived in or left `room` here (best effort). */
  present(room: string, name: string, present: boolean): void {
    this.#ctx.sharing.presence(room, name, present).catch((e) =>
      this.#ctx.log.debug("presence not recorded", { room, error: (e as Error).message })
    );
  }

  /** A presence line sharing decided (presence spanning processes): it goes through the hub's grouping. */
  announce(room: string, name: string, line: string): void {
    // A quote inside a name or display name is escaped in JSON, so this is the event field's own.
    this.#ctx.hub.announce(room, line, name, line.includes('"event":"leave"') ? -1 : 1);
  }

  /**
   * Person `key` has direct conversations with `names` (see Hub.watchPartners): told about them in
   * big rooms from now on, and which of them are there now, on any process.
   */
  watchPartners(key: string, names: readonly string[], replace = false): void {
    this.elsewhere(this.#ctx.hub.watchPartners(key, names, replace));
  }

  /**
   * Partners the hub could not find in this process (a room spanning processes): those the shared
   * presence has are told as present. A leave in the same instant may reach the member first.
   */
  elsewhere(list: readonly Elsewhere[]): void {
    const { hub, sharing, log } = this.#ctx;
    for (const { id, room, names } of list) {
      sharing.present(room, names).then((found) => hub.tellPresent(id, room, found)).catch((e) =>
        log.debug("partners' presence not read", { room, error: (e as Error).message })
      );
    }
  }

  /**
   * A room began holding presence: it goes out in one group after `presenceDelayMs`, or, when the
   * room sent presence less than `presenceIntervalMs` ago, that long after it.
   */
  soon(): void {
    if (this.#ctx.closing()) return;
    const at = performance.now() + this.#ctx.cfg.presenceDelayMs;
    // A timer due later (waiting out another room's interval) would hold this room's lines too long.
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    this.#flushAt(at);
  }

  #flushAt(at: number): void {
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#ctx.closing()) return;
      const due = this.#ctx.hub.flushPresence(performance.now(), this.#ctx.cfg.presenceIntervalMs);
      if (due !== undefined) this.#flushAt(due);
    }, Math.max(0, at - performance.now()));
  }

  /**
   * A big room's people changed: after `countIntervalMs`, each such room's members get its count,
   * once, whatever came and went meanwhile (at most one `count` per room per interval).
   */
  countSoon(): void {
    if (this.#ctx.closing() || this.#countTimer !== undefined) return;
    this.#countTimer = setTimeout(() => {
      this.#countTimer = undefined;
      const { hub, sharing, log } = this.#ctx;
      for (const room of hub.countsDue()) {
        sharing.memberCount(room).then((n) => {
          hub.counted(room, n);
          hub.tellCount(room, n);
        }).catch((e) => log.debug("member count not read", { room, error: (e as Error).message }));
      }
    }, this.#ctx.cfg.countIntervalMs);
  }

  /** Stops the grouping timers (shutdown). */
  close(): void {
    clearTimeout(this.#timer);
    clearTimeout(this.#countTimer);
  }
}

/**
 * A fake connection for unit tests of `Chat`: a {@link Peer} that keeps every line it is sent (parsed
 * as JSON) and every close, sends frames as a client would, and lets a test wait for the next line of a
 * type. It behaves like the WebSocket adapter (lib/ws.ts) where the chat can tell: once closed it takes
 * no more lines, reports an infinite backlog, and tells its owner it is gone on the next microtask.
 * @module
 */
import type { Peer } from "../../lib/hub.ts";

/** One server message (one line of a frame). */
// deno-lint-ignore no-explicit-any
export type Msg = Record<string, any>;

/** How long {@link FakePeer.next} waits before failing the test (ms): everything here runs in memory. */
export const WAIT_MS = 1000;

/** What a {@link FakePeer} tells its owner (the chat under test), as lib/ws.ts does. */
export interface PeerHooks {
  /** A text frame from the client. */
  frame?(id: number, data: string): void;
  /** A binary frame of `bytes` from the client. */
  binary?(id: number, bytes: number): void;
  /** The connection is gone (once): after a server close, on the next microtask; at once on a hang-up. */
  gone?(id: number): void;
}

/** A {@link Peer} that records what it is sent, and sends frames as a client would. */
export class FakePeer implements Peer {
  readonly id: number;
  /** Every line sent while open, parsed, in order. */
  readonly lines: Msg[] = [];
  /** The first close by the server: code and reason. */
  closedWith: { code: number; reason: string } | undefined;
  /** The client went away ({@link hangUp}). */
  hungUp = false;
  /** What {@link backlog} reports while open: set it to act as a client that does not read. */
  queued = 0;
  readonly #hooks: PeerHooks;
  readonly #taken = new WeakSet<Msg>();
  #waiters: { match: (m: Msg) => boolean; done: (m: Msg) => void }[] = [];
  #closeWaiters: (() => void)[] = [];
  #gone = false;

  constructor(id: number, hooks: PeerHooks = {}) {
    this.id = id;
    this.#hooks = hooks;
  }

  /** Sends one client frame: an object as JSON, a string as it is (raw text, broken JSON). */
  frame(m: Msg | string): void {
    this.#hooks.frame?.(this.id, typeof m === "string" ? m : JSON.stringify(m));
  }

  /** Sends one binary client frame of `bytes` bytes. */
  binary(bytes: number): void {
    this.#hooks.binary?.(this.id, bytes);
  }

  /** The client closes the connection: nothing more reaches it, and the chat hears at once. */
  hangUp(): void {
    this.hungUp = true;
    this.#leave();
  }

  send(line: string): boolean {
    if (this.closedWith || this.hungUp) return false;
    // A Peer gets one JSON object per line (the adapter joins lines into frames).
    const m: Msg = JSON.parse(line);
    this.lines.push(m);
    const waiter = this.#waiters.find((w) => w.match(m));
    if (waiter) {
      this.#waiters = this.#waiters.filter((w) => w !== waiter);
      waiter.done(m);
    }
    return true;
  }

  close(code: number, reason: string): void {
    if (this.closedWith) return;
    this.closedWith = { code, reason };
    for (const resolve of this.#closeWaiters.splice(0)) resolve();
    // As the adapter: the chat lets go of a connection it closed without waiting for the client.
    queueMicrotask(() => this.#leave());
  }

  backlog(): number {
    return this.closedWith || this.hungUp ? Infinity : this.queued;
  }

  /**
   * The next line of `type` (and `pred`) not taken yet, waiting up to `ms`; earlier lines that do not
   * match stay for later calls. Rejects, naming the last lines, when none comes in time.
   */
  next(type: string, pred: (m: Msg) => boolean = () => true, ms = WAIT_MS): Promise<Msg> {
    const match = (m: Msg) => m.type === type && pred(m) && !this.#taken.has(m);
    const found = this.lines.find(match);
    if (found) return Promise.resolve(this.#take(found));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.done !== done);
        const last = this.lines.slice(-5).map((m) => JSON.stringify(m).slice(0, 200));
        reject(new Error(`peer ${this.id}: no ${type} within ${ms} ms; last lines:\n${last.join("\n")}`));
      }, ms);
      const done = (m: Msg) => {
        clearTimeout(timer);
        resolve(this.#take(m));
      };
      this.#waiters.push({ match, done });
    });
  }

  /** The next `error` line, with its code checked. */
  async error(code: string, pred: (m: Msg) => boolean = () => true, ms = WAIT_MS): Promise<Msg> {
    const e = await this.next("error", pred, ms);
    if (e.code !== code) throw new Error(`peer ${this.id}: expected error ${code}, got ${JSON.stringify(e)}`);
    return e;
  }

  /** Every line of `type` received so far, taken or not. */
  all(type: string): Msg[] {
    return this.lines.filter((m) => m.type === type);
  }

  /** Resolves with the close once {@link close} was called, or rejects after `ms`. */
  closed(ms = WAIT_MS): Promise<{ code: number; reason: string }> {
    if (this.closedWith) return Promise.resolve(this.closedWith);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`peer ${this.id}: not closed within ${ms} ms`)), ms);
      this.#closeWaiters.push(() => {
        clearTimeout(timer);
        resolve(this.closedWith!);
      });
    });
  }

  #leave(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#hooks.gone?.(this.id);
  }

  #take(m: Msg): Msg {
    this.#taken.add(m);
    return m;
  }
}

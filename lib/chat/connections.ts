/**
 * The open connections of one chat service: who each is, its rate bucket and strikes, and the one
 * way to answer it (an error frame, a strike, a close). Every feature that finishes work later asks
 * {@link Connections.alive} whether the connection it started for is still the same one.
 * @module
 */
import type { Peer } from "../hub.ts";
import type { Identity } from "../identity.ts";
import type { Logger } from "../log.ts";
import { type Bucket, fullBucket, takeToken } from "../limits.ts";
import type { Metrics } from "../metrics.ts";
import { CloseCode, encodeError, ProtocolError } from "../protocol.ts";

/** One connection, as the chat rules see it. */
export interface Conn {
  peer: Peer;
  /** The person's key ({@link Identity.key}); "" until an owed `auth` frame has come. */
  key: string;
  /** Who this is; undefined while an owed `auth` frame has not come. */
  identity?: Identity;
  /** An owed `auth` frame: the room to join once it comes, and when to stop waiting (ms). */
  awaiting?: { room: string; until: number };
  /** An `auth` frame is being verified. */
  verifying?: boolean;
  /**
   * Frames that arrived while a join was being checked, in order: they are handled after it, so a
   * client may send `join` and then `send` to the room at once.
   */
  queue?: string[];
  /** The IP address it connects from, when the HTTP layer said: limits per address, and guests' bans by address. */
  address?: string;
  /** The room a raw (non-JSON) frame goes to: the last one joined. */
  current: string;
  /** The rate bucket: frames this connection may still send now. */
  bucket: Bucket;
  strikes: number;
  strikesSince: number;
  /** When its last message was queued (performance.now ms), to tell a person's pace from a loop's. */
  sentAt: number;
  /**
   * The name claim across processes in flight (at connect, or a `nick`): the next one waits for it,
   * so the name asked for last is the one held.
   */
  naming?: Promise<unknown>;
  /** Characters held for answers being read now (see `AnswerBudget.reserve`). */
  answering: number;
  /** When its last frame was read (performance.now ms): a shutdown closes it once it is silent. */
  heardAt: number;
}

/**
 * What an error frame may name besides its code: the send, room or conversation it is about, or the
 * `rooms` request it refuses (its `q` and `after`, as its answer would have named them).
 */
export interface About {
  cid?: string;
  room?: string;
  conv?: string;
  q?: string;
  after?: string;
}

/** Limits the registry applies. */
export interface ConnectionLimits {
  /** Tokens of the rate bucket (and frames a connection may have waiting for a join check). */
  burst: number;
  messagesPerSecond: number;
  /** Refused frames within a minute before the connection is closed. */
  maxStrikes: number;
}

const STRIKE_WINDOW_MS = 60_000;

/** The open connections, by id. */
export class Connections {
  readonly #conns = new Map<number, Conn>();
  readonly #limits: ConnectionLimits;
  readonly #log: Logger;
  readonly #metrics: Metrics;

  constructor(limits: ConnectionLimits, log: Logger, metrics: Metrics) {
    this.#limits = limits;
    this.#log = log;
    this.#metrics = metrics;
  }

  /** Registers a new connection with a full bucket. */
  add(peer: Peer): Conn {
    const t = performance.now();
    const conn: Conn = {
      peer,
      key: "",
      current: "",
      bucket: fullBucket(this.#limits.burst, t),
      strikes: 0,
      strikesSince: t,
      sentAt: -Infinity,
      answering: 0,
      heardAt: t,
    };
    this.#conns.set(peer.id, conn);
    return conn;
  }

  get(id: number): Conn | undefined {
    return this.#conns.get(id);
  }

  /** Forgets connection `id`; the connection it was, or undefined when it was gone already. */
  delete(id: number): Conn | undefined {
    const conn = this.#conns.get(id);
    if (conn) this.#conns.delete(id);
    return conn;
  }

  /** Whether `conn` is still open: work that finishes later answers only a connection still alive. */
  alive(conn: Conn): boolean {
    return this.#conns.get(conn.peer.id) === conn;
  }

  get size(): number {
    return this.#conns.size;
  }

  values(): IterableIterator<Conn> {
    return this.#conns.values();
  }

  /** Runs `fn`; a refusal it throws is answered, with `about` (the room or send it is about). */
  run(id: number, fn: () => void, about?: About): void {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof ProtocolError)) {
        this.#log.error("handler failed", { conn: id, error: String((e as Error)?.stack ?? e) });
        return;
      }
      this.refuse(id, e, about);
    }
  }

  /** Answers a refusal that is the client's doing: an error frame and a strike (or the close it names). */
  refuse(id: number, e: ProtocolError, about?: About): void {
    const conn = this.#conns.get(id);
    if (!conn) return;
    this.answer(conn.peer, e, about);
    if (e.closeCode) return conn.peer.close(e.closeCode, e.code);
    const t = performance.now();
    if (t - conn.strikesSince > STRIKE_WINDOW_MS) conn.strikes = 0, conn.strikesSince = t;
    if (++conn.strikes > this.#limits.maxStrikes) conn.peer.close(CloseCode.POLICY, "too many bad frames");
  }

  /** Sends `e` as an error frame, with no strike: for refusals that are not the client's fault. */
  answer(peer: Peer, e: ProtocolError, about?: About): void {
    if (!this.#conns.has(peer.id)) return;
    this.#metrics.error(e.code);
    peer.send(encodeError(e, about));
  }

  /** Takes one token of the connection's bucket; `cap` 0 refuses at once (a full queue). */
  takeToken(conn: Conn, cap = this.#limits.burst): void {
    const { messagesPerSecond, burst } = this.#limits;
    if (!takeToken(conn.bucket, performance.now(), messagesPerSecond, cap)) {
      throw new ProtocolError(
        "rate_limited",
        `Slow down: at most ${messagesPerSecond} messages a second (bursts of ${burst})`,
      );
    }
  }
}

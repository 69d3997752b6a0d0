/**
 * The write pipeline: messages from every connection are grouped into one durable engine write, acked
 * in order once stored, and a send repeated (same person, same `cid`) while the first is in flight gets
 * the same ack. An idle writer waits `commitDelayMs` for company when its sender types at a person's
 * pace, so several rooms' messages share one transaction.
 * @module
 */
import { setImmediate } from "node:timers";
import { type ChatMessage, cidKey, type Draft } from "../domain.ts";
import type { Appended } from "../engine.ts";
import { UnavailableError } from "../engine.ts";
import type { Peer } from "../hub.ts";
import { ProtocolError } from "../protocol.ts";
import type { About, Conn } from "./connections.ts";
import type { ChatContext } from "./context.ts";

/**
 * A sender whose previous message came less than this many ms before is sending in a loop, not
 * typing: its messages do not make an idle writer wait for company (see `commitDelayMs`).
 */
const BULK_SENDER_GAP_MS = 100;

/** One message on its way to the engine. */
export interface Pending {
  draft: Draft;
  sender: Peer;
  /** Connections that re-sent the same cid while this was being written: they get the ack too. */
  waiters: Peer[];
  /** What an error frame about it names. */
  about: About;
  /** Its mentions of people on other processes are being looked up: the write waits for it. */
  ready?: Promise<void>;
  /** The ack line for the stored message (sent when the draft has a cid). */
  ack(m: ChatMessage): string;
  /** The message was stored now (not a repeat of an earlier cid): deliver what the engine does not. */
  stored?(m: ChatMessage): void;
}

/** The grouped durable writer. */
export class Writer {
  readonly #ctx: ChatContext;
  #pending: Pending[] = [];
  /** Messages in the write in flight. */
  #writing = 0;
  readonly #byCid = new Map<string, Pending>();
  #commitQueued = false;
  /** The wait of an idle writer for company; cleared by the commit. */
  #commitTimer: ReturnType<typeof setTimeout> | undefined;
  #inFlight: Promise<void> | undefined;
  /** Writes failed in a row; 0 while the store works. */
  #failures = 0;

  constructor(ctx: ChatContext) {
    this.#ctx = ctx;
  }

  /** Messages waiting for their durable write (queued or being written). */
  get pendingCount(): number {
    return this.#pending.length + this.#writing;
  }

  /** Whether the last durable write failed (the next successful one clears it). */
  get failing(): boolean {
    return this.#failures > 0;
  }

  /**
   * A send of person `key` with `cid` while the first one with it is still being written: `peer` gets
   * the same ack, and true is returned. A cid stored before is the engine's to recognise.
   */
  joinInFlight(key: string, cid: string | undefined, peer: Peer): boolean {
    if (cid === undefined) return false;
    const waiting = this.#byCid.get(cidKey(key, cid));
    if (waiting) waiting.waiters.push(peer);
    return waiting !== undefined;
  }

  /** Queues `p` for the next durable write; `conn` is its sender's connection, for its pace. */
  submit(p: Pending, conn: Conn): void {
    const mayWait = this.#steady(conn);
    this.#pending.push(p);
    if (p.draft.cid !== undefined) this.#byCid.set(cidKey(p.draft.key, p.draft.cid), p);
    // At the end of this turn of the event loop, so every frame read in this turn goes in one write
    // (setImmediate runs after the turn's I/O events and costs microseconds; setTimeout(0) costs
    // about 2 ms in Deno). While a write is in flight, what arrives goes in the next one. An idle
    // writer waits commitDelayMs for company: at a few messages a second per room, several rooms'
    // messages then share one transaction (one fsync) instead of one each. Not for a sender in a loop
    // (a bot, an import, a benchmark's publisher): its next message waits for this one, so the wait
    // would slow it and find no company (S1 with 100 members: 3x fewer deliveries).
    if (!this.#commitQueued) {
      this.#commitQueued = true;
      const wait = this.#ctx.cfg.commitDelayMs;
      if (wait > 0 && mayWait && !this.#inFlight) this.#commitTimer = setTimeout(this.#commitNow, wait);
      else setImmediate(this.#commitNow);
    }
  }

  /** Writes what is pending now and waits until nothing is in flight (shutdown). */
  async flush(): Promise<void> {
    this.#commit();
    while (this.#inFlight) await this.#inFlight;
  }

  /** Whether `conn` sends at a person's pace (its previous message was not within the bulk gap). */
  #steady(conn: Conn): boolean {
    const now = performance.now();
    const steady = now - conn.sentAt >= BULK_SENDER_GAP_MS;
    conn.sentAt = now;
    return steady;
  }

  readonly #commitNow = () => this.#commit();

  /**
   * Starts one durable write with everything pending, unless one is in flight: then what arrives
   * meanwhile waits and goes in the next write, so batches grow with disk latency.
   */
  #commit(): void {
    this.#commitQueued = false;
    clearTimeout(this.#commitTimer);
    this.#commitTimer = undefined;
    if (this.#inFlight || this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#writing = batch.length;
    const { engine, log } = this.#ctx;
    // Mentions of people elsewhere are looked up first; the batch keeps its order.
    const lookups = batch.filter((p) => p.ready).map((p) => p.ready);
    const appended = lookups.length === 0
      ? engine.append(batch.map((p) => p.draft))
      : Promise.all(lookups).then(() => engine.append(batch.map((p) => p.draft)));
    this.#inFlight = appended
      .then((stored) => this.#written(batch, stored), (e) => this.#failed(batch, e as Error))
      .catch((e) => log.error("delivery failed", { error: String((e as Error)?.stack ?? e) }))
      .finally(() => {
        this.#writing = 0;
        this.#inFlight = undefined;
        this.#commit();
      });
  }

  /** The batch is durable and the engine has delivered it: ack it, in order. */
  #written(batch: readonly Pending[], stored: readonly Appended[]): void {
    const { metrics, log, conns } = this.#ctx;
    metrics.storeBatches++;
    metrics.messagesStored += stored.filter((a) => !a.duplicate).length;
    if (this.#failures > 0) {
      log.warn("store recovered", { failedWrites: this.#failures });
      this.#failures = 0;
    }
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i];
      const { message, duplicate, refused } = stored[i];
      this.#forget(p);
      if (refused) {
        const err = new ProtocolError(
          "message_not_found",
          `Room "${p.draft.room}" has no message ${p.draft.replyTo} to reply to (or it was deleted)`,
        );
        for (const peer of [p.sender, ...p.waiters]) conns.refuse(peer.id, err, p.about);
        continue;
      }
      if (!duplicate) p.stored?.(message);
      if (p.draft.cid === undefined) continue;
      const ack = p.ack(message);
      p.sender.send(ack);
      for (const peer of p.waiters) peer.send(ack);
    }
  }

  /** Nothing of the batch was stored or delivered. */
  #failed(batch: readonly Pending[], e: Error): void {
    const { metrics, log, conns } = this.#ctx;
    metrics.storeFailures++;
    const unavailable = e instanceof UnavailableError;
    // The first failure is the news; on a full disk every later write fails too, and an error
    // line each would flood the log (which may live on that disk). An engine out of reach says
    // so itself (its health and its own log line), and is well again when it is back.
    if (!unavailable) {
      const level = this.#failures++ === 0 ? "error" : "debug";
      log[level]("store write failed", { messages: batch.length, error: e.message });
    }
    const err = unavailable
      ? new ProtocolError(
        "unavailable",
        "The message could not be stored now (storage is out of reach for a moment) and was not delivered; send it again",
      )
      : new ProtocolError(
        "store_failed",
        "The message could not be stored and was not delivered; send it again",
      );
    for (const p of batch) {
      this.#forget(p);
      // The server's fault, not the client's: an answer, never a strike.
      for (const peer of [p.sender, ...p.waiters]) conns.answer(peer, err, p.about);
    }
  }

  #forget(p: Pending): void {
    if (p.draft.cid !== undefined) this.#byCid.delete(cidKey(p.draft.key, p.draft.cid));
  }
}

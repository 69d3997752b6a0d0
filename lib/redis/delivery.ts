/**
 * Delivery of a Redis deployment's stored room events to this process: the messages, rule changes and
 * message changes of the rooms it watches, each once and in the room's order, from the room's channel
 * (`keys(room).channel`, published by the scripts). Pub/sub is lossy: a seq jump, or the subscriber
 * coming back from a lost connection, reads the gap from the stream before anything newer is handed on.
 * @module
 */
import type { EngineEvents, RoomChange, RoomRules } from "../engine.ts";
import type { ChangeInfo } from "../domain.ts";
import type { Logger } from "../log.ts";
import { type ChatMessage, QUOTE_MAX_CHARS } from "../protocol.ts";
import { newEpoch } from "../store.ts";
import type { RedisClients } from "./client.ts";
import * as codec from "./codec.ts";
import { roomKeys as keys } from "./keys.ts";

/** The room channels of the watched rooms, handed to the engine's subscribers in order. */
export class RoomDelivery {
  readonly #redis: RedisClients;
  readonly #log: Logger;
  readonly #subscribers = new Set<EngineEvents>();
  /** Per watched room: the last seq delivered here, and the chain that keeps delivery in order. */
  readonly #rooms = new Map<string, Watched>();

  constructor(redis: RedisClients, log: Logger) {
    this.#redis = redis;
    this.#log = log;
  }

  /** See `Engine.subscribe`. */
  subscribe(events: EngineEvents): () => void {
    this.#subscribers.add(events);
    return () => this.#subscribers.delete(events);
  }

  /**
   * Starts receiving `room`'s stored events here: subscribes, then takes the room's stored seq as
   * delivered (this process had no members in it), so a history read after it and the channel meet.
   */
  watch(room: string): Promise<void> {
    const known = this.#rooms.get(room);
    if (known) return known.ready;
    const state: Watched = {
      delivered: 0,
      epoch: "",
      live: false,
      chain: Promise.resolve(),
      ready: Promise.resolve(),
    };
    this.#rooms.set(room, state);
    state.ready = (async () => {
      await this.#redis.subscribeRoom(keys(room).channel, (raw: string) => this.#received(room, state, raw));
      const meta = await this.storedMeta(room);
      state.delivered = meta.seq;
      state.epoch = meta.epoch;
      state.live = true;
    })();
    state.ready.catch(() => this.#rooms.get(room) === state && this.#rooms.delete(room));
    return state.ready;
  }

  /** Stops receiving `room` here (its last member left). */
  unwatch(room: string): void {
    if (this.#rooms.delete(room)) this.#redis.unsubscribeRoom([keys(room).channel]);
  }

  /**
   * The room's epoch and last seq. For a watched room the last seq is what was delivered here:
   * anything newer is still on its way through the channel and must not be read twice.
   */
  async meta(room: string): Promise<{ epoch: string; lastSeq: number }> {
    const { epoch, seq } = await this.storedMeta(room);
    const watched = this.#rooms.get(room);
    const delivered = watched?.live && watched.epoch === epoch ? watched.delivered : 0;
    return { epoch, lastSeq: watched?.live ? Math.min(delivered, seq) : seq };
  }

  /**
   * The room's epoch (made now if the room is new, or Redis lost it), its last stored seq, and the
   * seq the epoch starts after.
   */
  async storedMeta(room: string): Promise<{ epoch: string; seq: number; from: number }> {
    const { meta } = this.#redis.scripts;
    return codec.decodeMeta(await this.#redis.script(meta, [keys(room).meta], [newEpoch()]));
  }

  /** What was delivered here of `room` (in which epoch), to tell after an append whether the store went back. */
  position(room: string): { epoch: string; delivered: number } | undefined {
    const state = this.#rooms.get(room);
    return state?.live ? { epoch: state.epoch, delivered: state.delivered } : undefined;
  }

  /**
   * An append here found `room`'s seq before it (`seqBefore`) below what had been delivered here
   * when the append was sent (`was`, from {@link position}): the store went back (a failover lost
   * what its replica had not got). The room gets a new epoch that starts after `seqBefore`.
   */
  wentBack(room: string, seqBefore: number, was: { epoch: string; delivered: number } | undefined): void {
    const state = this.#rooms.get(room);
    if (!state || !was || seqBefore >= was.delivered) return;
    state.chain = state.chain.then(() => state.ready).then(async () => {
      // Still the epoch it went back in (a line or another process may have moved it on meanwhile).
      if (this.#rooms.get(room) !== state || state.epoch !== was.epoch) return;
      await this.#rebase(room, state, seqBefore);
      await this.#catchUp(room, state);
    }).catch((e) => this.#log.error("redis rebase failed", { room, error: (e as Error).message }));
  }

  /**
   * Stored messages of `room` as they are now, from stream id `start` to `end` (`reverse`: newest
   * first, from `end` down), at most `count` (0: all), each reply with its quote.
   */
  async read(
    room: string,
    start: string,
    end: string,
    count: number,
    reverse = false,
  ): Promise<ChatMessage[]> {
    const { history } = this.#redis.scripts;
    return codec.decodeHistory(
      room,
      await this.#redis.script(history, [keys(room).log], [
        start,
        end,
        String(count),
        reverse ? "1" : "0",
        String(QUOTE_MAX_CHARS),
      ]),
    );
  }

  /** The subscriber came back: every watched room reads what it missed while it was away. */
  resync(): void {
    for (const [room, state] of this.#rooms) {
      state.chain = state.chain.then(() => state.ready).then(() => this.#catchUp(room, state), () => {});
    }
  }

  /** Forgets every room (the engine is closing; its clients close after, with their subscriptions). */
  close(): void {
    this.#rooms.clear();
  }

  #received(room: string, state: Watched, raw: string): void {
    let line: codec.RoomLine;
    try {
      line = codec.decodeRoomLine(room, raw);
    } catch {
      return this.#log.error("bad message on a room channel", { room });
    }
    if (line.kind === "unknown") return this.#log.error("bad change on a room channel", { room });
    if (line.kind === "room") return this.#roomChanged(room, state, line.change, line.rules);
    if (line.kind === "message") {
      return this.#messageChanged(room, state, line.epoch, line.message, line.info);
    }
    const { epoch, messages } = line;
    state.chain = state.chain.then(() => state.ready).then(async () => {
      if (epoch !== state.epoch) {
        const meta = await this.storedMeta(room);
        // A line of an epoch the room has left (sent before a rebase): what it holds is history.
        if (meta.epoch === state.epoch) return;
        this.#restart(room, state, meta.epoch, meta.from);
        // What the new epoch holds so far (this line's messages are among it, or newer).
        await this.#catchUp(room, state);
        if (meta.epoch !== epoch) return;
      }
      for (const m of messages) {
        // In order and nothing missing (the usual case): no backfill to wait for.
        if (m.seq === state.delivered + 1 && this.#rooms.get(room) === state) this.#hand(state, m);
        else await this.#catchUp(room, state, m);
      }
    }, () => {});
  }

  /** The room's rules or people changed: told in order with the room's messages. */
  #roomChanged(room: string, state: Watched, change: RoomChange, rules: RoomRules): void {
    state.chain = state.chain.then(() => {
      if (this.#rooms.get(room) !== state) return;
      for (const s of this.#subscribers) s.roomChanged?.(room, change, { ...rules });
    });
  }

  /**
   * A message was deleted or edited: told after that message is delivered here, so nobody hears of a
   * change before the message.
   */
  #messageChanged(room: string, state: Watched, epoch: string, m: ChatMessage, info: ChangeInfo): void {
    state.chain = state.chain.then(() => state.ready).then(async () => {
      if (this.#rooms.get(room) !== state || epoch !== state.epoch) return;
      if (m.seq > state.delivered) await this.#catchUp(room, state);
      for (const sub of this.#subscribers) sub.messageChanged?.({ ...m }, { ...info });
    }, () => {});
  }

  /**
   * The room has a new epoch: Redis lost it (restarted without persistence, flushed, evicted: its
   * seqs start over, `from` 0), or its store went back after `from` (a failover lost messages: the
   * seqs after `from` are given out again, under this epoch).
   */
  #restart(room: string, state: Watched, epoch: string, from: number): void {
    if (from === 0) this.#log.warn("room history was lost in Redis; its seqs start over", { room });
    else {this.#log.warn("room history went back in Redis; a new epoch from the seq it went back to", {
        room,
        from,
      });}
    state.epoch = epoch;
    state.delivered = from;
    for (const s of this.#subscribers) s.restarted?.(room, epoch, from);
  }

  /** The store holds fewer messages than were delivered here in the same epoch: a new epoch for the room. */
  async #rebase(
    room: string,
    state: Watched,
    at: number,
  ): Promise<{ epoch: string; seq: number; from: number }> {
    const { rebase } = this.#redis.scripts;
    const meta = codec.decodeMeta(
      await this.#redis.script(rebase, [keys(room).meta], [
        state.epoch,
        newEpoch(),
        String(at),
        this.#redis.publish,
      ]),
    );
    this.#restart(room, state, meta.epoch, meta.from);
    return meta;
  }

  /**
   * Delivers, once and in order, what is stored but not yet delivered here: up to just before `m`
   * (a jump in the channel) and then `m`, or without `m` everything stored (after a reconnect).
   */
  async #catchUp(room: string, state: Watched, m?: ChatMessage): Promise<void> {
    if (this.#rooms.get(room) !== state || (m && m.seq <= state.delivered)) return;
    try {
      let target = m ? m.seq - 1 : 0;
      if (!m) {
        let meta = await this.storedMeta(room);
        if (meta.epoch !== state.epoch) this.#restart(room, state, meta.epoch, meta.from);
        else if (meta.seq < state.delivered) meta = await this.#rebase(room, state, meta.seq);
        target = meta.seq;
      }
      if (target > state.delivered) {
        for (const g of await this.read(room, `${state.delivered + 1}-1`, `${target}-1`, 0)) {
          if (g.seq > state.delivered) this.#hand(state, g);
        }
        // What retention trimmed away is gone for everyone; move on rather than wait for it.
        if (state.delivered < target) state.delivered = target;
      }
    } catch (e) {
      // Redis is away: the next message or the reconnect tries again from `delivered`.
      this.#log.error("redis backfill failed", { room, error: (e as Error).message });
      if (m) return;
    }
    if (m && m.seq === state.delivered + 1) this.#hand(state, m);
  }

  #hand(state: Watched, m: ChatMessage): void {
    state.delivered = m.seq;
    for (const s of this.#subscribers) s.message(m);
  }
}

interface Watched {
  delivered: number;
  /** The epoch `delivered` counts in. */
  epoch: string;
  /** Subscribed and `delivered` set: reads are clamped to it. */
  live: boolean;
  chain: Promise<void>;
  ready: Promise<void>;
}

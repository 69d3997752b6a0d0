/**
 * Retention on Redis beyond what the append script does for the rooms it writes: the rooms (and
 * conversations) nobody writes to again are aged at each prune, found in {@link AGING}, and guests who
 * write, or are written to, stay in the people directory as long as the messages may.
 * @module
 */
import type { Draft } from "../domain.ts";
import { OncePer } from "../limits.ts";
import type { Logger } from "../log.ts";
import type { RedisClients } from "./client.ts";
import { AGING, convsKey, dirKey, roomKeys as keys } from "./keys.ts";

/**
 * A guest who writes often has their directory entry's expiry moved (keep.lua) at most this often (ms)
 * by one process: the move is to the retention's age, so a minute late is nothing.
 */
const KEEP_EVERY_MS = 60_000;

/** Rooms prune ages in one call at most: the rest wait for the next (the chat prunes every 30 s). */
const AGE_ROOMS_PER_PRUNE = 100;

/** Age retention of idle rooms and the directory entries of guests who write, for one engine. */
export class RedisRetention {
  readonly #redis: RedisClients;
  readonly #retainMs: number;
  readonly #log: Logger;
  /** Whose directory entry's expiry this process moved lately (see KEEP_EVERY_MS). */
  readonly #kept = new OncePer(KEEP_EVERY_MS);

  constructor(redis: RedisClients, opts: { retainMs: number; log: Logger }) {
    this.#redis = redis;
    this.#retainMs = opts.retainMs;
    this.#log = opts.log;
  }

  /** What an append of `batch` also sends (with it, so a crash cannot leave a message out of either). */
  appending(batch: readonly Draft[]): Promise<unknown> {
    return Promise.all([this.#markAging(batch), this.#keep(batch)]);
  }

  /**
   * With age retention: each room of the batch is in {@link AGING} with the ts of its oldest message
   * (LT: a later message leaves the score), so prune finds it when that one is due. Sent with the
   * append (one command per group), so a crash cannot leave a stored message out of it.
   */
  #markAging(batch: readonly Draft[]): Promise<unknown> | undefined {
    if (this.#retainMs <= 0) return undefined;
    const oldest = new Map<string, number>();
    for (const d of batch) oldest.set(d.room, Math.min(oldest.get(d.room) ?? Infinity, d.ts));
    const members = [...oldest].map(([value, score]) => ({ score, value }));
    return this.#redis.run(() => this.#redis.cmd.zAdd(AGING, members, { LT: true })).catch((e) =>
      this.#log.warn("rooms not marked for retention", { error: (e as Error).message })
    );
  }

  /**
   * Guests who write, or are written to, stay in the directory as long as the messages may (keep.lua):
   * the directory is in another slot than a room, so this is a script of its own, sent with the append.
   */
  #keep(batch: readonly Draft[]): Promise<unknown> | undefined {
    const now = Date.now();
    const keys = new Set<string>();
    for (const d of batch) {
      for (const key of [d.key, ...d.between ?? []]) {
        if (this.#kept.due(key, now)) keys.add(key);
      }
    }
    if (keys.size === 0) return undefined;
    const until = this.#retainMs > 0 ? String(now + this.#retainMs) : "forever";
    return this.#redis.script(this.#redis.scripts.keep, [...keys].map(dirKey), [until]).catch((e) => {
      for (const key of keys) this.#kept.forget(key);
      this.#log.warn("directory entries not kept", { error: (e as Error).message });
    });
  }

  /**
   * Applies age retention to idle rooms: the append script ages only the rooms written to, so a room (or a conversation) nobody writes to again is aged here, found in
   * {@link AGING}. A conversation it empties leaves both people's lists. Guests' directory entries expire
   * by themselves.
   */
  async prune(now: number): Promise<number> {
    if (this.#retainMs <= 0) return 0;
    const minTs = now - this.#retainMs;
    const rooms = await this.#redis.run(() =>
      this.#redis.cmd.zRangeByScore(AGING, "-inf", `(${minTs}`, {
        LIMIT: { offset: 0, count: AGE_ROOMS_PER_PRUNE },
      })
    );
    let aged = 0;
    for (const room of rooms) {
      const k = keys(room);
      const [n, oldest, ...people] = await this.#redis.script(
        this.#redis.scripts.age,
        [k.meta, k.log, k.reads, k.rx, k.changes],
        [String(minTs)],
      ) as [number, string, ...string[]];
      aged += Number(n);
      if (oldest !== "") {
        // Messages younger than the retention are left: the room comes back when the oldest is due.
        await this.#redis.run(() => this.#redis.cmd.zAdd(AGING, [{ score: Number(oldest), value: room }]));
        continue;
      }
      if (people.length > 0) {
        await this.#redis.script(this.#redis.scripts.forgetConv, people.map(convsKey), [room, String(minTs)]);
      }
      await this.#redis.run(() => this.#redis.cmd.zRem(AGING, room));
      // A message stored meanwhile (its mark may have come before the removal): looked at again next time.
      if (await this.#redis.run(() => this.#redis.cmd.exists(k.log))) {
        await this.#redis.run(() => this.#redis.cmd.zAdd(AGING, [{ score: 0, value: room }]));
      }
    }
    return aged;
  }
}

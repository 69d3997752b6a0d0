/**
 * Reading the room directory's indexes (`ROOMS`, `PRESENT` in `keys.ts`): sorted sets of room names
 * read in name order with `ZRANGEBYLEX`, each name checked against what it stands for (the room is
 * private, or empty) before it is listed. The index is read in chunks, and a bounded number of them,
 * so a page costs about what it lists even when many names in a row are left out.
 * @module
 */
import { compareNames, type RoomListing, type RoomQuery } from "../engine.ts";
import type { RedisClients } from "./client.ts";

/** Index entries one listing reads at most, in `limit`s: past them it says how far it looked. */
const CHUNKS_PER_LISTING = 4;

/** Sorts after every character a room name may hold (so `prefix` + it bounds the names with it). */
const LAST_CHAR = "\u{10FFFF}";

/**
 * The listing `query` asks for from the index `key`: `check` tells, for a chunk of names, what each
 * one lists as (undefined: left out).
 */
export async function readIndex<T extends { room: string }>(
  redis: RedisClients,
  key: string,
  query: RoomQuery,
  check: (rooms: string[]) => Promise<(T | undefined)[]>,
): Promise<RoomListing<T>> {
  const rooms: T[] = [];
  const max = query.prefix === "" ? "+" : `(${query.prefix}${LAST_CHAR}`;
  let min = query.after !== "" && compareNames(query.after, query.prefix) >= 0
    ? `(${query.after}`
    : query.prefix === ""
    ? "-"
    : `[${query.prefix}`;
  const count = query.limit;
  for (let chunk = 1;; chunk++) {
    const names = await redis.run(() =>
      redis.cmd.zRangeByLex(key, min, max, { LIMIT: { offset: 0, count } })
    );
    const got = await check(names);
    for (const r of got) {
      if (r === undefined) continue;
      rooms.push(r);
      if (rooms.length === query.limit) return { rooms, through: r.room };
    }
    if (names.length < count) return { rooms };
    if (chunk === CHUNKS_PER_LISTING) return { rooms, through: names.at(-1) };
    min = `(${names.at(-1)}`;
  }
}

/**
 * The room directory (`rooms {q?, after?, limit?}`): the rooms anyone may find, each with its topic and
 * how many people are in it. A room is listed when storage knows it (a message was stored in it, or
 * its rules or people were changed) or someone is in it, on any process; a private room never is, not
 * even its name, whoever asks (a person allowed in finds it where they were told of it).
 *
 * Order: by name, with `after` (the `next` of the page before) as the cursor. Member counts move
 * while someone pages, so an order by members would skip or repeat the rooms whose count changed
 * between two pages; by name, a room that exists throughout comes exactly once, and every engine reads
 * that order from an index (SQLite's keys, Redis's `ZRANGEBYLEX`). `q` is a prefix of the name, for
 * the same reason: a prefix is a range of that index, so a search costs the page it answers, where a
 * substring would read every room.
 * @module
 */
import { compareNames, type RoomQuery } from "../engine.ts";
import { roomAllowedByClaim } from "../identity.ts";
import { encode, type ServerMessage } from "../server_messages.ts";
import type { AnswerBudget } from "./answers.ts";
import type { Conn } from "./connections.ts";
import type { ChatContext } from "./context.ts";
import { engineError } from "./errors.ts";

/** One room of a `rooms` answer. */
export interface DirectoryItem {
  room: string;
  topic: string;
  members: number;
}

/** JSON around one room in an answer (`{"room":…,"topic":…,"members":…}`), for the size budget. */
const ITEM_OVERHEAD_CHARS = 40;

/** The room directory feature. */
export class Directory {
  readonly #ctx: ChatContext;
  readonly #budget: AnswerBudget;

  constructor(ctx: ChatContext, deps: { budget: AnswerBudget }) {
    this.#ctx = ctx;
    this.#budget = deps.budget;
  }

  /**
   * `rooms {q?, after?, limit?}`: one page, answered `rooms {q, after?, items, next?}`; a failed read
   * is answered `error` with the same `q` and `after`.
   * @throws {ProtocolError} `busy` (the answer budget).
   */
  list(conn: Conn, q: string, after: string, limit?: number): void {
    const { cfg, conns, log } = this.#ctx;
    const n = Math.min(limit ?? cfg.directoryPage, cfg.directoryPage);
    this.#budget.during(conn, () =>
      // A token limited to some rooms is shown only those: the others it could not join anyway.
      this.page({ prefix: q, after, limit: n }, (room) => roomAllowedByClaim(conn.identity!, room)).then(
        (page) => {
          if (!conns.alive(conn)) return;
          // `q` and `after` say which request this answers: a client may have several out (typing).
          const msg: ServerMessage = { type: "rooms", q, items: page.items };
          if (after !== "") msg.after = after;
          if (page.next !== undefined) msg.next = page.next;
          conn.peer.send(encode(msg));
        },
      )).catch((e) => {
        log.error("room directory read failed", { error: (e as Error).message });
        conns.answer(conn.peer, engineError("directory", e), after === "" ? { q } : { q, after });
      });
  }

  /**
   * One page of the directory: storage's public rooms and sharing's occupied ones, merged in name
   * order up to where both looked, cut to the limit and to one answer's size. `next` is absent only
   * when nothing can follow. A room `shown` refuses takes no place, as a private one.
   */
  async page(
    query: RoomQuery,
    shown: (room: string) => boolean = () => true,
  ): Promise<{ items: DirectoryItem[]; next?: string }> {
    const { engine, sharing } = this.#ctx;
    // One more than asked: a page that ends exactly at the last room then says so (no `next`).
    const ask = { ...query, limit: query.limit + 1 };
    const [stored, occupied] = await Promise.all([engine.publicRooms(ask), sharing.occupiedRooms(ask)]);
    // Past the nearer of the two bounds a source may not have said everything it holds.
    const bounds = [stored.through, occupied.through].filter((b) => b !== undefined);
    const bound = bounds.sort(compareNames)[0];
    const within = (room: string) => bound === undefined || compareNames(room, bound) <= 0;
    const byName = new Map<string, { topic?: string; members: number }>();
    for (const r of stored.rooms) if (within(r.room)) byName.set(r.room, { topic: r.topic, members: 0 });
    for (const r of occupied.rooms) {
      if (!within(r.room)) continue;
      const known = byName.get(r.room);
      if (known) known.members = r.members;
      else byName.set(r.room, { members: r.members });
    }
    const names = [...byName.keys()].sort(compareNames);
    // Someone is in it and storage did not list it: never stored, or private. Its rules say which.
    // At most one read per occupied room of the listing, which is at most `limit + 1` long.
    const unlisted = names.filter((room) => shown(room) && byName.get(room)!.topic === undefined);
    const rules = await Promise.all(unlisted.map((room) => engine.rules(room)));
    unlisted.forEach((room, i) => {
      if (rules[i].private) byName.delete(room);
      else byName.get(room)!.topic = rules[i].topic;
    });
    const items: DirectoryItem[] = [];
    let size = 0;
    let looked = 0;
    for (const room of names) {
      if (items.length === query.limit) break;
      looked++;
      const r = byName.get(room);
      if (!r || !shown(room)) continue;
      size += room.length + r.topic!.length + ITEM_OVERHEAD_CHARS;
      if (size > this.#budget.chars && items.length > 0) return { items, next: items.at(-1)!.room };
      items.push({ room, topic: r.topic!, members: r.members });
    }
    // Everything up to the last name looked at is in the page (or private); more may follow it when
    // names are left, or when a source stopped short of its end.
    if (looked < names.length) return { items, next: names[looked - 1] };
    return bound === undefined ? { items } : { items, next: bound };
  }
}

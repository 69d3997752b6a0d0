/**
 * The hub: people, their connections, rooms and membership, presence and broadcast.
 * Pure: no I/O, no timers, no clock of its own; it talks to {@link Peer}s.
 * @module
 */
import { People, type Person } from "./hub_people.ts";
import { type HeldPresence, PresenceQueue } from "./hub_presence.ts";
import { Watchers } from "./hub_watch.ts";
import { ProtocolError } from "./protocol.ts";
import { encode, nickMessage } from "./server_messages.ts";

/** One connection as the hub sees it. */
export interface Peer {
  /** Unique per connection. */
  readonly id: number;
  /** Queues one line for the client; false if the peer is gone. Must not throw. */
  send(line: string): boolean;
  /** Ends the connection. Safe to call twice. */
  close(code: number, reason: string): void;
  /** What is queued for the client and not yet sent (bytes or characters); `Infinity` once closing. */
  backlog?(): number;
}

/** Hub limits, from the config. */
export interface HubOptions {
  maxRoomsPerConnection: number;
  maxRooms: number;
  /** Milliseconds a name stays reserved after its person's last connection. */
  nameHoldMs: number;
  /**
   * When set, presence lines are queued per room and this is called when a room with none held gets
   * one; the owner then calls {@link Hub.flushPresence} (after a short delay). Without it presence goes
   * out at once. Grouping matters in big rooms: N people arriving cost each member one frame per
   * flush instead of N frames (10,000 connections into rooms of 100: 495,000 presence lines).
   */
  onPresenceQueued?: () => void;
  /**
   * Presence is decided elsewhere (the rooms span several processes): the hub does not announce
   * joins and leaves itself; its owner calls {@link Hub.announce} with what the engine says.
   */
  externalPresence?: boolean;
  /**
   * People in a room above which it is big: its joins, leaves and renames are not told to every member
   * (only to those who asked about that person, see {@link Hub.watch} and {@link Hub.watchPartners}),
   * the room's count is (see
   * {@link Hub.countsDue}), and at most `maxTypers` people are named typing at once. Unset: never.
   */
  bigRoom?: number;
  /** Called when the first big room's count becomes due; the owner calls {@link Hub.countsDue} later. */
  onCountQueued?: () => void;
  /** Typers a big room names at once (see {@link Hub.typing}). @default 5 */
  maxTypers?: number;
  /** Milliseconds a typer holds a place after their last typing line. @default 3000 */
  typingWindowMs?: number;
  /**
   * Direct-conversation partners a connection is told about in big rooms (see {@link Hub.watchPartners});
   * past it the least recently added go. @default 100
   */
  maxPartners?: number;
}

interface Client {
  peer: Peer;
  person: Person<Client>;
  /**
   * The rooms it is in. An array, not a set: a connection is in a few rooms (a setting bounds them), and
   * an empty set costs an idle connection about 150 bytes where a one-room array costs 32.
   */
  rooms: string[];
}

/** A member whose `joined` answer is still being read: what the room sends it waits here. */
interface Holding {
  /** The room's join count when it joined, like {@link Room.members}. */
  at: number;
  lines: { line: string; seq?: number }[];
}

interface Room {
  /** Each member with the room's join count when it joined: presence queued before that is not for it. */
  members: Map<Client, number>;
  /** Joins so far, the clock of queued presence (see {@link HeldPresence}). */
  joins: number;
  /** Connections per person, so a person with several tabs joins and leaves once. */
  people: Map<Person<Client>, number>;
  /** The names of `people`, sorted by code unit: a member page costs its size, not the room's. */
  names: string[];
  /** `people` by name, for a page's display names (a lookalike search would cost far more). */
  byName: Map<string, Person<Client>>;
  /** Once it had more than `bigRoom` people here or anywhere; it stays big until it empties here. */
  big: boolean;
  /** Big rooms: someone joined or left since the last `count`. */
  countDue?: boolean;
  /**
   * With presence decided elsewhere: the people in the room across processes, as last counted (see
   * {@link Hub.counted}) and followed by the joins and leaves announced since.
   */
  known?: number;
  /** Big rooms: who is named typing, until when (ms). */
  typers?: Map<string, number>;
  /** Members whose history is still being read: they get the room's lines after it. */
  holding: Map<Client, Holding>;
  /** The highest seq delivered to the room's members. */
  delivered: number;
  /**
   * Members whose `joined` answer held a seq above {@link delivered} when it was sent (see
   * {@link Hub.settle}). Kept here, and only then, not in a map per connection: a map costs an idle
   * connection about 180 bytes, and in a room that is new or quiet nobody's answer is ahead.
   */
  settled: Map<Client, number>;
}

/** Partners a connection watches in a big room who are not in it in this process (see {@link Hub.watchPartners}). */
export interface Elsewhere {
  id: number;
  room: string;
  names: string[];
}

/** What `join()` did. */
export interface JoinResult {
  /** False when the connection was in the room already. */
  added: boolean;
  /** The room did not exist before. */
  created: boolean;
  /** The person had no other connection in the room here. */
  firstTab?: boolean;
}

/** What `leave()` did. */
export interface LeaveResult {
  removed: boolean;
  /** The room emptied and is gone. */
  deleted: boolean;
  /** It was the person's last connection in the room here. */
  lastTab?: boolean;
}

/** Rooms, members and people of one server. */
export class Hub {
  readonly #clients = new Map<number, Client>();
  readonly #rooms = new Map<string, Room>();
  readonly #people: People<Client>;
  readonly #opts: HubOptions;
  /** Presence lines waiting for {@link Hub.flushPresence}, by room. */
  readonly #presence: PresenceQueue;
  /** Who asked about whom in big rooms (see {@link Hub.watch}, {@link Hub.watchPartners}). */
  readonly #watchers = new Watchers<Client>();

  constructor(opts: HubOptions) {
    this.#opts = opts;
    this.#people = new People(opts.nameHoldMs);
    this.#presence = new PresenceQueue(() => opts.onPresenceQueued?.());
  }

  /** Connections, rooms and people (online or holding a name). */
  get size(): { clients: number; rooms: number; people: number } {
    return { clients: this.#clients.size, rooms: this.#rooms.size, people: this.#people.size };
  }

  /**
   * The name `wanted` for person `key` if free, else the first free `wanted-2`, `wanted-3`, ….
   * A person keeps a name it already holds.
   */
  freeName(key: string, wanted: string, now: number): string {
    return this.#people.freeName(key, wanted, now);
  }

  /** Whether person `key` may take `name` here (no one else holds it or a lookalike). */
  nameFreeFor(key: string, name: string, now: number): boolean {
    return this.#people.holder(key, name, now) === undefined;
  }

  /**
   * The key of whoever else holds `name` or a lookalike (online or within the hold), so that person
   * `key` cannot take it now; `undefined` when it is free for `key`.
   */
  holderOf(key: string, name: string, now: number): string | undefined {
    return this.#people.holder(key, name, now)?.key;
  }

  /** The rooms any connection of person `key` is in here. */
  roomsOfPerson(key: string): string[] {
    const rooms = new Set<string>();
    for (const c of this.#people.get(key)?.conns ?? []) for (const r of c.rooms) rooms.add(r);
    return [...rooms];
  }

  /**
   * Sends `line` once to every connection here that is in any of `rooms` (after their held presence).
   * With `renamed` (the line tells that rename, made on another process), a big room tells only the
   * connections watching the old name, and they watch the new one from now on.
   */
  tellRooms(rooms: readonly string[], line: string, renamed?: { old: string; name: string }): void {
    const told = new Set<Client>();
    for (const room of rooms) {
      const r = this.#rooms.get(room);
      if (!r) continue;
      this.#flushRoom(room);
      this.#addAudience(told, room, r, renamed?.old);
    }
    if (renamed) this.#watchers.rename(rooms, renamed.old, renamed.name);
    for (const c of told) c.peer.send(line);
  }

  /** How many connections person `key` has here. */
  tabsOf(key: string): number {
    return this.#people.get(key)?.conns.length ?? 0;
  }

  /** The name person `key` holds (online or within the hold), if any. */
  nameOf(key: string): string | undefined {
    return this.#people.get(key)?.name;
  }

  /** The display name of person `key` (online or within the hold), if they have one. */
  displayOf(key: string): string | undefined {
    return this.#people.get(key)?.display;
  }

  /**
   * Adds a connection for person `key` under `name` (which must be free: see {@link freeName}). A
   * person's first connection sets their display name (`undefined`: none); another tab keeps it, as it
   * keeps the name.
   * @throws {ProtocolError} `name_taken` if someone else holds it.
   */
  connect(peer: Peer, key: string, name: string, now: number, display?: string): void {
    if (this.#clients.has(peer.id)) throw new RangeError(`Peer ${peer.id} is connected already`);
    const person = this.#people.claim(key, name, now);
    if (person.conns.length === 0) {
      if (display === undefined) delete person.display;
      else person.display = display;
    }
    const client: Client = { peer, person, rooms: [] };
    addTo(person, "conns", client);
    this.#clients.set(peer.id, client);
  }

  /** Removes a connection and leaves its rooms. Idempotent. Returns the rooms that emptied. */
  disconnect(id: number, now: number): string[] {
    const client = this.#clients.get(id);
    if (!client) return [];
    const emptied: string[] = [];
    for (const room of [...client.rooms]) if (this.leave(id, room).deleted) emptied.push(room);
    this.#watchers.setPartners(client, []);
    this.#clients.delete(id);
    removeFrom(client.person.conns, client);
    if (client.person.conns.length === 0) client.person.lastSeen = now;
    return emptied;
  }

  /** Forgets offline people whose name hold has passed. Returns how many. */
  sweep(now: number): number {
    return this.#people.sweep(now);
  }

  /**
   * Adds connection `id` to `room`, and tells the room when the person arrives (first tab). With
   * `hold`, what the room sends the new member waits until {@link settle}: its history is being read.
   * @throws {ProtocolError} `too_many_rooms` or `server_rooms_full`.
   */
  join(id: number, room: string, hold = false): JoinResult {
    const client = this.#client(id);
    if (client.rooms.includes(room)) return { added: false, created: false };
    if (client.rooms.length >= this.#opts.maxRoomsPerConnection) {
      throw new ProtocolError(
        "too_many_rooms",
        `Cannot join room "${room}": a connection may be in ${this.#opts.maxRoomsPerConnection} rooms`,
      );
    }
    let r = this.#rooms.get(room);
    const created = !r;
    if (!r) {
      if (this.#rooms.size >= this.#opts.maxRooms) {
        throw new ProtocolError(
          "server_rooms_full",
          `Cannot create room "${room}": the server holds its maximum of rooms`,
        );
      }
      r = {
        members: new Map(),
        joins: 0,
        people: new Map(),
        names: [],
        byName: new Map(),
        big: false,
        holding: new Map(),
        delivered: 0,
        settled: new Map(),
      };
      this.#rooms.set(room, r);
    }
    const tabs = r.people.get(client.person) ?? 0;
    if (tabs === 0) {
      if (r.people.size + 1 > (this.#opts.bigRoom ?? Infinity)) r.big = true;
      insertSorted(r.names, client.person.name);
      r.byName.set(client.person.name, client.person);
      if (!this.#opts.externalPresence) {
        this.#announce(room, r, presenceLine(room, "join", client.person), undefined, client.person.name);
      }
    }
    r.people.set(client.person, tabs + 1);
    if (hold) r.holding.set(client, { at: ++r.joins, lines: [] });
    else r.members.set(client, ++r.joins);
    addTo(client, "rooms", room);
    return tabs === 0 ? { added: true, created, firstTab: true } : { added: true, created };
  }

  /**
   * Connection `id`'s `joined` answer for `room` holds every message up to `lastSeq` and has been
   * sent: what the room sent it meanwhile follows, except messages it already has. No gap and no
   * duplicate at the seam, however long the history read took.
   */
  settle(id: number, room: string, lastSeq: number): Elsewhere[] {
    const client = this.#clients.get(id);
    const r = this.#rooms.get(room);
    const held = client && r?.holding.get(client);
    if (!client || !r || !held) return [];
    r.holding.delete(client);
    r.members.set(client, held.at);
    if (lastSeq > r.delivered) r.settled.set(client, lastSeq);
    for (const { line, seq } of held.lines) if (seq === undefined || seq > lastSeq) client.peer.send(line);
    // Its `joined` held a page, not the list: which of its partners are here too is told as presence.
    const elsewhere: Elsewhere[] = [];
    if (r.big) this.#tellPresent(client, room, r, this.#watchers.partnersOf(client), elsewhere);
    return elsewhere;
  }

  /**
   * `room`'s history started over (seqs count from 1 again, or from `from` + 1 after a store that
   * went back): every member gets `line` (a fresh `joined`), after anything it is still waiting for,
   * and what it "has" counts from `from`.
   */
  restart(room: string, line: string, from = 0): void {
    const r = this.#rooms.get(room);
    if (!r) return;
    // Every member now has `from`, which `delivered` says for all of them.
    r.delivered = from;
    r.settled.clear();
    for (const c of r.members.keys()) c.peer.send(line);
    for (const held of r.holding.values()) held.lines.push({ line });
  }

  /**
   * The newest seq of `room` connection `id` has (from its `joined` or live): a history page of
   * newer ones would only repeat what is on its way.
   */
  knownSeq(id: number, room: string): number {
    const client = this.#clients.get(id);
    const r = this.#rooms.get(room);
    if (!client || !r) return 0;
    return Math.max(r.delivered, r.settled.get(client) ?? 0);
  }

  /** Removes connection `id` from `room`, and tells the room when the person's last tab leaves. */
  leave(id: number, room: string): LeaveResult {
    const client = this.#clients.get(id);
    const r = this.#rooms.get(room);
    if (!client || !r || !removeFrom(client.rooms, room)) return { removed: false, deleted: false };
    r.members.delete(client);
    r.holding.delete(client);
    r.settled.delete(client);
    this.#watchers.unpage(client, room);
    const tabs = (r.people.get(client.person) ?? 1) - 1;
    if (tabs > 0) {
      r.people.set(client.person, tabs);
      return { removed: true, deleted: false };
    }
    r.people.delete(client.person);
    removeSorted(r.names, client.person.name);
    r.byName.delete(client.person.name);
    r.typers?.delete(client.person.name); // their place among the typers is free for someone else
    if (r.members.size === 0 && r.holding.size === 0) {
      this.#rooms.delete(room);
      this.#presence.forget(room); // no one is left to tell
      return { removed: true, deleted: true, lastTab: true };
    }
    if (!this.#opts.externalPresence) {
      this.#announce(room, r, presenceLine(room, "leave", client.person), undefined, client.person.name);
    }
    return { removed: true, deleted: false, lastTab: true };
  }

  /** The rooms where connection `id` is its person's only connection here (they leave with it). */
  soleTabRooms(id: number): string[] {
    const client = this.#clients.get(id);
    if (!client) return [];
    return [...client.rooms].filter((room) => this.#rooms.get(room)?.people.get(client.person) === 1);
  }

  /**
   * Tells `room`'s members here of a join or leave decided elsewhere (see
   * {@link HubOptions.externalPresence}), held and grouped like the hub's own; not to the
   * connections of the person it is `about` (they know). `delta` (+1 a join, -1 a leave) keeps the
   * room's count across processes.
   */
  announce(room: string, line: string, about?: string, delta = 0): void {
    const r = this.#rooms.get(room);
    if (!r) return;
    if (r.known !== undefined) this.counted(room, r.known + delta);
    this.#announce(room, r, line, about, about);
  }

  /**
   * `room` has `n` people across processes (its owner counted them; {@link announce}'s `delta`s
   * follow): above `bigRoom` it is big here too from now on, even with few of them in this process.
   */
  counted(room: string, n: number): void {
    const r = this.#rooms.get(room);
    if (!r) return;
    r.known = n;
    if (n > (this.#opts.bigRoom ?? Infinity)) r.big = true;
  }

  /**
   * Whether the hub follows `room`'s count across processes already (see {@link counted}): read once
   * when the room's first member here joins, then kept by the announced joins and leaves.
   */
  followsCount(room: string): boolean {
    return this.#rooms.get(room)?.known !== undefined;
  }

  /** Whether connection `id` is in `room`. */
  isMember(id: number, room: string): boolean {
    return this.#clients.get(id)?.rooms.includes(room) ?? false;
  }

  /** Whether `room` has members in this process. */
  hasRoom(room: string): boolean {
    return this.#rooms.has(room);
  }

  /** Every room with members here, and how many people are in each. */
  roomCounts(): { room: string; members: number }[] {
    return [...this.#rooms].map(([room, r]) => ({ room, members: r.people.size }));
  }

  /** The rooms connection `id` is in, in join order. */
  roomsOf(id: number): string[] {
    return [...(this.#clients.get(id)?.rooms ?? [])];
  }

  /** Names of the people in `room`, sorted by code unit. */
  members(room: string): string[] {
    return [...this.sortedMembers(room)];
  }

  /**
   * Names of the people in `room`, sorted by code unit, kept so as people come and go (not a copy:
   * read it before the hub changes). Code-unit order: localeCompare took a tenth of a join's CPU in a
   * room of 100; clients that show the list sort it for their reader's locale anyway.
   */
  sortedMembers(room: string): readonly string[] {
    return this.#rooms.get(room)?.names ?? [];
  }

  /** The display name of `name` if they are in `room` here and have one. */
  displayIn(room: string, name: string): string | undefined {
    return this.#rooms.get(room)?.byName.get(name)?.display;
  }

  /** Whether the person named `name` is in `room` here. */
  isIn(room: string, name: string): boolean {
    return this.#rooms.get(room)?.byName.has(name) ?? false;
  }

  /** Whether `room` is big here (see {@link HubOptions.bigRoom}). */
  isBig(room: string): boolean {
    return this.#rooms.get(room)?.big ?? false;
  }

  /**
   * Connection `id` looks at `names` of big room `room` (its last member page): it is told their
   * joins and leaves, and no one else's. Replaces what it looked at before.
   */
  watch(id: number, room: string, names: readonly string[]): void {
    const client = this.#clients.get(id);
    const r = this.#rooms.get(room);
    if (!client || !r || !client.rooms.includes(room)) return;
    this.#watchers.page(client, room, names);
  }

  /**
   * Person `key` has direct conversations with `names` (e.g. their newest conversations at connect,
   * or someone they just wrote to or heard from): each of their connections here is told about these
   * people in every big room, as about the names of its member page (see {@link watch}), and told at
   * once which of them are in its big rooms here now. `replace` drops the partners it had; at most
   * `maxPartners` are kept, the least recently added dropped first. With presence decided elsewhere,
   * returns the newly watched partners not here, per connection and big room: the owner asks who of
   * them is in the room on other processes and tells it with {@link tellPresent}.
   */
  watchPartners(key: string, names: readonly string[], replace = false): Elsewhere[] {
    const elsewhere: Elsewhere[] = [];
    for (const client of this.#people.get(key)?.conns ?? []) {
      const before = this.#watchers.partnersOf(client);
      const had = new Set(before); // already told about: not again
      const kept = [...(replace ? [] : before).filter((n) => !names.includes(n)), ...names]
        .filter((n) => n !== client.person.name);
      this.#watchers.setPartners(
        client,
        kept.slice(Math.max(0, kept.length - (this.#opts.maxPartners ?? 100))),
      );
      const added = this.#watchers.partnersOf(client).filter((n) => !had.has(n));
      for (const room of client.rooms) {
        const r = this.#rooms.get(room)!;
        if (r.big && r.members.has(client)) this.#tellPresent(client, room, r, added, elsewhere);
      }
    }
    return elsewhere;
  }

  /**
   * Connection `id` of big room `room` is told that `people` are in it (read from presence shared by
   * processes, see {@link watchPartners}), if it is still there and still watches them as partners.
   */
  tellPresent(id: number, room: string, people: readonly { name: string; display?: string }[]): void {
    const client = this.#clients.get(id);
    const r = this.#rooms.get(room);
    if (!client || !r?.members.has(client)) return;
    const partners = this.#watchers.partnersOf(client);
    const watched = people.filter((p) => partners.includes(p.name) && p.name !== client.person.name);
    if (watched.length === 0) return;
    this.#flushRoom(room);
    for (const p of watched) client.peer.send(presenceLine(room, "join", p));
  }

  /** The big rooms whose people changed since their last count, once each (the owner tells them). */
  countsDue(): string[] {
    const due: string[] = [];
    for (const [room, r] of this.#rooms) if (r.countDue) r.countDue = false, due.push(room);
    return due;
  }

  /** Sends big room `room`'s members here its count `n`, after its queued presence. */
  tellCount(room: string, n: number): void {
    if (this.#rooms.has(room)) this.publish(room, encode({ type: "count", room, members: n }));
  }

  /**
   * A typing line of `name` in `room` at `now`: sent to the members like {@link publish}, but a big
   * room names at most `maxTypers` people at a time, so others' lines are dropped meanwhile (a
   * typer's place lasts `typingWindowMs` after their last line). Returns whether it was sent.
   */
  typing(room: string, name: string, line: string, now: number): boolean {
    const r = this.#rooms.get(room);
    if (!r) return false;
    if (r.big) {
      const typers = r.typers ??= new Map();
      for (const [who, until] of typers) if (until <= now) typers.delete(who);
      if (!typers.has(name) && typers.size >= (this.#opts.maxTypers ?? 5)) return false;
      typers.set(name, now + (this.#opts.typingWindowMs ?? 3000));
    }
    this.publish(room, line);
    return true;
  }

  /** The display names of the people in `room` who have one, by name; undefined when nobody has one. */
  displays(room: string): Record<string, string> | undefined {
    const r = this.#rooms.get(room);
    let out: Record<string, string> | undefined;
    for (const p of r?.people.keys() ?? []) if (p.display !== undefined) (out ??= {})[p.name] = p.display;
    return out;
  }

  /**
   * The key of the person online under `name` or a name that looks the same (a shared lookalike
   * key, see `nameKeys` in lib/names.ts; the case-insensitive match first). With `held`, also a
   * person offline who still holds the name (within the name hold).
   */
  personByName(name: string, held = false): string | undefined {
    return this.#people.byName(name, held)?.key;
  }

  /**
   * Sends `line` to every member of `room` here, after the room's queued presence, so that "alice
   * joined" always comes before alice's first message or typing. Other processes' members get it from
   * their own hub (see lib/sharing.ts).
   */
  publish(room: string, line: string, seq?: number): void {
    this.#flushRoom(room);
    this.#deliver(room, line, seq);
  }

  /**
   * Sends the queued presence lines, each to the members who were in its room when it happened. With
   * `now` and `interval`, a room that sent presence less than `interval` ago keeps holding its lines:
   * a room filling up costs each member one frame an interval, not one a flush. Returns when the
   * first room still holding lines is due (undefined: none is). Without them, every room's go now.
   */
  flushPresence(now = 0, interval = 0): number | undefined {
    return this.#presence.due(now, interval, (room) => {
      this.#flushRoom(room);
      return this.#rooms.has(room);
    });
  }

  /** Ids of every connection of person `key`. */
  tabsOfPerson(key: string): number[] {
    return [...this.#people.get(key)?.conns ?? []].map((c) => c.peer.id);
  }

  /** Sends `line` to every connection of person `key`. Returns how many. */
  sendToPerson(key: string, line: string): number {
    const person = this.#people.get(key);
    if (!person) return 0;
    for (const c of person.conns) c.peer.send(line);
    return person.conns.length;
  }

  /**
   * Renames person `key` (and, unless `display` is omitted, gives them display name `display`, or none
   * for `null`), and tells each connection that shares a room with them, once.
   * @throws {ProtocolError} `name_taken`.
   */
  rename(key: string, name: string, now: number, display?: string | null): void {
    const person = this.#people.get(key);
    if (!person) throw new RangeError(`No person ${key}`);
    const shown = display === undefined ? person.display : display ?? undefined;
    if (person.name === name && person.display === shown) return;
    const old = person.name;
    const rooms = new Set<string>();
    for (const c of person.conns) for (const room of c.rooms) rooms.add(room);
    if (old !== name) {
      this.#people.take(person, name, now);
      for (const room of rooms) {
        const r = this.#rooms.get(room)!;
        removeSorted(r.names, old);
        insertSorted(r.names, name);
        r.byName.delete(old);
        r.byName.set(name, person);
      }
    }
    if (shown === undefined) delete person.display;
    else person.display = shown;
    const line = encode(nickMessage(old, person));
    const told = new Set<Client>(person.conns);
    for (const room of rooms) {
      this.#flushRoom(room); // queued presence still says the old name: it goes first
      this.#addAudience(told, room, this.#rooms.get(room)!, old);
    }
    if (old !== name) this.#watchers.rename(rooms, old, name);
    for (const c of told) c.peer.send(line);
  }

  /** Closes every connection with `code` and `reason`. */
  closeAll(code: number, reason: string): void {
    for (const c of [...this.#clients.values()]) c.peer.close(code, reason);
  }

  #announce(room: string, r: Room, line: string, about?: string, subject?: string): void {
    if (r.big) {
      // Told to who asked about `subject` only; everyone gets the count instead.
      if (!r.countDue) {
        if (!this.#countDue()) this.#opts.onCountQueued?.();
        r.countDue = true;
      }
      if (subject === undefined || !this.#watchers.watched(room, subject, (c) => r.members.has(c))) return;
      if (!this.#opts.onPresenceQueued) {
        for (const c of this.#watchers.watchersOf(room, subject)) {
          if (r.members.has(c) && c.person.name !== about) c.peer.send(line);
        }
        return;
      }
      this.#presence.hold(room, { line, at: r.joins, about, watched: subject });
      return;
    }
    if (!this.#opts.onPresenceQueued) {
      if (about === undefined) return this.#deliver(room, line);
      for (const c of r.members.keys()) if (c.person.name !== about) c.peer.send(line);
      for (const [c, held] of r.holding) if (c.person.name !== about) held.lines.push({ line });
      return;
    }
    this.#presence.hold(room, { line, at: r.joins, about });
  }

  /**
   * Sends `room`'s queued presence: to each member the lines queued since it joined. Presence is
   * about this process's members, so it goes to them directly.
   */
  #flushRoom(room: string): void {
    const queued = this.#presence.take(room);
    const r = this.#rooms.get(room);
    if (!queued || !r) return;
    const forMe = (q: HeldPresence, c: Client, at: number) =>
      q.at >= at && (q.about === undefined || q.about !== c.person.name);
    if (r.big) {
      // Each line to the members that asked about its person (a few), not to every member.
      for (const q of queued) {
        for (const c of q.watched === undefined ? [] : this.#watchers.watchersOf(room, q.watched)) {
          const joinedAt = r.members.get(c);
          if (joinedAt !== undefined && forMe(q, c, joinedAt)) c.peer.send(q.line);
        }
      }
      return;
    }
    for (const [c, joinedAt] of r.members) {
      for (let i = 0; i < queued.length; i++) if (forMe(queued[i], c, joinedAt)) c.peer.send(queued[i].line);
    }
    for (const [c, held] of r.holding) {
      for (let i = 0; i < queued.length; i++) if (forMe(queued[i], c, held.at)) held.lines.push(queued[i]);
    }
  }

  #countDue(): boolean {
    for (const r of this.#rooms.values()) if (r.countDue) return true;
    return false;
  }

  /**
   * Adds to `told` who hears of person `name` in `room`: every member (and one still reading its
   * `joined`) of a small room; of a big one, those who asked about them (page or partner).
   */
  #addAudience(told: Set<Client>, room: string, r: Room, name?: string): void {
    if (!r.big || name === undefined) {
      for (const c of r.members.keys()) told.add(c);
      for (const c of r.holding.keys()) told.add(c);
      return;
    }
    for (const c of this.#watchers.watchersOf(room, name)) if (c.rooms.includes(room)) told.add(c);
  }

  /**
   * A presence `join` to `client` for each of `names` present in big room `r` here (after what is
   * queued); with presence decided elsewhere, the others go to `elsewhere` for the owner to look up.
   */
  #tellPresent(
    client: Client,
    room: string,
    r: Room,
    names: readonly string[],
    elsewhere: Elsewhere[],
  ): void {
    const away: string[] = [];
    const here: Person<Client>[] = [];
    for (const n of names) {
      const p = r.byName.get(n);
      if (p) p !== client.person && here.push(p);
      else away.push(n);
    }
    if (this.#opts.externalPresence && away.length > 0) {
      elsewhere.push({ id: client.peer.id, room, names: away });
    }
    if (here.length === 0) return;
    this.#flushRoom(room);
    for (const p of here) client.peer.send(presenceLine(room, "join", p));
  }

  #deliver(room: string, line: string, seq?: number): void {
    const r = this.#rooms.get(room);
    if (!r) return;
    if (seq !== undefined && seq > r.delivered) r.delivered = seq;
    for (const c of r.members.keys()) c.peer.send(line);
    if (r.holding.size > 0) { for (const held of r.holding.values()) held.lines.push({ line, seq }); }
  }

  #client(id: number): Client {
    const c = this.#clients.get(id);
    if (!c) throw new RangeError(`Peer ${id} is not connected`);
    return c;
  }
}

/** A `presence` line about `person`. */
function presenceLine(
  room: string,
  event: "join" | "leave",
  person: { name: string; display?: string },
): string {
  return encode(
    person.display === undefined
      ? { type: "presence", room, event, name: person.name }
      : { type: "presence", room, event, name: person.name, display: person.display },
  );
}

/** Inserts `name` into code-unit-sorted `names` (binary search; a splice of a few thousand is cheap). */
function insertSorted(names: string[], name: string): void {
  const i = lowerBound(names, name);
  if (names[i] !== name) names.splice(i, 0, name);
}

function removeSorted(names: string[], name: string): void {
  const i = lowerBound(names, name);
  if (names[i] === name) names.splice(i, 1);
}

/** The first index of code-unit-sorted `names` whose name is not below `name`. */
export function lowerBound(names: readonly string[], name: string): number {
  let lo = 0, hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (names[mid] < name) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Pushes `item` onto `owner[key]`; into an array of exactly one element when it was empty: a first push
 * onto `[]` gives it room for 17, and an idle connection has one room and a guest one connection.
 */
function addTo<K extends string, T>(owner: Record<K, T[]>, key: K, item: T): void {
  const list = owner[key];
  if (list.length === 0) owner[key] = [item];
  else list.push(item);
}

/** Removes `item` from `list`; false when it was not there. */
function removeFrom<T>(list: T[], item: T): boolean {
  const i = list.indexOf(item);
  if (i < 0) return false;
  list.splice(i, 1);
  return true;
}

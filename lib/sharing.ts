/**
 * What the processes serving one deployment share: live lines of a room (typing, changes, moderation),
 * presence, name claims, lines to a person, and which rooms this process watches. Storage is the
 * {@link Engine}'s; this is the other half, so the two can be chosen apart (embedded storage alone,
 * Redis for both, later a Postgres store with Redis sharing).
 *
 * One process needs no sharing: {@link LocalSharing} is the complete implementation for it, built on
 * the hub, so feature code calls every method without asking whether it exists.
 * @module
 */
import { listOf, type RoomListing, type RoomQuery } from "./engine.ts";
import { type Hub, lowerBound } from "./hub.ts";
import type { ServerMessage } from "./server_messages.ts";

/** What sharing tells its subscriber, from this process and every other. */
export interface SharingEvents {
  /** A line from {@link Sharing.publishLine}, for the room's members here. */
  line(room: string, line: string): void;
  /**
   * When presence spans processes: `name`'s first join or last leave anywhere, as its `presence` line
   * (see {@link Sharing.presence}).
   */
  presence(room: string, name: string, line: string): void;
  /** A message for every connection here of person `key` (see {@link Sharing.sendToPerson}). */
  person(key: string, msg: ServerMessage): void;
  /**
   * Someone on any process renamed, or (same name) has a new display name; `display` is theirs now
   * (see {@link Sharing.publishRename}).
   */
  renamed(oldName: string, newName: string, rooms: string[], display?: string): void;
}

/** Which page of a room's members (see {@link Sharing.memberPage}). */
export interface MemberQuery {
  /** Names after this one (the `next` of the page before). */
  after?: string;
  /** Names, or display names, that start with it (any case). */
  prefix?: string;
  /** Names in the page at most. */
  limit: number;
}

/** One page of a room's members, sorted by code unit. */
export interface MemberPage {
  names: string[];
  /** The display names of the page's people who have one, by name. */
  displays?: Record<string, string>;
  /** The `after` of the next page, when there is one. */
  next?: string;
  /** How many people are in the room. */
  count: number;
}

/**
 * The page `q` of `sorted` (names sorted by code unit), with display names from `displayOf`. Without
 * a prefix it costs the page (a binary search); a prefix is matched by a scan that stops at a full page.
 */
export function pageOf(
  sorted: readonly string[],
  displayOf: (name: string) => string | undefined,
  q: MemberQuery,
): MemberPage {
  const names: string[] = [];
  let i = q.after === undefined ? 0 : lowerBound(sorted, q.after);
  if (q.after !== undefined && sorted[i] === q.after) i++;
  const prefix = q.prefix?.toLowerCase();
  let more = false;
  for (; i < sorted.length; i++) {
    const name = sorted[i];
    if (prefix !== undefined && !name.toLowerCase().startsWith(prefix)) {
      const shown = displayOf(name);
      if (shown === undefined || !shown.toLowerCase().startsWith(prefix)) continue;
    }
    if (names.length === q.limit) {
      more = true;
      break;
    }
    names.push(name);
  }
  const page: MemberPage = { names, count: sorted.length };
  for (const name of names) {
    const shown = displayOf(name);
    if (shown !== undefined) (page.displays ??= {})[name] = shown;
  }
  if (more) page.next = names[names.length - 1];
  return page;
}

/** A room someone is in (see {@link Sharing.occupiedRooms}). */
export interface OccupiedRoom {
  room: string;
  members: number;
}

/** Rooms, presence and people across the processes of one deployment. */
export interface Sharing {
  /**
   * Whether other processes take part. When false, presence and names are this process's own: the
   * hub announces joins and leaves itself and a name is taken at once, with no claim to wait for.
   */
  readonly spansProcesses: boolean;
  /** Receives lines, person lines and renames. Returns the function that unsubscribes. */
  subscribe(events: SharingEvents): () => void;
  /** Sends a line that is not stored (typing, a change, a moderation line) to the room's members everywhere. */
  publishLine(room: string, line: string): void;
  /**
   * This process has members in `room` from now on: its stored messages must reach the engine's
   * subscribers. Resolves once they will; a history read started after it meets the live messages.
   */
  watch(room: string): Promise<void>;
  /** This process has no members in `room` any more. */
  unwatch(room: string): void;
  /**
   * `name` (shown as `display`, when they have a display name) is (or stops being) in `room` here.
   * When presence spans processes, a name's first join and last leave anywhere come back through
   * {@link SharingEvents.presence}.
   */
  presence(room: string, name: string, present: boolean, display?: string): Promise<void>;
  /**
   * Someone present here renamed or has a new display name (`display`: theirs now): their presence
   * follows (no join or leave).
   */
  renamed(oldName: string, newName: string, display?: string): Promise<void>;
  /**
   * Tells every other process that `oldName` is now `newName` (shown as `display`), for the members
   * of `rooms` there.
   */
  publishRename(oldName: string, newName: string, rooms: string[], display?: string): void;
  /** Everyone in `room` on any process, sorted by code unit. */
  members(room: string): Promise<string[]>;
  /** The display names of those in `room` on any process who have one, by name (undefined: none). */
  displays(room: string): Promise<Record<string, string> | undefined>;
  /** How many people are in `room` on any process. */
  memberCount(room: string): Promise<number>;
  /** A page of the people in `room` on any process (see {@link pageOf}). */
  memberPage(room: string, q: MemberQuery): Promise<MemberPage>;
  /**
   * Which of `names` are in `room` on any process, with their display names: what a member is told
   * of its direct partners in a big room (a lookup of a few names, not a read of the room's list).
   */
  present(room: string, names: readonly string[]): Promise<{ name: string; display?: string }[]>;
  /**
   * The rooms someone is in on any process, each with how many people are in it (a person once,
   * whatever their tabs and processes), as a listing in name order (see `RoomQuery`).
   */
  occupiedRooms(query: RoomQuery): Promise<RoomListing<OccupiedRoom>>;
  /**
   * Takes `name` (and its lookalikes) for person `key` everywhere, or resolves false when someone else
   * holds it. Held while the person is online here, then for the name hold.
   */
  claimName(key: string, name: string): Promise<boolean>;
  /** The name person `key` holds on any process (online or within the name hold). */
  nameOf(key: string): Promise<string | undefined>;
  /** Person `key` has no connection here any more: its name is held for the name hold, then freed. */
  releaseName(key: string): void;
  /** Who holds `name` (or a lookalike) on any process. */
  whoIs(name: string): Promise<{ key: string; name: string } | undefined>;
  /**
   * Sends `msg` to every connection of person `key`, on every process (through
   * {@link SharingEvents.person}). Rejects with `UnavailableError` when it cannot.
   */
  sendToPerson(key: string, msg: ServerMessage): Promise<void>;
  /**
   * Hands `payload` to the fallback (SSE) session `key` on whichever other process holds it (a POST
   * may land on any process: no sticky sessions); resolves whether one did.
   */
  toSession(key: string, payload: string): Promise<boolean>;
  /** This process holds fallback session `key`: payloads for it come to `deliver`. Resolves once they will. */
  holdSession(key: string, deliver: (payload: string) => void): Promise<void>;
  /** Fallback session `key` has ended here. */
  releaseSession(key: string): void;
}

/** Sharing for a single process: everything is the hub's, and every line goes straight back in. */
export class LocalSharing implements Sharing {
  readonly spansProcesses = false;
  readonly #hub: Hub;
  readonly #subscribers = new Set<SharingEvents>();

  constructor(hub: Hub) {
    this.#hub = hub;
  }

  subscribe(events: SharingEvents): () => void {
    this.#subscribers.add(events);
    return () => this.#subscribers.delete(events);
  }

  publishLine(room: string, line: string): void {
    for (const s of this.#subscribers) s.line(room, line);
  }

  watch(_room: string): Promise<void> {
    return Promise.resolve();
  }

  unwatch(_room: string): void {}

  /** The hub announces presence itself in one process. */
  presence(_room: string, _name: string, _present: boolean, _display?: string): Promise<void> {
    return Promise.resolve();
  }

  renamed(_oldName: string, _newName: string, _display?: string): Promise<void> {
    return Promise.resolve();
  }

  /** No other process to tell: the hub told this one's rooms when it renamed. */
  publishRename(_oldName: string, _newName: string, _rooms: string[], _display?: string): void {}

  members(room: string): Promise<string[]> {
    return Promise.resolve(this.#hub.members(room));
  }

  displays(room: string): Promise<Record<string, string> | undefined> {
    return Promise.resolve(this.#hub.displays(room));
  }

  memberCount(room: string): Promise<number> {
    return Promise.resolve(this.#hub.sortedMembers(room).length);
  }

  present(room: string, names: readonly string[]): Promise<{ name: string; display?: string }[]> {
    return Promise.resolve(
      names.filter((n) => this.#hub.isIn(room, n)).map((name) => {
        const display = this.#hub.displayIn(room, name);
        return display === undefined ? { name } : { name, display };
      }),
    );
  }

  memberPage(room: string, q: MemberQuery): Promise<MemberPage> {
    const hub = this.#hub;
    return Promise.resolve(pageOf(hub.sortedMembers(room), (name) => hub.displayIn(room, name), q));
  }

  occupiedRooms(query: RoomQuery): Promise<RoomListing<OccupiedRoom>> {
    const rooms = this.#hub.roomCounts().filter((r) => r.members > 0);
    return Promise.resolve(listOf(query, rooms));
  }

  /** The hub decided already (a name is free or taken here); nobody else can hold it. */
  claimName(_key: string, _name: string): Promise<boolean> {
    return Promise.resolve(true);
  }

  nameOf(key: string): Promise<string | undefined> {
    return Promise.resolve(this.#hub.nameOf(key));
  }

  /** The hub holds a gone person's name itself. */
  releaseName(_key: string): void {}

  whoIs(name: string): Promise<{ key: string; name: string } | undefined> {
    const key = this.#hub.personByName(name);
    return Promise.resolve(key === undefined ? undefined : { key, name: this.#hub.nameOf(key)! });
  }

  sendToPerson(key: string, msg: ServerMessage): Promise<void> {
    for (const s of this.#subscribers) s.person(key, msg);
    return Promise.resolve();
  }

  /** No other process: a session not held here is held nowhere. */
  toSession(_key: string, _payload: string): Promise<boolean> {
    return Promise.resolve(false);
  }

  holdSession(_key: string, _deliver: (payload: string) => void): Promise<void> {
    return Promise.resolve();
  }

  releaseSession(_key: string): void {}
}

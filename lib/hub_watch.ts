/**
 * Who asked about whom in big rooms: a connection is told of the people on the member page it has open
 * in a room, and of its direct partners in every big room, and of no one else (see `Hub.watch` and
 * `Hub.watchPartners`). This is that bookkeeping alone: the hub decides what to send, this says to whom.
 * Only connections that asked hold entries here, so an idle connection costs nothing.
 * @module
 */

/** The watch lists of one hub's connections (`C`: the hub's connection). */
export class Watchers<C> {
  /** Per room, per name: the connections whose member page there holds it. */
  readonly #pages = new Map<string, Map<string, Set<C>>>();
  /** Per connection, per room: the names of its last member page. */
  readonly #pageOf = new Map<C, Map<string, string[]>>();
  /** Per connection: its direct partners, the least recently added first. */
  readonly #partners = new Map<C, string[]>();
  /** Per name: the connections that have it among their partners. */
  readonly #partnerOf = new Map<string, Set<C>>();

  /** `c` looks at `names` in `room` (its member page there), instead of what it looked at before. */
  page(c: C, room: string, names: readonly string[]): void {
    this.unpage(c, room);
    let byName = this.#pages.get(room);
    if (!byName) this.#pages.set(room, byName = new Map());
    for (const name of names) addTo(byName, name, c);
    let rooms = this.#pageOf.get(c);
    if (!rooms) this.#pageOf.set(c, rooms = new Map());
    rooms.set(room, [...names]);
  }

  /** `c` no longer looks at a page of `room` (it left it). */
  unpage(c: C, room: string): void {
    const rooms = this.#pageOf.get(c);
    const names = rooms?.get(room);
    if (!names) return;
    rooms!.delete(room);
    if (rooms!.size === 0) this.#pageOf.delete(c);
    const byName = this.#pages.get(room)!;
    for (const name of names) removeFrom(byName, name, c);
    if (byName.size === 0) this.#pages.delete(room);
  }

  /** `c`'s direct partners, the least recently added first (none: empty). */
  partnersOf(c: C): readonly string[] {
    return this.#partners.get(c) ?? [];
  }

  /** Replaces `c`'s partners (`[]`: it has none, or it is gone). */
  setPartners(c: C, names: readonly string[]): void {
    for (const name of this.#partners.get(c) ?? []) removeFrom(this.#partnerOf, name, c);
    if (names.length === 0) return void this.#partners.delete(c);
    this.#partners.set(c, [...names]);
    for (const name of names) addTo(this.#partnerOf, name, c);
  }

  /** Whether any connection for which `member` holds asked about `name` in `room` (page or partner). */
  watched(room: string, name: string, member: (c: C) => boolean): boolean {
    if (this.#pages.get(room)?.has(name)) return true;
    for (const c of this.#partnerOf.get(name) ?? []) if (member(c)) return true;
    return false;
  }

  /** The connections that asked about `name` in `room`, page or partner (some may not be in it: check). */
  watchersOf(room: string, name: string): ReadonlySet<C> {
    const page = this.#pages.get(room)?.get(name);
    const partners = this.#partnerOf.get(name);
    if (!partners) return page ?? new Set();
    return page ? new Set([...page, ...partners]) : partners;
  }

  /** A rename: who watched `old` on a page of one of `rooms`, or as a partner anywhere, watches `name`. */
  rename(rooms: Iterable<string>, old: string, name: string): void {
    for (const room of rooms) {
      const byName = this.#pages.get(room);
      const set = byName?.get(old);
      if (!byName || !set) continue;
      byName.delete(old);
      for (const c of set) {
        addTo(byName, name, c);
        const names = this.#pageOf.get(c)?.get(room);
        const i = names?.indexOf(old) ?? -1;
        if (i >= 0) names![i] = name;
      }
    }
    const partners = this.#partnerOf.get(old);
    if (!partners) return;
    this.#partnerOf.delete(old);
    for (const c of partners) {
      addTo(this.#partnerOf, name, c);
      const list = this.#partners.get(c)!;
      const i = list.indexOf(old);
      if (i >= 0) list[i] = name;
    }
  }
}

function addTo<C>(map: Map<string, Set<C>>, key: string, c: C): void {
  let set = map.get(key);
  if (!set) map.set(key, set = new Set());
  set.add(c);
}

function removeFrom<C>(map: Map<string, Set<C>>, key: string, c: C): void {
  const set = map.get(key);
  if (set?.delete(c) && set.size === 0) map.delete(key);
}

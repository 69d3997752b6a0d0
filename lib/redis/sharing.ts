/**
 * Sharing across the processes of a Redis deployment (see `Sharing` in lib/sharing.ts): presence as
 * the union of every process's entries (each with a TTL this process refreshes, so a dead process's
 * people leave), name claims, lines to a person (the people channel), renames (the renames channel)
 * and a room's live lines (its lines channel). Lines between processes are JSON text: this module
 * decodes them, in one place, into the typed {@link SharingEvents}.
 * @module
 */
import type { Logger } from "../log.ts";
import { nameKeys } from "../names.ts";
import { encode, type ServerMessage } from "../server_messages.ts";
import type { RoomListing, RoomQuery } from "../engine.ts";
import {
  type MemberPage,
  type MemberQuery,
  type OccupiedRoom,
  pageOf,
  type Sharing,
  type SharingEvents,
} from "../sharing.ts";
import { newEpoch } from "../store.ts";
import type { RedisClients } from "./client.ts";
import * as codec from "./codec.ts";
import type { RoomDelivery } from "./delivery.ts";
import { readIndex } from "./directory.ts";
import { nameKey, PEOPLE, personKey, PRESENT, RENAMES, roomKeys as keys, sessionChannel } from "./keys.ts";
import type { Script } from "./scripts.ts";

/** Options of {@link RedisSharing}. */
export interface RedisSharingOptions {
  /** Milliseconds a presence entry lives without a refresh. */
  presenceTtlMs: number;
  /** Milliseconds a name stays held after its person's last connection anywhere. */
  nameHoldMs: number;
  /**
   * Milliseconds a room's member list read for pages is used again (a page of a big room is read from
   * it, not from Redis, so a fill's joins do not each read the whole list). @default 1000
   */
  memberListMs?: number;
  log: Logger;
}

/**
 * The sharing half of a Redis deployment, on the clients of the `RedisEngine` that
 * opened it (which closes it, before its clients).
 */
export class RedisSharing implements Sharing {
  readonly spansProcesses = true;
  readonly #redis: RedisClients;
  /** Where the watched rooms' stored events come from (the engine's, see {@link watch}). */
  readonly #delivery: Pick<RoomDelivery, "watch" | "unwatch">;
  readonly #opts: RedisSharingOptions;
  readonly #subscribers = new Set<SharingEvents>();
  /** Per watched room: its lines channel's subscription (see {@link watch}). */
  readonly #watched = new Map<string, { ready: Promise<void> }>();
  /** The names of the people online here (person key to name), refreshed with the presence. */
  readonly #names = new Map<string, string>();
  /** This process's presence entries: room to names. */
  readonly #present = new Map<string, Set<string>>();
  /** The display names of the names present here that have one (refreshed with their entries). */
  readonly #shown = new Map<string, string>();
  /** Per watched room: its member list as last read for pages, and when (see {@link memberPage}). */
  readonly #lists = new Map<
    string,
    { at: number; read: Promise<{ names: string[]; shown?: Record<string, string> }> }
  >();
  /** Names this process's entries (random per process). */
  readonly #instance = newEpoch();
  readonly #timer: ReturnType<typeof setInterval>;
  #closed = false;

  constructor(
    redis: RedisClients,
    delivery: Pick<RoomDelivery, "watch" | "unwatch">,
    opts: RedisSharingOptions,
  ) {
    this.#redis = redis;
    this.#delivery = delivery;
    this.#opts = opts;
    this.#timer = setInterval(() => this.#keepPresence(), opts.presenceTtlMs / 3);
    // Node's typings (pulled in by node:sqlite) say Timeout; Deno's timers are numbers.
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  /** Subscribes to the people and renames channels (on the subscription client, as the engine opens). */
  async start(): Promise<void> {
    await this.#redis.sub.subscribe(PEOPLE, (raw: string) => this.#toPerson(raw));
    await this.#redis.sub.subscribe(RENAMES, (raw: string) => this.#renamedElsewhere(raw));
  }

  subscribe(events: SharingEvents): () => void {
    this.#subscribers.add(events);
    return () => this.#subscribers.delete(events);
  }

  publishLine(room: string, line: string): void {
    this.#redis.publishRoom(keys(room).lines, line); // typing is not worth a queue
  }

  /**
   * Subscribes to the room's lines channel, and has the engine's delivery watch its channel of stored
   * events. Those stay the engine's (their order is kept with its history reads, which it clamps to
   * what was delivered); they are started here because `Sharing.watch` is the one call the chat
   * service makes when this process has members in a room, and it must resolve once both flow.
   */
  watch(room: string): Promise<void> {
    const known = this.#watched.get(room);
    if (known) return known.ready;
    const state = { ready: Promise.resolve() };
    this.#watched.set(room, state);
    const lines = this.#redis.subscribeRoom(keys(room).lines, (line: string) => {
      if (this.#watched.get(room) === state) this.#line(room, line);
    });
    state.ready = Promise.all([this.#delivery.watch(room), lines]).then(() => {});
    // A failed watch leaves no state: the next one tries again (a stale listener drops its lines).
    state.ready.catch(() => this.#watched.get(room) === state && this.#watched.delete(room));
    return state.ready;
  }

  unwatch(room: string): void {
    this.#lists.delete(room);
    this.#delivery.unwatch(room);
    if (this.#watched.delete(room)) this.#redis.unsubscribeRoom([keys(room).lines]);
  }

  /** Records that `name` is (or no longer is) in `room` here; Redis announces the union's changes. */
  async presence(room: string, name: string, present: boolean, display?: string): Promise<void> {
    let names = this.#present.get(room);
    if (present) {
      if (!names) this.#present.set(room, names = new Set());
      names.add(name);
      this.#show(name, display);
    } else {
      names?.delete(name);
      if (names?.size === 0) this.#present.delete(room);
    }
    const { presenceJoin, presenceLeave } = this.#redis.scripts;
    await this.#presenceScript(present ? presenceJoin : presenceLeave, room, name);
    // After the entry, so a directory read that finds the room here also counts this person.
    if (present && names!.size === 1) await this.#occupied([room]);
  }

  /** Puts rooms people are in here in the directory's `PRESENT` index (a failure waits for the refresh). */
  #occupied(rooms: string[]): Promise<unknown> {
    if (rooms.length === 0) return Promise.resolve();
    const members = rooms.map((value) => ({ score: 0, value }));
    return this.#redis.run(() => this.#redis.cmd.zAdd(PRESENT, members)).catch(() => {});
  }

  /**
   * Person `oldName` here is now `newName` (shown as `display`): its presence entries follow, with no
   * join or leave.
   */
  async renamed(oldName: string, newName: string, display?: string): Promise<void> {
    const moves: Promise<unknown>[] = [];
    this.#shown.delete(oldName);
    this.#show(newName, display);
    for (const [room, names] of this.#present) {
      if (!names.delete(oldName)) continue;
      names.add(newName);
      const k = keys(room);
      const args = [
        `${this.#instance}\t${oldName}`,
        oldName,
        String(Date.now() + this.#opts.presenceTtlMs),
        `${this.#instance}\t${newName}`,
        newName,
        display ?? "",
      ];
      moves.push(this.#redis.script(this.#redis.scripts.presenceRename, [k.who, k.names, k.disp], args));
    }
    await Promise.all(moves);
  }

  publishRename(oldName: string, newName: string, rooms: string[], display?: string): void {
    if (!this.#redis.cmd.isReady) return;
    this.#redis.cmd.publish(RENAMES, codec.renameLine(oldName, newName, rooms, display)).catch(() => {});
  }

  /** Everyone in `room`, on any process, sorted by code unit. */
  async members(room: string): Promise<string[]> {
    const names = await this.#redis.run(() => this.#redis.cmd.hKeys(keys(room).names));
    return names.sort();
  }

  async displays(room: string): Promise<Record<string, string> | undefined> {
    const all = await this.#redis.run(() => this.#redis.cmd.hGetAll(keys(room).disp));
    return Object.keys(all).length === 0 ? undefined : { ...all };
  }

  async memberCount(room: string): Promise<number> {
    return await this.#redis.run(() => this.#redis.cmd.hLen(keys(room).names));
  }

  /**
   * A page of the room's names hash, with its count now. The names come from a list read at most once
   * per `memberListMs` in this process (a join into a big room reads a page, and a fill's joins would
   * otherwise each read the whole hash and sort it); so a page may miss who came or went since.
   */
  async memberPage(room: string, q: MemberQuery): Promise<MemberPage> {
    const now = Date.now();
    let list = this.#lists.get(room);
    if (!list || now - list.at >= (this.#opts.memberListMs ?? 1000)) {
      const read = Promise.all([this.members(room), this.displays(room)])
        .then(([names, shown]) => (shown === undefined ? { names } : { names, shown }));
      const fresh = { at: now, read };
      list = fresh;
      // Kept only for a room watched here (unwatch forgets it); a failed read is not kept.
      if (this.#watched.has(room)) this.#lists.set(room, fresh);
      read.catch(() => this.#lists.get(room) === fresh && this.#lists.delete(room));
    }
    const [{ names, shown }, count] = await Promise.all([list.read, this.memberCount(room)]);
    return { ...pageOf(names, (name) => shown?.[name], q), count };
  }

  async present(room: string, names: readonly string[]): Promise<{ name: string; display?: string }[]> {
    if (names.length === 0) return [];
    const k = keys(room);
    const [held, shown] = await this.#redis.run(() =>
      Promise.all([this.#redis.cmd.hmGet(k.names, [...names]), this.#redis.cmd.hmGet(k.disp, [...names])])
    );
    const out: { name: string; display?: string }[] = [];
    names.forEach((name, i) => {
      if (held[i] === null || Number(held[i]) <= 0) return;
      out.push(shown[i] ? { name, display: shown[i]! } : { name });
    });
    return out;
  }

  /** Rooms in the `PRESENT` index, counted from their live presence entries; empty ones leave it. */
  async occupiedRooms(query: RoomQuery): Promise<RoomListing<OccupiedRoom>> {
    const now = String(Date.now());
    return await readIndex(this.#redis, PRESENT, query, (rooms) =>
      Promise.all(rooms.map(async (room) => {
        const n = Number(await this.#redis.script(this.#redis.scripts.present, [keys(room).who], [now]));
        if (n > 0) return { room, members: n };
        // Someone joining now puts it back at once (presence) or at the latest at their next refresh.
        this.#redis.run(() => this.#redis.cmd.zRem(PRESENT, room)).catch(() => {});
        return undefined;
      })));
  }

  async claimName(key: string, name: string): Promise<boolean> {
    const ok = await this.#claim(key, name);
    if (ok) this.#names.set(key, name);
    return ok;
  }

  async nameOf(key: string): Promise<string | undefined> {
    return (await this.#redis.run(() => this.#redis.cmd.get(personKey(key)))) ?? undefined;
  }

  releaseName(key: string): void {
    const name = this.#names.get(key);
    if (name !== undefined) this.#shown.delete(name);
    this.#names.delete(key);
  }

  async whoIs(name: string): Promise<{ key: string; name: string } | undefined> {
    for (const k of nameKeys(name)) {
      const v = await this.#redis.run(() => this.#redis.cmd.get(nameKey(k)));
      if (!v) continue;
      // A key left by someone who has taken another name since (see claim.lua) names nobody.
      const held = codec.decodeNameClaim(v);
      if ((await this.nameOf(held.key)) === held.name) return held;
    }
    return undefined;
  }

  async sendToPerson(key: string, msg: ServerMessage): Promise<void> {
    await this.#redis.run(() => this.#redis.cmd.publish(PEOPLE, codec.personLine(key, encode(msg))));
  }

  /**
   * Publishes on the session's channel: PUBLISH answers how many subscribers got it, and only the
   * process holding the session subscribes, so 0 means no process has it. Sharded on a Cluster.
   */
  async toSession(key: string, payload: string): Promise<boolean> {
    const { cmd, cluster } = this.#redis;
    const ch = sessionChannel(key);
    const got = await this.#redis.run(() => cluster ? cmd.sPublish(ch, payload) : cmd.publish(ch, payload));
    return Number(got) > 0;
  }

  async holdSession(key: string, deliver: (payload: string) => void): Promise<void> {
    await this.#redis.subscribeRoom(sessionChannel(key), deliver);
  }

  releaseSession(key: string): void {
    this.#redis.unsubscribeRoom([sessionChannel(key)]);
  }

  /**
   * Stops the refresh and takes this process's people out of their rooms at once, rather than when
   * their entries expire. Idempotent. The subscriptions end with the engine's clients, closed after.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    const leaving: Promise<unknown>[] = [];
    for (const [room, names] of this.#present) {
      for (const name of names) {
        leaving.push(this.#presenceScript(this.#redis.scripts.presenceLeave, room, name));
      }
    }
    await Promise.allSettled(leaving);
    this.#present.clear();
    this.#watched.clear();
  }

  #claim(key: string, name: string): Promise<boolean> {
    const ttl = Math.max(this.#opts.nameHoldMs, this.#opts.presenceTtlMs);
    return this.#redis.script(
      this.#redis.scripts.claim,
      [personKey(key), ...nameKeys(name).map(nameKey)],
      [key, codec.nameClaim(key, name), String(ttl), name],
    ).then((r) => r === 1);
  }

  #presenceScript(script: Script, room: string, name: string): Promise<unknown> {
    const k = keys(room);
    const entry = `${this.#instance}\t${name}`;
    return this.#redis.script(
      script,
      [k.who, k.names, k.lines, k.disp],
      [
        entry,
        name,
        String(Date.now() + this.#opts.presenceTtlMs),
        room,
        this.#redis.publish,
        this.#shown.get(name) ?? "",
      ],
    );
  }

  #show(name: string, display: string | undefined): void {
    if (display === undefined) this.#shown.delete(name);
    else this.#shown.set(name, display);
  }

  /** Every third of the TTL: refresh this process's entries, and sweep the dead ones of watched rooms. */
  #keepPresence(): void {
    if (!this.#redis.cmd.isReady) return;
    const { presenceJoin, presenceSweep } = this.#redis.scripts;
    for (const [key, name] of this.#names) this.#claim(key, name).catch(() => {});
    for (const [room, names] of this.#present) {
      for (const name of names) this.#presenceScript(presenceJoin, room, name).catch(() => {});
    }
    this.#occupied([...this.#present.keys()]);
    for (const room of this.#watched.keys()) {
      const k = keys(room);
      this.#redis.script(presenceSweep, [k.who, k.names, k.lines, k.disp], [
        String(Date.now()),
        room,
        this.#redis.publish,
      ]).catch(() => {});
    }
  }

  /** A line of a watched room's lines channel: a presence line is told as presence. */
  #line(room: string, line: string): void {
    const msg = decode(line);
    for (const s of this.#subscribers) {
      if (msg?.type === "presence") s.presence(room, msg.name, line);
      else s.line(room, line);
    }
  }

  #toPerson(raw: string): void {
    let key: string, line: string;
    try {
      ({ key, line } = codec.decodePersonLine(raw));
    } catch {
      return this.#opts.log.error("bad line on the people channel");
    }
    const msg = decode(line);
    if (msg) { for (const s of this.#subscribers) s.person(key, msg); }
  }

  #renamedElsewhere(raw: string): void {
    try {
      const { oldName, newName, rooms, display } = codec.decodeRenameLine(raw);
      for (const s of this.#subscribers) s.renamed(oldName, newName, rooms, display);
    } catch {
      this.#opts.log.error("bad line on the renames channel");
    }
  }
}

/** A server message another process published, or undefined when it is none (logged by nobody: rare). */
function decode(line: string): ServerMessage | undefined {
  try {
    const msg = JSON.parse(line);
    return typeof msg?.type === "string" ? msg as ServerMessage : undefined;
  } catch {
    return undefined;
  }
}

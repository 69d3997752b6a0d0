/**
 * The Redis engine: rooms shared by every server process on one Redis. Where each thing lives (the
 * keys, per room under its hash tag so that one room's keys share one Cluster slot, and the channels)
 * is written down in `lib/redis/keys.ts`.
 *
 * A stream entry cannot be changed in place, and `XDEL` only flags an entry (its bytes stay in the
 * node, in `DUMP`, in the RDB): a delete or an edit rewrites the end of the room's stream from the
 * target's node on (see `lib/redis/lua/change_message.lua`), so a deleted text is gone from Redis.
 *
 * One Lua script per group of messages (on a Cluster: per room and group) numbers, de-duplicates,
 * appends, trims and publishes atomically, so `seq` is gap-free and never reused across processes.
 * Pub/sub is lossy: a process that sees a seq jump, or comes back from a lost connection, reads the gap
 * from the stream before it delivers newer.
 *
 * The scripts live in `lib/redis/lua/` (one file each, run by SHA: see `lib/redis/scripts.ts`); what
 * goes in and comes back is encoded and decoded in `lib/redis/codec.ts`.
 * @module
 */
import {
  type AccessList,
  type Appended,
  type AuditEntry,
  type ChangeGuard,
  type ChangeResult,
  type ChangesPage,
  type ConversationEntry,
  DEFAULT_AUDIT_RETAIN,
  type Draft,
  type Engine,
  type EngineEvents,
  type HistoryPage,
  type MessageChange,
  type MessageReactions,
  type Person,
  type ReactionCaps,
  type ReactResult,
  type ReadMark,
  refusedDraft,
  type RoomAccess,
  type RoomChange,
  type RoomRules,
  UnavailableError,
} from "./engine.ts";
import type { Logger } from "./log.ts";
import type { ChangeInfo } from "./domain.ts";
import { type ChatMessage, QUOTE_MAX_CHARS } from "./protocol.ts";
import { nameKeys } from "./names.ts";
import { checkRoomChange, newEpoch } from "./store.ts";
import { checkPersistence, connectClients, type RedisLike } from "./redis/client.ts";
import * as codec from "./redis/codec.ts";
import {
  convsKey,
  dirKey,
  dirNameKey,
  nameKey,
  peersKey,
  PEOPLE,
  personKey,
  RENAMES,
  roomKeys as keys,
} from "./redis/keys.ts";
import { loadScripts, runScript, type Script, type Scripts } from "./redis/scripts.ts";

/** `url` without its password, for logs and messages (main.ts imports it from here). */
export { redactUrl } from "./redis/client.ts";

/** Options of {@link RedisEngine.connect}. */
export interface RedisOptions {
  url: string;
  /** Messages kept per room (0 = all). */
  retainMessages: number;
  /** Milliseconds a message is kept (0 = forever). */
  retainMs: number;
  /** Milliseconds a `cid` is remembered. */
  dedupWindowMs: number;
  /** Audit entries kept per room (the newest). @default 1000 */
  auditRetain?: number;
  log: Logger;
  /** Milliseconds a command may wait for Redis before it fails as unavailable. @default 2000 */
  commandTimeoutMs?: number;
  /**
   * Milliseconds a process's presence entries live without a refresh: when a process dies, its
   * people leave their rooms within this (and a third of it). @default 15000
   */
  presenceTtlMs?: number;
  /** Milliseconds a name stays held after its person's last connection anywhere. @default 60000 */
  nameHoldMs?: number;
}

/** How often, at most, an append looks for messages past the age retention in a room (ms). */
const AGE_CHECK_MS = 1000;

/** Mentions kept per person and room (the newest): a count shows at most this many. */
const MENTIONS_KEPT = 1000;

/**
 * Entries one stream node holds at most: Redis's `stream-node-max-entries` (default 100) must not be
 * larger (0 = unlimited breaks it too), or a deleted text may stay in its node (see change_message.lua).
 * Checked at connect.
 */
const NODE = 100;

/** Rooms on Redis; see the module doc. */
export class RedisEngine implements Engine {
  readonly #cmd: RedisLike;
  readonly #sub: RedisLike;
  readonly #cluster: boolean;
  readonly #scripts: Scripts;
  /** How the scripts publish: sharded on a Cluster, so a room's channel stays on its node. */
  readonly #publish: "PUBLISH" | "SPUBLISH";
  readonly #opts: RedisOptions;
  readonly #subscribers = new Set<EngineEvents>();
  /** Per watched room: the last seq delivered here, and the chain that keeps delivery in order. */
  readonly #rooms = new Map<string, Watched>();
  /** The names of the people online here (person key to name), refreshed with the presence. */
  readonly #names = new Map<string, string>();
  /** This process's presence entries: room to names. */
  readonly #present = new Map<string, Set<string>>();
  /** Names this process's entries (random per process). */
  readonly #instance = newEpoch();
  readonly #ttl: number;
  readonly #timer: ReturnType<typeof setInterval>;
  #closed = false;

  private constructor(
    cmd: RedisLike,
    sub: RedisLike,
    opts: RedisOptions,
    cluster: boolean,
    scripts: Scripts,
  ) {
    this.#cmd = cmd;
    this.#sub = sub;
    this.#cluster = cluster;
    this.#scripts = scripts;
    this.#publish = cluster ? "SPUBLISH" : "PUBLISH";
    this.#opts = opts;
    this.#ttl = opts.presenceTtlMs ?? 15_000;
    this.#timer = setInterval(() => this.#keepPresence(), this.#ttl / 3);
    // Node's typings (pulled in by node:sqlite) say Timeout; Deno's timers are numbers.
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  /**
   * Reads the scripts and connects both clients (commands, subscriptions).
   * @throws {UnavailableError} or, when the scripts cannot be read, `StoreError`, with one sentence.
   */
  static async connect(opts: RedisOptions): Promise<RedisEngine> {
    const scripts = await loadScripts();
    const { cmd, sub, cluster } = await connectClients(opts.url, {
      timeoutMs: opts.commandTimeoutMs ?? 2000,
      log: opts.log,
    });
    const engine = new RedisEngine(cmd, sub, opts, cluster, scripts);
    sub.on("ready", () => engine.#resync());
    await sub.subscribe(PEOPLE, (raw: string) => engine.#toPerson(raw));
    await sub.subscribe(RENAMES, (raw: string) => engine.#renamedElsewhere(raw));
    await checkPersistence(cmd, opts.log, NODE);
    return engine;
  }

  health(): string | undefined {
    return this.#cmd.isReady && this.#sub.isReady ? undefined : "redis unavailable";
  }

  async append(batch: readonly Draft[]): Promise<Appended[]> {
    // One script per room, in order: a room's keys share one slot; rooms may not.
    const byRoom = new Map<string, number[]>();
    batch.forEach((d, i) => {
      const idx = byRoom.get(d.room);
      if (idx) idx.push(i);
      else byRoom.set(d.room, [i]);
    });
    const out: Appended[] = new Array(batch.length);
    const minTs = this.#opts.retainMs > 0 ? Date.now() - this.#opts.retainMs : 0;
    // A conversation goes in both people's lists before its message is stored (another slot on a
    // Cluster, so not in the same script): a crash between the two leaves a listed conversation
    // without that message, never a stored message in a conversation nobody lists.
    const conversing = new Map<string, Draft>();
    for (const d of batch) if (d.between) conversing.set(d.room, d);
    await Promise.all([...conversing.values()].map((d) => {
      const [a, b] = d.between!;
      return this.#script(
        this.#scripts.converse,
        [convsKey(a), peersKey(a), convsKey(b), peersKey(b)],
        [d.room, a, b, String(d.ts)],
      );
    }));
    // One script for every room of the group on one Redis; one per room on a Cluster (a room's keys
    // share one slot, rooms may not).
    const rooms = [...byRoom];
    const groups = this.#cluster ? rooms.map((r) => [r]) : [rooms];
    await Promise.all(groups.map(async (group) => {
      const keyList: string[] = [];
      const args = [
        String(this.#opts.retainMessages),
        String(minTs),
        String(this.#opts.dedupWindowMs),
        this.#publish,
        String(QUOTE_MAX_CHARS),
        String(MENTIONS_KEPT),
        String(AGE_CHECK_MS),
      ];
      for (const [room, idx] of group) {
        const k = keys(room);
        keyList.push(k.meta, k.log, k.reads);
        args.push(newEpoch(), String(idx.length));
        for (const i of idx) args.push(...codec.appendArgs(batch[i]));
      }
      const rooms = codec.decodeAppend(await this.#script(this.#scripts.append, keyList, args));
      group.forEach(([room, idx], g) => {
        // New messages are numbered on from the room's seq before the group, in order.
        let next = rooms[g].seqBefore;
        idx.forEach((i, j) => {
          const d = batch[i];
          const got = rooms[g].outcomes[j];
          if (got.kind === "refused") {
            out[i] = { message: refusedDraft(d), duplicate: false, refused: "reply_not_found" };
            return;
          }
          const [seq, ts] = got.kind === "stored" ? [++next, d.ts] : [got.seq, got.ts];
          if (got.kind === "duplicate" && got.deleted) {
            out[i] = { message: { room, seq, from: d.from, ts, text: "", deleted: true }, duplicate: true };
            return;
          }
          const edited = got.kind === "duplicate" ? got.edited : undefined;
          const message: ChatMessage = { room, seq, from: d.from, text: edited?.text ?? d.text, ts };
          if (d.cid !== undefined) message.cid = d.cid;
          if (edited) message.editedTs = edited.editedTs;
          if (d.mentions?.length) message.mentions = d.mentions.map((p) => p.name);
          out[i] = { message, duplicate: got.kind === "duplicate" };
        });
      });
    }));
    return out;
  }

  async after(room: string, after: number, limit: number): Promise<HistoryPage> {
    const { epoch, lastSeq } = await this.#meta(room);
    const entries = await this.#run(() =>
      this.#cmd.xRange(keys(room).log, `${after + 1}-1`, `${lastSeq}-1`, { COUNT: limit })
    ) as unknown as codec.StreamEntry[];
    return { messages: entries.map((e) => codec.entryMessage(room, e)), lastSeq, epoch };
  }

  async before(room: string, before: number, limit: number): Promise<HistoryPage> {
    const { epoch, lastSeq } = await this.#meta(room);
    const end = Math.min(before - 1, lastSeq);
    if (end < 1) return { messages: [], lastSeq, epoch };
    const entries = await this.#run(() =>
      this.#cmd.xRevRange(keys(room).log, `${end}-1`, "-", { COUNT: limit })
    ) as unknown as codec.StreamEntry[];
    return { messages: entries.map((e) => codec.entryMessage(room, e)).reverse(), lastSeq, epoch };
  }

  subscribe(events: EngineEvents): () => void {
    this.#subscribers.add(events);
    return () => this.#subscribers.delete(events);
  }

  publishLine(room: string, line: string): void {
    if (!this.#cmd.isReady) return; // typing is not worth a queue
    const sent = this.#cluster
      ? this.#cmd.sPublish(keys(room).lines, line)
      : this.#cmd.publish(keys(room).lines, line);
    sent.catch(() => {});
  }

  /**
   * Starts receiving `room`'s messages here: subscribes, then takes the room's stored seq as
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
      // Sharded on a Cluster: a room's channels live on the node of its keys.
      const subscribe = (channel: string, listener: (message: string) => void) =>
        this.#cluster ? this.#sub.sSubscribe(channel, listener) : this.#sub.subscribe(channel, listener);
      await this.#run(() => subscribe(keys(room).channel, (raw: string) => this.#received(room, state, raw)));
      await this.#run(() =>
        subscribe(keys(room).lines, (line: string) => {
          if (this.#rooms.get(room) === state) { for (const s of this.#subscribers) s.line?.(room, line); }
        })
      );
      const meta = await this.#storedMeta(room);
      state.delivered = meta.seq;
      state.epoch = meta.epoch;
      state.live = true;
    })();
    state.ready.catch(() => this.#rooms.get(room) === state && this.#rooms.delete(room));
    return state.ready;
  }

  /** Stops receiving `room` here (its last member left). */
  unwatch(room: string): void {
    if (!this.#rooms.delete(room)) return;
    const channels = [keys(room).channel, keys(room).lines];
    (this.#cluster ? this.#sub.sUnsubscribe(channels) : this.#sub.unsubscribe(channels)).catch(() => {});
  }

  /** Records that `name` is (or no longer is) in `room` here; Redis announces the union's changes. */
  async presence(room: string, name: string, present: boolean): Promise<void> {
    let names = this.#present.get(room);
    if (present) {
      if (!names) this.#present.set(room, names = new Set());
      names.add(name);
    } else {
      names?.delete(name);
      if (names?.size === 0) this.#present.delete(room);
    }
    await this.#presenceScript(
      present ? this.#scripts.presenceJoin : this.#scripts.presenceLeave,
      room,
      name,
    );
  }

  async claimName(key: string, name: string): Promise<boolean> {
    const ok = await this.#claim(key, name);
    if (ok) this.#names.set(key, name);
    return ok;
  }

  async nameOf(key: string): Promise<string | undefined> {
    return (await this.#run(() => this.#cmd.get(personKey(key)))) ?? undefined;
  }

  releaseName(key: string): void {
    this.#names.delete(key);
  }

  async whoIs(name: string): Promise<{ key: string; name: string } | undefined> {
    for (const k of nameKeys(name)) {
      const v = await this.#run(() => this.#cmd.get(nameKey(k)));
      if (v) return codec.decodeNameClaim(v);
    }
    return undefined;
  }

  async sendToPerson(key: string, line: string): Promise<void> {
    await this.#run(() => this.#cmd.publish(PEOPLE, codec.personLine(key, line)));
  }

  #claim(key: string, name: string): Promise<boolean> {
    const ttl = Math.max(this.#opts.nameHoldMs ?? 60_000, this.#ttl);
    return this.#script(
      this.#scripts.claim,
      [personKey(key), ...nameKeys(name).map(nameKey)],
      [key, codec.nameClaim(key, name), String(ttl), name],
    ).then((r) => r === 1);
  }

  async rememberPerson(p: Person): Promise<void> {
    const nk = nameKeys(p.name)[0];
    await this.#script(
      this.#scripts.remember,
      [dirKey(p.key), dirNameKey(nk)],
      [p.key, p.uid, p.name, nk, String(Date.now())],
    );
  }

  async findPerson(name: string): Promise<Person | undefined> {
    return codec.decodeFound(await this.#script(this.#scripts.find, nameKeys(name).map(dirNameKey), []));
  }

  async people(keys: readonly string[]): Promise<(Person | undefined)[]> {
    if (keys.length === 0) return [];
    return codec.decodePeople(keys, await this.#script(this.#scripts.dirs, keys.map(dirKey), []));
  }

  async conversations(key: string, before: number, limit: number): Promise<ConversationEntry[]> {
    const bound = Number.isFinite(before) ? String(before) : "+inf";
    return codec.decodeConversations(
      await this.#script(this.#scripts.conversations, [convsKey(key), peersKey(key)], [bound, String(limit)]),
    );
  }

  async conversationPeer(key: string, conv: string): Promise<string | undefined> {
    return (await this.#run(() => this.#cmd.hGet(peersKey(key), conv))) ?? undefined;
  }

  readPositions(key: string, rooms: readonly string[]): Promise<number[]> {
    return Promise.all(rooms.map(async (room) => {
      return Number((await this.#run(() => this.#cmd.hGet(keys(room).reads, key))) ?? 0);
    }));
  }

  async markRead(key: string, room: string, seq: number): Promise<ReadMark> {
    const k = keys(room);
    return codec.decodeReadMark(
      await this.#script(this.#scripts.read, [k.reads, k.meta], [key, String(seq)]),
    );
  }

  publishRename(oldName: string, newName: string, rooms: string[]): void {
    if (!this.#cmd.isReady) return;
    this.#cmd.publish(RENAMES, codec.renameLine(oldName, newName, rooms)).catch(() => {});
  }

  #renamedElsewhere(raw: string): void {
    try {
      const { oldName, newName, rooms } = codec.decodeRenameLine(raw);
      for (const s of this.#subscribers) s.renamed?.(oldName, newName, rooms);
    } catch {
      this.#opts.log.error("bad line on the renames channel");
    }
  }

  #toPerson(raw: string): void {
    try {
      const { key, line } = codec.decodePersonLine(raw);
      for (const s of this.#subscribers) s.person?.(key, line);
    } catch {
      this.#opts.log.error("bad line on the people channel");
    }
  }

  /** Person `oldName` here is now `newName`: its presence entries follow, with no join or leave. */
  async renamed(oldName: string, newName: string): Promise<void> {
    const moves: Promise<unknown>[] = [];
    for (const [room, names] of this.#present) {
      if (!names.delete(oldName)) continue;
      names.add(newName);
      const k = keys(room);
      const args = [
        `${this.#instance}\t${oldName}`,
        oldName,
        String(Date.now() + this.#ttl),
        `${this.#instance}\t${newName}`,
        newName,
      ];
      moves.push(this.#script(this.#scripts.presenceRename, [k.who, k.names], args));
    }
    await Promise.all(moves);
  }

  /** Everyone in `room`, on any process, sorted by code unit. */
  async members(room: string): Promise<string[]> {
    const names = await this.#run(() => this.#cmd.hKeys(keys(room).names));
    return names.sort();
  }

  #presenceScript(script: Script, room: string, name: string): Promise<unknown> {
    const k = keys(room);
    const entry = `${this.#instance}\t${name}`;
    return this.#script(
      script,
      [k.who, k.names, k.lines],
      [entry, name, String(Date.now() + this.#ttl), room, this.#publish],
    );
  }

  /** Every third of the TTL: refresh this process's entries, and sweep the dead ones of watched rooms. */
  #keepPresence(): void {
    if (!this.#cmd.isReady) return;
    for (const [key, name] of this.#names) this.#claim(key, name).catch(() => {});
    for (const [room, names] of this.#present) {
      for (const name of names) this.#presenceScript(this.#scripts.presenceJoin, room, name).catch(() => {});
    }
    for (const room of this.#rooms.keys()) {
      const k = keys(room);
      this.#script(this.#scripts.presenceSweep, [k.who, k.names, k.lines], [
        String(Date.now()),
        room,
        this.#publish,
      ]).catch(() => {});
    }
  }

  async access(room: string, uid: string): Promise<RoomAccess> {
    const k = keys(room);
    return codec.decodeAccess(
      await this.#script(this.#scripts.access, [k.rules, k.allowed, k.bans, k.mutes], [
        uid,
        String(Date.now()),
      ]),
    );
  }

  async rules(room: string): Promise<RoomRules> {
    return (await this.access(room, "")).rules;
  }

  async changeRoom(room: string, change: RoomChange, audit: AuditEntry): Promise<RoomRules> {
    checkRoomChange(change);
    const k = keys(room);
    const args = [
      change.kind,
      "uid" in change ? change.uid : "",
      "until" in change ? String(change.until) : "",
      JSON.stringify(change),
      codec.auditJson(audit),
      String(this.#auditRetain),
      String(Date.now()),
      this.#publish,
    ];
    if (change.kind === "rules") args.push(...codec.ruleFields(change.rules));
    return codec.decodeRules(
      await this.#script(this.#scripts.changeRoom, [k.rules, k.allowed, k.bans, k.mutes, k.audit], args),
    );
  }

  async changeMessage(
    room: string,
    seq: number,
    change: MessageChange,
    guard: ChangeGuard,
    audit?: AuditEntry,
  ): Promise<ChangeResult> {
    const k = keys(room);
    const r = await this.#script(this.#scripts.changeMessage, [k.meta, k.log, k.audit, k.changes], [
      String(seq),
      change.kind,
      change.kind === "edit" ? change.text : "",
      change.kind === "edit" ? String(change.editedTs) : "",
      guard.authorKey ?? "",
      guard.sentSince === undefined ? "" : String(guard.sentSince),
      audit ? codec.auditJson(audit) : "",
      String(this.#auditRetain),
      this.#publish,
      String(QUOTE_MAX_CHARS),
      String(NODE),
      change.kind === "delete" ? change.by : "",
    ]);
    return codec.decodeChangeMessage(room, seq, r);
  }

  async message(room: string, seq: number): Promise<ChatMessage | undefined> {
    const entries = await this.#run(() =>
      this.#cmd.xRange(keys(room).log, `${seq}-1`, `${seq}-1`)
    ) as unknown as codec.StreamEntry[];
    return entries[0] && codec.entryMessage(room, entries[0]);
  }

  async react(
    room: string,
    seq: number,
    key: string,
    emoji: string,
    want: boolean | undefined,
    caps: ReactionCaps,
  ): Promise<ReactResult> {
    const k = keys(room);
    const r = await this.#script(this.#scripts.react, [k.log, k.rx], [
      String(seq),
      key,
      emoji,
      codec.reactWant(want),
      String(caps.maxEmoji),
      String(caps.maxPerPerson),
    ]);
    return codec.decodeReact(r);
  }

  async reactions(
    room: string,
    from: number,
    to: number,
    key: string,
  ): Promise<Map<number, MessageReactions>> {
    return codec.decodeReactions(
      await this.#script(this.#scripts.reactions, [keys(room).rx], [key, String(from), String(to)]),
    );
  }

  async mentionCounts(
    key: string,
    rooms: readonly { room: string; after: number }[],
  ): Promise<Record<string, number>> {
    // One read per room (each room's keys live in its own slot), all at once.
    const counts = await Promise.all(
      rooms.map(({ room, after }) =>
        this.#script(this.#scripts.mentionCount, [`${keys(room).mentions}${key}`, keys(room).log], [
          String(after),
        ]).then(Number)
      ),
    );
    const out: Record<string, number> = {};
    rooms.forEach(({ room }, i) => counts[i] > 0 && (out[room] = counts[i]));
    return out;
  }

  async changes(room: string, upTo: number, afterRev: number, limit: number): Promise<ChangesPage> {
    const k = keys(room);
    const r = await this.#script(this.#scripts.changes, [k.meta, k.log, k.changes], [
      String(upTo),
      String(afterRev),
      String(limit),
      newEpoch(),
    ]);
    return codec.decodeChanges(room, r);
  }

  async audit(room: string, before: number, limit: number): Promise<AuditEntry[]> {
    const bound = Number.isFinite(before) ? String(before) : String(Number.MAX_SAFE_INTEGER);
    return codec.decodeAudit(
      await this.#script(this.#scripts.audit, [keys(room).audit], [bound, String(limit)]),
    );
  }

  async accessList(room: string): Promise<AccessList> {
    const k = keys(room);
    const r = await this.#script(this.#scripts.peopleLists, [k.allowed, k.bans, k.mutes], []);
    return codec.decodeAccessList(r, Date.now());
  }

  get #auditRetain(): number {
    return this.#opts.auditRetain ?? DEFAULT_AUDIT_RETAIN;
  }

  prune(_now: number): Promise<number> {
    // Both retentions run in the append script, on the room written to.
    return Promise.resolve(0);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    // People here leave their rooms at once, rather than when their entries expire.
    const leaving: Promise<unknown>[] = [];
    for (const [room, names] of this.#present) {
      for (const name of names) leaving.push(this.#presenceScript(this.#scripts.presenceLeave, room, name));
    }
    await Promise.allSettled(leaving);
    this.#present.clear();
    this.#rooms.clear();
    await Promise.allSettled([this.#cmd.close(), this.#sub.close()]);
  }

  /**
   * The room's epoch and last seq. For a watched room the last seq is what was delivered here:
   * anything newer is still on its way through the channel and must not be read twice.
   */
  async #meta(room: string): Promise<{ epoch: string; lastSeq: number }> {
    const { epoch, seq } = await this.#storedMeta(room);
    const watched = this.#rooms.get(room);
    const delivered = watched?.live && watched.epoch === epoch ? watched.delivered : 0;
    return { epoch, lastSeq: watched?.live ? Math.min(delivered, seq) : seq };
  }

  /** The room's epoch (made now if the room is new, or Redis lost it) and its last stored seq. */
  async #storedMeta(room: string): Promise<{ epoch: string; seq: number }> {
    return codec.decodeMeta(await this.#script(this.#scripts.meta, [keys(room).meta], [newEpoch()]));
  }

  #received(room: string, state: Watched, raw: string): void {
    let line: codec.RoomLine;
    try {
      line = codec.decodeRoomLine(room, raw);
    } catch {
      return this.#opts.log.error("bad message on a room channel", { room });
    }
    if (line.kind === "unknown") return this.#opts.log.error("bad change on a room channel", { room });
    if (line.kind === "room") return this.#roomChanged(room, state, line.change, line.rules);
    if (line.kind === "message") {
      return this.#messageChanged(room, state, line.epoch, line.message, line.info);
    }
    const { epoch, messages } = line;
    state.chain = state.chain.then(() => state.ready).then(async () => {
      if (epoch !== state.epoch) this.#restart(room, state, epoch);
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

  /** Redis lost the room (restarted without persistence, flushed, evicted): its seqs start over. */
  #restart(room: string, state: Watched, epoch: string): void {
    this.#opts.log.warn("room history was lost in Redis; its seqs start over", { room });
    state.epoch = epoch;
    state.delivered = 0;
    for (const s of this.#subscribers) s.restarted?.(room, epoch);
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
        const meta = await this.#storedMeta(room);
        if (meta.epoch !== state.epoch) this.#restart(room, state, meta.epoch);
        target = meta.seq;
      }
      if (target > state.delivered) {
        const entries = await this.#run(() =>
          this.#cmd.xRange(keys(room).log, `${state.delivered + 1}-1`, `${target}-1`)
        ) as unknown as codec.StreamEntry[];
        for (const e of entries) {
          const g = codec.entryMessage(room, e);
          if (g.seq > state.delivered) this.#hand(state, g);
        }
        // What retention trimmed away is gone for everyone; move on rather than wait for it.
        if (state.delivered < target) state.delivered = target;
      }
    } catch (e) {
      // Redis is away: the next message or the reconnect tries again from `delivered`.
      this.#opts.log.error("redis backfill failed", { room, error: (e as Error).message });
      if (m) return;
    }
    if (m && m.seq === state.delivered + 1) this.#hand(state, m);
  }

  #hand(state: Watched, m: ChatMessage): void {
    state.delivered = m.seq;
    for (const s of this.#subscribers) s.message(m);
  }

  /** The subscriber came back: every watched room reads what it missed while it was away. */
  #resync(): void {
    for (const [room, state] of this.#rooms) {
      state.chain = state.chain.then(() => state.ready).then(() => this.#catchUp(room, state), () => {});
    }
  }

  /** Runs one of the engine's scripts (by SHA) on the command client; see {@link #run}. */
  #script(script: Script, keys: string[], args: string[]): Promise<unknown> {
    return this.#run(() => runScript(this.#cmd, script, keys, args));
  }

  async #run<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.#cmd.isReady) throw new UnavailableError("Redis is not connected");
    try {
      return await fn();
    } catch (e) {
      throw new UnavailableError(`Redis: ${(e as Error).message}`);
    }
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

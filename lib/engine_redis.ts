/**
 * The Redis engine: rooms shared by every server process on one Redis. Where each thing lives (the
 * keys, per room under its hash tag so that one room's keys share one Cluster slot, and the channels)
 * is written down in `lib/redis/keys.ts`.
 *
 * A stream entry cannot be changed in place, and `XDEL` only flags an entry (its bytes stay in the
 * node, in `DUMP`, in the RDB): so a message's entry holds what never changes (sender, time, cid, what
 * it answers), and its text and mentions live in the room's text buckets, hashes whose fields a delete
 * or an edit replaces or removes for good (see `lib/redis/lua/stored.lua`). A change then costs a few
 * field writes whatever the message's age and the room's size, and a deleted text is gone from Redis.
 * A reply's quote is made when it is read, from the message it answers as it is then.
 *
 * One Lua script per group of messages (on a Cluster: per room and group) numbers, de-duplicates,
 * appends, trims and publishes atomically, so `seq` is gap-free and never reused across processes.
 * Pub/sub is lossy: a process that sees a seq jump, or comes back from a lost connection, reads the gap
 * from the stream before it delivers newer (`lib/redis/delivery.ts`). Replication is asynchronous: with
 * `redisWaitReplicas` an append is acked, and published, only once `WAIT` says its replicas have it,
 * so a master that dies takes no acked message with it (docs/deploy.md, _Redis replicas and
 * failover_). What processes share (presence, names, live lines) is `lib/redis/sharing.ts`.
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
  type RoomListing,
  type RoomQuery,
  type RoomRules,
  type StoredRoom,
} from "./engine.ts";
import { DEFAULT_AUDIT_RETAIN } from "./engine_embedded.ts";
import type { Logger } from "./log.ts";
import { type ChatMessage, QUOTE_MAX_CHARS } from "./protocol.ts";
import { nameKeys } from "./names.ts";
import { checkRoomChange, newEpoch } from "./store.ts";
import { checkPersistence, connectClients, RedisClients, type ReplicaWait } from "./redis/client.ts";
import * as codec from "./redis/codec.ts";
import { convsKey, dirKey, dirNameKey, peersKey, roomKeys as keys, ROOMS, wroteKey } from "./redis/keys.ts";
import { readIndex } from "./redis/directory.ts";
import { RoomDelivery } from "./redis/delivery.ts";
import { RedisRetention } from "./redis/retention.ts";
import { loadScripts } from "./redis/scripts.ts";
import { RedisSharing } from "./redis/sharing.ts";

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
  /** Milliseconds between two counts of a big room: also how long a member list read for pages is used. */
  countIntervalMs?: number;
  /**
   * Replicas a message must reach (`WAIT`) before it is acked; 0 acks once the master has it, and a
   * master lost before its replica got the message loses it. @default 0
   */
  redisWaitReplicas?: number;
  /** Milliseconds to wait for them, then the append fails as unavailable. @default 500 */
  redisWaitMs?: number;
  /** Milliseconds a guest who never wrote stays in the people directory. @default Infinity (always) */
  guestForgetMs?: number;
}

/** How often, at most, an append looks for messages past the age retention in a room (ms). */
const AGE_CHECK_MS = 1000;

/** Ms after a Cluster node's subscriber connected by which it has subscribed again to its channels. */
const RESUBSCRIBED_MS = 500;

/** Mentions kept per person and room (the newest): a count shows at most this many. */
const MENTIONS_KEPT = 1000;

/**
 * Entries one stream node holds at most: Redis's `stream-node-max-entries` (default 100) must not be
 * larger (0 = unlimited breaks it too), or a deleted text may stay in its node (see change_message.lua).
 * Checked at connect.
 */
const NODE = 100;

/**
 * Rooms on Redis; see the module doc. Three parts on one pair of clients: this class stores (history,
 * rules and audit, reactions, the people directory, read positions, conversations), a
 * {@link RoomDelivery} hands the watched rooms' stored events to the subscribers, and
 * {@link sharing} is what the processes share.
 */
export class RedisEngine implements Engine {
  /** Presence, names, live lines, lines to a person, renames: see `sharingOf` in lib/app.ts. */
  readonly sharing: RedisSharing;
  readonly #redis: RedisClients;
  readonly #delivery: RoomDelivery;
  readonly #opts: RedisOptions;
  readonly #retention: RedisRetention;
  #closed = false;
  /** The second look after a Cluster node's subscriptions moved (see connect). */
  #resyncTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(redis: RedisClients, opts: RedisOptions) {
    this.#redis = redis;
    this.#opts = opts;
    this.#delivery = new RoomDelivery(redis, opts.log);
    this.#retention = new RedisRetention(redis, { retainMs: opts.retainMs, log: opts.log });
    this.sharing = new RedisSharing(redis, this.#delivery, {
      presenceTtlMs: opts.presenceTtlMs ?? 15_000,
      nameHoldMs: opts.nameHoldMs ?? 60_000,
      memberListMs: opts.countIntervalMs ?? 1000,
      log: opts.log,
    });
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
    const engine = new RedisEngine(new RedisClients(cmd, sub, cluster, scripts), opts);
    try {
      sub.on("ready", () => engine.#delivery.resync());
      // A Cluster client says nothing when a node's subscriptions move (a failover): it connects to
      // the new master ("node-ready") and subscribes there a moment later. What was published on the
      // room channels meanwhile is read from the streams then, and once more after that moment, or a
      // room whose last message went out in between would wait for its next one.
      if (cluster) {
        sub.on("node-ready", () => {
          engine.#delivery.resync();
          if (engine.#closed) return;
          clearTimeout(engine.#resyncTimer);
          engine.#resyncTimer = setTimeout(() => engine.#delivery.resync(), RESUBSCRIBED_MS);
        });
      }
      await engine.sharing.start();
      await checkPersistence(cmd, opts.log, NODE);
    } catch (e) {
      // Connected but not started: its clients and the presence timer must not outlive the failure.
      await engine.close();
      throw e;
    }
    return engine;
  }

  health(): string | undefined {
    return this.#redis.ready ? undefined : "redis unavailable";
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
    const kept = Promise.all([this.#retention.appending(batch), this.#index(batch.map((d) => d.room))]);
    // A conversation goes in both people's lists before its message is stored (another slot on a
    // Cluster, so not in the same script): a crash between the two leaves a listed conversation
    // without that message, never a stored message in a conversation nobody lists.
    const conversing = new Map<string, Draft>();
    for (const d of batch) if (d.between) conversing.set(d.room, d);
    const wait = this.#wait;
    await Promise.all([...conversing.values()].map((d) => {
      const [a, b] = d.between!;
      const convKeys = [convsKey(a), peersKey(a), convsKey(b), peersKey(b), wroteKey(d.key)];
      const args = [d.room, a, b, String(d.ts)];
      const { converse } = this.#redis.scripts;
      return wait
        ? this.#redis.scriptReplicated(converse, convKeys, args, wait)
        : this.#redis.script(converse, convKeys, args);
    }));
    // One script for every room of the group on one Redis; one per room on a Cluster (a room's keys
    // share one slot, rooms may not).
    const rooms = [...byRoom];
    const groups = this.#redis.cluster ? rooms.map((r) => [r]) : [rooms];
    await Promise.all(groups.map(async (group) => {
      const keyList: string[] = [];
      const args = [
        String(this.#opts.retainMessages),
        String(minTs),
        String(this.#opts.dedupWindowMs),
        // Waiting for replicas: the script hands back the lines, published below once they have them.
        wait ? "" : this.#redis.publish,
        String(QUOTE_MAX_CHARS),
        String(MENTIONS_KEPT),
        String(AGE_CHECK_MS),
      ];
      // What was delivered here before this append: its seqs cannot be below it unless the store went back.
      const was = group.map(([room]) => this.#delivery.position(room));
      for (const [room, idx] of group) {
        const k = keys(room);
        keyList.push(k.meta, k.log, k.reads);
        args.push(newEpoch(), String(idx.length));
        for (const i of idx) args.push(...codec.appendArgs(batch[i]));
      }
      const { append } = this.#redis.scripts;
      const rooms = codec.decodeAppend(
        await (wait
          ? this.#redis.scriptReplicated(append, keyList, args, wait)
          : this.#redis.script(append, keyList, args)),
        wait !== undefined,
      );
      group.forEach(([room], g) =>
        rooms[g].line && this.#redis.publishRoom(keys(room).channel, rooms[g].line)
      );
      group.forEach(([room, idx], g) => {
        // Below what was delivered here: the store went back (a failover lost what its replica had
        // not got yet), and this room gets a new epoch.
        this.#delivery.wentBack(room, rooms[g].seqBefore, was[g]);
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
            const tomb: ChatMessage = { room, seq, from: d.from, ts, text: "", deleted: true };
            if (got.display !== undefined) tomb.display = got.display;
            out[i] = { message: tomb, duplicate: true };
            return;
          }
          const edited = got.kind === "duplicate" ? got.edited : undefined;
          const message: ChatMessage = { room, seq, from: d.from, text: edited?.text ?? d.text, ts };
          if (d.cid !== undefined) message.cid = d.cid;
          const display = got.kind === "duplicate" ? got.display : d.display;
          if (display !== undefined) message.display = display;
          if (edited) message.editedTs = edited.editedTs;
          if (d.mentions?.length) message.mentions = d.mentions.map((p) => p.name);
          out[i] = { message, duplicate: got.kind === "duplicate" };
        });
      });
    }));
    await kept;
    return out;
  }

  async after(room: string, after: number, limit: number): Promise<HistoryPage> {
    const { epoch, lastSeq } = await this.#delivery.meta(room);
    if (limit < 1 || after >= lastSeq) return { messages: [], lastSeq, epoch };
    const messages = await this.#delivery.read(room, `${after + 1}-1`, `${lastSeq}-1`, limit);
    return { messages, lastSeq, epoch };
  }

  async before(room: string, before: number, limit: number): Promise<HistoryPage> {
    const { epoch, lastSeq } = await this.#delivery.meta(room);
    const end = Math.min(before - 1, lastSeq);
    if (end < 1 || limit < 1) return { messages: [], lastSeq, epoch };
    const messages = await this.#delivery.read(room, `${end}-1`, "-", limit, true);
    return { messages: messages.reverse(), lastSeq, epoch };
  }

  subscribe(events: EngineEvents): () => void {
    return this.#delivery.subscribe(events);
  }

  async rememberPerson(p: Person, guest = false): Promise<void> {
    const nk = nameKeys(p.name)[0];
    const forget = this.#opts.guestForgetMs;
    await this.#redis.script(
      this.#redis.scripts.remember,
      [dirKey(p.key), dirNameKey(nk)],
      [p.key, p.uid, p.name, nk, String(Date.now()), guest && Number.isFinite(forget) ? String(forget) : ""],
    );
  }

  async findPerson(name: string): Promise<Person | undefined> {
    return codec.decodeFound(
      await this.#redis.script(this.#redis.scripts.find, nameKeys(name).map(dirNameKey), []),
    );
  }

  async people(keys: readonly string[]): Promise<(Person | undefined)[]> {
    if (keys.length === 0) return [];
    return codec.decodePeople(keys, await this.#redis.script(this.#redis.scripts.dirs, keys.map(dirKey), []));
  }

  async conversations(key: string, before: number, limit: number): Promise<ConversationEntry[]> {
    const bound = Number.isFinite(before) ? String(before) : "+inf";
    return codec.decodeConversations(
      await this.#redis.script(this.#redis.scripts.conversations, [convsKey(key), peersKey(key)], [
        bound,
        String(limit),
      ]),
    );
  }

  async conversationPeer(key: string, conv: string): Promise<string | undefined> {
    return (await this.#redis.run(() => this.#redis.cmd.hGet(peersKey(key), conv))) ?? undefined;
  }

  async wrote(conv: string, key: string): Promise<boolean> {
    return Number(await this.#redis.run(() => this.#redis.cmd.sIsMember(wroteKey(key), conv))) === 1;
  }

  readPositions(key: string, rooms: readonly string[]): Promise<number[]> {
    return Promise.all(rooms.map(async (room) => {
      return Number((await this.#redis.run(() => this.#redis.cmd.hGet(keys(room).reads, key))) ?? 0);
    }));
  }

  async markRead(key: string, room: string, seq: number): Promise<ReadMark> {
    const k = keys(room);
    return codec.decodeReadMark(
      await this.#redis.script(this.#redis.scripts.read, [k.reads, k.meta], [key, String(seq)]),
    );
  }

  async access(room: string, uid: string): Promise<RoomAccess> {
    const k = keys(room);
    return codec.decodeAccess(
      await this.#redis.script(this.#redis.scripts.access, [
        k.rules,
        k.allowed,
        k.bans,
        k.mutes,
        k.meta,
        k.audit,
      ], [
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
      this.#redis.publish,
    ];
    if (change.kind === "rules") args.push(...codec.ruleFields(change.rules));
    const [rules] = await Promise.all([
      this.#redis.script(
        this.#redis.scripts.changeRoom,
        [k.rules, k.allowed, k.bans, k.mutes, k.audit],
        args,
      ),
      this.#index([room]),
    ]);
    return codec.decodeRules(rules);
  }

  async publicRooms(query: RoomQuery): Promise<RoomListing<StoredRoom>> {
    // Privacy is read from each room's rules, not kept in the index: a room's rules and the index
    // live in different slots on a Cluster, so no script could change both at once.
    return await readIndex(this.#redis, ROOMS, query, (rooms) =>
      Promise.all(rooms.map(async (room) => {
        const [topic, priv] = await this.#redis.run(() =>
          this.#redis.cmd.hmGet(keys(room).rules, ["topic", "private"])
        );
        return priv === "1" ? undefined : { room, topic: topic ?? "" };
      })));
  }

  /**
   * Puts the rooms (conversations aside) in the directory's index, beside the write that makes them
   * known; a room already in it stays as it is.
   */
  #index(rooms: readonly string[]): Promise<unknown> | undefined {
    const names = [...new Set(rooms)].filter((r) => !r.startsWith("@"));
    if (names.length === 0) return undefined;
    const members = names.map((value) => ({ score: 0, value }));
    return this.#redis.run(() => this.#redis.cmd.zAdd(ROOMS, members)).catch((e) =>
      this.#opts.log.warn("rooms not put in the directory", { error: (e as Error).message })
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
    const r = await this.#redis.script(
      this.#redis.scripts.changeMessage,
      [k.meta, k.log, k.audit, k.changes],
      [
        String(seq),
        change.kind,
        change.kind === "edit" ? change.text : "",
        change.kind === "edit" ? String(change.editedTs) : "",
        guard.authorKey ?? "",
        guard.sentSince === undefined ? "" : String(guard.sentSince),
        audit ? codec.auditJson(audit) : "",
        String(this.#auditRetain),
        this.#redis.publish,
        String(QUOTE_MAX_CHARS),
        String(NODE),
        change.kind === "delete" ? change.by : "",
      ],
    );
    return codec.decodeChangeMessage(room, seq, r);
  }

  async message(room: string, seq: number): Promise<ChatMessage | undefined> {
    return (await this.#delivery.read(room, `${seq}-1`, `${seq}-1`, 1))[0];
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
    const r = await this.#redis.script(this.#redis.scripts.react, [k.log, k.rx], [
      String(seq),
      key,
      emoji,
      codec.reactWant(want),
      String(caps.maxEmoji),
      String(caps.maxPerPerson),
      String(caps.maxTotal),
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
      await this.#redis.script(this.#redis.scripts.reactions, [keys(room).rx], [
        key,
        String(from),
        String(to),
      ]),
    );
  }

  async mentionCounts(
    key: string,
    rooms: readonly { room: string; after: number }[],
  ): Promise<Record<string, number>> {
    // One read per room (each room's keys live in its own slot), all at once.
    const counts = await Promise.all(
      rooms.map(({ room, after }) =>
        this.#redis.script(
          this.#redis.scripts.mentionCount,
          [`${keys(room).mentions}${key}`, keys(room).log],
          [
            String(after),
          ],
        ).then(Number)
      ),
    );
    const out: Record<string, number> = {};
    rooms.forEach(({ room }, i) => counts[i] > 0 && (out[room] = counts[i]));
    return out;
  }

  async changes(room: string, upTo: number, afterRev: number, limit: number): Promise<ChangesPage> {
    const k = keys(room);
    const r = await this.#redis.script(this.#redis.scripts.changes, [k.meta, k.log, k.changes], [
      String(upTo),
      String(afterRev),
      String(limit),
      newEpoch(),
      String(QUOTE_MAX_CHARS),
    ]);
    return codec.decodeChanges(room, r);
  }

  async audit(room: string, before: number, limit: number): Promise<AuditEntry[]> {
    const bound = Number.isFinite(before) ? String(before) : String(Number.MAX_SAFE_INTEGER);
    return codec.decodeAudit(
      await this.#redis.script(this.#redis.scripts.audit, [keys(room).audit], [bound, String(limit)]),
    );
  }

  async accessList(room: string): Promise<AccessList> {
    const k = keys(room);
    const r = await this.#redis.script(this.#redis.scripts.peopleLists, [k.allowed, k.bans, k.mutes], []);
    return codec.decodeAccessList(r, Date.now());
  }

  /** The replicas an append waits for, or undefined when it does not wait. */
  get #wait(): ReplicaWait | undefined {
    const replicas = this.#opts.redisWaitReplicas ?? 0;
    return replicas > 0 ? { replicas, timeoutMs: this.#opts.redisWaitMs ?? 500 } : undefined;
  }

  get #auditRetain(): number {
    return this.#opts.auditRetain ?? DEFAULT_AUDIT_RETAIN;
  }

  /** See {@link RedisRetention.prune}. */
  prune(now: number): Promise<number> {
    return this.#retention.prune(now);
  }

  /**
   * Takes this process's people out of their rooms, forgets the watched rooms, then closes both
   * clients (and with them every subscription). Idempotent: each is closed once.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#resyncTimer);
    await this.sharing.close();
    this.#delivery.close();
    await this.#redis.close();
  }
}

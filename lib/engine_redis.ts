/**
 * The Redis engine: rooms shared by every server process on one Redis. Per room, under the hash tag
 * `{room}` (so one room's keys live in one Cluster slot):
 *
 * - `chat:{room}:meta`, a hash: `seq` (the last one handed out) and `epoch` (set once);
 * - `chat:{room}:log`, a stream: one entry per message, its id `<seq>-1`;
 * - `chat:{room}:cid:<key>:<cid>`: the seq and ts a person's cid was stored under, for the dedup window;
 * - `chat:{room}`, the channel each stored message is published on, and `chat:{room}:lines` for
 *   lines that are not stored (typing).
 *
 * One Lua script per room and group numbers, de-duplicates, appends, trims and publishes atomically,
 * so `seq` is gap-free and never reused across processes. Pub/sub is lossy: a process that sees a seq
 * jump, or comes back from a lost connection, reads the gap from the stream before it delivers newer.
 * @module
 */
import { createClient, createCluster } from "@redis/client";
import {
  type Appended,
  type Draft,
  type Engine,
  type EngineEvents,
  type HistoryPage,
  UnavailableError,
} from "./engine.ts";
import type { Logger } from "./log.ts";
import type { ChatMessage } from "./protocol.ts";
import { nameKeys } from "./names.ts";
import { newEpoch } from "./store.ts";

/** Options of {@link RedisEngine.connect}. */
export interface RedisOptions {
  url: string;
  /** Messages kept per room (0 = all). */
  retainMessages: number;
  /** Milliseconds a message is kept (0 = forever). */
  retainMs: number;
  /** Milliseconds a `cid` is remembered. */
  dedupWindowMs: number;
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

const keys = (room: string) => ({
  meta: `chat:{${room}}:meta`,
  log: `chat:{${room}}:log`,
  channel: `chat:{${room}}`,
  lines: `chat:{${room}}:lines`,
  who: `chat:{${room}}:who`,
  names: `chat:{${room}}:names`,
});

/** The channel every process hears for lines to one person (direct messages). */
const PEOPLE = "chat:people";
/** KEYS: the key. ARGV: value, ttl ms. */
const KEEP = `redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 0`;
/** The channel every process hears for renames (told to the members of the person's rooms). */
const RENAMES = "chat:renames";
// One hash tag for every name key: a claim touches several, and on a Cluster they must share a slot.
const nameKey = (k: string) => `chat:{names}:name:${k}`;

const personKey = (key: string) => `chat:{names}:person:${key}`;

/**
 * KEYS: the person's key, then the name's keys (its lookalike keys). ARGV: person key, value
 * (`<key>\t<name>`), ttl ms, name. Takes them all for the person unless another person holds one.
 */
const CLAIM = `
for i = 2, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v and string.sub(v, 1, string.len(ARGV[1]) + 1) ~= ARGV[1] .. '\t' then return 0 end
end
for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[2], 'PX', ARGV[3]) end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[3])
return 1
`;

/** A presence line, the same in every process (built in Lua too: keep the two in step). */
const PRESENCE_LINE = (event: string) => `
'{"type":"presence","room":' .. cjson.encode(ARGV[4]) .. ',"event":"${event}","name":' .. cjson.encode(ARGV[2]) .. '}'`;

/**
 * Presence is the union over processes: `who` holds one entry per (process, name) scored by when it
 * expires, `names` counts the processes that hold a name. KEYS: who, names, lines. ARGV: entry,
 * name, expiry (ms), room. A join that is the name's first anywhere is announced; so is a leave
 * that is its last. Also the refresh: an entry that exists only gets its new expiry.
 */
const PJOIN = `
if redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) == 1 and redis.call('HINCRBY', KEYS[2], ARGV[2], 1) == 1 then
  redis.call('%PUB%', KEYS[3], ${PRESENCE_LINE("join")})
end
return 0
`;
const PLEAVE = `
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 and redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('%PUB%', KEYS[3], ${PRESENCE_LINE("leave")})
end
return 0
`;
/**
 * A rename of someone present here: the entry moves to the new name without a join or leave
 * (members see the rename itself). KEYS: who, names. ARGV: old entry, old name, expiry, new entry, new name.
 */
const PRENAME = `
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 and redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
end
if redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4]) == 1 then redis.call('HINCRBY', KEYS[2], ARGV[5], 1) end
return 0
`;

/**
 * The entries of a process that stopped refreshing (it died): removed, and each name's leave
 * announced once, by whichever process removes it first. KEYS: who, names, lines. ARGV: now, -, -, room.
 */
const PSWEEP = `
local n = 0
for _, entry in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  local name = string.match(entry, '\t(.*)$')
  ARGV[2] = name
  if redis.call('ZREM', KEYS[1], entry) == 1 and redis.call('HINCRBY', KEYS[2], name, -1) <= 0 then
    redis.call('HDEL', KEYS[2], name)
    redis.call('%PUB%', KEYS[3], ${PRESENCE_LINE("leave")})
    n = n + 1
  end
end
return n
`;

/**
 * KEYS: meta, log. ARGV: epoch if new, retainMessages, minTs (0: keep all), dedupMs, count, then per message
 * key, cid ("" for none), from, text, ts. Returns the epoch, then per message "n" or "d" with seq and ts.
 * The cid keys share the room's hash tag, so they live in its slot.
 */
const APPEND = `
local meta, log = KEYS[1], KEYS[2]
redis.call('HSETNX', meta, 'epoch', ARGV[1])
local seq = tonumber(redis.call('HGET', meta, 'seq') or '0')
local epoch = redis.call('HGET', meta, 'epoch')
local out = { epoch }
local base = string.sub(meta, 1, -5)
local channel = string.sub(meta, 1, -6)
local i = 6
for _ = 1, tonumber(ARGV[5]) do
  local key, cid, from, text, ts = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  local ck = base .. 'cid:' .. key .. ':' .. cid
  local prev = false
  if cid ~= '' then prev = redis.call('GET', ck) end
  if prev then
    out[#out + 1] = 'd' .. prev
  else
    seq = seq + 1
    redis.call('XADD', log, seq .. '-1', 'f', from, 't', text, 'ts', ts, 'c', cid)
    if cid ~= '' then redis.call('SET', ck, seq .. ':' .. ts, 'PX', ARGV[4]) end
    redis.call('%PUB%', channel, cjson.encode({ seq, from, text, tonumber(ts), cid, epoch }))
    out[#out + 1] = 'n' .. seq .. ':' .. ts
  end
end
redis.call('HSET', meta, 'seq', seq)
local keep = tonumber(ARGV[2])
if keep > 0 and seq > keep then redis.call('XTRIM', log, 'MINID', (seq - keep + 1) .. '-1') end
-- Age retention: the oldest entries (at most 100 a call) older than ARGV[3] ms since the epoch.
local minTs = tonumber(ARGV[3])
local function tsOf(e)
  for j = 1, #e[2], 2 do if e[2][j] == 'ts' then return tonumber(e[2][j + 1]) end end
end
local oldest = minTs > 0 and redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
-- Most writes find the oldest entry young enough: one read. Only then up to 100 are looked at.
if oldest and (tsOf(oldest) or minTs) < minTs then
  local cut = nil
  for _, e in ipairs(redis.call('XRANGE', log, '-', '+', 'COUNT', 100)) do
    local ts = tsOf(e)
    if ts and ts < minTs then cut = tonumber(string.match(e[1], '^(%d+)')) else break end
  end
  if cut then redis.call('XTRIM', log, 'MINID', (cut + 1) .. '-1') end
end
return out
`;

/** KEYS: meta. ARGV: epoch if new. Returns epoch and last seq; makes the epoch if the room is new. */
const META = `
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
return { redis.call('HGET', KEYS[1], 'epoch'), redis.call('HGET', KEYS[1], 'seq') or '0' }
`;

/**
 * The commands this engine uses, the same on one Redis and on a Cluster (node-redis has one client
 * type for each).
 */
interface RedisLike {
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  close(): Promise<unknown>;
  destroy(): unknown;
  on(event: string, listener: (e: Error) => void): unknown;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  xRange(key: string, start: string, end: string, options?: { COUNT: number }): Promise<unknown>;
  xRevRange(key: string, start: string, end: string, options?: { COUNT: number }): Promise<unknown>;
  get(key: string): Promise<string | null>;
  hKeys(key: string): Promise<string[]>;
  publish(channel: string, message: string): Promise<unknown>;
  sPublish(channel: string, message: string): Promise<unknown>;
  subscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  sSubscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  unsubscribe(channels: string | string[]): Promise<unknown>;
  sUnsubscribe(channels: string | string[]): Promise<unknown>;
  configGet?(parameters: string[]): Promise<Record<string, string>>;
}

/** The scripts with the publish of this deployment: sharded on a Cluster, so a room stays on its node. */
function scriptsFor(cluster: boolean) {
  const pub = (script: string) => script.replaceAll("%PUB%", cluster ? "SPUBLISH" : "PUBLISH");
  return { APPEND: pub(APPEND), PJOIN: pub(PJOIN), PLEAVE: pub(PLEAVE), PSWEEP: pub(PSWEEP) };
}

/** Rooms on Redis; see the module doc. */
export class RedisEngine implements Engine {
  readonly #cmd: RedisLike;
  readonly #sub: RedisLike;
  readonly #cluster: boolean;
  readonly #lua: ReturnType<typeof scriptsFor>;
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

  private constructor(cmd: RedisLike, sub: RedisLike, opts: RedisOptions, cluster: boolean) {
    this.#cmd = cmd;
    this.#sub = sub;
    this.#cluster = cluster;
    this.#lua = scriptsFor(cluster);
    this.#opts = opts;
    this.#ttl = opts.presenceTtlMs ?? 15_000;
    this.#timer = setInterval(() => this.#keepPresence(), this.#ttl / 3);
    // Node's typings (pulled in by node:sqlite) say Timeout; Deno's timers are numbers.
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  /** Connects both clients (commands, subscriptions). @throws {UnavailableError} with one sentence. */
  static async connect(opts: RedisOptions): Promise<RedisEngine> {
    const timeout = opts.commandTimeoutMs ?? 2000;
    // `redis+cluster://host:port` (or `rediss+cluster://`): a Cluster, found from that node.
    const cluster = /^rediss?\+cluster:/.test(opts.url);
    const url = opts.url.replace("+cluster:", ":");
    const client = {
      // Fail at once while disconnected instead of queueing: a send is answered "unavailable".
      disableOfflineQueue: true,
      socket: {
        connectTimeout: timeout,
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000),
      },
    };
    const make = () =>
      (cluster
        ? createCluster({ rootNodes: [{ url }], defaults: client })
        : createClient({ url, ...client })) as unknown as RedisLike;
    const cmd = make();
    const sub = make();
    // Until both are up the first error ends the start-up (one sentence); after, errors are logged
    // once per outage and the clients reconnect by themselves.
    let starting = true;
    let failStart: (e: Error) => void = () => {};
    let down = false;
    for (const c of [cmd, sub]) {
      c.on("error", (e: Error) => {
        if (starting) return failStart(e);
        if (!down) opts.log.error("redis connection failed", { error: e.message });
        down = true;
      });
      c.on("ready", () => {
        if (down) opts.log.warn("redis connection back");
        down = false;
      });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        Promise.all([cmd.connect(), sub.connect()]),
        new Promise((_, reject) => {
          failStart = reject;
          timer = setTimeout(() => reject(new Error(`no answer within ${timeout} ms`)), timeout);
        }),
      ]);
    } catch (e) {
      await Promise.allSettled([cmd.destroy(), sub.destroy()]);
      throw new UnavailableError(`cannot reach Redis at ${redactUrl(opts.url)}: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
      starting = false;
    }
    const engine = new RedisEngine(cmd, sub, opts, cluster);
    sub.on("ready", () => engine.#resync());
    await sub.subscribe(PEOPLE, (raw: string) => engine.#toPerson(raw));
    await sub.subscribe(RENAMES, (raw: string) => engine.#renamedElsewhere(raw));
    await engine.#checkPersistence();
    return engine;
  }

  health(): string | undefined {
    return this.#cmd.isReady && this.#sub.isReady ? undefined : "redis unavailable";
  }

  async append(batch: readonly Draft[]): Promise<Appended[]> {
    // One script per room, in order: a room's keys share one slot; rooms may not.
    const byRoom = new Map<string, number[]>();
    batch.forEach((d, i) => byRoom.set(d.room, [...(byRoom.get(d.room) ?? []), i]));
    const out: Appended[] = new Array(batch.length);
    const minTs = this.#opts.retainMs > 0 ? Date.now() - this.#opts.retainMs : 0;
    await Promise.all([...byRoom].map(async ([room, idx]) => {
      const k = keys(room);
      const args = [
        newEpoch(),
        String(this.#opts.retainMessages),
        String(minTs),
        String(this.#opts.dedupWindowMs),
      ];
      args.push(String(idx.length));
      for (const i of idx) {
        const d = batch[i];
        args.push(d.key, d.cid ?? "", d.from, d.text, String(d.ts));
      }
      const res = await this.#run(() =>
        this.#cmd.eval(this.#lua.APPEND, { keys: [k.meta, k.log], arguments: args })
      ) as string[];
      idx.forEach((i, j) => {
        const d = batch[i];
        const [seq, ts] = res[j + 1].slice(1).split(":").map(Number);
        const message: ChatMessage = { room, seq, from: d.from, text: d.text, ts };
        if (d.cid !== undefined) message.cid = d.cid;
        out[i] = { message, duplicate: res[j + 1][0] === "d" };
      });
    }));
    return out;
  }

  async after(room: string, after: number, limit: number): Promise<HistoryPage> {
    const { epoch, lastSeq } = await this.#meta(room);
    const entries = await this.#run(() =>
      this.#cmd.xRange(keys(room).log, `${after + 1}-1`, `${lastSeq}-1`, { COUNT: limit })
    ) as unknown as StreamEntry[];
    return { messages: entries.map((e) => fromEntry(room, e)), lastSeq, epoch };
  }

  async before(room: string, before: number, limit: number): Promise<HistoryPage> {
    const { epoch, lastSeq } = await this.#meta(room);
    const end = Math.min(before - 1, lastSeq);
    if (end < 1) return { messages: [], lastSeq, epoch };
    const entries = await this.#run(() =>
      this.#cmd.xRevRange(keys(room).log, `${end}-1`, "-", { COUNT: limit })
    ) as unknown as StreamEntry[];
    return { messages: entries.map((e) => fromEntry(room, e)).reverse(), lastSeq, epoch };
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
    await this.#presenceScript(present ? this.#lua.PJOIN : this.#lua.PLEAVE, room, name);
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
      if (v) {
        const tab = v.indexOf("\t");
        return { key: v.slice(0, tab), name: v.slice(tab + 1) };
      }
    }
    return undefined;
  }

  async sendToPerson(key: string, line: string): Promise<void> {
    await this.#run(() => this.#cmd.publish(PEOPLE, JSON.stringify([key, line])));
  }

  #claim(key: string, name: string): Promise<boolean> {
    const ttl = Math.max(this.#opts.nameHoldMs ?? 60_000, this.#ttl);
    return this.#run(() =>
      this.#cmd.eval(CLAIM, {
        keys: [personKey(key), ...nameKeys(name).map(nameKey)],
        arguments: [key, `${key}\t${name}`, String(ttl), name],
      })
    ).then((r) => r === 1);
  }

  async directAck(key: string, cid: string): Promise<string | undefined> {
    return (await this.#run(() => this.#cmd.get(`chat:{names}:dm:${key}:${cid}`))) ?? undefined;
  }

  async rememberDirect(key: string, cid: string, ack: string): Promise<void> {
    const k = `chat:{names}:dm:${key}:${cid}`;
    await this.#run(() =>
      this.#cmd.eval(KEEP, { keys: [k], arguments: [ack, String(this.#opts.dedupWindowMs)] })
    );
  }

  publishRename(oldName: string, newName: string, rooms: string[]): void {
    if (!this.#cmd.isReady) return;
    this.#cmd.publish(RENAMES, JSON.stringify([oldName, newName, rooms])).catch(() => {});
  }

  #renamedElsewhere(raw: string): void {
    try {
      const [oldName, newName, rooms] = JSON.parse(raw) as [string, string, string[]];
      for (const s of this.#subscribers) s.renamed?.(oldName, newName, rooms);
    } catch {
      this.#opts.log.error("bad line on the renames channel");
    }
  }

  #toPerson(raw: string): void {
    try {
      const [key, line] = JSON.parse(raw) as [string, string];
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
      moves.push(this.#run(() => this.#cmd.eval(PRENAME, { keys: [k.who, k.names], arguments: args })));
    }
    await Promise.all(moves);
  }

  /** Everyone in `room`, on any process, sorted by code unit. */
  async members(room: string): Promise<string[]> {
    const names = await this.#run(() => this.#cmd.hKeys(keys(room).names));
    return names.sort();
  }

  #presenceScript(script: string, room: string, name: string): Promise<unknown> {
    const k = keys(room);
    const entry = `${this.#instance}\t${name}`;
    return this.#run(() =>
      this.#cmd.eval(script, {
        keys: [k.who, k.names, k.lines],
        arguments: [entry, name, String(Date.now() + this.#ttl), room],
      })
    );
  }

  /** Every third of the TTL: refresh this process's entries, and sweep the dead ones of watched rooms. */
  #keepPresence(): void {
    if (!this.#cmd.isReady) return;
    for (const [key, name] of this.#names) this.#claim(key, name).catch(() => {});
    for (const [room, names] of this.#present) {
      for (const name of names) this.#presenceScript(this.#lua.PJOIN, room, name).catch(() => {});
    }
    for (const room of this.#rooms.keys()) {
      const k = keys(room);
      this.#run(() =>
        this.#cmd.eval(this.#lua.PSWEEP, {
          keys: [k.who, k.names, k.lines],
          arguments: [String(Date.now()), "", "", room],
        })
      ).catch(() => {});
    }
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
      for (const name of names) leaving.push(this.#presenceScript(this.#lua.PLEAVE, room, name));
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
    const [epoch, seq] = await this.#run(() =>
      this.#cmd.eval(META, { keys: [keys(room).meta], arguments: [newEpoch()] })
    ) as [string, string];
    return { epoch, seq: Number(seq) };
  }

  #received(room: string, state: Watched, raw: string): void {
    let m: ChatMessage;
    let epoch: string;
    try {
      const [seq, from, text, ts, cid, e] = JSON.parse(raw) as [
        number,
        string,
        string,
        number,
        string,
        string,
      ];
      m = { room, seq, from, text, ts };
      if (cid) m.cid = cid;
      epoch = e;
    } catch {
      return this.#opts.log.error("bad message on a room channel", { room });
    }
    state.chain = state.chain.then(() => state.ready).then(() => {
      if (epoch !== state.epoch) this.#restart(room, state, epoch);
      return this.#catchUp(room, state, m);
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
        ) as unknown as StreamEntry[];
        for (const e of entries) {
          const g = fromEntry(room, e);
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

  async #run<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.#cmd.isReady) throw new UnavailableError("Redis is not connected");
    try {
      return await fn();
    } catch (e) {
      throw new UnavailableError(`Redis: ${(e as Error).message}`);
    }
  }

  /** One log line when an ack would not survive a Redis restart. */
  async #checkPersistence(): Promise<void> {
    try {
      if (!this.#cmd.configGet) throw new Error("a Cluster client has no CONFIG GET");
      const conf = await this.#cmd.configGet(["appendonly", "appendfsync"]);
      if (conf.appendonly !== "yes" || conf.appendfsync !== "always") {
        this.#opts.log.warn(
          "acks are not durable: Redis needs appendonly yes and appendfsync always for an ack to survive its crash",
          { appendonly: conf.appendonly, appendfsync: conf.appendfsync },
        );
      }
    } catch {
      this.#opts.log.warn(
        "cannot read Redis persistence settings (CONFIG GET refused); acks may not be durable",
      );
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

interface StreamEntry {
  id: string;
  message: Record<string, string>;
}

function fromEntry(room: string, e: StreamEntry): ChatMessage {
  const m: ChatMessage = {
    room,
    seq: Number(e.id.split("-")[0]),
    from: e.message.f,
    text: e.message.t,
    ts: Number(e.message.ts),
  };
  if (e.message.c) m.cid = e.message.c;
  return m;
}

/** `url` without its password, for logs and messages. */
export function redactUrl(url: string): string {
  const u = URL.parse(url);
  if (!u) return "(an unreadable URL)";
  if (u.password) u.password = "***";
  return u.toString();
}

/**
 * The two node-redis clients the Redis engine runs on (commands, subscriptions), for one Redis or a
 * Cluster (`redis+cluster://`), and what it checks of Redis at start.
 * @module
 */
import { createClient, createCluster } from "@redis/client";
import { UnavailableError } from "../engine.ts";
import type { Logger } from "../log.ts";
import { runScript, type Script, type ScriptRunner, type Scripts } from "./scripts.ts";

/**
 * The commands this engine uses, the same on one Redis and on a Cluster (node-redis has one client
 * type for each).
 */
export interface RedisLike extends ScriptRunner {
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  close(): Promise<unknown>;
  destroy(): unknown;
  on(event: string, listener: (e: Error) => void): unknown;
  xRange(key: string, start: string, end: string, options?: { COUNT: number }): Promise<unknown>;
  xRevRange(key: string, start: string, end: string, options?: { COUNT: number }): Promise<unknown>;
  get(key: string): Promise<string | null>;
  hGet(key: string, field: string): Promise<string | null>;
  hKeys(key: string): Promise<string[]>;
  hLen(key: string): Promise<number>;
  hGetAll(key: string): Promise<Record<string, string>>;
  hmGet(key: string, fields: string[]): Promise<(string | null)[]>;
  sIsMember(key: string, member: string): Promise<unknown>;
  zAdd(
    key: string,
    members: { score: number; value: string }[],
    options?: { LT?: boolean },
  ): Promise<unknown>;
  exists(key: string): Promise<number>;
  zRangeByScore(
    key: string,
    min: string | number,
    max: string | number,
    options?: { LIMIT: { offset: number; count: number } },
  ): Promise<string[]>;
  zRangeByLex(
    key: string,
    min: string,
    max: string,
    options?: { LIMIT: { offset: number; count: number } },
  ): Promise<string[]>;
  zRem(key: string, member: string): Promise<unknown>;
  publish(channel: string, message: string): Promise<unknown>;
  sPublish(channel: string, message: string): Promise<unknown>;
  subscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  sSubscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  unsubscribe(channels: string | string[]): Promise<unknown>;
  sUnsubscribe(channels: string | string[]): Promise<unknown>;
  configGet?(parameters: string[]): Promise<Record<string, string>>;
}

/**
 * The two clients and the scripts, as the engine's parts use them: commands and scripts that fail as
 * {@link UnavailableError} while Redis is away, and channels sharded on a Cluster (a room's channels
 * live on the node of its keys). The engine owns it and closes it, once, after its parts.
 */
export class RedisClients {
  /** Commands and scripts. */
  readonly cmd: RedisLike;
  /** Subscriptions only. */
  readonly sub: RedisLike;
  readonly scripts: Scripts;
  readonly cluster: boolean;
  /** How the scripts publish: sharded on a Cluster, so a room's channel stays on its node. */
  readonly publish: "PUBLISH" | "SPUBLISH";

  constructor(cmd: RedisLike, sub: RedisLike, cluster: boolean, scripts: Scripts) {
    this.cmd = cmd;
    this.sub = sub;
    this.cluster = cluster;
    this.scripts = scripts;
    this.publish = cluster ? "SPUBLISH" : "PUBLISH";
  }

  /** Runs one of the scripts (by SHA) on the command client; see {@link run}. */
  script(script: Script, keys: string[], args: string[]): Promise<unknown> {
    return this.run(() => runScript(this.cmd, script, keys, args));
  }

  /**
   * Runs a script that writes, then `WAIT replicas timeoutMs` on the connection it ran on (on a Cluster,
   * the client of the node that owns `keys[0]`): resolves with the script's reply once that many
   * replicas have everything the connection wrote, else rejects with {@link UnavailableError}. WAIT
   * counts what this connection wrote, so both go to one node client: one that connected anew since
   * the script (another node, after a failover) would answer at once with its replicas, which have
   * nothing of this write. WAIT holds the connection until it answers (Redis blocks the client), so
   * other commands on it wait that long too.
   */
  scriptReplicated(script: Script, keys: string[], args: string[], wait: ReplicaWait): Promise<unknown> {
    return this.run(async () => {
      let conn = await this.#connectionFor(keys[0]);
      let reply: unknown;
      try {
        reply = await runScript(conn, script, keys, args);
      } catch (e) {
        if (!this.cluster || !/^(MOVED|ASK) /.test((e as Error).message)) throw e;
        // The slot has moved (a failover, a reshard) and the node said so without running it: the
        // Cluster client follows the redirect and learns the new map, then WAIT goes to that node. Only
        // a second move between the two could send WAIT elsewhere; both are seconds apart.
        reply = await runScript(this.cmd, script, keys, args);
        conn = await this.#connectionFor(keys[0]);
      }
      const { replicas, timeoutMs } = wait;
      const got = Number(await conn.sendCommand(["WAIT", String(replicas), String(timeoutMs)]));
      if (!(got >= replicas)) {
        throw new Error(`the write reached ${got} of ${replicas} replicas within ${timeoutMs} ms`);
      }
      return reply;
    });
  }

  /** The connection commands about `key` go on: the client, or on a Cluster its master's node client. */
  async #connectionFor(key: string): Promise<NodeConnection> {
    if (!this.cluster) return this.cmd as unknown as NodeConnection;
    const cluster = this.cmd as unknown as {
      getNodeClientForKey(key: string, isReadonly: boolean): Promise<NodeConnection>;
    };
    return await cluster.getNodeClientForKey(key, false);
  }

  /** Runs `fn`, or rejects with {@link UnavailableError} when Redis is not connected or it fails. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.cmd.isReady) throw new UnavailableError("Redis is not connected");
    try {
      return await fn();
    } catch (e) {
      throw new UnavailableError(`Redis: ${(e as Error).message}`);
    }
  }

  /** Subscribes to a room's channel (sharded on a Cluster). */
  subscribeRoom(channel: string, listener: (message: string) => void): Promise<unknown> {
    return this.run(() =>
      this.cluster ? this.sub.sSubscribe(channel, listener) : this.sub.subscribe(channel, listener)
    );
  }

  /** Unsubscribes from room channels, in the background: a failure leaves only a silent channel. */
  unsubscribeRoom(channels: string[]): void {
    (this.cluster ? this.sub.sUnsubscribe(channels) : this.sub.unsubscribe(channels)).catch(() => {});
  }

  /** Publishes on a room's channel, unless disconnected: what goes here is not worth a queue. */
  publishRoom(channel: string, line: string): void {
    if (!this.cmd.isReady) return;
    (this.cluster ? this.cmd.sPublish(channel, line) : this.cmd.publish(channel, line)).catch(() => {});
  }

  /** Whether both clients are connected. */
  get ready(): boolean {
    return this.cmd.isReady && this.sub.isReady;
  }

  /** Closes both clients (each once: the engine calls this once). */
  async close(): Promise<void> {
    await Promise.allSettled([this.cmd.close(), this.sub.close()]);
  }
}

/** How many replicas a write must reach ({@link RedisClients.scriptReplicated}), and how long to wait. */
export interface ReplicaWait {
  replicas: number;
  timeoutMs: number;
}

/** One connection to one node: node-redis's plain client (also what a Cluster holds per node). */
interface NodeConnection extends ScriptRunner {
  sendCommand(args: string[]): Promise<unknown>;
}

/** Options of {@link connectClients}. */
export interface ConnectOptions {
  /** Milliseconds a command, or the start, may wait for Redis. */
  timeoutMs: number;
  log: Logger;
}

/**
 * Connects both clients to `url` (`redis://`, `rediss://`, or with `+cluster` a Cluster found from
 * that node). Until both are up the first error ends the start; after, errors are logged once per
 * outage and the clients reconnect by themselves.
 * @throws {UnavailableError} with one sentence (the URL's password not shown).
 */
export async function connectClients(
  url: string,
  opts: ConnectOptions,
): Promise<{ cmd: RedisLike; sub: RedisLike; cluster: boolean }> {
  const timeout = opts.timeoutMs;
  // `redis+cluster://host:port` (or `rediss+cluster://`): a Cluster, found from that node.
  const cluster = /^rediss?\+cluster:/.test(url);
  const plain = url.replace("+cluster:", ":");
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
      ? createCluster({ rootNodes: [{ url: plain }], defaults: client })
      : createClient({ url: plain, ...client })) as unknown as RedisLike;
  const cmd = make();
  const sub = make();
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
    throw new UnavailableError(`cannot reach Redis at ${redactUrl(url)}: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
    starting = false;
  }
  return { cmd, sub, cluster };
}

/**
 * One log line when an ack would not survive a Redis crash, or a deleted text could stay in a stream
 * node (`stream-node-max-entries` above `nodeMax`).
 */
export async function checkPersistence(cmd: RedisLike, log: Logger, nodeMax: number): Promise<void> {
  try {
    if (!cmd.configGet) throw new Error("a Cluster client has no CONFIG GET");
    const conf = await cmd.configGet(["appendonly", "appendfsync", "stream-node-max-entries"]);
    const node = Number(conf["stream-node-max-entries"]);
    if (!(node > 0 && node <= nodeMax)) {
      log.warn(
        `deleted messages may stay in Redis memory: stream-node-max-entries must be from 1 to ${nodeMax}`,
        { "stream-node-max-entries": conf["stream-node-max-entries"] },
      );
    }
    if (conf.appendonly !== "yes" || conf.appendfsync !== "always") {
      log.warn(
        "acks are not durable: Redis needs appendonly yes and appendfsync always for an ack to survive its crash",
        { appendonly: conf.appendonly, appendfsync: conf.appendfsync },
      );
    }
  } catch {
    log.warn("cannot read Redis persistence settings (CONFIG GET refused); acks may not be durable");
  }
}

/** `url` without its password, for logs and messages. */
export function redactUrl(url: string): string {
  const u = URL.parse(url);
  if (!u) return "(an unreadable URL)";
  if (u.password) u.password = "***";
  return u.toString();
}

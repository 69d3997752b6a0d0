/**
 * The two node-redis clients the Redis engine runs on (commands, subscriptions), for one Redis or a
 * Cluster (`redis+cluster://`), and what it checks of Redis at start.
 * @module
 */
import { createClient, createCluster } from "@redis/client";
import { UnavailableError } from "../engine.ts";
import type { Logger } from "../log.ts";
import type { ScriptRunner } from "./scripts.ts";

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
  publish(channel: string, message: string): Promise<unknown>;
  sPublish(channel: string, message: string): Promise<unknown>;
  subscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  sSubscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  unsubscribe(channels: string | string[]): Promise<unknown>;
  sUnsubscribe(channels: string | string[]): Promise<unknown>;
  configGet?(parameters: string[]): Promise<Record<string, string>>;
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

/**
 * The engines a specification runs against: EmbeddedEngine on MemoryStore and on SqliteStore, and
 * RedisEngine when `TEST_REDIS_URL` is set. A spec loops over {@linkcode engineKinds} and opens a fresh
 * engine per test, so one test reads the same on every backend.
 * @module
 */
import type { Engine } from "../../lib/engine.ts";
import { EmbeddedEngine } from "../../lib/engine_embedded.ts";
import { RedisEngine } from "../../lib/engine_redis.ts";
import { createLogger } from "../../lib/log.ts";
import { MemoryStore } from "../../lib/store.ts";
import { SqliteStore } from "../../lib/store_sqlite.ts";

const TEST_REDIS_URL = Deno.env.get("TEST_REDIS_URL");
const log = createLogger("error");
// Unless a spec says otherwise a retry within a minute is a duplicate; age never expires a message.
const DEDUP_WINDOW_MS = 60_000;
const RETAIN_MS = 0;

/** What a test asks of the engine it opens. */
export interface EngineKindOptions {
  /**
   * Messages kept per room; 0 keeps them all.
   * @default {0}
   */
  retainMessages?: number;
  /**
   * Audit entries kept per room.
   * @default {DEFAULT_AUDIT_RETAIN} (the engine's own default)
   */
  auditRetain?: number;
  /**
   * How long a cid is remembered, ms.
   * @default {60_000}
   */
  dedupWindowMs?: number;
  /**
   * How long a guest who never wrote stays in the people directory, ms.
   * @default {Infinity} (always)
   */
  guestForgetMs?: number;
  /**
   * How long messages are kept, ms (0: forever).
   * @default {0}
   */
  retainMs?: number;
}

/** An engine under test. */
export interface EngineUnderTest {
  engine: Engine;
  /** Closes the engine and opens the same storage again (a restart); absent where nothing persists. */
  reopen?(): Promise<Engine>;
  /** Applies retention now (the Redis engine also applies it in each append, to the rooms written to). */
  prune(): Promise<void>;
  /** Closes the engine and removes what it stored on disk. */
  cleanup(): Promise<void>;
}

/** A backend: its name ("MemoryStore", "SqliteStore", "RedisEngine") and how to open an engine on it. */
export type EngineKind = [name: string, open: (options?: EngineKindOptions) => Promise<EngineUnderTest>];

/** Connects a RedisEngine to `url` as the specs configure it; the caller closes it. */
export function connectRedisEngine(url: string, options: EngineKindOptions = {}): Promise<RedisEngine> {
  return RedisEngine.connect({
    url,
    retainMessages: options.retainMessages ?? 0,
    retainMs: options.retainMs ?? RETAIN_MS,
    dedupWindowMs: options.dedupWindowMs ?? DEDUP_WINDOW_MS,
    auditRetain: options.auditRetain,
    guestForgetMs: options.guestForgetMs,
    log,
  });
}

/**
 * The backends to run a specification on: MemoryStore, SqliteStore (in a temp dir of its own per open,
 * removed by `cleanup`), and RedisEngine when `TEST_REDIS_URL` is set. Redis is not flushed between
 * opens, so a test uses rooms and keys of its own.
 */
export function engineKinds(): EngineKind[] {
  const kinds: EngineKind[] = [
    ["MemoryStore", (o = {}) => {
      const store = new MemoryStore({
        retainMessages: o.retainMessages ?? 0,
        retainMs: o.retainMs ?? RETAIN_MS,
      });
      const engine = new EmbeddedEngine(store, {
        dedupWindowMs: o.dedupWindowMs ?? DEDUP_WINDOW_MS,
        auditRetain: o.auditRetain,
        guestForgetMs: o.guestForgetMs,
      });
      return Promise.resolve({
        engine,
        prune: async () => void await engine.prune(Date.now()),
        cleanup: () => engine.close(),
      });
    }],
    ["SqliteStore", async (o = {}) => {
      const dir = await Deno.makeTempDir();
      const open = async () =>
        new EmbeddedEngine(
          await SqliteStore.open(dir, {
            retainMessages: o.retainMessages ?? 0,
            retainMs: o.retainMs ?? RETAIN_MS,
            durability: "normal",
          }),
          {
            dedupWindowMs: o.dedupWindowMs ?? DEDUP_WINDOW_MS,
            auditRetain: o.auditRetain,
            guestForgetMs: o.guestForgetMs,
          },
        );
      const under: EngineUnderTest = {
        engine: await open(),
        reopen: async () => (await under.engine.close(), under.engine = await open()),
        prune: async () => void await under.engine.prune(Date.now()),
        cleanup: async () => (await under.engine.close(), await Deno.remove(dir, { recursive: true })),
      };
      return under;
    }],
  ];
  const url = TEST_REDIS_URL;
  if (url) {
    kinds.push(["RedisEngine", async (o = {}) => {
      const under: EngineUnderTest = {
        engine: await connectRedisEngine(url, o),
        reopen: async () => (await under.engine.close(), under.engine = await connectRedisEngine(url, o)),
        prune: async () => void await under.engine.prune(Date.now()),
        cleanup: () => under.engine.close(),
      };
      return under;
    }]);
  }
  return kinds;
}

/**
 * Test helpers: a real server on port 0 and a real WebSocket client that splits frames into lines.
 * @module
 */
import { type App, type AppDeps, createApp } from "../../lib/app.ts";
import { type ConfigInput, resolveConfig } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { listen } from "../../lib/server.ts";
import { MemoryStore, type Store, type StoredMessage, StoreError } from "../../lib/store.ts";

/** A server under test. */
export interface TestServer {
  app: App;
  port: number;
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `ws://127.0.0.1:PORT/ws` */
  wsUrl: string;
  /** Shuts the app down and stops listening. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * With `TEST_REDIS_URL` set, servers that the test does not give a store or engine of its own run on the
 * Redis engine (emptied first), so the engine-independent tests cover both engines.
 */
const TEST_REDIS_URL = Deno.env.get("TEST_REDIS_URL");

/** Starts the app on 127.0.0.1 (port 0 unless given), with the memory store unless told otherwise. */
export async function startServer(overrides: ConfigInput = {}, deps: AppDeps = {}): Promise<TestServer> {
  const onRedis = TEST_REDIS_URL && !deps.store && !deps.engine && overrides.store === undefined;
  if (onRedis) await flushRedis(TEST_REDIS_URL);
  const config = resolveConfig({
    port: 0,
    store: "memory",
    logLevel: "error",
    ...(onRedis ? { redisUrl: TEST_REDIS_URL } : {}),
    ...overrides,
  });
  const app = await createApp(config, { log: createLogger(config.logLevel), ...deps });
  const log = deps.log ?? createLogger(config.logLevel);
  const server = listen(app.handler, {
    port: config.port,
    hostname: "127.0.0.1",
    relistenTimeoutMs: 1000,
    log,
  });
  const port = server.addr.port;
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      await app.shutdown();
      await server.stop();
    })();
  return {
    app,
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A server message (one line of a frame). */
// deno-lint-ignore no-explicit-any
export type Msg = Record<string, any>;

/** A WebSocket client that queues every line it receives and lets a test wait for one. */
export class TestClient {
  readonly ws: WebSocket;
  readonly lines: Msg[] = [];
  /** Frames received (each may hold several lines). */
  frames = 0;
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseEvent>;
  #waiters: { pred: (m: Msg) => boolean; resolve: (m: Msg) => void }[] = [];
  #seen = 0;

  constructor(url: string, protocols?: string | string[]) {
    this.ws = new WebSocket(url, protocols);
    this.opened = new Promise((resolve, reject) => {
      this.ws.addEventListener("open", () => resolve(), { once: true });
      this.ws.addEventListener("error", () => reject(new Error(`cannot connect to ${url}`)), { once: true });
    });
    // A refused connection rejects `opened`; one nobody awaits must not end the test run.
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) =>
      this.ws.addEventListener("close", (e) => resolve(e), { once: true })
    );
    this.ws.onmessage = (e) => {
      this.frames++;
      for (const line of String(e.data).split("\n")) {
        const m = JSON.parse(line);
        this.lines.push(m);
        this.#waiters = this.#waiters.filter((w) => !(w.pred(m) && (w.resolve(m), true)));
      }
    };
  }

  /** Connects to `/ws` with the query `q` and waits for `welcome`. */
  static async connect(server: TestServer, q: Record<string, string> = {}): Promise<TestClient> {
    const c = new TestClient(`${server.wsUrl}?${new URLSearchParams(q)}`);
    await c.opened;
    await c.next("welcome");
    // The first room's history is read asynchronously: wait until its joined is here (not taking
    // it), so that what the test sends next is live for this client on every engine.
    if (q.room !== "") await c.seen("joined");
    return c;
  }

  /** Waits until a message of `type` has arrived, without taking it from {@link next}. */
  async seen(type: string, ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.lines.some((m) => m.type === type)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting to see ${type}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /** Sends one JSON message. */
  send(m: Msg): void {
    this.ws.send(JSON.stringify(m));
  }

  /**
   * The next message not yet taken that matches `type` (and `pred`), waiting up to `ms`.
   * Messages are taken in order; earlier non-matching ones stay for later calls.
   */
  next(type: string, pred: (m: Msg) => boolean = () => true, ms = 3000): Promise<Msg> {
    const match = (m: Msg) => m.type === type && pred(m) && !m.__taken;
    for (let i = this.#seen; i < this.lines.length; i++) {
      if (match(this.lines[i])) return Promise.resolve(this.#take(this.lines[i]));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        const last = this.lines.slice(-5).map((m) => JSON.stringify(m).slice(0, 200));
        reject(new Error(`timed out waiting for ${type}; last got ${last.join("\n")}`));
      }, ms);
      const done = (m: Msg) => {
        clearTimeout(timer);
        resolve(this.#take(m));
      };
      this.#waiters.push({ pred: match, resolve: done });
    });
  }

  /** Every message of `type` received so far. */
  all(type: string): Msg[] {
    return this.lines.filter((m) => m.type === type);
  }

  #take(m: Msg): Msg {
    Object.defineProperty(m, "__taken", { value: true, enumerable: false });
    return m;
  }

  /** Closes and waits for the close to finish. */
  async close(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
    await this.closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * A memory store whose writes fail while `failing` is set (a full disk: the error is the one a
 * full disk gives) and wait while held (a slow disk). Reads always work, as they do on a full disk.
 */
export function faultyStore() {
  const inner = new MemoryStore({ retainMessages: 0, retainMs: 0 });
  let gate: Promise<void> | undefined;
  let open = () => {};
  const ctl = {
    inner,
    failing: false,
    /** The room directory's read fails while set (a broken disk; other reads go on). */
    directoryFailing: false,
    /** Appends attempted, failed or not. */
    appends: 0,
    /** Writes of message changes (edits, deletes), each with as many changes. */
    changeWrites: [] as number[],
    /** Where a held write waits: `before` it lands (a slow disk) or `after` (stored, answer late). */
    holdAt: "before" as "before" | "after",
    /** Holds every write from now until {@link release}. */
    hold(at: "before" | "after" = "before"): void {
      ctl.holdAt = at;
      gate ??= new Promise<void>((r) => open = r);
    },
    release(): void {
      open();
      gate = undefined;
    },
    store: {
      epoch: inner.epoch,
      append: async (batch: readonly StoredMessage[]) => {
        ctl.appends++;
        if (gate && ctl.holdAt === "before") await gate;
        if (ctl.failing) throw new StoreError("database or disk is full (No space left on device)");
        await inner.append(batch);
        if (gate && ctl.holdAt === "after") await gate;
      },
      lastSeq: (room) => inner.lastSeq(room),
      after: (room, after, limit) => inner.after(room, after, limit),
      before: (room, before, limit) => inner.before(room, before, limit),
      findCid: (key, cid, since) => inner.findCid(key, cid, since),
      message: (room, seq) => inner.message(room, seq),
      // A write like an append: held while the disk is slow.
      changeMessages: async (changes, retain) => {
        ctl.changeWrites.push(changes.length);
        if (gate && ctl.holdAt === "before") await gate;
        return await inner.changeMessages(changes, retain);
      },
      react: (room, seq, emoji, key, on, ts) => inner.react(room, seq, emoji, key, on, ts),
      reactions: (room, from, to, key) => inner.reactions(room, from, to, key),
      mentionCounts: (key, rooms) => inner.mentionCounts(key, rooms),
      rev: (room) => inner.rev(room),
      changes: (room, upTo, afterRev, limit) => inner.changes(room, upTo, afterRev, limit),
      rules: (room) => inner.rules(room),
      access: (room, uid, now) => inner.access(room, uid, now),
      accessList: (room, now) => inner.accessList(room, now),
      changeRoom: (room, change, audit, retain) => inner.changeRoom(room, change, audit, retain),
      audit: (room, before, limit) => inner.audit(room, before, limit),
      publicRooms: (query) => {
        if (ctl.directoryFailing) throw new StoreError("disk I/O error");
        return inner.publicRooms(query);
      },
      person: (key) => inner.person(key),
      findPerson: (keys) => inner.findPerson(keys),
      // A person's directory entry is a write too: held like the others (a slow disk).
      rememberPerson: async (p, nameKey, now, until) => {
        if (gate && ctl.holdAt === "before") await gate;
        await inner.rememberPerson(p, nameKey, now, until);
      },
      conversations: (key, before, limit) => inner.conversations(key, before, limit),
      conversationPeer: (key, conv) => inner.conversationPeer(key, conv),
      wrote: (room, key) => inner.wrote(room, key),
      readPosition: (key, room) => inner.readPosition(key, room),
      markRead: (key, room, seq) => inner.markRead(key, room, seq),
      prune: (now) => inner.prune(now),
      search: (request) => inner.search(request),
      close: () => inner.close(),
    } satisfies Store as Store,
  };
  return ctl;
}

/** Headers of a WebSocket handshake for fetch(): fetch cannot upgrade, so these test refusals only. */
export function wsHeaders(): Record<string, string> {
  return {
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": btoa("0123456789abcdef"),
    "sec-websocket-version": "13",
  };
}

/** Polls `check` until it holds (a throw counts as not yet), or fails after `ms`. */
export async function waitFor(check: () => Promise<boolean>, ms = 5000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error(`${what} not met in time`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** FLUSHALL on the Redis at `url` (a test Redis: every test starts from nothing). */
async function flushRedis(url: string): Promise<void> {
  const u = new URL(url.replace("+cluster:", ":"));
  // A Cluster: every master (TEST_REDIS_NODES, comma-separated ports) holds part of the keys.
  const ports = (Deno.env.get("TEST_REDIS_NODES") ?? u.port ?? "6379").split(",").map(Number);
  for (const port of ports) {
    using conn = await Deno.connect({ hostname: u.hostname, port });
    await conn.write(new TextEncoder().encode("*1\r\n$8\r\nFLUSHALL\r\n"));
    await conn.read(new Uint8Array(64));
  }
}

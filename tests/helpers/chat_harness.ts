/**
 * A `Chat` for unit tests: the memory engine, a clock the test moves, a logger that keeps its lines,
 * and {@link FakePeer} connections. Only the chat's public surface is used, so the tests outlive a
 * change of its insides. Close it (`await using`) so its intervals end with the test.
 * @module
 */
import type { Sharing } from "../../lib/sharing.ts";
import type { Verifier } from "../../lib/auth.ts";
import { Chat, type OpenParams } from "../../lib/chat.ts";
import { type Config, type ConfigInput, resolveConfig } from "../../lib/config.ts";
import type { Engine } from "../../lib/engine.ts";
import { EmbeddedEngine, type EmbeddedOptions } from "../../lib/engine_embedded.ts";
import { type Identity, keyOfUid, type Role } from "../../lib/identity.ts";
import { createLogger } from "../../lib/log.ts";
import { Metrics } from "../../lib/metrics.ts";
import { MemoryStore, type Store } from "../../lib/store.ts";
import { FakePeer } from "./fake_peer.ts";

/** A clock a test moves by hand: the chat's `now`. */
export interface Clock {
  now(): number;
  /** Moves the clock on by `ms`. */
  advance(ms: number): void;
}

/** What builds the engine: the embedded engine by default, or a subclass of it that misbehaves. */
export type EngineClass = new (store: Store, opts: EmbeddedOptions) => Engine;

/** Options of {@link testChat} besides the settings. */
export interface TestChatOptions {
  /** @default EmbeddedEngine */
  engineClass?: EngineClass;
  verifier?: Verifier;
  /** What processes share. @default this process alone (the chat builds it on its hub) */
  sharing?: Sharing;
}

/** A chat under test and its fakes. */
export interface TestChat extends AsyncDisposable {
  chat: Chat;
  config: Config;
  engine: Engine;
  metrics: Metrics;
  clock: Clock;
  /** Every log line (logfmt), at every level; nothing is printed. */
  logs: string[];
  /** Opens a connection (room `lobby` unless given) and returns it at once, before any answer. */
  open(params?: Partial<OpenParams>): FakePeer;
  /**
   * Opens a connection and waits for its `welcome`, and for its `joined` when it joins a room; both
   * are taken (see {@link FakePeer.next}) and stay in `lines`.
   */
  connect(params?: Partial<OpenParams>): Promise<FakePeer>;
  /** Waits until what the chat started (engine reads, the write in flight) has run. */
  settle(): Promise<void>;
  /** Closes the chat (as `[Symbol.asyncDispose]`). */
  close(): Promise<void>;
}

/** Where the test clock starts: near the wall clock, which the embedded engine reads for bans. */
const START = Math.floor(Date.now() / 1000) * 1000;

/**
 * A chat with `overrides` over the settings. Unless overridden: the memory store (so writes do not
 * wait for company), presence at once (`presenceDelayMs: 0`), and a close that does not wait for silent
 * connections (`shutdownQuietMs: 0`).
 */
export function testChat(overrides: ConfigInput = {}, opts: TestChatOptions = {}): TestChat {
  const config = resolveConfig({ store: "memory", presenceDelayMs: 0, shutdownQuietMs: 0, ...overrides });
  const Engine = opts.engineClass ?? EmbeddedEngine;
  const store = new MemoryStore({
    retainMessages: config.retainMessages,
    retainMs: config.retainDays * 86_400_000,
  });
  const engine = new Engine(store, {
    dedupWindowMs: config.dedupWindowSeconds * 1000,
    auditRetain: config.auditRetain,
  });
  let t = START;
  const clock: Clock = { now: () => t, advance: (ms) => void (t += ms) };
  const logs: string[] = [];
  const log = createLogger("debug", (line) => logs.push(line));
  const metrics = new Metrics();
  const chat = new Chat(config, {
    engine,
    sharing: opts.sharing,
    log,
    metrics,
    verifier: opts.verifier,
    now: clock.now,
  });
  let nextId = 1;
  const open = (params: Partial<OpenParams> = {}) => {
    const peer = new FakePeer(nextId++, {
      frame: (id, data) => chat.message(id, data),
      binary: (id, bytes) => chat.binary(id, bytes),
      gone: (id) => chat.closed(id),
    });
    chat.open(peer, { room: "lobby", ...params });
    return peer;
  };
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      await chat.close();
      // A commit the chat queued (setImmediate) runs before the sanitizers look.
      await settle();
    })();
  return {
    chat,
    config,
    engine,
    metrics,
    clock,
    logs,
    open,
    async connect(params = {}) {
      const peer = open(params);
      await peer.next("welcome");
      if ((params.room ?? "lobby") !== "" && !params.authenticate) await peer.next("joined");
      return peer;
    },
    settle,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Lets the event loop run what is queued: promise chains, immediates, zero timers. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 0));
}

/** A signed person (as the HTTP layer would hand it to `open`): key `u:<uid>`, named `uid` unless told. */
export function signed(
  uid: string,
  opts: { role?: Role; name?: string; rooms?: string[]; exp?: number } = {},
): Identity {
  const id: Identity = {
    key: keyOfUid(uid),
    uid,
    name: opts.name ?? uid,
    role: opts.role ?? "member",
    guest: false,
  };
  if (opts.rooms) id.rooms = opts.rooms;
  if (opts.exp !== undefined) id.exp = opts.exp;
  return id;
}

/** Connects signed person `uid` (a `role`, a `rooms` claim) to `room` ("" for none): its welcome and joined taken. */
export function as(
  t: TestChat,
  uid: string,
  role: Role = "member",
  room = "lobby",
  rooms?: string[],
): Promise<FakePeer> {
  return t.connect({ identity: signed(uid, { role, rooms }), room });
}

/**
 * The HTTP layer: routes, every check that can refuse a WebSocket before the upgrade, health,
 * metrics and static files. `createApp(config, deps)` builds everything; the app is a function of
 * `Request`, so `Deno.serve(app.handler)` is the only runtime glue.
 * @module
 */
import { Chat } from "./chat.ts";
import type { Config } from "./config.ts";
import { createLogger, type Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { normalizeName, normalizeRoom, type ProtocolError, SUBPROTOCOL } from "./protocol.ts";
import { StaticFiles } from "./static.ts";
import { MemoryStore, type Store } from "./store.ts";
import { SqliteStore } from "./store_sqlite.ts";
import { acceptSocket, Flusher } from "./ws.ts";

/** What the app may be given instead of building it. */
export interface AppDeps {
  store?: Store;
  log?: Logger;
  /** Directory URL of the client files. @default the project's `static/` */
  staticRoot?: URL;
  now?: () => number;
}

/** A running chat application. */
export interface App {
  /** The `Deno.serve` handler. */
  handler(req: Request, info: Deno.ServeHandlerInfo): Response;
  /** The chat service (hub, store path). */
  readonly chat: Chat;
  readonly metrics: Metrics;
  /** Stops accepting, writes what is pending, closes clients with 1001 and the store. Idempotent. */
  shutdown(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Opens the store the config asks for. @throws {StoreError} with the path and the reason. */
export function openStore(config: Config): Promise<Store> {
  const retention = { retainMessages: config.retainMessages, retainMs: config.retainDays * 86_400_000 };
  if (config.store === "memory") return Promise.resolve(new MemoryStore(retention));
  return SqliteStore.open(config.dataDir, { ...retention, durability: config.durability });
}

/** Builds the app: store, chat, static files, handler. */
export async function createApp(config: Config, deps: AppDeps = {}): Promise<App> {
  const log = deps.log ?? createLogger(config.logLevel);
  const metrics = new Metrics();
  const files = await StaticFiles.load(deps.staticRoot ?? new URL("../static/", import.meta.url));
  const store = deps.store ?? await openStore(config);
  const chat = new Chat(config, { store, log, metrics, now: deps.now });
  const flusher = new Flusher();
  const perIp = new Map<string, number>();
  let open = 0;
  let nextId = 1;
  let stopping = false;
  let finished: Promise<void> | undefined;
  let allClosed: (() => void) | undefined;

  const refuse = (status: number, code: string, message: string, headers?: Record<string, string>) => {
    metrics.connectionsRefused++;
    log.debug("upgrade refused", { status, code });
    return Response.json({ error: { code, message } }, { status, headers });
  };

  const upgrade = (req: Request, url: URL, info: Deno.ServeHandlerInfo): Response => {
    if (stopping) return refuse(503, "shutting_down", "The server is restarting; try again in a moment");
    if (req.method !== "GET") {
      return refuse(405, "bad_request", "WebSocket upgrades use GET", { allow: "GET" });
    }
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return refuse(426, "bad_request", "This endpoint speaks WebSocket only", { upgrade: "websocket" });
    }
    // Deno accepts any version; RFC 6455 asks for 13 and a 426 naming it otherwise.
    if (req.headers.get("sec-websocket-version") !== "13") {
      return refuse(426, "bad_request", "Only WebSocket version 13 is supported", {
        "sec-websocket-version": "13",
      });
    }
    const origin = req.headers.get("origin");
    if (origin !== null && !originAllowed(origin, req, config.allowedOrigins)) {
      return refuse(403, "origin_forbidden", `Origin ${JSON.stringify(origin)} is not allowed to connect`);
    }
    if (open >= config.maxConnections) {
      return refuse(
        503,
        "server_full",
        `The server holds its maximum of ${config.maxConnections} connections`,
      );
    }
    const ip = (info.remoteAddr as Deno.NetAddr).hostname ?? "unknown";
    const fromIp = perIp.get(ip) ?? 0;
    if (fromIp >= config.maxConnectionsPerIp) {
      return refuse(
        429,
        "too_many_connections_ip",
        `At most ${config.maxConnectionsPerIp} connections per address`,
      );
    }
    const q = url.searchParams;
    let name: string | undefined;
    try {
      const n = q.get("name");
      name = n === null ? undefined : normalizeName(n, "Cannot connect");
    } catch (e) {
      return refuse(400, "bad_name", (e as ProtocolError).message);
    }
    let room: string;
    try {
      const r = q.get("room");
      room = r === "" ? "" : normalizeRoom(r ?? "lobby");
    } catch (e) {
      return refuse(400, "bad_room", `Cannot connect: ${(e as ProtocolError).message}`);
    }
    const offered = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim());
    let upgraded: { socket: WebSocket; response: Response };
    try {
      upgraded = Deno.upgradeWebSocket(req, {
        // Answer only with a protocol the client offered: Deno throws otherwise, browsers fail.
        protocol: offered.includes(SUBPROTOCOL) ? SUBPROTOCOL : undefined,
        idleTimeout: config.idleTimeoutSeconds,
      });
    } catch (e) {
      return refuse(400, "bad_request", `Not a valid WebSocket handshake: ${(e as Error).message}`);
    }
    // From here on: return upgraded.response, never throw (Deno would stop the listener).
    open++;
    perIp.set(ip, fromIp + 1);
    acceptSocket(upgraded.socket, {
      id: nextId++,
      chat,
      flusher,
      metrics,
      params: { name, room, token: q.get("token") ?? undefined },
      maxBufferedBytes: config.maxBufferedBytes,
      onClose: () => {
        open--;
        const n = (perIp.get(ip) ?? 1) - 1;
        if (n > 0) perIp.set(ip, n);
        else perIp.delete(ip);
        if (open === 0) allClosed?.();
      },
    });
    return upgraded.response;
  };

  const handler = (req: Request, info: Deno.ServeHandlerInfo): Response => {
    try {
      const url = new URL(req.url);
      switch (url.pathname) {
        case "/ws":
          return upgrade(req, url, info);
        case "/healthz":
          return new Response(stopping ? "stopping\n" : "ok\n", {
            status: stopping ? 503 : 200,
            headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
          });
        case "/metrics":
          return new Response(
            metrics.render({
              connections: open,
              rooms: chat.hub.size.rooms,
              people: chat.hub.size.people,
              pendingMessages: chat.pendingCount,
              memory: Deno.memoryUsage(),
            }),
            {
              headers: {
                "content-type": "text/plain; version=0.0.4; charset=utf-8",
                "cache-control": "no-store",
              },
            },
          );
        default:
          return files.serve(req, url.pathname);
      }
    } catch (e) {
      log.error("request failed", { error: String((e as Error)?.stack ?? e) });
      return new Response("Internal server error\n", { status: 500 });
    }
  };

  const shutdown = () => {
    finished ??= (async () => {
      stopping = true;
      const closedAll = new Promise<void>((resolve) => {
        allClosed = resolve;
        if (open === 0) resolve();
      });
      await chat.close();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, config.shutdownTimeoutMs));
      await Promise.race([closedAll, timeout]);
      clearTimeout(timer);
      log.info("stopped", { open });
    })();
    return finished;
  };

  return { handler, chat, metrics, shutdown, [Symbol.asyncDispose]: shutdown };
}

function originAllowed(origin: string, req: Request, allowed: readonly string[]): boolean {
  if (allowed.includes("*") || allowed.includes(origin)) return true;
  // Same origin: the browser's Origin names the host the page came from, which is the Host we serve.
  try {
    return new URL(origin).host === req.headers.get("host");
  } catch {
    return false;
  }
}

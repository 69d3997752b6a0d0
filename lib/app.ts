/**
 * The HTTP layer: routes, every check that can refuse a WebSocket before the upgrade, health,
 * metrics and static files. `createApp(config, deps)` builds everything; the app is a function of
 * `Request`, so `Deno.serve(app.handler)` is the only runtime glue.
 * @module
 */
import { createVerifier, looksLikeJwt, readKeyFile, type Verifier } from "./auth.ts";
import { createApi } from "./api.ts";
import { Chat, type OpenParams } from "./chat.ts";
import { BearerSecrets } from "./limits.ts";
import type { Engine } from "./engine.ts";
import { EmbeddedEngine } from "./engine_embedded.ts";
import { RedisEngine } from "./engine_redis.ts";
import type { Sharing } from "./sharing.ts";
import { type Config, guestsAllowed, settingsFor } from "./config.ts";
import type { Identity } from "./identity.ts";
import { createLogger, type Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { handleFromDisplay } from "./display_names.ts";
import { normalizeDisplay, normalizeName, normalizeRoom, ProtocolError, SUBPROTOCOL } from "./protocol.ts";
import { StaticFiles } from "./static.ts";
import { MemoryStore, type Store } from "./store.ts";
import { type IndexProgress, SqliteStore } from "./store_sqlite.ts";
import { SseSessions } from "./sse.ts";
import { acceptSocket, Flusher, type WireFormat } from "./ws.ts";

/** What the app may be given instead of building it. */
export interface AppDeps {
  /** The history store of the embedded engine. @default the one `config.store` names */
  store?: Store;
  /** Where rooms live; when given, `store` is not used. @default the embedded engine */
  engine?: Engine;
  /**
   * What processes share. @default Redis sharing when the engine is Redis, else this process alone
   */
  sharing?: Sharing;
  log?: Logger;
  /** Directory URL of the client files. @default the project's `static/` */
  staticRoot?: URL;
  /** The text of the `--jwt-public-key` file. @default read from `config.jwtPublicKey` at start-up */
  jwtPublicKeyText?: string;
  now?: () => number;
}

/** A running chat application. */
export interface App {
  /** The `Deno.serve` handler. */
  handler(req: Request, info: Deno.ServeHandlerInfo): Response | Promise<Response>;
  /** The chat service (hub, store path). */
  readonly chat: Chat;
  readonly metrics: Metrics;
  /** Stops accepting, writes what is pending, closes clients with 1001 and the store. Idempotent. */
  shutdown(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Opens the store the config asks for; `onIndexProgress` hears how indexing older history for search
 * goes (SQLite). @throws {StoreError} with the path and the reason.
 */
export function openStore(config: Config, onIndexProgress?: (p: IndexProgress) => void): Promise<Store> {
  const { retainMessages, retainMs } = settingsFor(config, ["retainMessages", "retainDays"]);
  const retention = { retainMessages, retainMs };
  const searchIndex = config.search === "on";
  if (config.store === "memory") return Promise.resolve(new MemoryStore({ ...retention, searchIndex }));
  return SqliteStore.open(config.dataDir, {
    ...retention,
    durability: config.durability,
    onIndexProgress,
    searchIndex,
  });
}

/** Messages between two log lines of the search index rebuild. */
const INDEX_LOG_EVERY = 10_000;

/** Tells the search index rebuild's progress in the log and in `/metrics` (the messages left). */
function indexProgress(log: Logger, metrics?: Metrics): (p: IndexProgress) => void {
  let logged = 0;
  return (p) => {
    if (metrics) metrics.searchIndexBacklog = p.done ? 0 : Math.max(0, p.total - p.indexed);
    if (p.done) return log.info("search index: older history indexed", { messages: p.indexed });
    if (p.indexed - logged < INDEX_LOG_EVERY) return;
    logged = p.indexed;
    log.info("search index: indexing older history", { indexed: p.indexed, total: p.total });
  };
}

/**
 * The engine the config asks for: Redis when `redisUrl` is set, else the embedded one over `store`.
 * @throws {StoreError} or {@link UnavailableError} with one sentence.
 */
export async function openEngine(
  config: Config,
  store: Store | undefined,
  log: Logger,
  metrics?: Metrics,
): Promise<Engine> {
  const { dedupWindowMs, auditRetain, guestForgetMs, ...redis } = settingsFor(config, [
    "dedupWindowSeconds",
    "auditRetain",
    "guestForgetSeconds",
    "retainMessages",
    "retainDays",
    "presenceTtlMs",
    "countIntervalMs",
    "nameHoldSeconds",
    "redisWaitReplicas",
    "redisWaitMs",
  ]);
  if (config.redisUrl) {
    return await RedisEngine.connect({
      url: config.redisUrl,
      dedupWindowMs,
      auditRetain,
      guestForgetMs,
      ...redis,
      log,
    });
  }
  const opened = store ?? await openStore(config, indexProgress(log, metrics));
  return new EmbeddedEngine(opened, { dedupWindowMs, auditRetain, guestForgetMs });
}

/**
 * What the processes of a deployment share, for its engine: a Redis engine shares through Redis; any
 * other serves one process, whose sharing the chat service builds on its hub (undefined here).
 */
export function sharingOf(engine: Engine): Sharing | undefined {
  return engine instanceof RedisEngine ? engine.sharing : undefined;
}

/**
 * Builds the app: token verifier, store, chat, static files, handler.
 * @throws {ConfigError} when the `--jwt-public-key` file cannot be read or holds no usable key.
 */
export async function createApp(config: Config, deps: AppDeps = {}): Promise<App> {
  const log = deps.log ?? createLogger(config.logLevel);
  const metrics = new Metrics();
  // Before the engine: a bad key file stops start-up before anything is opened.
  const keyText = deps.jwtPublicKeyText ??
    (config.jwtPublicKey ? await readKeyFile(config.jwtPublicKey) : undefined);
  const verifier: Verifier | undefined = await createVerifier(config, keyText);
  const guests = guestsAllowed(config);
  // The origins allowed to connect are the ones a host application may embed the page from and fetch
  // its tokens from.
  const files = await StaticFiles.load(deps.staticRoot ?? new URL("../static/", import.meta.url), {
    trustedOrigins: config.allowedOrigins,
  });
  const engine = deps.engine ?? await openEngine(config, deps.store, log, metrics);
  const sharing = deps.sharing ?? sharingOf(engine);
  const chat = new Chat(config, { engine, sharing, log, metrics, verifier, now: deps.now });
  const flusher = new Flusher({ busyDelayMs: config.busyFlushDelayMs, busyPeers: config.busyFlushPeers });
  const sse = new SseSessions({
    chat,
    flusher,
    metrics,
    log,
    relay: sharing,
    maxBufferedBytes: config.maxBufferedBytes,
    maxFrameBytes: config.maxFrameBytes,
    maxPostFrames: config.ssePostFrames,
    replayBytes: config.sseReplayBytes,
    sessionIdleMs: settingsFor(config, ["sseSessionIdleSeconds"]).sseSessionIdleMs,
    // As often as a WebSocket is pinged: proxies in front close streams that stay silent.
    keepaliveMs: config.idleTimeoutSeconds * 500,
  });
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

  /**
   * The checks a new connection passes on either transport (WebSocket or the SSE fallback): origin,
   * name, room, identity, connection caps. What it connects as, or the refusal.
   */
  const admit = async (
    req: Request,
    url: URL,
    info: Deno.ServeHandlerInfo,
  ): Promise<{ params: OpenParams; ip: string } | Response> => {
    const origin = req.headers.get("origin");
    const forbidden = origin === null ? undefined : originRefusal(origin, req.headers.get("host"), config);
    if (forbidden) return refuse(403, "origin_forbidden", `${forbidden.message}. ${forbidden.fix}`);
    const q = url.searchParams;
    let name: string | undefined;
    let display: string | undefined;
    try {
      const n = q.get("name");
      name = n === null ? undefined : normalizeName(n, "Cannot connect");
      const d = q.get("display");
      display = d === null || d.trim() === "" ? undefined : normalizeDisplay(d, "Cannot connect");
    } catch (e) {
      return refuse(400, "bad_name", (e as ProtocolError).message);
    }
    // A display name alone gives the handle too (`Ada Lovelace` is `Ada_Lovelace`), when it can.
    if (name === undefined && display !== undefined) name = handleFromDisplay(display);
    if (display === name) display = undefined;
    let room: string;
    try {
      const r = q.get("room");
      room = r === "" ? "" : normalizeRoom(r ?? "lobby");
    } catch (e) {
      return refuse(400, "bad_room", `Cannot connect: ${(e as ProtocolError).message}`);
    }
    // Who connects. The query string may hold a token: it is never logged (nor is the URL).
    const token = q.get("token") ?? undefined;
    let identity: Identity | undefined;
    let authenticate = false;
    if (q.get("auth") === "frame") {
      if (!verifier) {
        return refuse(
          400,
          "bad_request",
          "Cannot connect with auth=frame: this server takes no signed tokens",
        );
      }
      authenticate = true;
    } else if (token !== undefined && looksLikeJwt(token)) {
      if (!verifier) {
        return refuse(
          401,
          "bad_token",
          "Cannot connect: this server takes no signed tokens; connect as a guest",
        );
      }
      try {
        identity = await verifier.verify(token);
      } catch (e) {
        if (!(e instanceof ProtocolError)) log.error("token verification failed", { error: String(e) });
        const [code, message] = e instanceof ProtocolError
          ? [e.code, e.message]
          : ["bad_token", "The token could not be checked"];
        return refuse(401, code, `Cannot connect: ${message}`);
      }
      if (stopping) return refuse(503, "shutting_down", "The server is restarting; try again in a moment");
    } else if (!guests) {
      // Not refused here: the client may still send `auth` (a guest token or none is no identity).
      authenticate = true;
    }
    // After the verification, which may have waited: the counts are the ones of now.
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
    const params: OpenParams = identity
      ? { room, identity, address: ip }
      : authenticate
      ? { room, authenticate, address: ip }
      : { name, display, room, token, address: ip };
    return { params, ip };
  };

  /** Counts a connection from `ip` against the caps; the returned function, called once, uncounts it. */
  const counted = (ip: string): () => void => {
    open++;
    perIp.set(ip, (perIp.get(ip) ?? 0) + 1);
    return () => {
      open--;
      const n = (perIp.get(ip) ?? 1) - 1;
      if (n > 0) perIp.set(ip, n);
      else perIp.delete(ip);
      if (open === 0) allClosed?.();
    };
  };

  /**
   * `/ws` and `/` upgrade alike; `root`: the tutorials' pages connect to `/` and print whatever
   * arrives, so there the default is text mode.
   */
  const upgrade = async (
    req: Request,
    url: URL,
    info: Deno.ServeHandlerInfo,
    root = false,
  ): Promise<Response> => {
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
    const offered = offeredSubprotocols(req.headers.get("sec-websocket-protocol"));
    // A client that offers subprotocols but not ours would get a 101 without one and abort the
    // connection at once (its room would see it join and leave): refuse it here instead.
    if (offered.length > 0 && !offered.includes(SUBPROTOCOL)) {
      const shown = offered.join(", ");
      return refuse(
        400,
        "unsupported_subprotocol",
        `Cannot connect: none of the offered subprotocols (${
          JSON.stringify(shown.length > 200 ? `${shown.slice(0, 200)}...` : shown)
        }) is supported; offer "${SUBPROTOCOL}" or none`,
      );
    }
    const format = wireFormat(url.searchParams, { root, json: offered.includes(SUBPROTOCOL) });
    if (typeof format === "string") return refuse(400, "bad_request", format);
    const admitted = await admit(req, url, info);
    if (admitted instanceof Response) return admitted;
    const { params, ip } = admitted;
    let upgraded: { socket: WebSocket; response: Response };
    try {
      upgraded = offered.length === 0
        ? Deno.upgradeWebSocket(req, { idleTimeout: config.idleTimeoutSeconds })
        : Deno.upgradeWebSocket(withCanonicalProtocols(req, offered), {
          protocol: SUBPROTOCOL,
          idleTimeout: config.idleTimeoutSeconds,
        });
    } catch (e) {
      return refuse(400, "bad_request", `Not a valid WebSocket handshake: ${(e as Error).message}`);
    }
    // From here on: return upgraded.response, never throw (Deno would stop the listener).
    acceptSocket(upgraded.socket, {
      id: nextId++,
      chat,
      flusher,
      metrics,
      params,
      maxBufferedBytes: config.maxBufferedBytes,
      format,
      onClose: counted(ip),
    });
    return upgraded.response;
  };

  /**
   * The fallback transport (lib/sse.ts). `GET /ws/sse` opens a session with the query of `/ws`, or
   * resumes one when a last event id comes (`Last-Event-ID`, or `?lastEventId=` where a header cannot
   * be set); `POST /ws/sse/{session}` carries client frames, `DELETE` ends the session. Every request
   * passes the origin check a WebSocket upgrade does: the session id alone is not enough for a
   * foreign page.
   */
  const fallback = async (req: Request, url: URL, info: Deno.ServeHandlerInfo): Promise<Response> => {
    const origin = req.headers.get("origin");
    const forbidden = origin === null ? undefined : originRefusal(origin, req.headers.get("host"), config);
    if (forbidden) return refuse(403, "origin_forbidden", `${forbidden.message}. ${forbidden.fix}`);
    // An allowed foreign origin (a host application's) may read the answers.
    const cors: Record<string, string> | undefined = origin === null
      ? undefined
      : { "access-control-allow-origin": origin, vary: "origin" };
    const key = url.pathname.slice("/ws/sse/".length);
    if (url.pathname !== "/ws/sse") {
      if (req.method === "POST") return await sse.post(key, req, cors);
      if (req.method === "DELETE") return await sse.end(key, cors);
      return httpError(405, "method_not_allowed", "A session takes POST (frames) and DELETE (the end)", {
        allow: "POST, DELETE",
      });
    }
    if (req.method !== "GET") {
      return httpError(405, "method_not_allowed", "GET /ws/sse opens or resumes a stream", { allow: "GET" });
    }
    if (stopping) return refuse(503, "shutting_down", "The server is restarting; try again in a moment");
    const last = req.headers.get("last-event-id") ?? url.searchParams.get("lastEventId");
    if (last !== null && last !== "") return sse.resume(last, info.completed, cors);
    const format = wireFormat(url.searchParams, { root: false, json: true });
    if (typeof format === "string") return refuse(400, "bad_request", format);
    const admitted = await admit(req, url, info);
    if (admitted instanceof Response) return admitted;
    return await sse.open({
      id: nextId++,
      params: admitted.params,
      format,
      onClose: counted(admitted.ip),
      completed: info.completed,
      headers: cors,
    });
  };

  /**
   * What the page needs before it connects: whether it may ask for a name, where the host site signs
   * people in, and (with `?origin=`, the page's own origin) whether its upgrade would be refused for
   * its origin, why and what to do. A browser hides why a WebSocket failed; a same-origin GET carries
   * no Origin header, so the page names its origin itself: the answer only repeats the check.
   */
  const serverInfo = (req: Request, url: URL): Response => {
    const origin = url.searchParams.get("origin");
    const refusal = origin === null ? undefined : originRefusal(origin, req.headers.get("host"), config);
    return Response.json({
      guests,
      signInUrl: config.signInUrl || null,
      origin: origin === null
        ? null
        : refusal
        ? { allowed: false, code: "origin_forbidden", ...refusal }
        : { allowed: true },
    }, { headers: { "cache-control": "no-store" } });
  };

  const health = (): Response => {
    // A failing store is unhealthy too: the server still runs, but it can store nothing.
    const problem = stopping ? "stopping" : chat.problem;
    return new Response(`${problem ?? "ok"}\n`, {
      status: problem ? 503 : 200,
      headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
    });
  };

  const scrape = (): Response =>
    new Response(
      metrics.render({
        connections: chat.connectionCount,
        sockets: open,
        rooms: chat.size.rooms,
        people: chat.size.people,
        pendingMessages: chat.pendingCount,
        storeHealthy: chat.storeHealthy,
        memory: Deno.memoryUsage(),
      }),
      {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8", "cache-control": "no-store" },
      },
    );

  const metricsKey = new BearerSecrets([config.metricsToken]);
  const unauthorized = (req: Request): Response | undefined => {
    if (metricsKey.size === 0) return undefined;
    const found = metricsKey.match(req);
    if (found === 0) return undefined;
    log.debug("metrics scrape refused", { reason: found === undefined ? "no bearer token" : "wrong token" });
    return httpError(401, "unauthorized", "/metrics needs the header Authorization: Bearer <metrics token>", {
      "www-authenticate": `Bearer realm="metrics"`,
    });
  };

  const failed = (e: unknown) => {
    log.error("request failed", { error: String((e as Error)?.stack ?? e) });
    return new Response("Internal server error\n", { status: 500 });
  };

  const api = createApi(chat, config, log);
  const handler = (req: Request, info: Deno.ServeHandlerInfo): Response | Promise<Response> => {
    try {
      const url = new URL(req.url);
      if (api && url.pathname.startsWith("/api/")) {
        if (stopping) {
          return httpError(503, "shutting_down", "The server is restarting; try again in a moment");
        }
        return api(req, url, (info.remoteAddr as Deno.NetAddr).hostname ?? "unknown");
      }
      switch (url.pathname) {
        case "/ws":
          return upgrade(req, url, info).catch(failed);
        case "/":
          // The page for a browser, the chat for a WebSocket (what the tutorials' pages open).
          if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
            return files.serve(req, url.pathname);
          }
          return upgrade(req, url, info, true).catch(failed);
        case "/ws/sse":
          return fallback(req, url, info).catch(failed);
        case "/ws/info":
          return notGetOrHead(req, url) ?? serverInfo(req, url);
        case "/healthz":
          return notGetOrHead(req, url) ?? health();
        case "/metrics":
          return notGetOrHead(req, url) ?? unauthorized(req) ?? scrape();
        default:
          if (url.pathname.startsWith("/ws/sse/")) return fallback(req, url, info).catch(failed);
          return files.serve(req, url.pathname);
      }
    } catch (e) {
      return failed(e);
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
      sse.close();
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

/**
 * The wire format a connection asks for with `?format=` (`json`, `text`) and `?batch=` (`off`: one
 * message per frame), or the sentence refusing a value that is neither. Without `format`, a client
 * that connected to `/` gets text unless it offered the `chat` subprotocol (`json`), which asks for
 * the JSON protocol by name.
 */
function wireFormat(q: URLSearchParams, at: { root: boolean; json: boolean }): WireFormat | string {
  const format = q.get("format");
  const batch = q.get("batch");
  if (format !== null && format !== "json" && format !== "text") {
    return `Cannot connect: format must be "json" or "text", got ${JSON.stringify(format.slice(0, 40))}`;
  }
  if (batch !== null && batch !== "on" && batch !== "off") {
    return `Cannot connect: batch must be "on" or "off", got ${JSON.stringify(batch.slice(0, 40))}`;
  }
  const text = format === null ? at.root && !at.json : format === "text";
  return { text, single: text || batch === "off", chosen: format !== null || at.json };
}

/** A JSON error like every refusal's, for the operations endpoints. */
function httpError(
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
): Response {
  return Response.json({ error: { code, message } }, {
    status,
    headers: { "cache-control": "no-store", ...headers },
  });
}

/** The operations endpoints read state: only GET and HEAD. */
function notGetOrHead(req: Request, url: URL): Response | undefined {
  if (req.method === "GET" || req.method === "HEAD") return undefined;
  return httpError(405, "method_not_allowed", `${url.pathname} answers GET and HEAD, not ${req.method}`, {
    allow: "GET, HEAD",
  });
}

/**
 * Why a page of `origin` may not connect, and what its operator can do about it; undefined when it may.
 * The usual causes: a proxy that passes `Host` without the port (nginx's `$host`), and a page opened
 * under a name (a LAN name, a domain) the server was not told with `--public-origin`.
 */
function originRefusal(
  origin: string,
  host: string | null,
  config: Config,
): { message: string; fix: string } | undefined {
  if (originAllowed(origin, host, config)) return undefined;
  const message = `Origin ${JSON.stringify(origin)} is not allowed to connect: it is neither one of this ` +
    `server's public origins (--public-origin) nor in --allowed-origins`;
  const url = URL.parse(origin);
  const got = host?.toLowerCase() ?? "";
  if (url !== null && got !== "" && url.host !== got && url.hostname === got) {
    return {
      message,
      fix: `A proxy in front passed the Host header ${JSON.stringify(host)} without the page's port: ` +
        `in nginx use "proxy_set_header Host $http_host;", or start the server with --public-origin ${origin}`,
    };
  }
  return {
    message,
    fix: `Start the server with --public-origin ${origin} (the address this page is served under), ` +
      `or open the page at http://localhost:<port>/ on the server's machine`,
  };
}

/**
 * Whether a page of `origin` may connect. Requests without an Origin (not from a browser) never get here.
 * The Host header alone proves nothing: a DNS-rebinding page on `evil.example` sends
 * `Origin: http://evil.example:P` and `Host: evil.example:P` once that name points at this server.
 * So same-origin by Host counts only for hosts no one else's DNS can hand out: `localhost`, IP
 * addresses and the configured listening name. Any other name must be listed.
 */
function originAllowed(origin: string, host: string | null, config: Config): boolean {
  const { allowedOrigins, publicOrigins } = config;
  if (allowedOrigins.includes("*") || allowedOrigins.includes(origin) || publicOrigins.includes(origin)) {
    return true;
  }
  const url = URL.parse(origin);
  if (url === null || (url.protocol !== "http:" && url.protocol !== "https:")) return false;
  if (url.host !== host?.toLowerCase()) return false;
  const name = url.hostname;
  return name === "localhost" || name === config.hostname.toLowerCase() || name.startsWith("[") ||
    /^\d{1,3}(\.\d{1,3}){3}$/.test(name);
}

/**
 * The subprotocols a `Sec-WebSocket-Protocol` value offers: RFC 7230 list syntax, so elements are split
 * on commas, optional spaces and tabs around them are dropped, and so are empty elements. Several header
 * lines arrive joined with ", " by `Headers.get()`.
 */
function offeredSubprotocols(header: string | null): string[] {
  if (header === null) return [];
  return header.split(",").map((p) => p.replace(/^[ \t]+|[ \t]+$/g, "")).filter((p) => p !== "");
}

/**
 * `req`, or a view of it whose `sec-websocket-protocol` reads `offered` joined with ", ".
 * Deno 2.9 looks for the chosen protocol by splitting that header on ", " exactly, so `chat,json` (what
 * Node's `ws` sends) made it throw. A `new Request(req, { headers })` is no way out: Deno answers it
 * with a 101 but never connects the socket behind it (measured). The view inherits everything else from
 * `req`, including the internal request Deno upgrades, and overrides only `headers`.
 */
function withCanonicalProtocols(req: Request, offered: readonly string[]): Request {
  const header = req.headers.get("sec-websocket-protocol") ?? "";
  if (header.split(", ").includes(SUBPROTOCOL)) return req;
  const headers = new Headers(req.headers);
  headers.set("sec-websocket-protocol", offered.join(", "));
  return Object.create(req, { headers: { value: headers } });
}

/**
 * Configuration: every setting and limit with its default, resolved once into a frozen object.
 * Only `main.ts` reads flags and the environment; it hands them to {@link configFromArgs}.
 * @module
 */

/** How history is kept. */
export type StoreKind = "sqlite" | "memory";
/** SQLite `synchronous` level: `full` survives power loss, `normal` survives a killed process. */
export type Durability = "full" | "normal";
/** Log verbosity, quietest last. */
export type LogLevel = "debug" | "info" | "warn" | "error";
/** Whether people without a signed token may chat; `auto`: only when no key is configured. */
export type GuestMode = "on" | "off" | "auto";

/** The resolved configuration. All sizes in bytes, all times in the unit their name says. */
export interface Config {
  /** TCP port. @default 8000 */
  readonly port: number;
  /** Address to listen on. @default "0.0.0.0" */
  readonly hostname: string;
  /** Directory of the history database. @default "./data" */
  readonly dataDir: string;
  /** `sqlite` (durable) or `memory` (lost on restart). @default "sqlite" */
  readonly store: StoreKind;
  /** @default "full" */
  readonly durability: Durability;
  /**
   * Origins the server's own page is published under, e.g. `https://chat.example.com` behind a proxy.
   * Besides these, a page whose origin is the URL the client connects to is accepted only when its host
   * is `localhost`, an IP address or {@link Config.hostname}: names a DNS-rebinding page cannot take.
   * @default []
   */
  readonly publicOrigins: readonly string[];
  /** Origins allowed besides the server's own; `*` allows any. @default [] */
  readonly allowedOrigins: readonly string[];
  /** @default "warn" */
  readonly logLevel: LogLevel;
  /**
   * When set, `/metrics` answers only requests with `Authorization: Bearer <metricsToken>`.
   * @default "" (no token: `/metrics` is open)
   */
  readonly metricsToken: string;
  /**
   * Redis URL (`redis://` or `rediss://`, a password may be in it; `redis+cluster://` for a Redis
   * Cluster, naming one of its nodes): rooms, history and delivery are
   * shared by every process on it. Empty: the embedded engine (`store`). @default ""
   */
  readonly redisUrl: string;
  /**
   * With Redis: milliseconds a process's presence entries live without a refresh, so the people of a
   * process that died leave their rooms within about this (announced once). @default 15000
   */
  readonly presenceTtlMs: number;

  /** Characters in a message text. @default 4000 */
  readonly maxTextChars: number;
  /** Bytes in one client frame; larger closes with 1009. @default 65536 */
  readonly maxFrameBytes: number;
  /** Rooms one connection may be in. @default 20 */
  readonly maxRoomsPerConnection: number;
  /** Rooms the server holds at once. @default 10000 */
  readonly maxRooms: number;
  /** Token bucket refill: client frames per second per connection. @default 10 */
  readonly messagesPerSecond: number;
  /** Token bucket size. @default 30 */
  readonly burst: number;
  /** Error strikes within a minute before closing with 1008. @default 20 */
  readonly maxStrikes: number;
  /** Open connections in total. @default 10000 */
  readonly maxConnections: number;
  /** Open connections from one IP address. @default 50 */
  readonly maxConnectionsPerIp: number;
  /**
   * Seconds without any frame before the connection is pinged, then closed. It is also what ends a
   * connection whose receive side Deno gave up on (a message too large to hold). @default 60
   */
  readonly idleTimeoutSeconds: number;
  /** Bytes queued for one client before it is closed as a slow consumer (4001). @default 1048576 */
  readonly maxBufferedBytes: number;
  /** Seconds a name stays reserved after its person's last connection closes. @default 60 */
  readonly nameHoldSeconds: number;
  /** Milliseconds presence (join/leave) is held to send a room's changes together (0 = at once). @default 250 */
  readonly presenceDelayMs: number;
  /**
   * Milliseconds a message that finds the history writer idle waits for others to share its durable
   * write (one transaction, one fsync); a message that finds a write in flight waits for that anyway.
   * @default 2 (0 with `--store memory` and no Redis: there a write costs nothing to share)
   */
  readonly commitDelayMs: number;

  /** Messages sent with `joined` when no `since` is given. @default 50 */
  readonly historyOnJoin: number;
  /** Most messages one `history` answer holds. @default 200 */
  readonly historyPage: number;
  /** Most messages a resume (`join` with `since`) returns. @default 1000 */
  readonly resumeCap: number;
  /** Messages kept per room; older ones are deleted (0 = no cap). @default 10000 */
  readonly retainMessages: number;
  /** Days a message is kept (0 = forever). @default 30 */
  readonly retainDays: number;
  /** Seconds a `cid` is remembered for de-duplication. @default 86400 */
  readonly dedupWindowSeconds: number;
  /**
   * Keys the server API (`/api/`) accepts as `Authorization: Bearer <key>`, comma-separated (several for
   * rotation). Empty: the API is off. @default ""
   */
  readonly apiKeys: string;
  /** API requests per second per key (a token bucket of as many). @default 50 */
  readonly apiRate: number;
  /** Bytes in one API request body. @default 65536 */
  readonly apiMaxBody: number;
  /** Seconds after sending during which its author may edit a message (0 = no edits). @default 900 */
  readonly editWindowSeconds: number;
  /** Audit log entries (moderation actions) kept per room, the newest. @default 1000 */
  readonly auditRetain: number;
  /** Distinct emoji one message may carry as reactions; a new one past it is `too_many_reactions`. @default 20 */
  readonly maxReactionEmoji: number;
  /** Reactions one person may put on one message; one more is `too_many_reactions`. @default 10 */
  readonly maxReactionsPerPerson: number;
  /** `@name` mentions one message records; later ones in its text are not recorded. @default 20 */
  readonly maxMentions: number;
  /** Milliseconds shutdown waits for clients and storage. @default 5000 */
  readonly shutdownTimeoutMs: number;
  /**
   * Milliseconds after SIGTERM/SIGINT during which the listener stays open answering 503
   * `shutting_down`, so balancers and reconnecting clients hear why instead of a refused connection. @default 500
   */
  readonly shutdownDrainMs: number;
  /**
   * Connections the kernel queues for accept. Deno's default, 511, overflows in a reconnect storm
   * (handshakes then wait for TCP's retransmission, seconds); the kernel caps it at `somaxconn`. @default 4096
   */
  readonly tcpBacklog: number;
  /**
   * Listen with SO_REUSEPORT, so several processes (on Redis) share one port and the kernel spreads
   * connections over them. Off by default: then a second server on the same port is refused. @default false
   */
  readonly reusePort: boolean;
  /** Seconds to keep trying to listen again after the listener failed (e.g. no file descriptors). @default 30 */
  readonly relistenTimeoutSeconds: number;
  /**
   * Characters one `joined` or `history` answer may hold (at most half of `maxBufferedBytes` is used);
   * a longer page is cut short and the client pages on. @default 262144
   */
  readonly maxAnswerBytes: number;

  /**
   * HS256 secret shared with the host application that signs identity tokens (at least 32 bytes).
   * Never logged or quoted. @default "" (no HS256 tokens)
   */
  readonly jwtSecret: string;
  /**
   * Path of a PEM public key (SPKI: RSA, P-256 or Ed25519) or a JWKS JSON file, read once at start-up;
   * tokens signed RS256, ES256 or EdDSA with it are accepted. @default "" (none)
   */
  readonly jwtPublicKey: string;
  /** The `aud` a signed token must carry. @default "" (not checked) */
  readonly jwtAudience: string;
  /** The `iss` a signed token must carry. @default "" (not checked) */
  readonly jwtIssuer: string;
  /** Guests (unsigned, first-come names): `auto` is on without a key, off with one. @default "auto" */
  readonly guests: GuestMode;
  /** Milliseconds a connection that owes an `auth` frame has to send it, else close 4002. @default 10000 */
  readonly authTimeoutMs: number;
  /** Bytes in one signed token (`?token=` or `auth`); larger is refused `bad_token`. @default 8192 */
  readonly maxTokenBytes: number;
}

/** Every default, in one place. */
export const DEFAULTS: Config = Object.freeze(
  {
    port: 8000,
    hostname: "0.0.0.0",
    dataDir: "./data",
    store: "sqlite",
    durability: "full",
    publicOrigins: [],
    allowedOrigins: [],
    logLevel: "warn",
    metricsToken: "",
    redisUrl: "",
    presenceTtlMs: 15_000,
    maxTextChars: 4000,
    maxFrameBytes: 64 * 1024,
    maxRoomsPerConnection: 20,
    maxRooms: 10_000,
    messagesPerSecond: 10,
    burst: 30,
    maxStrikes: 20,
    maxConnections: 10_000,
    maxConnectionsPerIp: 50,
    idleTimeoutSeconds: 60,
    maxBufferedBytes: 1024 * 1024,
    nameHoldSeconds: 60,
    presenceDelayMs: 250,
    commitDelayMs: 2,
    historyOnJoin: 50,
    historyPage: 200,
    resumeCap: 1000,
    retainMessages: 10_000,
    retainDays: 30,
    dedupWindowSeconds: 86_400,
    editWindowSeconds: 900,
    apiKeys: "",
    apiRate: 50,
    apiMaxBody: 64 * 1024,
    auditRetain: 1000,
    maxReactionEmoji: 20,
    maxReactionsPerPerson: 10,
    maxMentions: 20,
    shutdownTimeoutMs: 5000,
    shutdownDrainMs: 500,
    relistenTimeoutSeconds: 30,
    tcpBacklog: 4096,
    reusePort: false,
    maxAnswerBytes: 256 * 1024,
    jwtSecret: "",
    jwtPublicKey: "",
    jwtAudience: "",
    jwtIssuer: "",
    guests: "auto",
    authTimeoutMs: 10_000,
    maxTokenBytes: 8 * 1024,
  } satisfies Config,
);

/** A setting with a bad value; `main.ts` prints its message and exits 1. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** `origins`: a comma-separated list of `http(s)://host[:port]`, normalized as browsers send them. */
type Kind = "int" | "bool" | "string" | "origins" | { oneOf: readonly string[] };
interface Setting {
  key: keyof Config;
  flag: string;
  env: string;
  kind: Kind;
  min?: number;
  max?: number;
  /** A string setting's syntax, and how to say it when a value breaks it. */
  pattern?: { re: RegExp; says: string };
  /** Never quoted in messages: they end up in logs. */
  secret?: boolean;
  /** `origins` only: `*` (any origin) is a valid element. */
  wildcard?: boolean;
  help: string;
}

const I = "int" as const;
/** The table behind flags, environment variables, `--help` and the README. */
export const SETTINGS: readonly Setting[] = [
  { key: "port", flag: "port", env: "PORT", kind: I, min: 0, max: 65535, help: "TCP port" },
  { key: "hostname", flag: "hostname", env: "HOST", kind: "string", help: "address to listen on" },
  { key: "dataDir", flag: "data-dir", env: "CHAT_DATA_DIR", kind: "string", help: "history directory" },
  {
    key: "store",
    flag: "store",
    env: "CHAT_STORE",
    kind: { oneOf: ["sqlite", "memory"] },
    help: "sqlite (durable) or memory",
  },
  {
    key: "durability",
    flag: "durability",
    env: "CHAT_DURABILITY",
    kind: { oneOf: ["full", "normal"] },
    help: "full: survives power loss; normal: survives a killed process",
  },
  {
    key: "publicOrigins",
    flag: "public-origin",
    env: "CHAT_PUBLIC_ORIGIN",
    kind: "origins",
    help: "comma-separated origins the server's page is served under, besides localhost and IP addresses",
  },
  {
    key: "allowedOrigins",
    flag: "allowed-origins",
    env: "CHAT_ALLOWED_ORIGINS",
    kind: "origins",
    wildcard: true,
    help: "comma-separated origins allowed besides the server's own, or *",
  },
  {
    key: "logLevel",
    flag: "log",
    env: "CHAT_LOG",
    kind: { oneOf: ["debug", "info", "warn", "error"] },
    help: "log level",
  },
  {
    key: "metricsToken",
    flag: "metrics-token",
    env: "CHAT_METRICS_TOKEN",
    kind: "string",
    secret: true,
    // RFC 6750's b64token: what may follow "Bearer " in an Authorization header.
    pattern: { re: /^[A-Za-z0-9._~+/-]+=*$/, says: "letters, digits and - . _ ~ + / (then = padding)" },
    help: "bearer token /metrics requires (prefer the environment variable: flags show in ps)",
  },
  {
    key: "redisUrl",
    flag: "redis",
    env: "REDIS_URL",
    kind: "string",
    secret: true,
    pattern: {
      re: /^rediss?(\+cluster)?:\/\/[^\s]+$/,
      says: "a URL like redis://host:6379, rediss://:password@host:6380 or redis+cluster://node:7000",
    },
    help: "share rooms through Redis (several processes); default: embedded store",
  },
  {
    key: "presenceTtlMs",
    flag: "presence-ttl",
    env: "CHAT_PRESENCE_TTL",
    kind: I,
    min: 300,
    max: 600_000,
    help: "with Redis: ms until the people of a process that died leave their rooms",
  },
  {
    key: "maxTextChars",
    flag: "max-text-chars",
    env: "CHAT_MAX_TEXT_CHARS",
    kind: I,
    min: 1,
    help: "characters in a message",
  },
  {
    key: "maxFrameBytes",
    flag: "max-frame-bytes",
    env: "CHAT_MAX_FRAME_BYTES",
    kind: I,
    min: 256,
    help: "bytes in a client frame (1009 beyond)",
  },
  {
    key: "maxRoomsPerConnection",
    flag: "max-rooms-per-connection",
    env: "CHAT_MAX_ROOMS_PER_CONNECTION",
    kind: I,
    min: 1,
    help: "rooms per connection",
  },
  { key: "maxRooms", flag: "max-rooms", env: "CHAT_MAX_ROOMS", kind: I, min: 1, help: "rooms on the server" },
  {
    key: "messagesPerSecond",
    flag: "messages-per-second",
    env: "CHAT_MESSAGES_PER_SECOND",
    kind: I,
    min: 1,
    help: "frames per second per connection",
  },
  { key: "burst", flag: "burst", env: "CHAT_BURST", kind: I, min: 1, help: "token bucket size" },
  {
    key: "maxStrikes",
    flag: "max-strikes",
    env: "CHAT_MAX_STRIKES",
    kind: I,
    min: 1,
    help: "errors per minute before close 1008",
  },
  {
    key: "maxConnections",
    flag: "max-connections",
    env: "CHAT_MAX_CONNECTIONS",
    kind: I,
    min: 1,
    help: "connections in total",
  },
  {
    key: "maxConnectionsPerIp",
    flag: "max-connections-per-ip",
    env: "CHAT_MAX_CONNECTIONS_PER_IP",
    kind: I,
    min: 1,
    help: "connections per IP",
  },
  {
    key: "idleTimeoutSeconds",
    flag: "idle-timeout",
    env: "CHAT_IDLE_TIMEOUT",
    kind: I,
    min: 1,
    max: 3600,
    help: "seconds idle before ping, then close",
  },
  {
    key: "maxBufferedBytes",
    flag: "max-buffered-bytes",
    env: "CHAT_MAX_BUFFERED_BYTES",
    kind: I,
    min: 1024,
    help: "bytes queued per client before close 4001",
  },
  {
    key: "nameHoldSeconds",
    flag: "name-hold",
    env: "CHAT_NAME_HOLD",
    kind: I,
    min: 0,
    help: "seconds a name stays reserved after disconnect",
  },
  {
    key: "commitDelayMs",
    flag: "commit-delay",
    env: "CHAT_COMMIT_DELAY",
    kind: I,
    min: 0,
    max: 1000,
    help:
      "ms a message that finds the history writer idle waits for company in its write (0 with --store memory)",
  },
  {
    key: "presenceDelayMs",
    flag: "presence-delay",
    env: "CHAT_PRESENCE_DELAY",
    kind: I,
    min: 0,
    max: 10_000,
    help: "ms presence is held to send a room's joins and leaves together (0 = at once)",
  },
  {
    key: "historyOnJoin",
    flag: "history-on-join",
    env: "CHAT_HISTORY_ON_JOIN",
    kind: I,
    min: 0,
    help: "messages sent on join",
  },
  {
    key: "historyPage",
    flag: "history-page",
    env: "CHAT_HISTORY_PAGE",
    kind: I,
    min: 1,
    help: "messages per history page",
  },
  {
    key: "resumeCap",
    flag: "resume-cap",
    env: "CHAT_RESUME_CAP",
    kind: I,
    min: 1,
    help: "messages returned on resume",
  },
  {
    key: "retainMessages",
    flag: "retain-messages",
    env: "CHAT_RETAIN_MESSAGES",
    kind: I,
    min: 0,
    help: "messages kept per room (0 = all)",
  },
  {
    key: "retainDays",
    flag: "retain-days",
    env: "CHAT_RETAIN_DAYS",
    kind: I,
    min: 0,
    help: "days messages are kept (0 = forever)",
  },
  {
    key: "dedupWindowSeconds",
    flag: "dedup-window",
    env: "CHAT_DEDUP_WINDOW",
    kind: I,
    min: 0,
    help: "seconds a cid is remembered",
  },
  {
    key: "apiKeys",
    flag: "api-key",
    env: "CHAT_API_KEYS",
    kind: "string",
    secret: true,
    pattern: {
      re: /^([A-Za-z0-9._~+/-]{16,}=*)(,[A-Za-z0-9._~+/-]{16,}=*)*$/,
      says: "comma-separated keys of 16 or more letters, digits and - . _ ~ + /",
    },
    help: "server API keys, comma-separated (prefer the environment variable: flags show in ps)",
  },
  {
    key: "apiRate",
    flag: "api-rate",
    env: "CHAT_API_RATE",
    kind: I,
    min: 1,
    help: "API requests a second per key",
  },
  {
    key: "apiMaxBody",
    flag: "api-max-body",
    env: "CHAT_API_MAX_BODY",
    kind: I,
    min: 1024,
    max: 16 * 1024 * 1024,
    help: "bytes in one API request body",
  },
  {
    key: "editWindowSeconds",
    flag: "edit-window",
    env: "CHAT_EDIT_WINDOW",
    kind: I,
    min: 0,
    max: 30 * 86_400,
    help: "seconds its author may edit a message (0 = no edits)",
  },
  {
    key: "auditRetain",
    flag: "audit-retain",
    env: "CHAT_AUDIT_RETAIN",
    kind: I,
    min: 1,
    help: "audit log entries (moderation actions) kept per room",
  },
  {
    key: "maxReactionEmoji",
    flag: "max-reaction-emoji",
    env: "CHAT_MAX_REACTION_EMOJI",
    kind: I,
    min: 1,
    max: 1000,
    help: "distinct emoji reacted to one message",
  },
  {
    key: "maxReactionsPerPerson",
    flag: "max-reactions-per-person",
    env: "CHAT_MAX_REACTIONS_PER_PERSON",
    kind: I,
    min: 1,
    max: 1000,
    help: "reactions one person puts on one message",
  },
  {
    key: "maxMentions",
    flag: "max-mentions",
    env: "CHAT_MAX_MENTIONS",
    kind: I,
    min: 0,
    max: 1000,
    help: "@name mentions recorded per message (later ones are not)",
  },
  {
    key: "shutdownTimeoutMs",
    flag: "shutdown-timeout",
    env: "CHAT_SHUTDOWN_TIMEOUT",
    kind: I,
    min: 0,
    help: "ms shutdown waits",
  },
  {
    key: "shutdownDrainMs",
    flag: "shutdown-drain",
    env: "CHAT_SHUTDOWN_DRAIN",
    kind: I,
    min: 0,
    max: 60_000,
    help: "ms the listener keeps answering 503 after a stop signal",
  },
  {
    key: "tcpBacklog",
    flag: "tcp-backlog",
    env: "CHAT_TCP_BACKLOG",
    kind: I,
    min: 1,
    max: 65535,
    help: "connections queued for accept (the kernel caps it at net.core.somaxconn)",
  },
  {
    key: "reusePort",
    flag: "reuse-port",
    env: "CHAT_REUSE_PORT",
    kind: "bool",
    help: "share the port with other processes (SO_REUSEPORT; several instances on Redis)",
  },
  {
    key: "relistenTimeoutSeconds",
    flag: "relisten-timeout",
    env: "CHAT_RELISTEN_TIMEOUT",
    kind: I,
    min: 1,
    help: "seconds to keep trying to listen again after accept failed, then exit 1",
  },
  {
    key: "maxAnswerBytes",
    flag: "max-answer-bytes",
    env: "CHAT_MAX_ANSWER_BYTES",
    kind: I,
    min: 16 * 1024,
    help: "characters in one joined/history answer (at most half of max-buffered-bytes)",
  },
  {
    key: "jwtSecret",
    flag: "jwt-secret",
    env: "CHAT_JWT_SECRET",
    kind: "string",
    secret: true,
    help:
      "HS256 secret (32+ bytes) the host app signs identity tokens with (prefer the environment variable)",
  },
  {
    key: "jwtPublicKey",
    flag: "jwt-public-key",
    env: "CHAT_JWT_PUBLIC_KEY",
    kind: "string",
    help: "path of a PEM public key or JWKS file for RS256/ES256/EdDSA tokens (add it to --allow-read)",
  },
  {
    key: "jwtAudience",
    flag: "jwt-audience",
    env: "CHAT_JWT_AUDIENCE",
    kind: "string",
    help: "required aud",
  },
  { key: "jwtIssuer", flag: "jwt-issuer", env: "CHAT_JWT_ISSUER", kind: "string", help: "required iss" },
  {
    key: "guests",
    flag: "guests",
    env: "CHAT_GUESTS",
    kind: { oneOf: ["on", "off", "auto"] },
    help: "people without a signed token may chat (auto: only when no key is configured)",
  },
  {
    key: "authTimeoutMs",
    flag: "auth-timeout",
    env: "CHAT_AUTH_TIMEOUT",
    kind: I,
    min: 100,
    max: 600_000,
    help: "ms a connection that owes an auth frame has to send it (then close 4002)",
  },
  {
    key: "maxTokenBytes",
    flag: "max-token-bytes",
    env: "CHAT_MAX_TOKEN_BYTES",
    kind: I,
    min: 256,
    max: 65_536,
    help: "bytes in one signed token (larger: bad_token)",
  },
];

/** Input to {@link resolveConfig}: any subset of settings, as values or strings. */
export type ConfigInput = { [K in keyof Config]?: Config[K] | string };

/**
 * Validates `input` over {@link DEFAULTS} and returns a frozen {@link Config}.
 * @throws {ConfigError} naming the setting and the value, e.g. `--port must be an integer from 0 to 65535, got "x"`.
 */
export function resolveConfig(input: ConfigInput = {}): Config {
  const out: Record<string, unknown> = { ...DEFAULTS };
  for (const s of SETTINGS) {
    const raw = input[s.key];
    if (raw === undefined) continue;
    out[s.key] = parseSetting(s, raw);
  }
  if ((out.burst as number) < 1) throw new ConfigError("--burst must be at least 1");
  const secret = out.jwtSecret as string;
  if (secret !== "" && new TextEncoder().encode(secret).length < 32) {
    // The length only: the secret itself never goes into a message.
    throw new ConfigError(
      `--jwt-secret (CHAT_JWT_SECRET) must be at least 32 bytes (HS256 keys shorter than its hash are ` +
        `guessable), got ${new TextEncoder().encode(secret).length}`,
    );
  }
  if (out.guests === "off" && !signedIdentities(out as unknown as Config)) {
    throw new ConfigError(
      "--guests off needs --jwt-secret or --jwt-public-key: without a key no one could sign in",
    );
  }
  if (input.commitDelayMs === undefined && out.store === "memory" && out.redisUrl === "") {
    out.commitDelayMs = 0;
  }
  return Object.freeze(out) as unknown as Config;
}

/** Whether the server verifies signed identity tokens (a key is configured). */
export function signedIdentities(config: Config): boolean {
  return config.jwtSecret !== "" || config.jwtPublicKey !== "";
}

/** Whether people without a signed token may chat: `--guests`, where `auto` means "no key configured". */
export function guestsAllowed(config: Config): boolean {
  return config.guests === "auto" ? !signedIdentities(config) : config.guests === "on";
}

function parseSetting(s: Setting, raw: unknown): unknown {
  const shown = typeof raw === "string" ? JSON.stringify(raw) : String(raw);
  if (s.kind === "bool") {
    if (typeof raw === "boolean") return raw;
    const v = String(raw).trim().toLowerCase();
    if (["true", "1", "yes", "on"].includes(v)) return true;
    if (["false", "0", "no", "off"].includes(v)) return false;
    throw new ConfigError(`--${s.flag} (${s.env}) is on or off (true/false), got ${shown}`);
  }
  if (s.kind === "int") {
    const n = typeof raw === "number" ? raw : /^\s*-?\d+\s*$/.test(String(raw)) ? Number(raw) : NaN;
    const min = s.min ?? 0, max = s.max ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      const range = s.max === undefined ? `at least ${min}` : `from ${min} to ${max}`;
      throw new ConfigError(`--${s.flag} (${s.env}) must be an integer ${range}, got ${shown}`);
    }
    return n;
  }
  if (s.kind === "origins") {
    const list = Array.isArray(raw)
      ? raw.map(String)
      : String(raw).split(",").map((x) => x.trim()).filter(Boolean);
    return Object.freeze(list.map((origin) => {
      if (s.wildcard && origin === "*") return origin;
      // As a browser's Origin header has it: scheme and host lower-case, no default port.
      const normalized = /^https?:\/\/[^/\s]+$/i.test(origin) ? URL.parse(origin)?.origin : undefined;
      if (normalized === undefined) {
        throw new ConfigError(
          `--${s.flag} (${s.env}) takes origins like "https://chat.example.com"${
            s.wildcard ? ' or "*"' : ""
          }, got ${JSON.stringify(origin)}`,
        );
      }
      return normalized;
    }));
  }
  const value = String(raw);
  if (typeof s.kind === "object" && !s.kind.oneOf.includes(value)) {
    throw new ConfigError(`--${s.flag} (${s.env}) must be one of ${s.kind.oneOf.join(", ")}, got ${shown}`);
  }
  if (value === "") throw new ConfigError(`--${s.flag} (${s.env}) must not be empty`);
  if (s.pattern && !s.pattern.re.test(value)) {
    let got = shown;
    if (s.secret) {
      const at = [...value].findIndex((_, i, all) => !s.pattern!.re.test(all.slice(0, i + 1).join("")));
      got = `a value (not shown) that breaks the rule at character ${at + 1}, ${
        JSON.stringify([...value][at])
      }`;
    }
    throw new ConfigError(`--${s.flag} (${s.env}) takes ${s.pattern.says}, got ${got}`);
  }
  return value;
}

/**
 * Reads settings from command-line flags (`--port 9000` or `--port=9000`) over environment variables.
 * `env` is a lookup so that `main.ts` decides how the environment is read.
 * @throws {ConfigError} on an unknown flag or a bad value.
 */
export function configFromArgs(args: readonly string[], env: (name: string) => string | undefined): Config {
  const input: Record<string, string> = {};
  for (const s of SETTINGS) {
    const v = env(s.env);
    if (v !== undefined && v !== "") input[s.key] = v;
  }
  const byFlag = new Map(SETTINGS.map((s) => [s.flag, s]));
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    const s = m && byFlag.get(m[1]);
    if (!m || !s) throw new ConfigError(`unknown option ${JSON.stringify(arg)}; see --help`);
    let value = m[2];
    // A switch: `--reuse-port` alone means on.
    if (value === undefined && s.kind === "bool") value = "true";
    if (value === undefined) {
      value = args[++i];
      if (value === undefined) throw new ConfigError(`--${s.flag} needs a value`);
    }
    input[s.key] = value;
  }
  return resolveConfig(input);
}

/** The `--help` text, generated from {@link SETTINGS}. */
export function helpText(): string {
  const rows = SETTINGS.map((s) => {
    const def = DEFAULTS[s.key];
    const shown = Array.isArray(def)
      ? (def.length ? def.join(",") : "(none)")
      : def === ""
      ? "(none)"
      : String(def);
    return `  --${s.flag.padEnd(26)} ${s.env.padEnd(31)} ${s.help} [${shown}]`;
  });
  return `Usage: chat [options]\n\nOptions (flag, environment variable, meaning [default]):\n${
    rows.join("\n")
  }\n  --help\n`;
}

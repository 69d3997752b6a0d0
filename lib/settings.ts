/**
 * The settings table: every setting declared once, with its flag, environment variable, kind, default,
 * unit and help. The `Config` type, the defaults and validation (`config.ts`), `--help` and the README's
 * tables (`settings_doc.ts`) are all derived from it, so adding a setting is adding one entry here.
 *
 * To add one: write its entry in its section (a duration's key ends in its unit, `…Ms`, `…Seconds` or
 * `…Days`: the type check refuses it otherwise), run `deno task settings-doc` to rewrite the README's
 * tables, and read it in a component through `settingsFor(config, [...])`, durations in milliseconds.
 * @module
 */

/** What a number measures; a number without a unit is a count. Durations are converted by `settingsFor`. */
export type Unit = "ms" | "s" | "days" | "bytes" | "chars" | "/s";
/** Where a setting is documented: one README table and one `--help` group each. */
export type Section = typeof SECTION_ORDER[number];

interface Common {
  /** The command-line flag without its leading `--`. */
  flag: string;
  env: string;
  /** One line for `--help` and the README (Markdown code spans allowed: `--help` drops the backticks). */
  help: string;
}
interface IntSpec extends Common {
  kind: "int";
  default: number;
  /** Smallest accepted value; 0 when absent. */
  min?: number;
  max?: number;
  unit?: Unit;
}
interface BoolSpec extends Common {
  kind: "bool";
  default: boolean;
  /** A `deno run` flag the server needs when this is on; `deno task start` adds it (`permissions.ts`). */
  denoFlag?: string;
}
interface StringSpec extends Common {
  kind: "string";
  default: string;
  /** A string setting's syntax, and how to say it when a value breaks it. */
  pattern?: { re: RegExp; says: string };
  /** Never quoted in messages: they end up in logs. */
  secret?: boolean;
  /** What `--help` shows the flag takes, e.g. `url`: `--redis <url>`; `text` (or `path`) when absent. */
  value?: string;
  /** What the empty default means, for the README: `(none: <none>)`. */
  none?: string;
  /**
   * A file or directory the server opens: `deno task start` grants read (and write) access to exactly
   * the value given (`permissions.ts`), and `--help` says so.
   */
  path?: "read" | "read-write";
}
/** A comma-separated list of `http(s)://host[:port]`, normalized as browsers send them. */
interface OriginsSpec extends Common {
  kind: "origins";
  default: readonly string[];
  /** `*` (any origin) is a valid element. */
  wildcard?: boolean;
  none?: string;
}
interface ChoiceSpec extends Common {
  kind: "choice";
  choices: readonly string[];
  default: string;
}
/** One setting as declared in the table. */
export type Spec = IntSpec | BoolSpec | StringSpec | OriginsSpec | ChoiceSpec;

/** The table's sections, in README order. */
export const SECTION_ORDER = ["server", "identity", "limits"] as const;

/**
 * Every setting by section, in README order; `config.ts` derives the `Config` type and the defaults from it.
 * JSDoc on an entry is what an editor shows on `config.<key>`: it says why, the fields say what.
 */
export const TABLE = {
  server: {
    port: { flag: "port", env: "PORT", kind: "int", default: 8000, min: 0, max: 65535, help: "TCP port" },
    hostname: {
      flag: "hostname",
      env: "HOST",
      kind: "string",
      value: "address",
      default: "0.0.0.0",
      help: "address to listen on",
    },
    dataDir: {
      flag: "data-dir",
      env: "CHAT_DATA_DIR",
      kind: "string",
      default: "./data",
      path: "read-write",
      help: "history directory",
    },
    store: {
      flag: "store",
      env: "CHAT_STORE",
      kind: "choice",
      choices: ["sqlite", "memory"],
      default: "sqlite",
      help: "`sqlite` (durable) or `memory` (lost on restart)",
    },
    /** SQLite's `synchronous` level. */
    durability: {
      flag: "durability",
      env: "CHAT_DURABILITY",
      kind: "choice",
      choices: ["full", "normal"],
      default: "full",
      help: "`full`: an ack survives power loss (fsync per write); `normal`: survives a killed process",
    },
    /**
     * The search index costs the durable write (docs/performance.md, "Search"): a server that needs
     * no search may leave it out. Turned on again, the history written meanwhile is indexed in the
     * background (SQLite), as history from before the index is.
     */
    search: {
      flag: "search",
      env: "CHAT_SEARCH",
      kind: "choice",
      choices: ["on", "off"],
      default: "on",
      help:
        "`on`: messages are indexed for `search`; `off`: no index is written, `search` answers `unsupported`",
    },
    /**
     * Origins the server's own page is published under, e.g. `https://chat.example.com` behind a proxy.
     * Besides these, a page whose origin is the URL the client connects to is accepted only when its host
     * is `localhost`, an IP address or `hostname`: names a DNS-rebinding page cannot take.
     */
    publicOrigins: {
      flag: "public-origin",
      env: "CHAT_PUBLIC_ORIGIN",
      kind: "origins",
      default: [],
      none: "localhost and IP addresses",
      help:
        "comma-separated origins the page is served under besides localhost and IP addresses, e.g. `https://chat.example.com`",
    },
    allowedOrigins: {
      flag: "allowed-origins",
      env: "CHAT_ALLOWED_ORIGINS",
      kind: "origins",
      wildcard: true,
      default: [],
      none: "the server's own only",
      help: "comma-separated origins allowed besides the server's own, or `*`",
    },
    logLevel: {
      flag: "log",
      env: "CHAT_LOG",
      kind: "choice",
      choices: ["debug", "info", "warn", "error"],
      default: "warn",
      help: "`debug`, `info`, `warn`, `error` (logfmt lines on stderr)",
    },
    /** When set, `/metrics` answers only requests with `Authorization: Bearer <metricsToken>`. */
    metricsToken: {
      flag: "metrics-token",
      env: "CHAT_METRICS_TOKEN",
      kind: "string",
      value: "token",
      default: "",
      none: "`/metrics` open",
      secret: true,
      // RFC 6750's b64token: what may follow "Bearer " in an Authorization header.
      pattern: { re: /^[A-Za-z0-9._~+/-]+=*$/, says: "letters, digits and - . _ ~ + / (then = padding)" },
      help: "bearer token `/metrics` requires; prefer the environment (flags show in `ps`)",
    },
    /**
     * Redis URL (a password may be in it; `redis+cluster://` for a Redis Cluster, naming one of its nodes):
     * rooms, history and delivery are shared by every process on it. Empty: the embedded engine (`store`).
     */
    redisUrl: {
      flag: "redis",
      env: "REDIS_URL",
      kind: "string",
      value: "url",
      default: "",
      none: "embedded store",
      secret: true,
      pattern: {
        re: /^rediss?(\+cluster)?:\/\/[^\s]+$/,
        says: "a URL like redis://host:6379, rediss://:password@host:6380 or redis+cluster://node:7000",
      },
      help:
        "`redis://host:6379` (`rediss://`, a password in the URL, `redis+cluster://` for a Cluster): share rooms across processes",
    },
    /** Presence entries of a process live this long without a refresh, so a dead process's people leave once. */
    presenceTtlMs: {
      flag: "presence-ttl",
      env: "CHAT_PRESENCE_TTL",
      kind: "int",
      default: 15_000,
      unit: "ms",
      min: 300,
      max: 600_000,
      help: "with Redis: ms until the people of a process that died leave their rooms",
    },
    /**
     * Replication in Redis is asynchronous: an ack that came before the replica had the message is lost
     * when the master dies and the replica takes over. With this set, each append is followed by
     * `WAIT <n> <redisWaitMs>` on its connection and acked only when n replicas have it (Redis 7.0 has
     * no `WAITAOF`; an ack still survives a crash of every copy only with `appendfsync always`).
     */
    redisWaitReplicas: {
      flag: "redis-wait-replicas",
      env: "CHAT_REDIS_WAIT_REPLICAS",
      kind: "int",
      default: 0,
      max: 16,
      help:
        "with Redis: replicas a message must reach before its ack (`WAIT`; 0 = off); see _Redis with replicas_",
    },
    /** A bound on how long an append may hold the writer when a replica is slow or gone. */
    redisWaitMs: {
      flag: "redis-wait-timeout",
      env: "CHAT_REDIS_WAIT_TIMEOUT",
      kind: "int",
      default: 500,
      unit: "ms",
      min: 1,
      max: 60_000,
      help: "with `--redis-wait-replicas`: ms to wait for them; then the send is answered `unavailable`",
    },
  },
  identity: {
    /** Never logged or quoted: it signs identities. */
    jwtSecret: {
      flag: "jwt-secret",
      env: "CHAT_JWT_SECRET",
      kind: "string",
      value: "secret",
      default: "",
      secret: true,
      help:
        "HS256 secret shared with the host app, at least 32 bytes; prefer the environment (flags show in `ps`)",
    },
    /** Read once at start-up (SPKI PEM or JWKS JSON). */
    jwtPublicKey: {
      flag: "jwt-public-key",
      env: "CHAT_JWT_PUBLIC_KEY",
      kind: "string",
      default: "",
      path: "read",
      help: "path of a PEM public key (RSA, P-256, Ed25519) or a JWKS file: RS256, ES256, EdDSA tokens",
    },
    jwtAudience: {
      flag: "jwt-audience",
      env: "CHAT_JWT_AUDIENCE",
      kind: "string",
      value: "aud",
      default: "",
      none: "not checked",
      help: "the `aud` a token must carry",
    },
    jwtIssuer: {
      flag: "jwt-issuer",
      env: "CHAT_JWT_ISSUER",
      kind: "string",
      value: "iss",
      default: "",
      none: "not checked",
      help: "the `iss` a token must carry",
    },
    guests: {
      flag: "guests",
      env: "CHAT_GUESTS",
      kind: "choice",
      choices: ["on", "off", "auto"],
      default: "auto",
      help: "`on`, `off`, or `auto`: guests (unsigned, first-come names) only when no key is set",
    },
    /**
     * Without guests the page cannot ask for a name: it says that the host site signs people in, and
     * links there when this is set.
     */
    signInUrl: {
      flag: "sign-in-url",
      env: "CHAT_SIGN_IN_URL",
      kind: "string",
      default: "",
      pattern: { re: /^https?:\/\/[^\s"<>]+$/, says: "an http(s) URL" },
      none: "no link",
      help: "the host site's sign-in page, linked from the chat page when guests are off",
    },
    /**
     * A join of a name nobody used makes the room; a private room refuses. With `anyone`, someone who
     * may not enter private rooms tells the two apart, and so learns private rooms' names.
     */
    createRooms: {
      flag: "create-rooms",
      env: "CHAT_CREATE_ROOMS",
      kind: "choice",
      choices: ["anyone", "moderators"],
      default: "anyone",
      help:
        "who makes a room by joining a name never used: `anyone`, or `moderators` (and tokens whose `rooms` claim names it; others get `forbidden`, as for a private room)",
    },
    /**
     * A guest is a token: one who drops it comes back as a new guest, free of its bans. Off by
     * default: behind a proxy every guest has the proxy's address, and a NAT shares one.
     */
    guestBans: {
      flag: "guest-bans",
      env: "CHAT_GUEST_BANS",
      kind: "choice",
      choices: ["person", "address"],
      default: "person",
      help:
        "what a ban of a guest bans: `person` (its token: a new guest is not banned) or `address` (also its address, in that room; not behind a proxy)",
    },
    /**
     * With names shared across processes a person's name is settled before `welcome`, so nobody is
     * announced under a placeholder; a store that does not answer in time turns the connection away.
     */
    nameLookupMs: {
      flag: "name-lookup-timeout",
      env: "CHAT_NAME_LOOKUP_TIMEOUT",
      kind: "int",
      default: 3000,
      unit: "ms",
      min: 100,
      max: 60_000,
      help:
        "ms a connect waits for the name its person holds on other processes, then `unavailable` and close 1013",
    },
    authTimeoutMs: {
      flag: "auth-timeout",
      env: "CHAT_AUTH_TIMEOUT",
      kind: "int",
      default: 10_000,
      unit: "ms",
      min: 100,
      max: 600_000,
      help: "ms a connection that owes an `auth` frame has to send it, then close 4002",
    },
    maxTokenBytes: {
      flag: "max-token-bytes",
      env: "CHAT_MAX_TOKEN_BYTES",
      kind: "int",
      default: 8 * 1024,
      unit: "bytes",
      min: 256,
      max: 65_536,
      help: "bytes in one token (`?token=` or `auth`); larger is refused `bad_token`",
    },
  },
  limits: {
    maxTextChars: {
      flag: "max-text-chars",
      env: "CHAT_MAX_TEXT_CHARS",
      kind: "int",
      default: 4000,
      unit: "chars",
      min: 1,
      help: "characters in a message text; more: error `text_too_long`",
    },
    maxFrameBytes: {
      flag: "max-frame-bytes",
      env: "CHAT_MAX_FRAME_BYTES",
      kind: "int",
      default: 64 * 1024,
      unit: "bytes",
      min: 256,
      help: "bytes in one client frame; more: error `frame_too_big`, close 1009",
    },
    maxRoomsPerConnection: {
      flag: "max-rooms-per-connection",
      env: "CHAT_MAX_ROOMS_PER_CONNECTION",
      kind: "int",
      default: 20,
      min: 1,
      help: "rooms one connection may be in; more: error `too_many_rooms`",
    },
    maxRooms: {
      flag: "max-rooms",
      env: "CHAT_MAX_ROOMS",
      kind: "int",
      default: 10_000,
      min: 1,
      help: "rooms the server holds at once; more: error `server_rooms_full`",
    },
    messagesPerSecond: {
      flag: "messages-per-second",
      env: "CHAT_MESSAGES_PER_SECOND",
      kind: "int",
      default: 10,
      unit: "/s",
      min: 1,
      help: "token bucket refill: client frames a second per connection; past it: error `rate_limited`",
    },
    burst: { flag: "burst", env: "CHAT_BURST", kind: "int", default: 30, min: 1, help: "token bucket size" },
    maxStrikes: {
      flag: "max-strikes",
      env: "CHAT_MAX_STRIKES",
      kind: "int",
      default: 20,
      min: 1,
      help: "errors within a minute before close 1008",
    },
    maxConnections: {
      flag: "max-connections",
      env: "CHAT_MAX_CONNECTIONS",
      kind: "int",
      default: 10_000,
      min: 1,
      help: "open connections in total; more: HTTP 503 `server_full` before the upgrade",
    },
    maxConnectionsPerIp: {
      flag: "max-connections-per-ip",
      env: "CHAT_MAX_CONNECTIONS_PER_IP",
      kind: "int",
      default: 50,
      min: 1,
      help: "open connections from one IP address; more: HTTP 429 `too_many_connections_ip`",
    },
    /** It is also what ends a connection whose receive side Deno gave up on (a message too large to hold). */
    idleTimeoutSeconds: {
      flag: "idle-timeout",
      env: "CHAT_IDLE_TIMEOUT",
      kind: "int",
      default: 60,
      unit: "s",
      min: 1,
      max: 3600,
      help: "seconds without a frame: ping, then close 1001 (1-3600; cannot be off)",
    },
    maxBufferedBytes: {
      flag: "max-buffered-bytes",
      env: "CHAT_MAX_BUFFERED_BYTES",
      kind: "int",
      default: 1024 * 1024,
      unit: "bytes",
      min: 1024,
      help: "bytes queued for a client that does not read: close 4001 `slow consumer`",
    },
    /**
     * Events a fallback (SSE) session keeps after sending them, so that a dropped stream resumed with
     * its last event id loses nothing; a resume from further back is told to start over.
     */
    sseReplayBytes: {
      flag: "sse-replay-bytes",
      env: "CHAT_SSE_REPLAY_BYTES",
      kind: "int",
      default: 256 * 1024,
      unit: "bytes",
      min: 1024,
      help: "bytes of sent events a fallback (SSE) session keeps for a stream that resumes",
    },
    /** A session with no stream still counts as a connection and is still in its rooms until then. */
    sseSessionIdleSeconds: {
      flag: "sse-session-idle",
      env: "CHAT_SSE_SESSION_IDLE",
      kind: "int",
      default: 30,
      unit: "s",
      min: 1,
      max: 3600,
      help: "seconds a fallback (SSE) session lives without a stream before it ends",
    },
    ssePostFrames: {
      flag: "sse-post-frames",
      env: "CHAT_SSE_POST_FRAMES",
      kind: "int",
      default: 30,
      min: 1,
      max: 1000,
      help: "frames in one POST of a fallback (SSE) session; more: HTTP 413 `too_many_frames`",
    },
    /** Characters, despite the name; at most half of `maxBufferedBytes` is used. */
    maxAnswerBytes: {
      flag: "max-answer-bytes",
      env: "CHAT_MAX_ANSWER_BYTES",
      kind: "int",
      default: 256 * 1024,
      unit: "chars",
      min: 16 * 1024,
      help: "characters in one `joined`/`history`/`rooms` answer; more is cut short (paged)",
    },
    nameHoldSeconds: {
      flag: "name-hold",
      env: "CHAT_NAME_HOLD",
      kind: "int",
      default: 60,
      unit: "s",
      min: 0,
      help: "seconds a name stays reserved after its owner's last connection",
    },
    presenceDelayMs: {
      flag: "presence-delay",
      env: "CHAT_PRESENCE_DELAY",
      kind: "int",
      default: 250,
      unit: "ms",
      min: 0,
      max: 10_000,
      help: "ms joins/leaves are held so a room's changes go out in one frame (0 = at once)",
    },
    /**
     * Members of a room that fills (10,000 connections into rooms of 100) otherwise get a presence frame
     * every `presenceDelayMs`, and each frame costs a send in the kernel on both sides.
     */
    presenceIntervalMs: {
      flag: "presence-interval",
      env: "CHAT_PRESENCE_INTERVAL",
      kind: "int",
      default: 1000,
      unit: "ms",
      min: 0,
      max: 60_000,
      help:
        "ms a room waits after sending presence before it sends more (what comes meanwhile goes together)",
    },
    /**
     * Above it, presence fan-out is quadratic in the room's size (every join told to every member): a
     * big room tells counts, pages its member list and names only the people a member asked about.
     */
    bigRoom: {
      flag: "big-room",
      env: "CHAT_BIG_ROOM",
      kind: "int",
      default: 500,
      min: 1,
      help: "people in a room above which it is big: a count and member pages instead of join/leave lines",
    },
    membersPage: {
      flag: "members-page",
      env: "CHAT_MEMBERS_PAGE",
      kind: "int",
      default: 100,
      min: 1,
      max: 1000,
      help: "most names in a big room's `joined` or `members` answer, and most direct partners watched there",
    },
    countIntervalMs: {
      flag: "count-interval",
      env: "CHAT_COUNT_INTERVAL",
      kind: "int",
      default: 1000,
      unit: "ms",
      min: 10,
      max: 60_000,
      help: "ms between two `count` lines of one big room (joins and leaves meanwhile make one)",
    },
    maxTypers: {
      flag: "max-typers",
      env: "CHAT_MAX_TYPERS",
      kind: "int",
      default: 5,
      min: 1,
      help: "people a big room names as typing at once; others' typing is dropped meanwhile",
    },
    /** The page shows a typer for 3 s after their line: a typer holds a place as long. */
    typingWindowMs: {
      flag: "typing-window",
      env: "CHAT_TYPING_WINDOW",
      kind: "int",
      default: 3000,
      unit: "ms",
      min: 100,
      max: 60_000,
      help: "ms a typer holds one of a big room's `--max-typers` places after their last typing line",
    },
    /**
     * A message that finds a write in flight waits for that anyway. The default is 0 with `--store memory`
     * and no Redis: there a write costs nothing to share.
     */
    commitDelayMs: {
      flag: "commit-delay",
      env: "CHAT_COMMIT_DELAY",
      kind: "int",
      default: 2,
      unit: "ms",
      min: 0,
      max: 1000,
      help: "ms a message finding the history writer idle waits to share its write (memory: 0)",
    },
    /**
     * Each frame costs the server one write whatever it holds: for 100 ms after a flush to this many
     * connections, each flush waits a little so that a busy room's lines share frames. Small rooms never wait.
     */
    busyFlushDelayMs: {
      flag: "busy-flush-delay",
      env: "CHAT_BUSY_FLUSH_DELAY",
      kind: "int",
      default: 5,
      unit: "ms",
      min: 0,
      max: 100,
      help:
        "ms a flush waits within 100 ms of one to `--busy-flush-peers` connections, to share frames (0 = never)",
    },
    busyFlushPeers: {
      flag: "busy-flush-peers",
      env: "CHAT_BUSY_FLUSH_PEERS",
      kind: "int",
      default: 256,
      min: 1,
      help:
        "connections one flush writes to that make the flushes of the next 100 ms wait `--busy-flush-delay`",
    },
    historyOnJoin: {
      flag: "history-on-join",
      env: "CHAT_HISTORY_ON_JOIN",
      kind: "int",
      default: 50,
      min: 0,
      help: "messages sent with `joined`",
    },
    historyPage: {
      flag: "history-page",
      env: "CHAT_HISTORY_PAGE",
      kind: "int",
      default: 200,
      min: 1,
      help: "most messages per `history` answer",
    },
    directoryPage: {
      flag: "directory-page",
      env: "CHAT_DIRECTORY_PAGE",
      kind: "int",
      default: 50,
      min: 1,
      max: 500,
      help: "most rooms per `rooms` answer (the room directory)",
    },
    searchMaxQueryChars: {
      flag: "search-max-query-chars",
      env: "CHAT_SEARCH_MAX_QUERY_CHARS",
      kind: "int",
      default: 256,
      unit: "chars",
      min: 1,
      max: 4000,
      help: "characters in a search query; more: error `bad_query`",
    },
    searchPage: {
      flag: "search-page",
      env: "CHAT_SEARCH_PAGE",
      kind: "int",
      default: 20,
      min: 1,
      max: 200,
      help: "most results per `search` answer (and `/api/search` page)",
    },
    /** A search costs the store more than a send: its own budget, per person, besides the frame bucket. */
    searchesPerMinute: {
      flag: "searches-per-minute",
      env: "CHAT_SEARCHES_PER_MINUTE",
      kind: "int",
      default: 30,
      min: 1,
      help: "searches one person may run a minute (a quarter of them at once); past it: error `rate_limited`",
    },
    /** Search is a read that never blocks sends: a query that runs long answers what it found. */
    /** Ranking is per match and happens before the first result: without a bound it is the whole history's. */
    searchBestWindow: {
      flag: "search-best-window",
      env: "CHAT_SEARCH_BEST_WINDOW",
      kind: "int",
      default: 1000,
      min: 1,
      max: 100_000,
      help: 'best match first (`order: "best"`) ranks the newest this many matches, not all of them',
    },
    searchTimeoutMs: {
      flag: "search-timeout",
      env: "CHAT_SEARCH_TIMEOUT",
      kind: "int",
      default: 250,
      unit: "ms",
      min: 1,
      max: 10_000,
      help: "ms a search may run; then it answers what it found so far, marked `partial`",
    },
    resumeCap: {
      flag: "resume-cap",
      env: "CHAT_RESUME_CAP",
      kind: "int",
      default: 1000,
      min: 1,
      help: "most messages a resume returns (then `truncated`)",
    },
    retainMessages: {
      flag: "retain-messages",
      env: "CHAT_RETAIN_MESSAGES",
      kind: "int",
      default: 10_000,
      min: 0,
      help: "messages kept per room (0 = all)",
    },
    retainDays: {
      flag: "retain-days",
      env: "CHAT_RETAIN_DAYS",
      kind: "int",
      default: 30,
      unit: "days",
      min: 0,
      help: "days messages are kept (0 = forever)",
    },
    dedupWindowSeconds: {
      flag: "dedup-window",
      env: "CHAT_DEDUP_WINDOW",
      kind: "int",
      default: 86_400,
      unit: "s",
      min: 0,
      help: "seconds a `cid` is remembered for exactly-once sends",
    },
    editWindowSeconds: {
      flag: "edit-window",
      env: "CHAT_EDIT_WINDOW",
      kind: "int",
      default: 900,
      unit: "s",
      min: 0,
      max: 30 * 86_400,
      help: "seconds its author may edit a message (0 = no edits)",
    },
    /** Several for rotation. */
    apiKeys: {
      flag: "api-key",
      env: "CHAT_API_KEYS",
      kind: "string",
      value: "keys",
      default: "",
      none: "`/api/` is off",
      secret: true,
      pattern: {
        re: /^([A-Za-z0-9._~+/-]{16,}=*)(,[A-Za-z0-9._~+/-]{16,}=*)*$/,
        says: "comma-separated keys of 16 or more letters, digits and - . _ ~ + /",
      },
      help:
        "server API keys, comma-separated, 16+ characters each; prefer the environment (flags show in `ps`)",
    },
    /** A token bucket of as many. */
    apiRate: {
      flag: "api-rate",
      env: "CHAT_API_RATE",
      kind: "int",
      default: 50,
      unit: "/s",
      min: 1,
      help: "API requests a second per key",
    },
    /**
     * Wrong keys, counted per client address (a token bucket of as many, refilled over a minute): a
     * guesser is slowed to this many tries a minute. Behind a proxy every request has its address.
     */
    apiAuthFailures: {
      flag: "api-auth-failures",
      env: "CHAT_API_AUTH_FAILURES",
      kind: "int",
      default: 10,
      min: 1,
      help: "API requests with a wrong or missing key an address may make a minute (then 429)",
    },
    apiMaxBody: {
      flag: "api-max-body",
      env: "CHAT_API_MAX_BODY",
      kind: "int",
      default: 64 * 1024,
      unit: "bytes",
      min: 1024,
      max: 16 * 1024 * 1024,
      help: "bytes in one API request body",
    },
    auditRetain: {
      flag: "audit-retain",
      env: "CHAT_AUDIT_RETAIN",
      kind: "int",
      default: 1000,
      min: 1,
      help: "audit log entries (moderation actions) kept per room",
    },
    maxReactionEmoji: {
      flag: "max-reaction-emoji",
      env: "CHAT_MAX_REACTION_EMOJI",
      kind: "int",
      default: 20,
      min: 1,
      max: 1000,
      help: "distinct emoji on one message; more: error `too_many_reactions`",
    },
    maxReactionsPerPerson: {
      flag: "max-reactions-per-person",
      env: "CHAT_MAX_REACTIONS_PER_PERSON",
      kind: "int",
      default: 10,
      min: 1,
      max: 1000,
      help: "reactions of one person on one message; more: error `too_many_reactions`",
    },
    /** A message many people answer with one emoji still fits; fresh guests cannot grow it further. */
    maxReactionsPerMessage: {
      flag: "max-reactions",
      env: "CHAT_MAX_REACTIONS",
      kind: "int",
      default: 200,
      min: 1,
      max: 100_000,
      help: "reactions on one message from everyone together; more: error `too_many_reactions`",
    },
    maxMentions: {
      flag: "max-mentions",
      env: "CHAT_MAX_MENTIONS",
      kind: "int",
      default: 20,
      min: 0,
      max: 1000,
      help: "`@name` mentions recorded per message; later ones are not recorded",
    },
    /**
     * A guest is a token anyone can mint: one who never wrote is kept only so a message by name finds
     * them for a while after they leave, not for as long as the history.
     */
    guestForgetSeconds: {
      flag: "guest-forget",
      env: "CHAT_GUEST_FORGET",
      kind: "int",
      default: 600,
      unit: "s",
      min: 1,
      help: "seconds a silent guest stays in the people directory (one who wrote: `--retain-days`)",
    },
    /** Each one lists a conversation in someone's list and stores a message they never asked for. */
    firstContactsPerHour: {
      flag: "first-contacts",
      env: "CHAT_FIRST_CONTACTS",
      kind: "int",
      default: 30,
      min: 1,
      help: "first contacts (DMs the other never answered) a person sends an hour; more: `too_many_contacts`",
    },
    firstContactsPerIpPerHour: {
      flag: "first-contacts-per-ip",
      env: "CHAT_FIRST_CONTACTS_PER_IP",
      kind: "int",
      default: 60,
      min: 1,
      help: "first contacts an hour from one IP address, everyone together",
    },
    shutdownTimeoutMs: {
      flag: "shutdown-timeout",
      env: "CHAT_SHUTDOWN_TIMEOUT",
      kind: "int",
      default: 5000,
      unit: "ms",
      min: 0,
      help: "ms a shutdown waits for clients and storage",
    },
    /**
     * A frame that reached the server before its 1001 is answered (ack or `shutting_down` with its
     * `cid`): each connection stays open until it has been silent this long, so what it sent before
     * the stop is read first; chatty ones are closed at half the shutdown timeout.
     */
    shutdownQuietMs: {
      flag: "shutdown-quiet",
      env: "CHAT_SHUTDOWN_QUIET",
      kind: "int",
      default: 100,
      unit: "ms",
      min: 0,
      max: 60_000,
      help:
        "ms a connection must be silent after a stop signal before its 1001 (at most half the shutdown timeout)",
    },
    /** So balancers and reconnecting clients hear why instead of a refused connection. */
    shutdownDrainMs: {
      flag: "shutdown-drain",
      env: "CHAT_SHUTDOWN_DRAIN",
      kind: "int",
      default: 500,
      unit: "ms",
      min: 0,
      max: 60_000,
      help: "ms after a stop signal the listener keeps answering 503 `shutting_down`",
    },
    relistenTimeoutSeconds: {
      flag: "relisten-timeout",
      env: "CHAT_RELISTEN_TIMEOUT",
      kind: "int",
      default: 30,
      unit: "s",
      min: 1,
      help: "seconds to try listening again after `accept` failed (e.g. no file descriptors), then exit 1",
    },
    /**
     * Deno's default, 511, overflows in a reconnect storm (handshakes then wait for TCP's retransmission,
     * seconds).
     */
    tcpBacklog: {
      flag: "tcp-backlog",
      env: "CHAT_TCP_BACKLOG",
      kind: "int",
      default: 4096,
      min: 1,
      max: 65535,
      help: "connections queued for accept (kernel cap: `net.core.somaxconn`)",
    },
    /** Off by default: then a second server on the same port is refused, not silently sharing it. */
    reusePort: {
      flag: "reuse-port",
      env: "CHAT_REUSE_PORT",
      kind: "bool",
      default: false,
      denoFlag: "--unstable-net",
      help:
        "share the port with other processes, e.g. several on Redis (SO_REUSEPORT; needs `deno run --unstable-net`)",
    },
  },
} as const satisfies Record<Section, Record<string, Spec>>;

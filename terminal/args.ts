/**
 * The terminal client's command line: one table of options (which `--help` prints and the docs test
 * reads), parsed into a frozen {@link Options} or refused with a {@link UsageError} that names the
 * option and the value.
 * @module
 */
import { isValidName, normalizeRoom } from "../static/chat-client.js";

/** What `deno task chat` was asked to do. */
export interface Options {
  /** The server's WebSocket endpoint, without a query. @default "ws://127.0.0.1:8000/ws" */
  url: string;
  /** The name asked for (the server may number it); none: the server picks `guest-xxxx`. */
  name?: string;
  /** A signed token (JWT) or a guest token from an earlier `welcome`. */
  token?: string;
  /** Rooms to join, canonical; the first is the one shown. @default ["lobby"] */
  rooms: string[];
  /** Print the server's lines as JSON, one a line, instead of readable lines. @default false */
  json: boolean;
  /** Messages of a room shown when it is first shown. @default 10 */
  backlog: number;
  /** Seconds to wait for the first connection. @default 10 */
  connectTimeout: number;
  /** Seconds to wait, once the input has ended, for the server to acknowledge what was sent. @default 30 */
  sendTimeout: number;
  help: boolean;
}

/** A bad command line: the message is the one line printed before exiting 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** The server's default port (`--port` in `lib/settings.ts`) on this machine. */
export const DEFAULT_URL = "ws://127.0.0.1:8000/ws";

type Spec =
  | { type: "string"; value: string; help: string; repeat?: boolean }
  | { type: "seconds" | "count"; value: string; help: string; default: number }
  | { type: "boolean"; help: string };

/** Every option, once: `--help` and the parser both read it. */
export const OPTIONS = {
  name: { type: "string", value: "N", help: "the name to ask for (default: the server picks one)" },
  room: {
    type: "string",
    value: "R",
    repeat: true,
    help: "a room to join; repeat it, the first is shown (default: lobby)",
  },
  token: {
    type: "string",
    value: "T",
    help: "a signed token (JWT) or a guest one from a welcome (see --json); ps shows it",
  },
  json: { type: "boolean", help: "print the server's lines as JSON, one a line (the rest: stderr)" },
  backlog: {
    type: "count",
    value: "N",
    default: 10,
    help: "messages shown of a room you open",
  },
  "connect-timeout": {
    type: "seconds",
    value: "S",
    default: 10,
    help: "seconds to wait for the first connection, then exit 1",
  },
  "send-timeout": {
    type: "seconds",
    value: "S",
    default: 30,
    help: "seconds to wait, once input ends, for the acks of what was sent",
  },
  help: { type: "boolean", help: "print this help and exit" },
} as const satisfies Record<string, Spec>;

type Key = keyof typeof OPTIONS;

/**
 * Reads the command line. `[URL]` may be `ws://`, `wss://`, or the `http(s)://` address the server
 * prints (its `/ws` is then taken).
 * @throws {UsageError} naming the option and the value
 */
export function parseArgs(args: readonly string[]): Options {
  const seen: Partial<Record<Key, string[]>> = {};
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("--") || arg === "-") {
      if (arg.startsWith("-") && arg !== "-") throw new UsageError(`unknown option ${arg} (see --help)`);
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const key = (eq < 0 ? arg.slice(2) : arg.slice(2, eq)) as Key;
    const spec: Spec | undefined = Object.hasOwn(OPTIONS, key) ? OPTIONS[key] : undefined;
    if (!spec) throw new UsageError(`unknown option --${key} (see --help)`);
    let value: string;
    if (spec.type === "boolean") {
      if (eq >= 0) throw new UsageError(`--${key} takes no value, got "${arg.slice(eq + 1)}"`);
      value = "";
    } else if (eq >= 0) value = arg.slice(eq + 1);
    else if (i + 1 < args.length) value = args[++i];
    else throw new UsageError(`--${key} needs a value (${spec.value})`);
    if (seen[key] && !("repeat" in spec && spec.repeat)) {
      throw new UsageError(`--${key} is given twice`);
    }
    (seen[key] ??= []).push(value);
  }
  if (positionals.length > 1) {
    throw new UsageError(`one URL at most, got ${positionals.map((p) => `"${p}"`).join(" ")}`);
  }
  const name = seen.name?.[0];
  if (name !== undefined && !isValidName(name)) {
    throw new UsageError(`--name must be 1-32 letters, digits, "_", "-" or ".", got "${name}"`);
  }
  const rooms = (seen.room ?? ["lobby"]).map((r) => {
    const room = normalizeRoom(r);
    if (!room) throw new UsageError(`--room must be 1-64 letters, digits, "_", "-" or ".", got "${r}"`);
    return room;
  });
  const token = seen.token?.[0];
  if (token !== undefined && token.trim() === "") throw new UsageError(`--token is empty`);
  return Object.freeze({
    url: wsUrl(positionals[0] ?? DEFAULT_URL),
    name,
    token,
    rooms: [...new Set(rooms)],
    json: seen.json !== undefined,
    backlog: number("backlog", seen.backlog?.[0]),
    connectTimeout: number("connect-timeout", seen["connect-timeout"]?.[0]),
    sendTimeout: number("send-timeout", seen["send-timeout"]?.[0]),
    help: seen.help !== undefined,
  });
}

/** The value of a numeric option, or its default. */
function number(key: "backlog" | "connect-timeout" | "send-timeout", raw: string | undefined): number {
  const spec = OPTIONS[key];
  if (raw === undefined) return spec.default;
  const n = Number(raw);
  const ok = raw.trim() !== "" && Number.isFinite(n) &&
    (spec.type === "count" ? Number.isSafeInteger(n) && n >= 0 : n > 0 && n <= 86_400);
  if (!ok) {
    const want = spec.type === "count"
      ? "an integer, 0 or more"
      : "a number of seconds above 0, at most 86400";
    throw new UsageError(`--${key} must be ${want}, got "${raw}"`);
  }
  return n;
}

/**
 * The WebSocket endpoint of `raw`: `ws(s)://` as it is, `http(s)://` turned into `ws(s)://` with the
 * path `/ws` when it has none (the address the server prints is the page's).
 */
function wsUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`the URL must look like ws://host:port/ws, got "${raw}"`);
  }
  const scheme = { "ws:": "ws:", "wss:": "wss:", "http:": "ws:", "https:": "wss:" }[url.protocol];
  if (!scheme) {
    throw new UsageError(`the URL must start with ws://, wss://, http:// or https://, got "${raw}"`);
  }
  // The client adds its own query (name, token, rooms); one in the URL would be cut in two.
  if (url.search || url.hash) throw new UsageError(`the URL must have no query or fragment, got "${raw}"`);
  if (url.username || url.password) {
    throw new UsageError(`the URL must have no user or password, got "${raw}"`);
  }
  const page = url.protocol.startsWith("http");
  const path = page && (url.pathname === "/" || url.pathname === "") ? "/ws" : url.pathname;
  return `${scheme}//${url.host}${path}`;
}

/** The text of `--help`. */
export function helpText(): string {
  const rows = Object.entries(OPTIONS).map(([key, spec]: [string, Spec]) => {
    const flag = spec.type === "boolean" ? `--${key}` : `--${key} ${spec.value}`;
    const def = "default" in spec ? ` (default ${spec.default})` : "";
    return `  ${flag.padEnd(22)}${spec.help}${def}`;
  });
  return [
    "chat: a terminal client for the chat server",
    "",
    "usage: deno task chat [URL] [--name N] [--room R] [--token T] [--json]",
    "",
    `URL: the server's WebSocket endpoint, default ${DEFAULT_URL}; the http:// address the server`,
    "prints works too. Lines typed are sent to the room shown; lines starting with / are commands.",
    "",
    "options:",
    ...rows,
    "",
    "commands:",
    ...COMMAND_HELP.map(([c, h]) => `  ${c.padEnd(22)}${h}`),
    "",
    "As a pipe (echo hi | deno task chat ...), it sends each line, waits for the server to acknowledge",
    "every message once the input ends, and exits 0; 1 when one was refused or not acknowledged in time,",
    "or the server cannot be reached; 2 for a bad command line.",
  ].join("\n");
}

/** The commands, for `--help` and `/help`. */
export const COMMAND_HELP: readonly (readonly [string, string])[] = [
  ["/join R", "join room R (or show it, if you are in it) and send what you type there"],
  ["/leave [R]", "leave room R (default: the one shown)"],
  ["/msg NAME TEXT", "a direct message to NAME"],
  ["/nick N", "change your name"],
  ["/rooms", "your rooms, with unread messages"],
  ["/who [R]", "who is in room R (default: the one shown)"],
  ["/quit", "send what is waiting, then exit (end of input does the same)"],
  ["/help", "this list"],
  ["//TEXT", "send TEXT starting with one /"],
];

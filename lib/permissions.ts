/**
 * The Deno permissions the server needs for one configuration, derived from the settings table: `start.ts`
 * (what `deno task start` runs) grants exactly these, `main.ts` checks them before it starts and prints the
 * command that grants them, and the process tests run the server with them.
 * @module
 */
import { type Config, SETTINGS } from "./config.ts";

/**
 * The project's files the server reads while it runs, besides its modules: the page, the history writer
 * (a Worker, loaded from its file, with the one module it imports at run time) and the Redis scripts.
 */
export const OWN_READS: readonly string[] = Object.freeze([
  "static",
  "lib/store_writer.ts",
  "lib/search_text.ts",
  "lib/redis/lua",
]);

/** The environment variables the server may read: every setting's variable falls under one of these. */
export const ENV_READS: readonly string[] = Object.freeze(["PORT", "HOST", "REDIS_*", "CHAT_*"]);

/** What the server may touch with one configuration. */
export interface Grants {
  /** Paths read: the project's own (see {@link OWN_READS}), then each path a setting names. */
  readonly read: readonly string[];
  readonly write: readonly string[];
  /** Other `deno run` flags the settings need (e.g. `--unstable-net` for `--reuse-port`). */
  readonly flags: readonly string[];
  /** The paths settings name, with the flag that named them, for messages. */
  readonly named: readonly { readonly flag: string; readonly path: string; readonly write: boolean }[];
}

/**
 * The grants `config` needs. `root` prefixes the project's own files (`""`: relative to the project folder,
 * where `deno task` runs); paths named by settings are taken as given.
 * @throws {RangeError} for a named path with a comma: Deno's permission lists are comma-separated.
 */
export function grantsFor(config: Config, root = ""): Grants {
  const read = OWN_READS.map((p) => `${root}${p}`), write: string[] = [], flags: string[] = [];
  const named: { flag: string; path: string; write: boolean }[] = [];
  for (const s of SETTINGS) {
    const value = config[s.key];
    // Only the embedded engine's SQLite store opens the data directory.
    const unused = s.key === "dataDir" && (config.store !== "sqlite" || config.redisUrl !== "");
    if (s.kind === "string" && s.path !== undefined && typeof value === "string" && value !== "" && !unused) {
      if (value.includes(",")) {
        throw new RangeError(
          `--${s.flag} ${JSON.stringify(value)}: a path with a comma cannot be granted to Deno (its ` +
            `--allow-read list is comma-separated); choose another path`,
        );
      }
      read.push(value);
      if (s.path === "read-write") write.push(value);
      named.push({ flag: s.flag, path: value, write: s.path === "read-write" });
    }
    if (s.kind === "bool" && s.denoFlag !== undefined && value === true) flags.push(s.denoFlag);
  }
  return Object.freeze({ read, write, flags, named });
}

/** The `deno run` flags that grant `grants` and nothing more. */
export function denoRunFlags(grants: Grants): string[] {
  return [
    "--allow-net",
    `--allow-read=${grants.read.join(",")}`,
    ...(grants.write.length > 0 ? [`--allow-write=${grants.write.join(",")}`] : []),
    `--allow-env=${ENV_READS.join(",")}`,
    ...grants.flags,
  ];
}

/**
 * What of `grants` this process lacks (the paths settings name, the network, the settings' variables),
 * as phrases like `read and write access to "./data2" (--data-dir)`. The project's own files are not
 * asked about: a compiled binary carries them inside.
 */
export function missingGrants(
  grants: Grants,
  query: (d: Deno.PermissionDescriptor) => Deno.PermissionState = (d) => Deno.permissions.querySync(d).state,
): string[] {
  const out: string[] = [];
  if (query({ name: "net" }) !== "granted") out.push("network access");
  const env = SETTINGS.filter((s) => query({ name: "env", variable: s.env }) !== "granted");
  if (env.length > 0) out.push(`access to the environment variables ${ENV_READS.join(", ")}`);
  for (const n of grants.named) {
    const read = query({ name: "read", path: n.path }) === "granted";
    const write = !n.write || query({ name: "write", path: n.path }) === "granted";
    if (read && write) continue;
    const what = !read && n.write && !write ? "read and write" : read ? "write" : "read";
    out.push(`${what} access to ${JSON.stringify(n.path)} (--${n.flag})`);
  }
  return out;
}

/** `args` as a POSIX shell reads them back: quoted only where needed. */
export function shellWords(args: readonly string[]): string {
  return args.map((a) => /^[A-Za-z0-9_./:=,@%+-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`).join(
    " ",
  );
}

/**
 * The Redis engine's Lua scripts: one file each in `lib/redis/lua/`, read once when the engine
 * connects (through `import.meta.url`, so `deno compile --include lib/redis/lua` embeds them and
 * `--allow-read=lib/redis/lua` is all `deno run` needs), and run by their SHA1 with EVALSHA. Redis
 * sends the text only when it does not know a script (NOSCRIPT: it restarted, SCRIPT FLUSH, another
 * Cluster node), so a call carries its arguments, not kilobytes of Lua that Redis would hash each time.
 * Every value a script needs (a limit, the publish command) comes in as an argument: the text is the
 * file's, the same in every deployment.
 * @module
 */
import { createHash } from "node:crypto";
import { StoreError } from "../store.ts";

/**
 * The scripts, each the files that make it up: the libraries (`quote`, then `stored`) first, then the
 * script's own file. A file's header says its KEYS, ARGV and reply.
 */
const SOURCES = {
  access: ["access"],
  age: ["quote", "stored", "age"],
  append: ["quote", "stored", "append"],
  audit: ["audit"],
  changeMessage: ["quote", "stored", "change_message"],
  changeRoom: ["change_room"],
  changes: ["quote", "stored", "changes"],
  claim: ["claim"],
  conversations: ["conversations"],
  converse: ["converse"],
  dirs: ["dirs"],
  find: ["find"],
  forgetConv: ["forget_conv"],
  history: ["quote", "stored", "history"],
  keep: ["keep"],
  mentionCount: ["mention_count"],
  meta: ["meta"],
  peopleLists: ["people_lists"],
  presenceJoin: ["presence_join"],
  presenceLeave: ["presence_leave"],
  presenceRename: ["presence_rename"],
  presenceSweep: ["presence_sweep"],
  present: ["present"],
  rebase: ["rebase"],
  react: ["quote", "stored", "react"],
  reactions: ["reactions"],
  read: ["read"],
  remember: ["remember"],
} as const satisfies Record<string, readonly string[]>;

/** The name of one of the engine's scripts. */
export type ScriptName = keyof typeof SOURCES;

/** One script: its text and the SHA1 Redis knows it by. */
export interface Script {
  readonly name: ScriptName;
  readonly text: string;
  readonly sha: string;
}

/** Every script of the engine, by name. */
export type Scripts = { readonly [K in ScriptName]: Script };

/** The folder the scripts are read from. */
export const SCRIPTS_DIR: URL = new URL("./lua/", import.meta.url);

/**
 * Reads every script from `dir` (each file once).
 * @throws {StoreError} naming the folder and why it cannot be read (e.g. no `--allow-read` for it).
 */
export async function loadScripts(dir: URL = SCRIPTS_DIR): Promise<Scripts> {
  const files = new Map<string, Promise<string>>();
  const read = (file: string) => {
    let text = files.get(file);
    if (!text) files.set(file, text = Deno.readTextFile(new URL(`${file}.lua`, dir)));
    return text;
  };
  try {
    const entries = await Promise.all(
      Object.entries(SOURCES).map(async ([name, parts]) => {
        const text = (await Promise.all(parts.map(read))).join("\n");
        const sha = createHash("sha1").update(text).digest("hex");
        return [name, { name, text, sha }] as const;
      }),
    );
    return Object.fromEntries(entries) as unknown as Scripts;
  } catch (e) {
    const where = dir.protocol === "file:" ? decodeURIComponent(dir.pathname) : dir.href;
    throw new StoreError(
      `cannot read the Redis scripts in ${where}: ${(e as Error).message} ` +
        "(the server needs read access to lib/redis/lua, e.g. --allow-read=static,data,lib/store_writer.ts,lib/redis/lua)",
    );
  }
}

/** What running a script needs of a client: node-redis's EVALSHA and EVAL (one Redis or a Cluster). */
export interface ScriptRunner {
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

/**
 * Runs `script` by its SHA1. When Redis does not know it (NOSCRIPT), sends its text once with EVAL,
 * which runs it and keeps it for the next EVALSHA. On a Cluster both go to the node of the first key.
 */
export async function runScript(
  client: ScriptRunner,
  script: Script,
  keys: string[],
  args: string[],
): Promise<unknown> {
  const options = { keys, arguments: args };
  try {
    return await client.evalSha(script.sha, options);
  } catch (e) {
    if (!(e instanceof Error && e.message.startsWith("NOSCRIPT"))) throw e;
    return await client.eval(script.text, options);
  }
}

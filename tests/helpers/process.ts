/**
 * Runs `main.ts` as a real server process, for tests about start-up, signals and crashes.
 * @module
 */

import { ENV_READS, OWN_READS } from "../../lib/permissions.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** A server process started from `main.ts`. */
export interface ServerProcess {
  child: Deno.ChildProcess;
  port: number;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /** Sends `signal` and waits for the exit status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/**
 * The Deno permissions `deno task start` grants for a data directory (`lib/permissions.ts`), so the tests
 * also check least privilege; flags such as `--unstable-net` are the test's to add.
 */
function permissions(dataDir: string): string[] {
  const root = new URL("../..", import.meta.url).pathname;
  return [
    "--allow-net",
    `--allow-read=${[...OWN_READS.map((p) => `${root}${p}`), dataDir].join(",")}`,
    `--allow-write=${dataDir}`,
    `--allow-env=${ENV_READS.join(",")}`,
  ];
}

/** Options of {@link spawnServer}. */
export interface SpawnOptions {
  /** Soft and hard limit of open file descriptors for the server (through the shell's `ulimit -n`). */
  maxFiles?: number;
  /** Flags for `deno run` besides the permissions (e.g. `--unstable-net`). */
  denoFlags?: string[];
}

/** Starts `main.ts` on 127.0.0.1 with a free port and waits for its "listening" line. */
export async function spawnServer(
  dataDir: string,
  args: string[] = [],
  opts: SpawnOptions = {},
): Promise<ServerProcess> {
  // `exec` keeps the PID the test holds the server's own, so signals reach it.
  const [cmd, pre] = opts.maxFiles === undefined
    ? [Deno.execPath(), []]
    : ["bash", ["-c", `ulimit -n ${opts.maxFiles} && exec "$0" "$@"`, Deno.execPath()]];
  const child = new Deno.Command(cmd, {
    args: [
      ...pre,
      "run",
      ...(opts.denoFlags ?? []),
      ...permissions(dataDir),
      MAIN,
      "--hostname",
      "127.0.0.1",
      "--port",
      "0",
      "--data-dir",
      dataDir,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let out = "";
  const decoder = new TextDecoder();
  let portFound: (port: number) => void;
  const port = new Promise<number>((resolve) => portFound = resolve);
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      out += decoder.decode(chunk, { stream: true });
      const m = /listening on http:\/\/[^:]+:(\d+)\//.exec(out);
      if (m) portFound(Number(m[1]));
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const exited = child.status.then((s) => {
    portFound(-1);
    return s;
  });
  const p = await port;
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    try {
      child.kill(signal);
    } catch { /* exited already */ }
    const status = await exited;
    await pumps;
    return status;
  };
  if (p < 0) {
    await stop();
    throw new Error(`server did not start:\n${out}`);
  }
  return { child, port: p, output: () => out, stop };
}

/** Runs `main.ts` to completion (for start-up errors) and returns its exit code and output. */
export async function runMain(dataDir: string, args: string[]): Promise<{ code: number; output: string }> {
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions(dataDir), MAIN, "--hostname", "127.0.0.1", "--port", "0", ...args],
    stdin: "null",
    // A server that does not exit fails the test instead of hanging it.
    signal: AbortSignal.timeout(20_000),
  }).output();
  const d = new TextDecoder();
  return { code: res.code, output: d.decode(res.stdout) + d.decode(res.stderr) };
}

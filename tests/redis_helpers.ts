/**
 * Real Redis for tests: `REDIS_URL` (started by `.ci/run`) for the shared cases, and private
 * `redis-server` processes for the tests that stop, kill or flush Redis. Stopped by PID.
 * @module
 */

/** Why the Redis tests cannot run here, or undefined when they can. */
export function redisMissing(): string | undefined {
  try {
    new Deno.Command("redis-server", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync();
  } catch {
    return "redis-server is not installed (apt-get install redis-server); .ci/run installs it";
  }
  return undefined;
}

/** A redis-server process of the test's own. */
export interface RedisProcess {
  url: string;
  port: number;
  /** Stops it (SIGTERM) and waits. */
  stop(): Promise<void>;
  /** Kills it (SIGKILL) and waits: what a crash does. */
  kill(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts `redis-server` on a free loopback port (or `port`) and waits until it answers. */
export async function startRedis(extra: string[] = [], port?: number): Promise<RedisProcess> {
  if (port === undefined) {
    using probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    port = probe.addr.port;
  }
  const child = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...extra],
    stdout: "null",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      using conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode("PING\r\n"));
      const buf = new Uint8Array(16);
      const n = await conn.read(buf);
      if (n && new TextDecoder().decode(buf.subarray(0, n)).startsWith("+PONG")) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await child.status;
      throw new Error(`redis-server did not start on port ${port}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  let done: Promise<void> | undefined;
  const end = (signal: Deno.Signal) =>
    done ??= (async () => {
      try {
        child.kill(signal);
      } catch { /* exited */ }
      await child.status;
    })();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () => end("SIGTERM"),
    kill: () => end("SIGKILL"),
    [Symbol.asyncDispose]: () => end("SIGTERM"),
  };
}

/** Sends one command to Redis over a raw connection and returns the first line of the answer. */
export async function redisCommand(port: number, ...args: string[]): Promise<string> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const enc = new TextEncoder();
  const body = `*${args.length}\r\n${args.map((a) => `$${enc.encode(a).length}\r\n${a}\r\n`).join("")}`;
  await conn.write(enc.encode(body));
  const buf = new Uint8Array(4096);
  const n = await conn.read(buf);
  return new TextDecoder().decode(buf.subarray(0, n ?? 0)).split("\r\n")[0];
}

/** One admin connection kept open: commands that must go through while new connections are refused. */
export async function redisAdmin(port: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const enc = new TextEncoder();
  const buf = new Uint8Array(65536);
  return {
    /** Sends one command; the first line of the answer. */
    async command(...args: string[]): Promise<string> {
      const body = `*${args.length}\r\n${args.map((a) => `$${enc.encode(a).length}\r\n${a}\r\n`).join("")}`;
      await conn.write(enc.encode(body));
      const n = await conn.read(buf);
      return new TextDecoder().decode(buf.subarray(0, n ?? 0)).split("\r\n")[0];
    },
    [Symbol.dispose]: () => conn.close(),
  };
}

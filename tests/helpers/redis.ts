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

/** Calls per command so far (INFO commandstats); the commands a script runs count too. */
export async function commandCalls(
  c: { info(section: string): Promise<string> },
): Promise<Map<string, number>> {
  const info = await c.info("commandstats");
  return new Map([...info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].map(([, name, n]) => [name, Number(n)]));
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

/** A 3-master Redis Cluster of the test's own (no replicas), on free loopback ports. */
export interface RedisCluster {
  /** `redis+cluster://127.0.0.1:<first node>` */
  url: string;
  ports: number[];
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts three `redis-server --cluster-enabled yes` and joins them with `redis-cli --cluster create`. */
export async function startCluster(): Promise<RedisCluster> {
  const dir = await Deno.makeTempDir({ prefix: "redis-cluster-" });
  const nodes: RedisProcess[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const own = `${dir}/${i}`;
      await Deno.mkdir(own);
      nodes.push(
        await startRedis([
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          `${own}/nodes.conf`,
          "--dir",
          own,
        ]),
      );
    }
    const create = await new Deno.Command("redis-cli", {
      args: [
        "--cluster",
        "create",
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        "--cluster-replicas",
        "0",
        "--cluster-yes",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!create.success) {
      throw new Error(`redis-cli --cluster create failed: ${new TextDecoder().decode(create.stderr)}`);
    }
    // Every node agrees before the test starts.
    const deadline = Date.now() + 10_000;
    for (const n of nodes) {
      for (;;) {
        const state = await rawBulk(n.port, "CLUSTER", "INFO");
        if (state.includes("cluster_state:ok")) break;
        if (Date.now() > deadline) throw new Error("the cluster did not come up");
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } catch (e) {
    for (const n of nodes) await n.stop();
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
  const stop = async () => {
    for (const n of nodes) await n.stop();
    await Deno.remove(dir, { recursive: true });
  };
  return {
    url: `redis+cluster://127.0.0.1:${nodes[0].port}`,
    ports: nodes.map((n) => n.port),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** The whole answer of one command (bulk strings included), as text. */
async function rawBulk(port: number, ...args: string[]): Promise<string> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const enc = new TextEncoder();
  await conn.write(
    enc.encode(`*${args.length}\r\n${args.map((a) => `$${enc.encode(a).length}\r\n${a}\r\n`).join("")}`),
  );
  const buf = new Uint8Array(65536);
  const n = await conn.read(buf);
  return new TextDecoder().decode(buf.subarray(0, n ?? 0));
}

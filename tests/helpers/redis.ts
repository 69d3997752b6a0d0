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
  pid: number;
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
    pid: child.pid,
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

/** A Redis Cluster of the test's own: three masters, and a replica each when asked, on free loopback ports. */
export interface RedisCluster {
  /** `redis+cluster://127.0.0.1:<first node>` */
  url: string;
  /** Every node's port, the first three the masters at the start. */
  ports: number[];
  /** Kills one node (SIGKILL) and waits: what a crash does. */
  kill(port: number): Promise<void>;
  /** Sends a node a signal (SIGSTOP, SIGCONT: a node that stops answering and comes back). */
  signal(port: number, signal: Deno.Signal): void;
  /** Starts a killed node again on its port and directory: it rejoins from its nodes.conf. */
  restart(port: number): Promise<void>;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** Replicas per master (0 or more). @default 0 */
  replicas?: number;
  /** `cluster-node-timeout`: ms until a silent master is failed over. @default 15000 (Redis') */
  nodeTimeoutMs?: number;
}

/**
 * Starts `3 * (1 + replicas)` `redis-server --cluster-enabled yes` and joins them with
 * `redis-cli --cluster create` (the first three are the masters), then waits until every node agrees.
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<RedisCluster> {
  const replicas = opts.replicas ?? 0;
  const dir = await Deno.makeTempDir({ prefix: "redis-cluster-" });
  const nodes = new Map<number, RedisProcess>();
  const args = (own: string) => [
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    `${own}/nodes.conf`,
    "--dir",
    own,
    ...(opts.nodeTimeoutMs ? ["--cluster-node-timeout", String(opts.nodeTimeoutMs)] : []),
    // A replica that (re)joins syncs at once, rather than after 5 s waiting for company.
    "--repl-diskless-sync-delay",
    "0",
  ];
  const dirOf = new Map<number, string>();
  const stop = async () => {
    for (const n of nodes.values()) {
      try {
        Deno.kill(n.pid, "SIGCONT"); // a node a test stopped ends only once it runs again
      } catch { /* exited */ }
      await n.stop();
    }
    await Deno.remove(dir, { recursive: true });
  };
  try {
    for (let i = 0; i < 3 * (1 + replicas); i++) {
      const own = `${dir}/${i}`;
      await Deno.mkdir(own);
      const n = await startRedis(args(own));
      nodes.set(n.port, n);
      dirOf.set(n.port, own);
    }
    const create = await new Deno.Command("redis-cli", {
      args: [
        "--cluster",
        "create",
        ...[...nodes.keys()].map((p) => `127.0.0.1:${p}`),
        "--cluster-replicas",
        String(replicas),
        "--cluster-yes",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!create.success) {
      throw new Error(`redis-cli --cluster create failed: ${new TextDecoder().decode(create.stderr)}`);
    }
    // Every node agrees, and each replica has its master's data, before the test starts.
    const deadline = Date.now() + 20_000;
    for (const port of nodes.keys()) {
      for (;;) {
        const state = await rawBulk(port, "CLUSTER", "INFO");
        const role = await rawBulk(port, "INFO", "replication");
        if (
          state.includes("cluster_state:ok") &&
          (role.includes("role:master") || role.includes("master_link_status:up"))
        ) break;
        if (Date.now() > deadline) throw new Error("the cluster did not come up");
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const ports = [...nodes.keys()];
  return {
    url: `redis+cluster://127.0.0.1:${ports[0]}`,
    ports,
    kill: async (port) => await nodes.get(port)!.kill(),
    signal: (port, signal) => Deno.kill(nodes.get(port)!.pid, signal),
    restart: async (port) => void nodes.set(port, await startRedis(args(dirOf.get(port)!), port)),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** One node's view of the Cluster: each node's port, role and, for a replica, its master's port. */
export async function clusterNodes(
  port: number,
): Promise<ClusterNode[]> {
  const text = await rawBulk(port, "CLUSTER", "NODES");
  const lines = text.split("\n").filter((l) => /^[0-9a-f]{40} /.test(l));
  const byId = new Map(lines.map((l) => {
    const [id, addr] = l.split(" ");
    return [id, Number(addr.split("@")[0].split(":")[1])];
  }));
  return lines.map((l) => {
    const [, addr, flags, masterId, , , , , ...ranges] = l.split(" ");
    const port = Number(addr.split("@")[0].split(":")[1]);
    const master = flags.split(",").includes("master");
    const failed = /\bfail\??\b/.test(flags);
    const slots = ranges.filter((r) => /^\d/.test(r)).map((r) => {
      const [a, b] = r.split("-").map(Number);
      return [a, b ?? a] as [number, number];
    });
    return master ? { port, master, failed, slots } : { port, master, failed, slots, of: byId.get(masterId) };
  });
}

/** A node as {@link clusterNodes} reads it. */
export interface ClusterNode {
  port: number;
  master: boolean;
  /** Flagged `fail` or `fail?` by the node asked. */
  failed: boolean;
  /** The slot ranges it serves (a master), first and last. */
  slots: [number, number][];
  /** A replica's master's port. */
  of?: number;
}

/** What `INFO replication` says on one node (role, master_link_status, connected_slaves, ...). */
export async function replicationInfo(port: number): Promise<Record<string, string>> {
  const text = await rawBulk(port, "INFO", "replication");
  return Object.fromEntries(
    text.split("\r\n").filter((l) => l.includes(":")).map((l) => l.split(":", 2) as [string, string]),
  );
}

/** The hash slot of a key (CLUSTER KEYSLOT), asked of one node. */
export async function keySlot(port: number, key: string): Promise<number> {
  return Number((await redisCommand(port, "CLUSTER", "KEYSLOT", key)).slice(1));
}

/** The whole answer of one command (bulk strings included), as text. */
export async function rawBulk(port: number, ...args: string[]): Promise<string> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const enc = new TextEncoder();
  await conn.write(
    enc.encode(`*${args.length}\r\n${args.map((a) => `$${enc.encode(a).length}\r\n${a}\r\n`).join("")}`),
  );
  const buf = new Uint8Array(65536);
  const n = await conn.read(buf);
  return new TextDecoder().decode(buf.subarray(0, n ?? 0));
}

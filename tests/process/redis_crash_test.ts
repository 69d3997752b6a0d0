/**
 * Crashes on Redis: SIGKILL of a server instance mid-stream, round after round, of redis-server itself
 * (append-only file, fsync always), and of a Redis Cluster master whose replica takes over. Clients
 * reconnect, resume with `join {since, epoch}` and re-send what was not acked with the same `cid`; at
 * the end every message is stored once, gap-free.
 * @module
 */
import assert from "node:assert/strict";
import { checkRoom, Participant, redisFlags } from "../helpers/cluster.ts";
import { type ServerProcess, spawnServer } from "../helpers/process.ts";
import {
  clusterNodes,
  keySlot,
  type RedisCluster,
  redisMissing,
  replicationInfo,
  startCluster,
  startRedis,
} from "../helpers/redis.ts";

const missing = redisMissing();
/** Instance kills in one run (the report of the branch gives a 10-round run). */
const CRASH_ROUNDS = Number(Deno.env.get("CRASH_ROUNDS") ?? 2);
const ROOM = "crash";
const LIMITS = [
  "--messages-per-second",
  "100000",
  "--burst",
  "100000",
  "--resume-cap",
  "100000",
  "--retain-messages",
  "0",
  "--presence-delay",
  "0",
  "--max-buffered-bytes",
  String(64 << 20),
  "--max-answer-bytes",
  String(32 << 20),
];

async function until(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Two instances on one Redis, a publisher and a reader on each; `body` crashes things. */
async function scenario(
  body: (ctx: {
    redis: { port: number; kill(): Promise<void>; restart(): Promise<void> };
    srvs: (ServerProcess | undefined)[];
    spawn: () => Promise<ServerProcess>;
    people: Participant[];
    acks: () => number;
  }) => Promise<void>,
  redisDir: string,
) {
  const dir = await Deno.makeTempDir();
  const redis = { current: await startRedis([...redisFlags(), "--dir", redisDir]) };
  const spawn = () => spawnServer(dir, ["--redis", redis.current.url, ...LIMITS]);
  const srvs: (ServerProcess | undefined)[] = [await spawn(), await spawn()];
  // A client goes to its own instance while it is up, else to any that is.
  const urlFor = (home: number) => () => {
    const s = srvs[home] ?? srvs.find((x) => x);
    return `ws://127.0.0.1:${s!.port}/ws`;
  };
  const people: Participant[] = [];
  try {
    for (const home of [0, 1]) {
      people.push(new Participant({ name: `pub${home}`, room: ROOM, url: urlFor(home), window: 16 }));
      people.push(new Participant({ name: `read${home}`, room: ROOM, url: urlFor(home) }));
    }
    for (const p of people) await p.start();
    const publishers = people.filter((p) => p.opts.name.startsWith("pub"));
    for (const p of publishers) p.publish();
    const acks = () => publishers.reduce((n, p) => n + p.acked.size, 0);
    const control = {
      port: redis.current.port,
      kill: () => redis.current.kill(),
      // The same port, flags and directory: it reads its append-only file back.
      restart: async () => {
        redis.current = await startRedis([...redisFlags(), "--dir", redisDir], control.port);
      },
    };
    await body({ redis: control, srvs, spawn, people, acks });

    for (const p of publishers) p.stopPublishing();
    for (const p of publishers) await p.drained();
    const last = Math.max(...publishers.flatMap((p) => [...p.acked.values()]));
    for (const p of people) await p.reached(last);
    const audit = new Participant({ name: "audit", room: ROOM, url: urlFor(0) });
    people.push(audit);
    await audit.start();
    assert.equal(audit.lastSeq, last, "nothing after the last ack");
    checkRoom(audit.messages, people.filter((p) => p !== audit));
    const others = people.filter((p) => p !== audit);
    console.log(
      `room: ${last} messages, ${
        publishers.reduce((n, p) => n + p.sent.length, 0)
      } sent, each stored once; ` +
        `reconnects ${others.map((p) => `${p.opts.name} ${p.reconnects}`).join(", ")}`,
    );
  } finally {
    for (const p of people) await p.close();
    for (const s of srvs) await s?.stop();
    await redis.current.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name:
    `redis: SIGKILL of an instance mid-stream (${CRASH_ROUNDS} rounds) loses no acked message, stores none twice`,
  ignore: !!missing,
  fn: async () => {
    const redisDir = await Deno.makeTempDir();
    const figures: string[] = [];
    try {
      await scenario(async ({ srvs, spawn, people, acks }) => {
        for (let round = 0; round < CRASH_ROUNDS; round++) {
          const victim = round % 2;
          // Kill at a moment that varies from round to round, while messages are in flight.
          const target = acks() + 100 + Math.floor(Math.random() * 200);
          await until(() => acks() >= target, `round ${round}: acks before the kill`);
          const onVictim = people.filter((p) => p.at.endsWith(`:${srvs[victim]!.port}/ws`));
          const reconnects = onVictim.map((p) => p.reconnects);
          const inFlight = onVictim.reduce((n, p) => n + p.unacked, 0);
          const killedAt = Date.now();
          const status = await srvs[victim]!.stop("SIGKILL");
          assert.equal(status.signal, "SIGKILL");
          srvs[victim] = undefined;
          const unackedAtKill = onVictim.flatMap((p) => p.sent.filter((cid) => !p.acked.has(cid)));
          await until(
            () => onVictim.every((p, i) => p.reconnects > reconnects[i]),
            `round ${round}: the victim's clients reconnect`,
          );
          const after = acks();
          await until(() => acks() >= after + 50, `round ${round}: messages flow after the kill`);
          // Stored before the kill but not acked then (its ts is the first store's): the re-send
          // was answered with the first seq.
          const owners = new Map(people.flatMap((p) => p.sent.map((cid) => [cid, p] as const)));
          await until(
            () => unackedAtKill.every((cid) => owners.get(cid)!.acked.has(cid)),
            `round ${round}: every unacked message is acked after the re-send`,
          );
          const storedBefore = unackedAtKill.filter((cid) => owners.get(cid)!.ackedTs.get(cid)! < killedAt);
          figures.push(
            `round ${round}: killed instance ${victim} (${onVictim.length} clients) at ${target} acks, ` +
              `${inFlight} of its messages unacked, ${storedBefore.length} of them stored before the kill ` +
              `(re-sent, acked with their first seq)`,
          );
          srvs[victim] = await spawn();
        }
      }, redisDir);
    } finally {
      console.log(figures.join("\n"));
      await Deno.remove(redisDir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "redis: SIGKILL of redis-server (appendonly yes, appendfsync always) mid-stream loses no acked message",
  ignore: !!missing,
  fn: async () => {
    const redisDir = await Deno.makeTempDir();
    try {
      await scenario(async ({ redis, people, acks }) => {
        await until(() => acks() >= 200, "acks before the kill");
        const before = new Map(people.flatMap((p) => [...p.acked]));
        await redis.kill();
        const killedAt = Date.now();
        // Down long enough that sends are refused (unavailable) and re-sent.
        await until(() => people.some((p) => p.refusals > 0), "sends refused while Redis is down", 5000);
        await redis.restart();
        const downMs = Date.now() - killedAt;
        const after = acks();
        await until(() => acks() >= after + 200, "messages flow after Redis is back");
        const refusals = people.reduce((n, p) => n + p.refusals, 0);
        const acked = new Map(people.flatMap((p) => [...p.acked]));
        for (const [cid, seq] of before) assert.equal(acked.get(cid), seq);
        console.log(
          `redis-server killed at ${before.size} acks, down ${downMs} ms, ${refusals} sends refused ` +
            `(unavailable) and re-sent, ${acks()} acks at the end of the stream`,
        );
        // checkRoom (in scenario) then reads the room back: every acked message once, same epoch.
      }, redisDir);
    } finally {
      await Deno.remove(redisDir, { recursive: true });
    }
  },
});

/**
 * Replicas a send waits for in the Cluster failover tests. `CLUSTER_WAIT_REPLICAS=0` runs them as the
 * server ran before `--redis-wait-replicas`: acks the replica had not got are then lost.
 */
const WAIT_REPLICAS = Deno.env.get("CLUSTER_WAIT_REPLICAS") ?? "1";
/** Kill-and-promote rounds (about 5 s each on 2 cores). */
const FAILOVER_ROUNDS = Number(Deno.env.get("FAILOVER_ROUNDS") ?? 10);
/** `cluster-node-timeout`: short, so a failover takes about 2-3 s, long enough for a loaded CI machine. */
const NODE_TIMEOUT_MS = 1500;

/** The master serving `room`'s keys now (as the live nodes see it), and its replica if it has one. */
async function ownersOf(
  cluster: RedisCluster,
  room: string,
  dead: ReadonlySet<number> = new Set(),
): Promise<{ master: number; replica?: number }> {
  const ask = cluster.ports.find((p) => !dead.has(p))!;
  const slot = await keySlot(ask, `chat:{${room}}:meta`);
  const nodes = await clusterNodes(ask);
  const master = nodes.find((n) =>
    n.master && !n.failed && !dead.has(n.port) && n.slots.some(([a, b]) => slot >= a && slot <= b)
  );
  if (!master) return { master: -1 };
  return { master: master.port, replica: nodes.find((n) => n.of === master.port && !n.failed)?.port };
}

/** Waits until a node other than `dead` serves `room`, as every live master sees it; its port. */
async function promoted(cluster: RedisCluster, room: string, dead: number, ms = 20_000): Promise<number> {
  const end = Date.now() + ms;
  const gone = new Set([dead]);
  for (;;) {
    const now = await Promise.all(
      cluster.ports.filter((p) => p !== dead).map(async (p) => {
        const info = await replicationInfo(p).catch(() => ({} as Record<string, string>));
        return info.role === "master" ? (await ownersOf(cluster, room, gone)).master : undefined;
      }),
    );
    const seen = now.filter((m) => m !== undefined);
    if (seen.length > 0 && seen.every((m) => m === seen[0] && m > 0)) return seen[0]!;
    if (Date.now() > end) throw new Error(`no node took over room ${room} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until a restarted node replicates `master` again (it rejoined as its replica, in sync). */
async function rejoined(node: number, master: number, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const info = await replicationInfo(node).catch(() => ({} as Record<string, string>));
    if (info.role === "slave" && info.master_port === String(master) && info.master_link_status === "up") {
      return;
    }
    if (Date.now() > end) {
      throw new Error(`node ${node} did not rejoin as a replica of ${master} within ${ms} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Ports of the masters now, with the rooms each serves. */
async function roomsByMaster(cluster: RedisCluster, rooms: string[]): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  for (const room of rooms) {
    const { master } = await ownersOf(cluster, room);
    out.set(master, [...out.get(master) ?? [], room]);
  }
  return out;
}

/** The room's whole history, read by a client of its own, oldest first. */
async function historyOf(room: string, url: () => string): Promise<Participant> {
  const audit = new Participant({ name: `audit-${room}`, room, url });
  await audit.start();
  return audit;
}

const clusterFlags = (url: string) => [
  "--redis",
  url,
  ...LIMITS,
  "--redis-wait-replicas",
  WAIT_REPLICAS,
  "--redis-wait-timeout",
  "300",
];

Deno.test({
  name:
    "redis cluster: with --redis-wait-replicas 1 a send its replica has not got is not acked; after the failover it is stored",
  ignore: !!missing,
  fn: async () => {
    await using cluster = await startCluster({ replicas: 1, nodeTimeoutMs: NODE_TIMEOUT_MS });
    const dir = await Deno.makeTempDir();
    const srv = await spawnServer(dir, clusterFlags(cluster.url));
    const url = () => `ws://127.0.0.1:${srv.port}/ws`;
    const room = "lagging";
    const pub = new Participant({ name: "pub", room, url, window: 4 });
    const reader = new Participant({ name: "reader", room, url });
    const people = [pub, reader];
    const { master, replica } = await ownersOf(cluster, room);
    let stopped = false;
    try {
      for (const p of people) await p.start();
      pub.publish();
      await until(() => pub.acked.size >= 50, "acks before the replica stops");
      // The replica stops answering (as one that lags far behind): the master alone has what comes now.
      cluster.signal(replica!, "SIGSTOP");
      stopped = true;
      // Acks already on their way (their replica had them) arrive first.
      await new Promise((r) => setTimeout(r, 200));
      const ackedBefore = pub.acked.size;
      await new Promise((r) => setTimeout(r, 1000));
      const ackedAlone = pub.acked.size - ackedBefore;
      const refusedAlone = pub.refusals;
      // The master dies with what only it had; its replica comes back and takes over.
      await cluster.kill(master);
      cluster.signal(replica!, "SIGCONT");
      stopped = false;
      const killedAt = Date.now();
      await promoted(cluster, room, master);
      const promotedMs = Date.now() - killedAt;
      // The old master comes back (empty) as the new master's replica: sends are acked again.
      await cluster.restart(master);
      await rejoined(master, replica!);
      const rejoinedMs = Date.now() - killedAt;
      await until(() => pub.acked.size >= ackedBefore + ackedAlone + 50, "sends go on after the failover");
      pub.stopPublishing();
      await pub.drained();
      const last = Math.max(...pub.acked.values());
      await reader.reached(last);
      const audit = await historyOf(room, url);
      people.push(audit);
      checkRoom(audit.messages, [pub, reader]);
      assert.deepEqual([pub.reconnects, reader.reconnects], [0, 0], "both kept their sockets");
      assert.deepEqual([...pub.refusedWith.keys()], ["unavailable"], "refused only as unavailable");
      console.log(
        `replica stopped 1 s: ${ackedAlone} acks, ${refusedAlone} sends refused; master killed, replica ` +
          `promoted after ${promotedMs} ms, old master back as its replica after ${rejoinedMs} ms; ` +
          `${last} messages, ${pub.refusals} refusals in all, each acked message stored once`,
      );
      assert.equal(ackedAlone, 0, "nothing is acked while the replica does not have it");
    } finally {
      if (stopped) cluster.signal(replica!, "SIGCONT");
      for (const p of people) await p.close();
      await srv.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** `n` rooms, spread evenly over the masters (by their keys' slots). */
async function roomsOnEveryMaster(cluster: RedisCluster, perMaster: number): Promise<string[]> {
  const masters = (await clusterNodes(cluster.ports[0])).filter((n) => n.master);
  const picked = new Map(masters.map((m) => [m.port, [] as string[]]));
  for (let i = 0; [...picked.values()].some((rs) => rs.length < perMaster); i++) {
    const room = `room-${i}`;
    const slot = await keySlot(cluster.ports[0], `chat:{${room}}:meta`);
    const owner = masters.find((m) => m.slots.some(([a, b]) => slot >= a && slot <= b))!;
    const rs = picked.get(owner.port)!;
    if (rs.length < perMaster) rs.push(room);
  }
  return [...picked.values()].flat();
}

Deno.test({
  name: `redis cluster (3 masters, 3 replicas): SIGKILL of a master mid-stream, ${FAILOVER_ROUNDS} rounds: ` +
    "sockets kept, its rooms answered unavailable, then on; no acked message lost, no seq reused",
  ignore: !!missing,
  fn: async () => {
    const startedAt = Date.now();
    await using cluster = await startCluster({ replicas: 1, nodeTimeoutMs: NODE_TIMEOUT_MS });
    const dir = await Deno.makeTempDir();
    const srvs = [
      await spawnServer(dir, clusterFlags(cluster.url)),
      await spawnServer(dir, clusterFlags(cluster.url)),
    ];
    const urlOf = (i: number) => () => `ws://127.0.0.1:${srvs[i].port}/ws`;
    const rooms = await roomsOnEveryMaster(cluster, 2);
    const people: Participant[] = [];
    for (const room of rooms) {
      for (const i of [0, 1]) {
        people.push(new Participant({ name: `pub${i}-${room}`, room, url: urlOf(i), window: 8 }));
        people.push(new Participant({ name: `read${i}-${room}`, room, url: urlOf(i) }));
      }
    }
    const pubs = people.filter((p) => p.opts.name.startsWith("pub"));
    const inRooms = (rs: string[]) => people.filter((p) => rs.includes(p.opts.room));
    const acks = (ps: Participant[]) => ps.reduce((n, p) => n + p.acked.size, 0);
    const refusals = (ps: Participant[]) => ps.reduce((n, p) => n + p.refusals, 0);
    const figures: string[] = [];
    const audits: Participant[] = [];
    try {
      for (const p of people) await p.start();
      for (const p of pubs) p.publish();
      for (let round = 0; round < FAILOVER_ROUNDS; round++) {
        const byMaster = [...await roomsByMaster(cluster, rooms)];
        const [victim, hit] = byMaster[round % byMaster.length];
        const others = rooms.filter((r) => !hit.includes(r));
        // Kill at a moment that varies from round to round, while messages are in flight.
        const target = acks(pubs) + 100 + Math.floor(Math.random() * 200);
        await until(() => acks(pubs) >= target, `round ${round}: acks before the kill`);
        const [refusedHit, ackedOthers] = [refusals(inRooms(hit)), acks(inRooms(others))];
        await cluster.kill(victim);
        const killedAt = Date.now();
        const replica = await promoted(cluster, hit[0], victim);
        const promotedMs = Date.now() - killedAt;
        const refusedDuring = refusals(inRooms(hit)) - refusedHit;
        const othersDuring = acks(inRooms(others)) - ackedOthers;
        assert.ok(refusedDuring > 0, `round ${round}: sends to ${hit} were answered unavailable`);
        // The killed node comes back (empty) and rejoins as the new master's replica.
        await cluster.restart(victim);
        await rejoined(victim, replica);
        const rejoinedMs = Date.now() - killedAt;
        const again = acks(inRooms(hit));
        await until(() => acks(inRooms(hit)) >= again + 20, `round ${round}: sends to ${hit} go on`);
        figures.push(
          `round ${round}: master :${victim} (${
            hit.join(", ")
          }) killed; replica :${replica} promoted after ` +
            `${promotedMs} ms, ${refusedDuring} sends to its rooms answered unavailable meanwhile, ` +
            `${othersDuring} acks in the other rooms; :${victim} back as its replica after ${rejoinedMs} ms, ` +
            `acks again after ${Date.now() - killedAt} ms`,
        );
      }
      for (const p of pubs) p.stopPublishing();
      for (const p of pubs) await p.drained(30_000);
      let messages = 0;
      for (const room of rooms) {
        const here = inRooms([room]);
        const last = Math.max(...here.flatMap((p) => [...p.acked.values()]));
        for (const p of here) await p.reached(last);
        const audit = await historyOf(room, urlOf(0));
        audits.push(audit);
        assert.equal(audit.lastSeq, last, `${room}: nothing after the last ack`);
        checkRoom(audit.messages, here);
        messages += last;
      }
      for (const p of people) {
        assert.equal(p.reconnects, 0, `${p.opts.name} kept its socket`);
        assert.deepEqual([...p.refusedWith.keys()].filter((c) => c !== "unavailable"), [], p.opts.name);
      }
      console.log(
        `${FAILOVER_ROUNDS} kill-and-promote rounds in ${Math.round((Date.now() - startedAt) / 1000)} s: ` +
          `${messages} messages in ${rooms.length} rooms, ${
            acks(pubs)
          } acked, every one present once after ` +
          `the failovers, seqs gap-free and never reused; ${refusals(pubs)} sends answered unavailable ` +
          `and sent again; no socket lost`,
      );
    } finally {
      console.log(figures.join("\n"));
      for (const p of [...people, ...audits]) await p.close();
      for (const s of srvs) await s.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

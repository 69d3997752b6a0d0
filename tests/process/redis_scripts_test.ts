/**
 * The Redis engine's Lua scripts: files of their own that take every value as an argument, and run
 * by SHA on one Redis and on a Cluster, including after Redis forgot them (SCRIPT FLUSH: the NOSCRIPT
 * path). Each Redis test runs its own redis-server processes (stopped by PID).
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createClient } from "@redis/client";
import { conversationId } from "../../lib/engine.ts";
import { RedisEngine } from "../../lib/engine_redis.ts";
import { createLogger } from "../../lib/log.ts";
import { loadScripts, SCRIPTS_DIR } from "../../lib/redis/scripts.ts";
import { StoreError } from "../../lib/store.ts";
import { commandCalls, redisMissing, startCluster, startRedis } from "../helpers/redis.ts";

const missing = redisMissing();
if (missing) console.log(`redis script tests skipped: ${missing}`);

Deno.test("loadScripts() reads every .lua file of lib/redis/lua: a header each, no text spliced in", async () => {
  const scripts = Object.values(await loadScripts());
  assert.equal(scripts.length, 28);
  const files = [...Deno.readDirSync(SCRIPTS_DIR)].map((e) => e.name).sort();
  assert.ok(files.every((f) => f.endsWith(".lua")), files.join(", "));
  for (const file of files) {
    const text = await Deno.readTextFile(new URL(file, SCRIPTS_DIR));
    assert.ok(!text.includes("${"), `${file} has a \${...} splice`);
    assert.ok(!/%[A-Z]+%/.test(text), `${file} has a %PLACEHOLDER%`);
    const header = text.slice(0, text.search(/^[^-]/m));
    if (!["quote.lua", "stored.lua"].includes(file)) { // libraries: put before the scripts that need them
      for (const part of ["KEYS:", "ARGV:", "Reply:"]) {
        assert.ok(header.includes(part), `${file}: no ${part}`);
      }
    }
    assert.ok(scripts.some((s) => s.text.includes(text)), `${file} is in no script`);
  }
  for (const s of scripts) assert.equal(s.sha, createHash("sha1").update(s.text).digest("hex"), s.name);
});

Deno.test("loadScripts() from a folder it cannot read fails with a sentence that names the folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      loadScripts(new URL(`file://${dir}/lua/`)),
      (e: Error) =>
        e instanceof StoreError && e.message.includes(`${dir}/lua/`) && /--allow-read/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Every kind of call the engine makes that runs a script; returns what a test compares. */
async function exercise(engine: RedisEngine, room: string, round: number) {
  const ts = Date.now();
  const [sent] = await engine.append([{
    room,
    from: "alice",
    text: `hi ${round}`,
    ts,
    key: "k-alice",
    cid: `c${round}`,
    mentions: [{ name: "bob", key: "k-bob" }],
  }]);
  const seq = sent.message.seq;
  const [again] = await engine.append([{
    room,
    from: "alice",
    text: "x",
    ts,
    key: "k-alice",
    cid: `c${round}`,
  }]);
  const [reply] = await engine.append([{ room, from: "bob", text: "re", ts, key: "k-bob", replyTo: seq }]);
  const edit = await engine.changeMessage(room, seq, {
    kind: "edit",
    text: `edited ${round}`,
    editedTs: ts + 1,
  }, {});
  const react = await engine.react(room, seq, "k-bob", "👍", true, {
    maxEmoji: 10,
    maxPerPerson: 3,
    maxTotal: 100,
  });
  const reactions = await engine.reactions(room, seq, seq, "k-bob");
  const read = await engine.markRead("k-carol", room, seq);
  const mentions = await engine.mentionCounts("k-bob", [{ room, after: seq - 1 }]);
  const rules = await engine.changeRoom(room, { kind: "rules", rules: { topic: `t${round}` } }, {
    ts,
    action: "rules",
    by: "mod",
  });
  await engine.changeRoom(room, { kind: "ban", uid: "carol", until: 0 }, { ts, action: "ban", by: "mod" });
  const access = await engine.access(room, "carol");
  const list = await engine.accessList(room);
  const audit = await engine.audit(room, Infinity, 1);
  const changes = await engine.changes(room, seq, 0, 10);
  await engine.sharing.presence(room, "alice", true);
  await engine.sharing.renamed("alice", "alice2");
  const members = await engine.sharing.members(room);
  await engine.sharing.presence(room, "alice2", false);
  const claimed = await engine.sharing.claimName("k-dave", `dave${round}`);
  await engine.rememberPerson({ key: "k-dave", uid: "u-dave", name: `dave${round}` });
  const found = await engine.findPerson(`dave${round}`);
  const people = await engine.people(["k-dave", "k-nobody"]);
  const conv = conversationId("k-alice", "k-bob");
  await engine.append([{
    room: conv,
    from: "alice",
    text: "psst",
    ts,
    key: "k-alice",
    between: ["k-alice", "k-bob"],
  }]);
  const convs = await engine.conversations("k-bob", Infinity, 10);
  const meta = await engine.after(room, 0, 1);
  return {
    stored: [
      sent.duplicate,
      again.duplicate,
      again.message.seq === seq,
      !reply.refused && reply.message.seq === seq + 1,
    ],
    edited: edit.ok && edit.message.text,
    react: react.ok && react.counts,
    reactions: reactions.get(seq)?.mine,
    read: read.moved && read.seq === seq,
    mentions: mentions[room],
    rules: rules.topic,
    access: access.ban,
    bans: list.bans.map((b) => b.uid),
    audit: audit[0].action,
    changed: changes.messages.filter((m) => m.seq === seq).map((m) => m.text),
    members,
    claimed,
    found: found?.uid,
    people: people.map((p) => p?.uid),
    convs: convs.map((c) => c.conv === conv),
    epoch: meta.epoch.length > 0,
  };
}

/** What {@link exercise} returns in round `round`. */
const expected = (round: number) => ({
  stored: [false, true, true, true],
  edited: `edited ${round}`,
  react: { "👍": 1 },
  reactions: ["👍"],
  read: true,
  mentions: 1,
  rules: `t${round}`,
  access: 0,
  bans: ["carol"],
  audit: "ban",
  changed: [`edited ${round}`],
  members: ["alice2"],
  claimed: true,
  found: "u-dave",
  people: ["u-dave", undefined],
  convs: [true],
  epoch: true,
});

/** Each node's calls per command, summed, and how many of the engine's scripts each node holds. */
async function nodes(ports: number[]) {
  const shas = Object.values(await loadScripts()).map((s) => s.sha);
  const clients = ports.map((port) => createClient({ url: `redis://127.0.0.1:${port}` }));
  for (const c of clients) c.on("error", () => {}), await c.connect();
  return {
    async calls(name: string): Promise<number> {
      let n = 0;
      for (const c of clients) n += (await commandCalls(c)).get(name) ?? 0;
      return n;
    },
    async cached(): Promise<number> {
      let n = 0;
      for (const c of clients) n += (await c.scriptExists(shas)).filter((x) => x === 1).length;
      return n;
    },
    async flush(): Promise<void> {
      for (const c of clients) await c.scriptFlush();
    },
    close: () => Promise.all(clients.map((c) => c.close())),
  };
}

/** Warm-up, then only EVALSHA; after SCRIPT FLUSH one EVAL per script (the NOSCRIPT path), same answers. */
async function runsBySha(url: string, ports: number[], rooms: string[]) {
  // Presence refreshes far apart: no timer sends a script while the test counts them.
  const engine = await RedisEngine.connect({
    url,
    retainMessages: 0,
    retainMs: 0,
    dedupWindowMs: 60_000,
    presenceTtlMs: 600_000,
    log: createLogger("error"),
  });
  const redis = await nodes(ports);
  try {
    for (const room of rooms) assert.deepEqual(await exercise(engine, room, 1), expected(1));
    const [eval1, sha1] = [await redis.calls("eval"), await redis.calls("evalsha")];
    for (const room of rooms) assert.deepEqual(await exercise(engine, room, 2), expected(2));
    assert.equal(await redis.calls("eval") - eval1, 0, "no EVAL after the warm-up");
    assert.ok(await redis.calls("evalsha") - sha1 >= 21 * rooms.length, "every script by its SHA");
    await redis.flush();
    assert.equal(await redis.cached(), 0);
    const eval2 = await redis.calls("eval");
    for (const room of rooms) assert.deepEqual(await exercise(engine, room, 3), expected(3));
    // Each script that ran went to Redis again once, as text, on each node that needed it.
    const cached = await redis.cached();
    assert.ok(cached >= 21, `${cached} scripts cached again`);
    assert.equal(await redis.calls("eval") - eval2, cached);
    const eval3 = await redis.calls("eval");
    for (const room of rooms) assert.deepEqual(await exercise(engine, room, 4), expected(4));
    assert.equal(await redis.calls("eval") - eval3, 0, "by SHA again");
  } finally {
    await redis.close();
    await engine.close();
  }
}

Deno.test({
  name: "RedisEngine runs its scripts by SHA, and after SCRIPT FLUSH sends each one again once",
  ignore: !!missing,
  fn: async () => {
    await using redis = await startRedis();
    await runsBySha(redis.url, [redis.port], ["r1"]);
  },
});

Deno.test({
  name: "RedisEngine on a Cluster runs its scripts by SHA on every node, and after SCRIPT FLUSH too",
  ignore: !!missing,
  fn: async () => {
    await using cluster = await startCluster();
    // Rooms whose keys land on different nodes.
    await runsBySha(cluster.url, cluster.ports, ["r0", "r1", "r2", "r3"]);
  },
});

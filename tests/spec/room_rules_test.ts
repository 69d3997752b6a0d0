/**
 * Room rules, people, the audit log and message deletes/edits: one specification run against every
 * engine (embedded on MemoryStore and SqliteStore; RedisEngine when TEST_REDIS_URL is set), then what
 * is particular to each store: a deleted text is gone from the SQLite file and from Redis, the schema
 * upgrade, and changes heard by another process on the same Redis.
 * @module
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { createClient } from "@redis/client";
import {
  type AuditEntry,
  DEFAULT_RULES,
  type Draft,
  type Engine,
  type EngineEvents,
  type RoomChange,
  type RoomRules,
} from "../../lib/engine.ts";
import { EmbeddedEngine } from "../../lib/engine_embedded.ts";
import type { ChatMessage } from "../../lib/protocol.ts";
import { SqliteStore } from "../../lib/store_sqlite.ts";
import { sharingOf } from "../../lib/app.ts";
import { connectRedisEngine, engineKinds } from "../helpers/engine_kinds.ts";
import { commandCalls, redisMissing, startRedis } from "../helpers/redis.ts";

const missing = redisMissing();

const kinds = engineKinds();

/** A room of its own per test: Redis runs are not flushed between tests. */
const newRoom = () => `r${crypto.randomUUID().slice(0, 8)}`;

const draft = (room: string, text: string, extra: Partial<Draft> = {}): Draft => ({
  room,
  from: "alice",
  text,
  ts: Date.now(),
  key: "k-alice",
  ...extra,
});

const entry = (action: string, extra: Partial<AuditEntry> = {}): AuditEntry => ({
  ts: Date.now(),
  action,
  by: "mod",
  ...extra,
});

/** Subscribes to `room` (watching it, for Redis) and records what the engine tells. */
async function listen(engine: Engine, room: string) {
  const got = {
    messages: [] as ChatMessage[],
    changed: [] as ChatMessage[],
    rooms: [] as { room: string; change: RoomChange; rules: RoomRules }[],
  };
  const events: EngineEvents = {
    message: (m) => got.messages.push(m),
    messageChanged: (m) => got.changed.push(m),
    roomChanged: (room, change, rules) => got.rooms.push({ room, change, rules }),
  };
  const unsubscribe = engine.subscribe(events);
  await sharingOf(engine)?.watch(room);
  return { got, unsubscribe };
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

for (const [kind, make] of kinds) {
  Deno.test(`${kind}: rules() and access() read the defaults when nothing is stored`, async () => {
    const u = await make({});
    const room = newRoom();
    assert.deepEqual(await u.engine.rules!(room), DEFAULT_RULES);
    assert.deepEqual(await u.engine.access!(room, "bob"), {
      exists: false,
      rules: DEFAULT_RULES,
      allowed: false,
    });
    assert.deepEqual(await u.engine.accessList!(room), { allowed: [], bans: [], mutes: [] });
    assert.deepEqual(await u.engine.audit!(room, Infinity, 10), []);
    await u.cleanup();
  });

  Deno.test(`${kind}.access() says a room exists once a message or a change was stored for it`, async () => {
    // Issue #18, item 13: with --create-rooms moderators, a name never used answers as a private room.
    const u = await make({});
    const [byMessage, byRules, byBan] = [newRoom(), newRoom(), newRoom()];
    for (const room of [byMessage, byRules, byBan]) {
      assert.equal((await u.engine.access!(room, "x")).exists, false);
    }
    await u.engine.append([draft(byMessage, "hi")]);
    await u.engine.changeRoom!(byRules, { kind: "rules", rules: {} }, entry("rules"));
    await u.engine.changeRoom!(byBan, { kind: "ban", uid: "bob", until: 0 }, entry("ban", { target: "bob" }));
    for (const room of [byMessage, byRules, byBan]) {
      assert.equal((await u.engine.access!(room, "x")).exists, true, room);
    }
    await u.cleanup();
  });

  Deno.test(`${kind}.changeRoom() applies partial rules, tells the subscriber and returns the rules`, async () => {
    const u = await make({});
    const room = newRoom();
    const { got, unsubscribe } = await listen(u.engine, room);
    const r1 = await u.engine.changeRoom!(
      room,
      { kind: "rules", rules: { topic: "hi", private: true } },
      entry("rules"),
    );
    assert.deepEqual(r1, { topic: "hi", private: true, readOnly: false, slowModeSeconds: 0 });
    const r2 = await u.engine.changeRoom!(
      room,
      { kind: "rules", rules: { readOnly: true, slowModeSeconds: 5 } },
      entry("rules"),
    );
    assert.deepEqual(r2, { topic: "hi", private: true, readOnly: true, slowModeSeconds: 5 });
    assert.deepEqual(await u.engine.rules!(room), r2);
    await until("two roomChanged", () => got.rooms.length === 2);
    assert.deepEqual(got.rooms[1], {
      room,
      change: { kind: "rules", rules: { readOnly: true, slowModeSeconds: 5 } },
      rules: r2,
    });
    await assert.rejects(
      u.engine.changeRoom!(room, { kind: "rules", rules: { slowModeSeconds: -1 } }, entry("rules")),
      TypeError,
    );
    await assert.rejects(
      u.engine.changeRoom!(room, { kind: "ban", uid: "", until: 0 }, entry("ban")),
      TypeError,
    );
    unsubscribe();
    await u.cleanup();
  });

  Deno.test(`${kind}: bans and mutes hold until their time or forever, and expired ones read as absent`, async () => {
    const u = await make({});
    const room = newRoom();
    const e = u.engine;
    const soon = Date.now() + 300, later = Date.now() + 3_600_000;
    await e.changeRoom!(room, { kind: "ban", uid: "bob", until: 0 }, entry("ban", { target: "bob" }));
    await e.changeRoom!(room, { kind: "ban", uid: "carol", until: soon }, entry("ban", { target: "carol" }));
    await e.changeRoom!(room, { kind: "mute", uid: "dave", until: later }, entry("mute", { target: "dave" }));
    await e.changeRoom!(room, { kind: "allow", uid: "erin" }, entry("allow", { target: "erin" }));
    const stored = { exists: true, rules: DEFAULT_RULES };
    assert.deepEqual(await e.access!(room, "bob"), { ...stored, allowed: false, ban: 0 });
    assert.equal((await e.access!(room, "carol")).ban, soon);
    assert.deepEqual(await e.access!(room, "dave"), { ...stored, allowed: false, mute: later });
    assert.deepEqual(await e.access!(room, "erin"), { ...stored, allowed: true });
    assert.deepEqual(await e.accessList!(room), {
      allowed: ["erin"],
      bans: [{ uid: "bob", until: 0 }, { uid: "carol", until: soon }],
      mutes: [{ uid: "dave", until: later }],
    });
    await new Promise((r) => setTimeout(r, soon - Date.now() + 20));
    assert.equal((await e.access!(room, "carol")).ban, undefined, "expired");
    assert.deepEqual((await e.accessList!(room)).bans, [{ uid: "bob", until: 0 }]);
    await e.prune(Date.now()); // forgets expired ones where the store does it then
    assert.equal((await e.access!(room, "bob")).ban, 0, "a ban forever stays");
    await e.changeRoom!(room, { kind: "unban", uid: "bob" }, entry("unban", { target: "bob" }));
    await e.changeRoom!(room, { kind: "unmute", uid: "dave" }, entry("unmute", { target: "dave" }));
    await e.changeRoom!(room, { kind: "disallow", uid: "erin" }, entry("disallow", { target: "erin" }));
    assert.deepEqual(await e.accessList!(room), { allowed: [], bans: [], mutes: [] });
    assert.deepEqual(await e.access!(room, "bob"), { ...stored, allowed: false });
    await u.cleanup();
  });

  Deno.test(`${kind}.changeMessage() delete leaves a tombstone in history, seq kept, and tells the subscriber`, async () => {
    const u = await make({});
    const room = newRoom();
    const { got, unsubscribe } = await listen(u.engine, room);
    await u.engine.append([draft(room, "one"), draft(room, "two", { cid: "c2" }), draft(room, "three")]);
    await until("three messages", () => got.messages.length === 3);
    const res = await u.engine.changeMessage!(
      room,
      2,
      { kind: "delete", by: "mod" },
      {},
      entry("delete", { seq: 2 }),
    );
    assert.ok(res.ok);
    const ts = got.messages[1].ts;
    const tomb = { room, seq: 2, from: "alice", ts, text: "", deleted: true };
    assert.deepEqual(res.message, tomb);
    assert.deepEqual((await u.engine.after(room, 0, 10)).messages.map((m) => m.text), ["one", "", "three"]);
    assert.deepEqual((await u.engine.after(room, 1, 1)).messages[0], tomb);
    assert.deepEqual((await u.engine.before(room, 3, 1)).messages[0], tomb);
    await until("messageChanged", () => got.changed.length === 1);
    assert.deepEqual(got.changed[0], tomb);
    // The next message still gets the next seq: the tombstone holds its place.
    const [next] = await u.engine.append([draft(room, "four")]);
    assert.equal(next.message.seq, 4);
    unsubscribe();
    await u.cleanup();
  });

  Deno.test(`${kind}.changeMessage() edit puts the new text and editedTs in history`, async () => {
    const u = await make({});
    const room = newRoom();
    const { got, unsubscribe } = await listen(u.engine, room);
    await u.engine.append([draft(room, "helo", { cid: "c1" })]);
    const res = await u.engine.changeMessage!(room, 1, { kind: "edit", text: "hello", editedTs: 12345 }, {
      authorKey: "k-alice",
    });
    assert.ok(res.ok);
    assert.equal(res.message.text, "hello");
    assert.equal(res.message.editedTs, 12345);
    const [m] = (await u.engine.after(room, 0, 10)).messages;
    assert.deepEqual({ text: m.text, editedTs: m.editedTs, cid: m.cid }, {
      text: "hello",
      editedTs: 12345,
      cid: "c1",
    });
    await until("messageChanged", () => got.changed.length === 1);
    assert.equal(got.changed[0].text, "hello");
    // Edited twice: the newest text.
    await u.engine.changeMessage!(room, 1, { kind: "edit", text: "hello!", editedTs: 12346 }, {});
    assert.equal((await u.engine.before(room, 2, 1)).messages[0].text, "hello!");
    unsubscribe();
    await u.cleanup();
  });

  Deno.test(`${kind}.changeMessage() honours the guard: not_author, too_old, not_found`, async () => {
    const u = await make({});
    const room = newRoom();
    const e = u.engine;
    const t0 = Date.now();
    await e.append([draft(room, "old", { ts: t0 - 10_000 }), draft(room, "new", { ts: t0 })]);
    const edit = { kind: "edit", text: "x", editedTs: t0 } as const;
    assert.deepEqual(await e.changeMessage!(room, 2, edit, { authorKey: "k-bob" }), {
      ok: false,
      problem: "not_author",
    });
    assert.deepEqual(await e.changeMessage!(room, 1, edit, { authorKey: "k-alice", sentSince: t0 - 5000 }), {
      ok: false,
      problem: "too_old",
    });
    assert.deepEqual(await e.changeMessage!(room, 99, edit, {}), { ok: false, problem: "not_found" });
    assert.deepEqual(await e.changeMessage!(newRoom(), 1, edit, {}), { ok: false, problem: "not_found" });
    assert.ok(
      (await e.changeMessage!(room, 2, { kind: "delete", by: "alice" }, { authorKey: "k-alice" })).ok,
    );
    const del = { kind: "delete", by: "mod" } as const;
    assert.deepEqual(await e.changeMessage!(room, 2, del, {}), { ok: false, problem: "not_found" }, "twice");
    assert.deepEqual(
      await e.changeMessage!(room, 2, edit, {}),
      { ok: false, problem: "not_found" },
      "a tombstone",
    );
    // Nothing refused was changed.
    assert.equal((await e.after(room, 0, 1)).messages[0].text, "old");
    assert.deepEqual(await e.audit!(room, Infinity, 10), [], "no audit entry was given");
    await u.cleanup();
  });

  Deno.test(`${kind}: a repeated cid resolves to the message as it is now, edited or deleted`, async () => {
    const u = await make({});
    const room = newRoom();
    const e = u.engine;
    await e.append([draft(room, "a", { cid: "ca" }), draft(room, "b", { cid: "cb" })]);
    await e.changeMessage!(room, 1, { kind: "edit", text: "a2", editedTs: 7 }, {});
    await e.changeMessage!(room, 2, { kind: "delete", by: "mod" }, {});
    const again = await e.append([draft(room, "a", { cid: "ca" }), draft(room, "b", { cid: "cb" })]);
    assert.deepEqual(again.map((r) => r.duplicate), [true, true]);
    assert.equal(again[0].message.seq, 1);
    assert.equal(again[0].message.text, "a2");
    assert.equal(again[0].message.editedTs, 7);
    assert.equal(again[1].message.seq, 2);
    assert.equal(again[1].message.deleted, true);
    assert.equal(again[1].message.text, "");
    assert.equal((await e.after(room, 0, 10)).messages.length, 2, "nothing new stored");
    await u.cleanup();
  });

  Deno.test(`${kind}.audit() reads newest first, pages by ts, and keeps auditRetain entries per room`, async () => {
    const u = await make({ auditRetain: 5 });
    const room = newRoom();
    const e = u.engine;
    for (let i = 1; i <= 7; i++) {
      await e.changeRoom!(room, { kind: "mute", uid: `u${i}`, until: 0 }, {
        ts: 1000 + i,
        action: "mute",
        by: "mod",
        target: `u${i}`,
        reason: `spam ${i}`,
        until: 0,
      });
    }
    await e.append([draft(room, "x")]);
    await e.changeMessage!(room, 1, { kind: "delete", by: "mod" }, {}, {
      ts: 2000,
      action: "delete",
      by: "mod",
      seq: 1,
    });
    const all = await e.audit!(room, Infinity, 100);
    assert.deepEqual(all.map((a) => a.ts), [2000, 1007, 1006, 1005, 1004], "the newest 5");
    assert.deepEqual(all[0], { ts: 2000, action: "delete", by: "mod", seq: 1 });
    assert.deepEqual(all[1], {
      ts: 1007,
      action: "mute",
      by: "mod",
      target: "u7",
      reason: "spam 7",
      until: 0,
    });
    assert.deepEqual((await e.audit!(room, 1006, 2)).map((a) => a.ts), [1005, 1004]);
    assert.deepEqual(await e.audit!(newRoom(), Infinity, 10), [], "per room");
    await u.cleanup();
  });

  Deno.test(`${kind}: count retention keeps tombstones in line, and a pruned seq is not_found`, async () => {
    const u = await make({ retainMessages: 3 });
    const room = newRoom();
    const e = u.engine;
    await e.append([1, 2, 3].map((i) => draft(room, `m${i}`)));
    await e.changeMessage!(room, 2, { kind: "delete", by: "mod" }, {});
    await e.append([4, 5].map((i) => draft(room, `m${i}`)));
    await e.prune(Date.now());
    assert.deepEqual((await e.after(room, 0, 10)).messages.map((m) => m.seq), [3, 4, 5]);
    assert.deepEqual(await e.changeMessage!(room, 2, { kind: "edit", text: "y", editedTs: 1 }, {}), {
      ok: false,
      problem: "not_found",
    });
    await e.changeMessage!(room, 4, { kind: "delete", by: "mod" }, {});
    await e.append([draft(room, "m6")]);
    await e.prune(Date.now());
    const left = (await e.after(room, 0, 10)).messages;
    assert.deepEqual(left.map((m) => [m.seq, m.text]), [[4, ""], [5, "m5"], [6, "m6"]]);
    await u.cleanup();
  });

  if (kind !== "MemoryStore") {
    Deno.test(`${kind}: rules, people, tombstones, edits and the audit log survive a restart`, async () => {
      const u = await make({});
      const room = newRoom();
      let e = u.engine;
      await e.append([draft(room, "a"), draft(room, "b", { cid: "cb" })]);
      await e.changeMessage!(room, 1, { kind: "delete", by: "mod" }, {}, entry("delete", { seq: 1, ts: 5 }));
      await e.changeMessage!(room, 2, { kind: "edit", text: "b2", editedTs: 9 }, {});
      await e.changeRoom!(
        room,
        { kind: "rules", rules: { topic: "t", readOnly: true } },
        entry("rules", { ts: 6 }),
      );
      await e.changeRoom!(
        room,
        { kind: "ban", uid: "bob", until: 0 },
        entry("ban", { ts: 7, target: "bob" }),
      );
      await e.changeRoom!(room, { kind: "allow", uid: "erin" }, entry("allow", { ts: 8, target: "erin" }));
      e = await u.reopen!();
      const msgs = (await e.after(room, 0, 10)).messages;
      assert.deepEqual(msgs.map((m) => [m.seq, m.text, m.deleted ?? false, m.editedTs]), [
        [1, "", true, undefined],
        [2, "b2", false, 9],
      ]);
      assert.deepEqual(await e.access!(room, "bob"), {
        exists: true,
        rules: { topic: "t", private: false, readOnly: true, slowModeSeconds: 0 },
        allowed: false,
        ban: 0,
      });
      assert.equal((await e.access!(room, "erin")).allowed, true);
      assert.deepEqual((await e.audit!(room, Infinity, 10)).map((a) => a.action), [
        "allow",
        "ban",
        "rules",
        "delete",
      ]);
      const [dup] = await e.append([draft(room, "b", { cid: "cb" })]);
      assert.deepEqual([dup.duplicate, dup.message.text], [true, "b2"]);
      await u.cleanup();
    });
  }
}

/** Every occurrence of `marker` in the SQLite files of `dir` (database and WAL). */
async function filesHolding(dir: string, marker: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of ["chat.db", "chat.db-wal"]) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(`${dir}/${name}`);
    } catch {
      continue;
    }
    if (new TextDecoder("latin1").decode(bytes).includes(marker)) out.push(name);
  }
  return out;
}

Deno.test("SqliteStore: a deleted message's text is in neither the database file nor its WAL, nor in a reply's quote", async () => {
  const dir = await Deno.makeTempDir();
  const store = await SqliteStore.open(dir, { retainMessages: 0, retainMs: 0, durability: "normal" });
  const engine = new EmbeddedEngine(store, { dedupWindowMs: 60_000 });
  const marker = `MARKER-${crypto.randomUUID()}`;
  const long = `LONG-${crypto.randomUUID()}`;
  await engine.append([
    draft("r", "before"),
    draft("r", `secret ${marker} text`),
    // Longer than a page: it lives on overflow pages, which the delete frees.
    draft("r", `${long} ${"x".repeat(9000)} ${long}`),
    draft("r", "after"),
    draft("r", "re", { replyTo: 2 }), // its quote holds the marker too
  ]);
  assert.deepEqual(await filesHolding(dir, marker), ["chat.db-wal"], "the check finds text that is there");
  assert.ok((await engine.changeMessage!("r", 2, { kind: "delete", by: "mod" }, {})).ok);
  assert.ok((await engine.changeMessage!("r", 3, { kind: "delete", by: "mod" }, {})).ok);
  assert.deepEqual(await filesHolding(dir, marker), []);
  assert.deepEqual(await filesHolding(dir, long), []);
  await engine.close();
  assert.deepEqual(await filesHolding(dir, marker), [], "nor after close");
  const reopened = new EmbeddedEngine(
    await SqliteStore.open(dir, { retainMessages: 0, retainMs: 0, durability: "normal" }),
    { dedupWindowMs: 60_000 },
  );
  const page = (await reopened.after("r", 0, 10)).messages;
  assert.deepEqual(page.map((m) => m.text), ["before", "", "", "after", "re"]);
  assert.deepEqual(page[4].replyTo, { seq: 2, from: "alice", text: "", deleted: true });
  await reopened.close();
  await Deno.remove(dir, { recursive: true });
});

/** The version-1 schema, as the server before #10 created it. */
const SCHEMA_V1 = `
CREATE TABLE rooms (room TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE messages (
  room TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, sender TEXT NOT NULL,
  text TEXT NOT NULL, ukey TEXT NOT NULL, cid TEXT,
  PRIMARY KEY (room, seq)
) WITHOUT ROWID;
CREATE INDEX messages_cid ON messages (ukey, cid) WHERE cid IS NOT NULL;
CREATE INDEX messages_ts ON messages (ts);
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
PRAGMA user_version = 1;
`;

Deno.test("SqliteStore.open() upgrades a version-1 file in place (through every version), keeping its history and epoch", async () => {
  const dir = await Deno.makeTempDir();
  const old = new DatabaseSync(`${dir}/chat.db`);
  old.exec("PRAGMA journal_mode = WAL");
  old.exec(SCHEMA_V1);
  old.exec(`INSERT INTO meta VALUES ('epoch', 'old-epoch');
    INSERT INTO rooms VALUES ('r', 2);
    INSERT INTO messages VALUES ('r', 1, 1000, 'alice', 'one', 'k-alice', 'c1'), ('r', 2, 1001, 'bob', 'two', 'k-bob', NULL);`);
  old.close();
  const store = await SqliteStore.open(dir, { retainMessages: 0, retainMs: 0, durability: "normal" });
  assert.equal(store.epoch, "old-epoch");
  assert.deepEqual(store.after("r", 0, 10), [
    { room: "r", seq: 1, from: "alice", text: "one", ts: 1000, cid: "c1" },
    { room: "r", seq: 2, from: "bob", text: "two", ts: 1001 },
  ]);
  const engine = new EmbeddedEngine(store, { dedupWindowMs: 0 });
  assert.ok(
    (await engine.changeMessage!("r", 1, { kind: "delete", by: "mod" }, { authorKey: "k-alice" })).ok,
  );
  await engine.changeRoom!("r", { kind: "ban", uid: "bob", until: 0 }, entry("ban", { target: "bob" }));
  assert.equal((await engine.access!("r", "bob")).ban, 0);
  assert.equal((await engine.append([draft("r", "three")]))[0].message.seq, 3);
  await engine.close();
  const db = new DatabaseSync(`${dir}/chat.db`);
  assert.equal((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version, 5);
  db.close();
  // Opened again: already the current version, nothing to upgrade.
  const again = await SqliteStore.open(dir, { retainMessages: 0, retainMs: 0, durability: "normal" });
  assert.deepEqual(again.after("r", 0, 10).map((m) => m.deleted ?? false), [true, false, false]);
  await again.close();
  await Deno.remove(dir, { recursive: true });
});

/** Every key of `room` whose DUMP (uncompressed) holds `marker`, on the Redis at `port`. */
async function redisKeysHolding(port: number, room: string, marker: string): Promise<string[]> {
  const c = createClient({ url: `redis://127.0.0.1:${port}` });
  await c.connect();
  try {
    // DUMP compresses long strings (LZF); the marker is only searchable uncompressed.
    await c.configSet("rdbcompression", "no");
    const found: string[] = [];
    for (const key of await c.keys(`chat:{${room}}*`)) {
      if ((await rawDump(port, key)).includes(marker)) found.push(key);
    }
    return found;
  } finally {
    await c.close();
  }
}

/** DUMP of `key` as latin1 text, read whole over a raw connection. */
async function rawDump(port: number, key: string): Promise<string> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const enc = new TextEncoder();
  await conn.write(enc.encode(`*2\r\n$4\r\nDUMP\r\n$${enc.encode(key).length}\r\n${key}\r\n`));
  const chunks: Uint8Array[] = [];
  let text = "";
  for (;;) {
    const buf = new Uint8Array(65536);
    const n = await conn.read(buf);
    if (n === null) break;
    chunks.push(buf.subarray(0, n));
    text = new TextDecoder("latin1").decode(new Uint8Array(chunks.flatMap((c) => [...c])));
    const m = /^\$(-?\d+)\r\n/.exec(text);
    if (m && (Number(m[1]) < 0 || text.length >= m[0].length + Number(m[1]) + 2)) break;
  }
  return text;
}

Deno.test({
  name:
    "RedisEngine: a deleted message's text is in no key of its room (DUMP), nor an edited one's old text, nor in a reply's quote",
  ignore: !!missing,
  fn: async () => {
    await using redis = await startRedis();
    const engine = await connectRedisEngine(redis.url);
    const room = newRoom();
    const marker = `MARKER-${crypto.randomUUID()}`;
    const typo = `TYPO-${crypto.randomUUID()}`;
    // Deep in the stream: many stream nodes before the target, and after it.
    await engine.append(Array.from({ length: 500 }, (_, i) => draft(room, `before ${i}`)));
    await engine.append([
      draft(room, `secret ${marker}`, { cid: "c1" }),
      draft(room, typo),
      // Replies quote both: the quotes go with the texts.
      draft(room, "re secret", { replyTo: 501 }),
      draft(room, "re typo", { replyTo: 502 }),
      ...Array.from({ length: 300 }, (_, i) => draft(room, `after ${i}`)),
    ]);
    // In its text bucket (lib/redis/lua/stored.lua): the one key that holds it.
    assert.equal((await redisKeysHolding(redis.port, room, marker)).length, 1, "the check sees it");
    assert.ok((await engine.changeMessage!(room, 501, { kind: "delete", by: "mod" }, {})).ok);
    assert.ok((await engine.changeMessage!(room, 502, { kind: "edit", text: "fixed", editedTs: 1 }, {})).ok);
    assert.deepEqual(await redisKeysHolding(redis.port, room, marker), []);
    assert.deepEqual(await redisKeysHolding(redis.port, room, typo), []);
    const page = await engine.after(room, 0, 1000);
    const texts = [
      ...Array.from({ length: 500 }, (_, i) => `before ${i}`),
      "",
      "fixed",
      "re secret",
      "re typo",
      ...Array.from({ length: 300 }, (_, i) => `after ${i}`),
    ];
    assert.deepEqual(page.messages.map((m) => m.text), texts, "every other message is still there, in order");
    assert.deepEqual(page.messages.map((m) => m.seq), Array.from({ length: 804 }, (_, i) => i + 1));
    assert.deepEqual(page.messages.slice(502, 504).map((m) => m.replyTo), [
      { seq: 501, from: "alice", text: "", deleted: true },
      { seq: 502, from: "alice", text: "fixed" },
    ]);
    // The first message, and the last: the window reaches the start and the end of the stream.
    assert.ok((await engine.changeMessage!(room, 1, { kind: "delete", by: "mod" }, {})).ok);
    assert.ok((await engine.changeMessage!(room, 804, { kind: "edit", text: "end", editedTs: 2 }, {})).ok);
    const again = (await engine.after(room, 0, 1000)).messages;
    assert.deepEqual([again.length, again[0].deleted, again[803].text], [804, true, "end"]);
    assert.equal((await engine.append([draft(room, "next")]))[0].message.seq, 805);
    await engine.close();
  },
});

Deno.test({
  name:
    "RedisEngine: age retention of a room nobody writes to leaves an aged message's text in no key of the room",
  ignore: !!missing,
  fn: async () => {
    await using redis = await startRedis();
    const engine = await connectRedisEngine(redis.url, { retainMs: 2000 });
    const room = newRoom();
    const marker = `AGED-${crypto.randomUUID()}`;
    // Young enough when stored (so the append does not age it), too old at the prune below.
    await engine.append([
      draft(room, `old ${marker}`, { ts: Date.now() - 1500 }),
      draft(room, `@bob ${marker}`, { ts: Date.now() - 1500, mentions: [{ key: "k-bob", name: "bob" }] }),
      draft(room, "young"),
    ]);
    assert.equal((await redisKeysHolding(redis.port, room, marker)).length, 1, "the check sees it");
    await new Promise((r) => setTimeout(r, 800));
    await engine.prune(Date.now());
    assert.deepEqual((await engine.after(room, 0, 10)).messages.map((m) => m.text), ["young"]);
    assert.deepEqual(await redisKeysHolding(redis.port, room, marker), []);
    await engine.close();
  },
});

Deno.test({
  name: "RedisEngine: a delete, an edit and a ban on one process reach another process's subscriber",
  ignore: !!missing,
  fn: async () => {
    await using redis = await startRedis();
    const a = await connectRedisEngine(redis.url);
    const b = await connectRedisEngine(redis.url);
    const c = await connectRedisEngine(redis.url);
    try {
      const room = newRoom();
      const heard = await listen(b, room);
      const elsewhere = await listen(c, newRoom()); // watches another room only
      await a.append([draft(room, "one"), draft(room, "two")]);
      await until("two messages on b", () => heard.got.messages.length === 2);
      await a.changeMessage!(room, 1, { kind: "delete", by: "mod" }, {});
      await a.changeMessage!(room, 2, { kind: "edit", text: "two!", editedTs: 42 }, {});
      await a.changeRoom!(room, { kind: "ban", uid: "bob", until: 0 }, entry("ban", { target: "bob" }));
      await until("changes on b", () => heard.got.changed.length === 2 && heard.got.rooms.length === 1);
      assert.deepEqual(heard.got.changed[0], {
        room,
        seq: 1,
        from: "alice",
        ts: heard.got.messages[0].ts,
        text: "",
        deleted: true,
      });
      assert.deepEqual([heard.got.changed[1].text, heard.got.changed[1].editedTs], ["two!", 42]);
      assert.deepEqual(heard.got.rooms[0], {
        room,
        change: { kind: "ban", uid: "bob", until: 0 },
        rules: DEFAULT_RULES,
      });
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(
        elsewhere.got.changed.length + elsewhere.got.rooms.length,
        0,
        "only the room's watchers hear",
      );
      heard.unsubscribe();
      elsewhere.unsubscribe();
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  },
});

Deno.test({
  name:
    "RedisEngine.append() runs one XADD per message and one publish per room; a lone message still arrives",
  ignore: !!missing,
  fn: async () => {
    await using redis = await startRedis();
    const engine = await connectRedisEngine(redis.url);
    const room = newRoom();
    const { got, unsubscribe } = await listen(engine, room);
    const c = createClient({ url: redis.url });
    c.on("error", () => {});
    await c.connect();
    const calls = () => commandCalls(c);
    await engine.append([draft(room, "warm")]); // the room's meta is made once
    await until("the first message", () => got.messages.length === 1);
    const sub = c.duplicate();
    sub.on("error", () => {});
    await sub.connect();
    const lines: string[] = [];
    await sub.subscribe(`chat:{${room}}`, (line) => lines.push(line));
    const before = await calls();
    const n = 20;
    const res = await engine.append(
      Array.from({ length: n }, (_, i) =>
        // Odd: JSON escapes something (the process encodes it); even: nothing (the script puts it together).
        draft(room, i % 2 ? `m${i} "q" \\ \t \ud800` : `m${i} é 😀 \u2028 \ud800`, {
          cid: `c${i}`,
          ...(i === 3 ? { mentions: [{ name: "bob", key: "k-bob" }] } : {}),
          ...(i === 4 ? { replyTo: 2 } : {}),
        })),
    );
    const after = await calls();
    const grew = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    // One script, by its SHA (the text went to Redis once, with the warm-up message).
    assert.deepEqual(
      [grew("evalsha"), grew("eval"), grew("xadd"), grew("publish"), grew("set"), grew("get")],
      [
        1,
        0,
        n,
        1,
        0,
        0,
      ],
    );
    // Everything else is per room and group (the meta, the cid buckets, the text bucket, the read
    // positions) or per reply (the message it answers).
    const perMessage = [...after.keys()].filter((k) => !["xadd", "info"].includes(k) && grew(k) >= n / 2);
    assert.deepEqual(perMessage, [], "no other command per message");
    await until("the group", () => got.messages.length === n + 1);
    // One line, an object: a process of an older version (which reads an array as one message) drops it.
    assert.equal(lines.length, 1);
    assert.deepEqual(Object.keys(JSON.parse(lines[0])), ["e", "m"]);
    // What the channel carried is what the stream holds (a lone surrogate is U+FFFD in both).
    const stored = (await engine.after(room, 1, 100)).messages;
    assert.deepEqual(got.messages.slice(1), stored);
    assert.deepEqual([stored[0].text, stored[1].text], ["m0 é 😀 \u2028 \ufffd", 'm1 "q" \\ \t \ufffd']);
    assert.deepEqual([stored[3].mentions, stored[4].replyTo?.seq], [["bob"], 2]);
    assert.deepEqual(res.map((r) => r.message.seq), stored.map((m) => m.seq));
    // An older process publishes each message alone: still delivered, in order.
    const epoch = (await engine.after(room, 0, 1)).epoch;
    await c.publish(
      `chat:{${room}}`,
      JSON.stringify([n + 2, "bob", "alone", Date.now(), "x", epoch, "", ""]),
    );
    await until("the lone message", () => got.messages.length === n + 2);
    assert.deepEqual(got.messages.at(-1)!.text, "alone");
    unsubscribe();
    await sub.close();
    await c.close();
    await engine.close();
  },
});

Deno.test({
  name: "RedisEngine.access() is one Redis command (a script), and how long it takes next to a GET",
  ignore: !!missing,
  fn: async () => {
    await using redis = await startRedis();
    const engine = await connectRedisEngine(redis.url);
    const room = newRoom();
    await engine.changeRoom!(room, { kind: "ban", uid: "bob", until: 0 }, entry("ban"));
    const c = createClient({ url: redis.url });
    c.on("error", () => {});
    await c.connect();
    const calls = () => commandCalls(c);
    await engine.access!(room, "bob"); // the script's text goes to Redis once (EVAL), then its SHA
    const before = await calls();
    await engine.access!(room, "bob");
    const after = await calls();
    const ran = [...after].filter(([name, n]) => name !== "info" && n !== (before.get(name) ?? 0));
    assert.equal((after.get("evalsha") ?? 0) - (before.get("evalsha") ?? 0), 1, "one script per access()");
    // `hexists` and `exists`: whether the room was ever made (a message, or a change such as this ban).
    assert.deepEqual(ran.map(([name]) => name).sort(), [
      "evalsha",
      "exists",
      "hexists",
      "hget",
      "hmget",
      "sismember",
    ]);
    const n = 500;
    let t = performance.now();
    for (let i = 0; i < n; i++) await engine.access!(room, "bob");
    const access = (performance.now() - t) / n * 1000;
    await c.set("plain", "x");
    t = performance.now();
    for (let i = 0; i < n; i++) await c.get("plain");
    const get = (performance.now() - t) / n * 1000;
    console.log(`access() ${access.toFixed(0)} µs, GET ${get.toFixed(0)} µs (mean of ${n}, loopback)`);
    await c.close();
    await engine.close();
  },
});

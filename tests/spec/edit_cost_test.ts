/**
 * What an edit or a delete costs (#18, item 6): it writes the message it changes and nothing else,
 * whatever the message's age and the room's size, and the embedded engine writes the changes of a
 * moment together, as it does sends. Before, a change of an old message rewrote every later entry of
 * the room's Redis stream and every later SQLite row's reply quote, one transaction per change: each
 * test here failed then. No timing is asserted: what is written is counted.
 * @module
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { createClient } from "@redis/client";
import type { Draft, Engine } from "../../lib/engine.ts";
import { EmbeddedEngine } from "../../lib/engine_embedded.ts";
import { SqliteStore } from "../../lib/store_sqlite.ts";
import { connectRedisEngine } from "../helpers/engine_kinds.ts";
import { commandCalls, redisMissing, startRedis } from "../helpers/redis.ts";
import { faultyStore } from "../helpers/test_server.ts";

const missing = redisMissing();
/** Messages after the one changed; every fourth answers it. */
const LATER = 2000;

const draft = (room: string, text: string, extra: Partial<Draft> = {}): Draft => ({
  room,
  from: "guest",
  text,
  ts: Date.now(),
  key: "k-guest",
  ...extra,
});

/** Message 1 of `room`, then {@link LATER} messages, a quarter of them replies to it. */
async function oldMessage(engine: Engine, room: string): Promise<void> {
  await engine.append([draft(room, "first line\nsecond line")]);
  for (let done = 0; done < LATER; done += 500) {
    await engine.append(
      Array.from({ length: 500 }, (_, i) => draft(room, `later ${done + i}`, i % 4 ? {} : { replyTo: 1 })),
    );
  }
}

/** Edits message 1, then deletes it, and checks what the replies read (their quote follows it). */
async function editThenDelete(engine: Engine, room: string): Promise<void> {
  const edit = await engine.changeMessage(room, 1, { kind: "edit", text: "fixed\nmore", editedTs: 1 }, {});
  assert.ok(edit.ok);
  const reply = async () => (await engine.message(room, 2))?.replyTo;
  assert.deepEqual(await reply(), { seq: 1, from: "guest", text: "fixed" });
  assert.ok((await engine.changeMessage(room, 1, { kind: "delete", by: "mod" }, {})).ok);
  assert.deepEqual(await reply(), { seq: 1, from: "guest", text: "", deleted: true });
  const page = (await engine.after(room, 0, 10)).messages;
  assert.deepEqual(page.map((m) => m.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(page[5].replyTo, { seq: 1, from: "guest", text: "", deleted: true });
}

Deno.test({
  name:
    `RedisEngine.changeMessage() of a message with ${LATER} later ones writes none of them: no XADD, no XDEL`,
  ignore: !!missing,
  fn: async () => {
    await using redis = await startRedis();
    const engine = await connectRedisEngine(redis.url);
    const c = createClient({ url: redis.url });
    c.on("error", () => {});
    await c.connect();
    try {
      const room = `r${crypto.randomUUID().slice(0, 8)}`;
      await oldMessage(engine, room);
      const stream = () => c.sendCommand(["XINFO", "STREAM", `chat:{${room}}:log`]);
      const before = [await commandCalls(c), await stream()] as const;
      await editThenDelete(engine, room);
      const after = await commandCalls(c);
      const grew = (name: string) => (after.get(name) ?? 0) - (before[0].get(name) ?? 0);
      assert.deepEqual([grew("xadd"), grew("xdel"), grew("xsetid")], [0, 0, 0], "no stream entry written");
      // Not one entry added, deleted or moved: the stream is as it was, first entry included.
      assert.deepEqual(await stream(), before[1]);
    } finally {
      await c.close();
      await engine.close();
    }
  },
});

Deno.test(`SqliteStore: an edit and a delete of a message with ${LATER} later ones, replies among them, write its row only`, async () => {
  const dir = await Deno.makeTempDir();
  try {
    const engine = new EmbeddedEngine(
      await SqliteStore.open(dir, { retainMessages: 0, retainMs: 0, durability: "normal" }),
      { dedupWindowMs: 0 },
    );
    await oldMessage(engine, "r");
    const db = new DatabaseSync(`${dir}/chat.db`, { readOnly: true });
    const rows = () =>
      db.prepare("SELECT seq, text, meta, rev, edited_ts, deleted FROM messages WHERE seq > 1 ORDER BY seq")
        .all().map((r) => ({ ...r }));
    const before = rows();
    assert.equal(before.length, LATER);
    await editThenDelete(engine, "r");
    assert.deepEqual(rows(), before, "no later row was written");
    db.close();
    await engine.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("EmbeddedEngine.changeMessage(): the changes that arrive during a write go in one store write, before the sends after them", async () => {
  const disk = faultyStore();
  const engine = new EmbeddedEngine(disk.store, { dedupWindowMs: 0 });
  await engine.append([draft("r", "one")]);
  disk.hold(); // a slow disk: the next append waits
  const first = engine.append([draft("r", "two")]);
  const edits = Array.from(
    { length: 50 },
    (_, i) => engine.changeMessage("r", 1, { kind: "edit", text: `edit ${i}`, editedTs: i + 1 }, {}),
  );
  const deleted = engine.changeMessage("r", 2, { kind: "delete", by: "mod" }, {});
  const send = engine.append([draft("r", "three")]);
  disk.release();
  const results = await Promise.all([...edits, deleted]);
  assert.deepEqual(disk.changeWrites, [51], "one write for all of them");
  // Each in order, each with the room's next change revision, as one by one.
  assert.deepEqual(results.map((r) => r.ok && r.rev), Array.from({ length: 51 }, (_, i) => i + 1));
  assert.equal((await engine.message("r", 1))?.text, "edit 49");
  assert.equal((await engine.message("r", 2))?.deleted, true);
  assert.deepEqual([(await first)[0].message.seq, (await send)[0].message.seq], [2, 3]);
  // A change the group's earlier one made impossible is refused, not written.
  const again = [
    engine.changeMessage("r", 3, { kind: "delete", by: "mod" }, {}),
    engine.changeMessage("r", 3, { kind: "edit", text: "too late", editedTs: 99 }, {}),
  ];
  assert.deepEqual((await Promise.all(again)).map((r) => r.ok || r.problem), [true, "not_found"]);
  assert.deepEqual(disk.changeWrites, [51, 1]);
  await engine.close();
});

Deno.test("SqliteStore.open() upgrades version 3: a reply keeps only a reference while its message is stored", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const engine = new EmbeddedEngine(
      await SqliteStore.open(dir, { retainMessages: 0, retainMs: 0, durability: "normal" }),
      { dedupWindowMs: 0 },
    );
    await engine.append([draft("r", "kept"), draft("r", "re kept", { replyTo: 1 })]);
    await engine.close();
    // As version 3 stored them: the quote's text with the reply, and one whose message retention removed.
    // No search index yet (SQLite 3.53 leaves the table of its unindexed columns behind when it is
    // dropped, and only another connection may drop that).
    const index = new DatabaseSync(`${dir}/chat.db`);
    index.exec("DROP TABLE message_search");
    index.close();
    const db = new DatabaseSync(`${dir}/chat.db`);
    db.exec(`UPDATE messages SET meta = '{"replyTo":{"seq":1,"from":"guest","text":"kept"}}' WHERE seq = 2;
      INSERT INTO messages (room, seq, ts, sender, text, ukey, meta) VALUES ('r', 3, 1, 'guest', 're gone', 'k',
        '{"replyTo":{"seq":-5,"from":"old","text":"gone but quoted"}}');
      UPDATE rooms SET last_seq = 3 WHERE room = 'r';
      DROP TABLE message_search_content;
      ALTER TABLE messages DROP COLUMN sid;
      PRAGMA user_version = 3;`);
    db.close();
    const again = new EmbeddedEngine(
      await SqliteStore.open(dir, { retainMessages: 0, retainMs: 0, durability: "normal" }),
      { dedupWindowMs: 0 },
    );
    const check = new DatabaseSync(`${dir}/chat.db`, { readOnly: true });
    assert.deepEqual(
      check.prepare("SELECT meta FROM messages WHERE seq > 1 ORDER BY seq").all().map((r) => r.meta),
      [
        '{"replyTo":{"seq":1,"from":"guest"}}',
        '{"replyTo":{"seq":-5,"from":"old","text":"gone but quoted"}}',
      ],
    );
    check.close();
    assert.deepEqual((await again.after("r", 1, 10)).messages.map((m) => m.replyTo), [
      { seq: 1, from: "guest", text: "kept" },
      { seq: -5, from: "old", text: "gone but quoted" },
    ]);
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "RedisEngine reads and changes messages stored before the text buckets (their text in the stream)",
  ignore: !!missing,
  fn: async () => {
    await using redis = await startRedis();
    const c = createClient({ url: redis.url });
    c.on("error", () => {});
    await c.connect();
    const engine = await connectRedisEngine(redis.url);
    try {
      const room = `r${crypto.randomUUID().slice(0, 8)}`;
      const log = `chat:{${room}}:log`;
      // As the server before #18 stored them.
      await c.sendCommand([
        "XADD",
        log,
        "1-1",
        "f",
        "ann",
        "t",
        "old one\nmore",
        "ts",
        "1",
        "c",
        "",
        "k",
        "ka",
      ]);
      const quote = JSON.stringify({ seq: 1, from: "ann", text: "old one" });
      await c.sendCommand([
        "XADD",
        log,
        "2-1",
        "f",
        "bo",
        "t",
        "old reply",
        "ts",
        "2",
        "c",
        "",
        "k",
        "kb",
        "r",
        quote,
      ]);
      await c.hSet(`chat:{${room}}:meta`, { seq: "2", epoch: "e1" });
      await engine.append([draft(room, "new reply", { replyTo: 1 })]);
      const page = async () => (await engine.after(room, 0, 10)).messages;
      assert.deepEqual((await page()).map((m) => [m.text, m.replyTo?.text]), [
        ["old one\nmore", undefined],
        ["old reply", "old one"],
        ["new reply", "old one"],
      ]);
      assert.ok((await engine.changeMessage(room, 1, { kind: "edit", text: "renewed", editedTs: 5 }, {})).ok);
      assert.ok((await engine.changeMessage(room, 3, { kind: "edit", text: "newer", editedTs: 6 }, {})).ok);
      assert.deepEqual((await page()).map((m) => [m.text, m.editedTs, m.replyTo?.text]), [
        ["renewed", 5, undefined],
        ["old reply", undefined, "renewed"],
        ["newer", 6, "renewed"],
      ]);
      assert.ok((await engine.changeMessage(room, 1, { kind: "delete", by: "mod" }, {})).ok);
      assert.deepEqual((await page()).map((m) => [m.deleted ?? false, m.replyTo?.deleted ?? false]), [
        [true, false],
        [false, true],
        [false, true],
      ]);
    } finally {
      await c.close();
      await engine.close();
    }
  },
});

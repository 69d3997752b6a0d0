/**
 * Message search on every engine that keeps history (#21): the same query finds the same messages in
 * the same order on the memory store and on SQLite (the FTS5 index), never a deleted one, an edited
 * one by its new text only, nothing retention removed, and across a restart; history written before
 * the index is indexed in the background. Redis has no search (`Engine.search` is absent).
 * @module
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { Draft, Engine, SearchRequest } from "../../lib/engine.ts";
import { EmbeddedEngine } from "../../lib/engine_embedded.ts";
import { parseQuery } from "../../lib/search_text.ts";
import { type IndexProgress, SqliteStore } from "../../lib/store_sqlite.ts";
import { MemoryStore } from "../../lib/store.ts";
import { engineKinds } from "../helpers/engine_kinds.ts";

/** A room of its own per test: Redis runs are not flushed between tests. */
const newRoom = () => `s${crypto.randomUUID().slice(0, 8)}`;

let clock = Date.UTC(2026, 10, 20);
const draft = (room: string, text: string, extra: Partial<Draft> = {}): Draft => ({
  room,
  from: "ada",
  text,
  ts: clock++,
  key: "k-ada",
  ...extra,
});

/** The texts `q` finds in `rooms` (every room when undefined), newest first, with `next` and `partial`. */
async function find(
  engine: Engine,
  q: string,
  rooms: string[] | undefined,
  more: Partial<SearchRequest> = {},
): Promise<{ texts: string[]; next?: string; partial?: true }> {
  const page = await engine.search!({
    query: parseQuery(q, 256),
    rooms,
    order: "newest",
    bestWindow: 1000,
    limit: 20,
    deadline: performance.now() + 10_000,
    ...more,
  });
  const out: { texts: string[]; next?: string; partial?: true } = { texts: page.messages.map((m) => m.text) };
  if (page.next !== undefined) out.next = page.next;
  if (page.partial) out.partial = true;
  return out;
}

const MIXED = [
  "Le Café est ouvert",
  "你好世界",
  "明日の会議は十時から",
  "Привет, мир",
  "สวัสดีครับ ผมชื่อสมชาย",
  "مرحبا بالعالم",
  "the decision: we ship on Friday https://example.com/plan",
  "a decisive moment",
];

for (const [kind, make] of engineKinds()) {
  if (kind === "RedisEngine") {
    Deno.test(`${kind}: has no search: Engine.search is absent and the chat answers unsupported`, async () => {
      const u = await make({});
      try {
        assert.equal(u.engine.search, undefined);
      } finally {
        await u.cleanup();
      }
    });
    continue;
  }

  Deno.test(`${kind}: search finds words in every script, accents and case folded, newest first`, async () => {
    const u = await make({});
    const room = newRoom(), other = newRoom();
    try {
      await u.engine.append(MIXED.map((t) => draft(room, t)));
      await u.engine.append([draft(other, "cafe in the other room")]);
      const e = u.engine;
      assert.deepEqual((await find(e, "cafe ", [room])).texts, ["Le Café est ouvert"]);
      assert.deepEqual((await find(e, "CAFÉ ", undefined)).texts, [
        "cafe in the other room",
        "Le Café est ouvert",
      ]);
      assert.deepEqual((await find(e, "你好", [room])).texts, ["你好世界"]);
      assert.deepEqual((await find(e, "世界", [room])).texts, ["你好世界"]);
      assert.deepEqual((await find(e, "会議", [room])).texts, ["明日の会議は十時から"]);
      assert.deepEqual((await find(e, "мир ", [room])).texts, ["Привет, мир"]);
      assert.deepEqual((await find(e, "ครับ ", [room])).texts, ["สวัสดีครับ ผมชื่อสมชาย"]);
      assert.deepEqual((await find(e, "بالعالم", [room])).texts, ["مرحبا بالعالم"]);
      // The last word is a prefix while typing; a phrase is words side by side; -word and has:link.
      assert.deepEqual((await find(e, "decis", [room])).texts, [MIXED[7], MIXED[6]]);
      assert.deepEqual((await find(e, "decis ", [room])).texts, []);
      assert.deepEqual((await find(e, '"ship on friday"', [room])).texts, [MIXED[6]]);
      assert.deepEqual((await find(e, '"friday on ship"', [room])).texts, []);
      assert.deepEqual((await find(e, "-moment decis", [room])).texts, [MIXED[6]]);
      assert.deepEqual((await find(e, "has:link", [room])).texts, [MIXED[6]]);
      // FTS syntax is words.
      assert.deepEqual((await find(e, 'NEAR( "* decision', [room])).texts, []);
      assert.deepEqual((await find(e, "words:cafe ", [room])).texts, []);
      // Only the rooms asked for.
      assert.deepEqual((await find(e, "cafe ", [other])).texts, ["cafe in the other room"]);
      assert.deepEqual((await find(e, "cafe ", [])).texts, []);
    } finally {
      await u.cleanup();
    }
  });

  Deno.test(`${kind}: search filters by sender and date, and pages with next`, async () => {
    const u = await make({});
    const room = newRoom();
    try {
      const day = Date.UTC(2026, 10, 25);
      await u.engine.append([
        draft(room, "report one", { ts: day - 1 }),
        draft(room, "report two", { ts: day + 1, from: "Zoë", key: "k-zoe" }),
        ...Array.from({ length: 5 }, (_, i) => draft(room, `report page ${i}`, { ts: day + 10 + i })),
      ]);
      const e = u.engine;
      assert.deepEqual((await find(e, "report from:zoe", [room])).texts, ["report two"]);
      assert.deepEqual((await find(e, "report before:2026-11-25", [room])).texts, ["report one"]);
      assert.deepEqual((await find(e, "report after:2026-11-24 two", [room])).texts, ["report two"]);
      const first = await find(e, "report ", [room], { limit: 3 });
      assert.deepEqual(first.texts, ["report page 4", "report page 3", "report page 2"]);
      assert.ok(first.next);
      const second = await find(e, "report ", [room], { limit: 3, cursor: first.next });
      assert.deepEqual(second.texts, ["report page 1", "report page 0", "report two"]);
      const third = await find(e, "report ", [room], { limit: 3, cursor: second.next });
      assert.deepEqual(third, { texts: ["report one"] });
      // A search out of time answers what it has, marked partial, with where to go on from.
      const late = await find(e, "report ", [room], { deadline: performance.now() - 1 });
      assert.equal(late.partial, true);
      assert.ok(late.texts.length <= 1);
      assert.ok(late.next);
    } finally {
      await u.cleanup();
    }
  });

  Deno.test(`${kind}: best match first ranks the newest bestWindow matches, and pages through them`, async () => {
    const u = await make({});
    const room = newRoom();
    try {
      await u.engine.append([
        draft(room, "budget budget budget budget", { ts: 1000 }),
        draft(room, "the budget and the plan and more words here", { ts: 2000 }),
        draft(room, "budget budget review", { ts: 3000 }),
        draft(room, "a budget note with a lot of other words around it", { ts: 4000 }),
      ]);
      const e = u.engine;
      const best = await find(e, "budget ", [room], { order: "best" });
      assert.equal(best.texts[0], "budget budget budget budget", JSON.stringify(best.texts));
      assert.equal(best.texts.length, 4);
      // Pages of 2 cover the same four once each.
      const first = await find(e, "budget ", [room], { order: "best", limit: 2 });
      const second = await find(e, "budget ", [room], { order: "best", limit: 2, cursor: first.next });
      assert.deepEqual([...first.texts, ...second.texts].sort(), [...best.texts].sort());
      assert.equal(second.next, undefined);
      // Ranking is bounded: within the newest 3 matches, the oldest best one is not looked at.
      const windowed = await find(e, "budget ", [room], { order: "best", bestWindow: 3 });
      assert.equal(windowed.texts[0], "budget budget review", JSON.stringify(windowed.texts));
      assert.equal(windowed.texts.length, 3);
    } finally {
      await u.cleanup();
    }
  });

  Deno.test(`${kind}: a deleted message is never found, an edited one by its new text only`, async () => {
    const u = await make({});
    const room = newRoom();
    try {
      await u.engine.append([draft(room, "secret plan"), draft(room, "typo heer"), draft(room, "keep plan")]);
      const e = u.engine;
      assert.ok((await e.changeMessage(room, 1, { kind: "delete", by: "mod" }, {})).ok);
      assert.ok(
        (await e.changeMessage(room, 2, { kind: "edit", text: "typo here", editedTs: clock }, {})).ok,
      );
      assert.deepEqual((await find(e, "secret ", [room])).texts, []);
      assert.deepEqual((await find(e, "plan ", [room])).texts, ["keep plan"]);
      assert.deepEqual((await find(e, "heer ", [room])).texts, []);
      assert.deepEqual((await find(e, "here ", [room])).texts, ["typo here"]);
      if (u.reopen) {
        const again = await u.reopen();
        assert.deepEqual((await find(again, "secret ", [room])).texts, []);
        assert.deepEqual((await find(again, "plan ", [room])).texts, ["keep plan"]);
        assert.deepEqual((await find(again, "here ", [room])).texts, ["typo here"]);
      }
    } finally {
      await u.cleanup();
    }
  });

  Deno.test(`${kind}: what retention removes is not found`, async () => {
    const u = await make({ retainMessages: 2 });
    const room = newRoom();
    try {
      await u.engine.append([draft(room, "old word"), draft(room, "mid word"), draft(room, "new word")]);
      await u.prune();
      assert.deepEqual((await find(u.engine, "word ", [room])).texts, ["new word", "mid word"]);
    } finally {
      await u.cleanup();
    }
  });

  Deno.test(`${kind}: what age retention removes is not found`, async () => {
    const u = await make({ retainMs: 60_000 });
    const room = newRoom();
    try {
      const now = Date.now();
      await u.engine.append([
        draft(room, "aged word", { ts: now - 120_000 }),
        draft(room, "fresh word", { ts: now }),
      ]);
      await u.prune();
      assert.deepEqual((await find(u.engine, "word ", [room])).texts, ["fresh word"]);
    } finally {
      await u.cleanup();
    }
  });
}

Deno.test("SqliteStore indexes history written before the index in the background, telling its progress", async () => {
  const dir = await Deno.makeTempDir();
  const opts = { retainMessages: 0, retainMs: 0, durability: "normal" as const };
  try {
    const room = newRoom();
    let engine = new EmbeddedEngine(await SqliteStore.open(dir, opts), { dedupWindowMs: 0 });
    await engine.append(Array.from({ length: 1200 }, (_, i) => draft(room, `old message ${i} 会議`)));
    await engine.close();
    // As a file from before #21: no index rows, and the rebuild not started.
    const db = new DatabaseSync(`${dir}/chat.db`);
    db.exec(
      "DELETE FROM message_search; UPDATE messages SET sid = NULL; UPDATE meta SET v = '[]' WHERE k = 'search_rebuild'",
    );
    db.exec("UPDATE messages SET deleted = 1, text = '' WHERE seq = 7");
    db.close();
    const progress: IndexProgress[] = [];
    let done!: () => void;
    const finished = new Promise<void>((r) => done = r);
    engine = new EmbeddedEngine(
      await SqliteStore.open(dir, { ...opts, onIndexProgress: (p) => (progress.push(p), p.done && done()) }),
      { dedupWindowMs: 0 },
    );
    // Served meanwhile: a new message is found at once.
    await engine.append([draft(room, "new message 会議")]);
    assert.deepEqual((await find(engine, "new ", [room])).texts, ["new message 会議"]);
    await finished;
    assert.deepEqual(progress.map((p) => p.done), [false, false, true]);
    assert.equal(progress.at(-1)!.total, 1199);
    const all = await engine.search!({
      query: parseQuery("会議", 256),
      order: "newest",
      bestWindow: 1000,
      limit: 200,
      deadline: performance.now() + 10_000,
    });
    // Newest first, the old history at its own time after the new message.
    assert.deepEqual(all.messages.slice(0, 3).map((m) => m.text), [
      "new message 会議",
      "old message 1199 会議",
      "old message 1198 会議",
    ]);
    assert.deepEqual((await find(engine, "5 ", [room])).texts, ["old message 5 会議"]);
    // Seq 7, deleted before the rebuild.
    assert.deepEqual((await find(engine, "6 ", [room])).texts, []);
    await engine.close();
    // Done is remembered: a restart does not index again.
    progress.length = 0;
    engine = new EmbeddedEngine(
      await SqliteStore.open(dir, { ...opts, onIndexProgress: (p) => progress.push(p) }),
      { dedupWindowMs: 0 },
    );
    assert.deepEqual((await find(engine, "1000 ", [room])).texts, ["old message 1000 会議"]);
    await engine.close();
    assert.deepEqual(progress, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SqliteStore with searchIndex off indexes nothing; opened with it on again, what was written meanwhile is indexed in the background", async () => {
  const dir = await Deno.makeTempDir();
  const opts = { retainMessages: 0, retainMs: 0, durability: "normal" as const };
  try {
    const room = newRoom();
    let engine = new EmbeddedEngine(await SqliteStore.open(dir, opts), { dedupWindowMs: 0 });
    await engine.append([draft(room, "alpha one"), draft(room, "alpha two"), draft(room, "beta three")]);
    await engine.close();
    const off = await SqliteStore.open(dir, { ...opts, searchIndex: false });
    engine = new EmbeddedEngine(off, { dedupWindowMs: 0 });
    await engine.append([draft(room, "gamma four")]);
    assert.ok(
      (await engine.changeMessage(room, 1, { kind: "edit", text: "delta one", editedTs: clock }, {})).ok,
    );
    assert.ok((await engine.changeMessage(room, 2, { kind: "delete", by: "ada" }, {})).ok);
    // Nothing new in the index, and the old text of the edit is gone from it too.
    assert.deepEqual((await find(engine, "gamma ", [room])).texts, []);
    assert.deepEqual((await find(engine, "alpha ", [room])).texts, []);
    await engine.close();
    const db = new DatabaseSync(`${dir}/chat.db`);
    const rebuild = db.prepare("SELECT v FROM meta WHERE k = 'search_rebuild'").get() as { v: string };
    db.close();
    assert.equal(rebuild.v, "[]");
    let done!: () => void;
    const finished = new Promise<void>((r) => done = r);
    engine = new EmbeddedEngine(
      await SqliteStore.open(dir, { ...opts, onIndexProgress: (p) => p.done && done() }),
      { dedupWindowMs: 0 },
    );
    await finished;
    assert.deepEqual((await find(engine, "gamma ", [room])).texts, ["gamma four"]);
    assert.deepEqual((await find(engine, "delta ", [room])).texts, ["delta one"]);
    assert.deepEqual((await find(engine, "alpha ", [room])).texts, []);
    // Indexed while on, and once only.
    assert.deepEqual((await find(engine, "beta ", [room])).texts, ["beta three"]);
    assert.deepEqual((await find(engine, "one ", [room])).texts, ["delta one"]);
    await engine.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MemoryStore with searchIndex off finds nothing, and its edits and deletes still work", async () => {
  const engine = new EmbeddedEngine(new MemoryStore({ retainMessages: 0, retainMs: 0, searchIndex: false }), {
    dedupWindowMs: 0,
  });
  const room = newRoom();
  await engine.append([draft(room, "alpha one"), draft(room, "alpha two")]);
  assert.ok(
    (await engine.changeMessage(room, 1, { kind: "edit", text: "delta one", editedTs: clock }, {})).ok,
  );
  assert.ok((await engine.changeMessage(room, 2, { kind: "delete", by: "ada" }, {})).ok);
  assert.deepEqual((await find(engine, "alpha ", [room])).texts, []);
  assert.deepEqual((await find(engine, "delta ", [room])).texts, []);
  await engine.close();
});

/** The search index of schema version 4 (#21 as first built), with its table beside FTS5. */
const SEARCH_V4 = `
DROP TABLE message_search_content;
ALTER TABLE messages DROP COLUMN sid;
CREATE TABLE search_docs (
  id INTEGER PRIMARY KEY, room TEXT NOT NULL, seq INTEGER NOT NULL, sender TEXT NOT NULL
);
CREATE UNIQUE INDEX search_docs_message ON search_docs (room, seq);
CREATE VIRTUAL TABLE message_search USING fts5 (
  words, extra, tags, content = '', contentless_delete = 1, tokenize = 'ascii'
);
PRAGMA user_version = 4;
`;

Deno.test("SqliteStore.open() upgrades a version-4 file: its old search index goes, and its history is found again", async () => {
  const dir = await Deno.makeTempDir();
  const opts = { retainMessages: 0, retainMs: 0, durability: "normal" as const };
  try {
    const room = newRoom();
    let engine = new EmbeddedEngine(await SqliteStore.open(dir, opts), { dedupWindowMs: 0 });
    await engine.append(Array.from({ length: 600 }, (_, i) => draft(room, `kept message ${i} 会議`)));
    assert.ok((await engine.changeMessage!(room, 3, { kind: "delete", by: "ada" }, {})).ok);
    await engine.close();
    // As version 4 left it: every message indexed through search_docs, the rebuild done.
    // SQLite 3.53 leaves the unindexed columns' table behind when the FTS5 table is dropped, and only
    // another connection may drop it.
    const first = new DatabaseSync(`${dir}/chat.db`);
    first.exec("DROP TABLE message_search");
    first.close();
    const db = new DatabaseSync(`${dir}/chat.db`);
    db.exec(SEARCH_V4);
    db.exec(`INSERT INTO search_docs (id, room, seq, sender) SELECT ts * 1000, room, seq, sender FROM messages
             WHERE deleted = 0`);
    db.exec(`INSERT INTO message_search (rowid, words, extra, tags)
             SELECT ts * 1000, lower(text), '', '' FROM messages WHERE deleted = 0`);
    db.close();
    let done!: () => void;
    const finished = new Promise<void>((r) => done = r);
    engine = new EmbeddedEngine(
      await SqliteStore.open(dir, { ...opts, onIndexProgress: (p) => p.done && done() }),
      { dedupWindowMs: 0 },
    );
    await engine.append([draft(room, "new message 会議")]);
    await finished;
    assert.deepEqual((await find(engine, "599 ", [room])).texts, ["kept message 599 会議"]);
    assert.deepEqual((await find(engine, "会議", [room])).texts.slice(0, 2), [
      "new message 会議",
      "kept message 599 会議",
    ]);
    // Seq 3, deleted before the upgrade.
    assert.deepEqual((await find(engine, "2 ", [room])).texts, []);
    // From a person, in their rooms: the tags the old rows did not carry are there now.
    assert.deepEqual((await find(engine, "from:ada 17 ", [room])).texts, ["kept message 17 会議"]);
    // An edit and a delete of upgraded history reach the new index.
    assert.ok(
      (await engine.changeMessage!(room, 5, { kind: "edit", text: "rewritten", editedTs: clock }, {})).ok,
    );
    assert.ok((await engine.changeMessage!(room, 6, { kind: "delete", by: "ada" }, {})).ok);
    assert.deepEqual((await find(engine, "rewritten", [room])).texts, ["rewritten"]);
    assert.deepEqual((await find(engine, "4 ", [room])).texts, []);
    assert.deepEqual((await find(engine, "5 ", [room])).texts, []);
    await engine.close();
    const after = new DatabaseSync(`${dir}/chat.db`);
    assert.equal((after.prepare("PRAGMA user_version").get() as { user_version: number }).user_version, 5);
    assert.equal(
      after.prepare("SELECT 1 FROM sqlite_schema WHERE name LIKE 'search_docs%'").get(),
      undefined,
    );
    after.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

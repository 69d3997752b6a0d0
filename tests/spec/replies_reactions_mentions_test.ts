/**
 * Replies, reactions and mentions in the engines (issue #11): one specification run against every
 * engine (embedded on MemoryStore and SqliteStore; RedisEngine when TEST_REDIS_URL is set, a single
 * Redis or a Cluster), then what is particular to a store (the SQLite rows, the Redis keys).
 * @module
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { Draft, Engine, ReactionCaps } from "../../lib/engine.ts";
import { EmbeddedEngine } from "../../lib/engine_embedded.ts";
import type { ChatMessage } from "../../lib/protocol.ts";
import { SqliteStore } from "../../lib/store_sqlite.ts";
import { sharingOf } from "../../lib/app.ts";
import { engineKinds } from "../helpers/engine_kinds.ts";

const kinds = engineKinds();

/** A room of its own per test: Redis runs are not flushed between tests. */
const newRoom = () => `r${crypto.randomUUID().slice(0, 8)}`;
const CAPS: ReactionCaps = { maxEmoji: 3, maxPerPerson: 2, maxTotal: 1000 };

const draft = (room: string, text: string, extra: Partial<Draft> = {}): Draft => ({
  room,
  from: "alice",
  text,
  ts: Date.now(),
  key: "k-alice",
  ...extra,
});

async function page(e: Engine, room: string): Promise<ChatMessage[]> {
  return (await e.before(room, Number.MAX_SAFE_INTEGER, 100)).messages;
}

for (const [kind, make] of kinds) {
  Deno.test(`${kind}.append() quotes the first line of the replied message, at most 100 code points`, async () => {
    const u = await make({});
    const room = newRoom();
    const e = u.engine;
    const long = "é😀".repeat(60); // 120 code points, 180 UTF-16 units, 360 UTF-8 bytes
    await e.append([
      draft(room, "first line\nsecond line"),
      draft(room, long, { from: "bob", key: "k-bob" }),
    ]);
    const got = await e.append([
      draft(room, "yes", { from: "bob", key: "k-bob", replyTo: 1 }),
      draft(room, "indeed", { replyTo: 2 }),
    ]);
    assert.deepEqual(got.map((a) => a.refused), [undefined, undefined]);
    const quoted = [...long].slice(0, 100).join("");
    const want = [
      { seq: 1, from: "alice", text: "first line" },
      { seq: 2, from: "bob", text: quoted },
    ];
    const msgs = await page(e, room);
    assert.deepEqual(msgs.slice(2).map((m) => m.replyTo), want);
    assert.equal(msgs[0].replyTo, undefined, "a plain message has no replyTo");
    assert.deepEqual(await e.message!(room, 3), msgs[2]);
    await u.cleanup();
  });

  Deno.test(`${kind}.append() refuses a reply to an unknown or deleted seq and stores nothing of it`, async () => {
    const u = await make({});
    const room = newRoom();
    const e = u.engine;
    await e.append([draft(room, "one"), draft(room, "two")]);
    await e.changeMessage!(room, 2, { kind: "delete", by: "alice" }, {});
    const got = await e.append([
      draft(room, "to nothing", { replyTo: 99, cid: "c1" }),
      draft(room, "to a tombstone", { replyTo: 2 }),
      draft(room, "fine", { replyTo: 1 }),
    ]);
    assert.deepEqual(got.map((a) => [a.refused, a.message.seq]), [
      ["reply_not_found", 0],
      ["reply_not_found", 0],
      [undefined, 3],
    ]);
    const msgs = await page(e, room);
    assert.deepEqual(msgs.map((m) => [m.seq, m.text]), [[1, "one"], [2, ""], [3, "fine"]]);
    // The refused cid was not stored: sent again to a good seq it is a new message.
    const [again] = await e.append([draft(room, "to nothing", { replyTo: 1, cid: "c1" })]);
    assert.deepEqual([again.duplicate, again.message.seq], [false, 4]);
    assert.equal(await e.message!(room, 99), undefined);
    await u.cleanup();
  });

  Deno.test(`${kind}.append() of one group across rooms numbers each room on its own and answers in the group's order`, async () => {
    const u = await make({});
    const [a, b, c] = [newRoom(), newRoom(), newRoom()];
    const e = u.engine;
    await e.append([draft(b, "b1", { cid: "x" })]);
    const got = await e.append([
      draft(a, "a1"),
      draft(b, "b2"),
      draft(a, "a2", { replyTo: 7 }), // refused: nothing of it stored
      draft(c, "c1", { mentions: [{ name: "bob", key: "k-bob" }] }),
      draft(b, "b1 again", { cid: "x" }), // the cid of b's first message
      draft(a, "a2", { replyTo: 1 }),
    ]);
    assert.deepEqual(got.map((r) => [r.message.room, r.message.seq, r.duplicate, r.refused]), [
      [a, 1, false, undefined],
      [b, 2, false, undefined],
      [a, 0, false, "reply_not_found"],
      [c, 1, false, undefined],
      [b, 1, true, undefined],
      [a, 2, false, undefined],
    ]);
    assert.deepEqual((await page(e, a)).map((m) => [m.seq, m.text, m.replyTo?.seq]), [
      [1, "a1", undefined],
      [2, "a2", 1],
    ]);
    assert.deepEqual((await page(e, b)).map((m) => m.text), ["b1", "b2"]);
    assert.deepEqual((await page(e, c)).map((m) => [m.text, m.mentions]), [["c1", ["bob"]]]);
    await u.cleanup();
  });

  Deno.test(`${kind}.append() stores a person's cid once within the dedup window, and anew after it`, async () => {
    const u = await make({ dedupWindowMs: 300 });
    const room = newRoom();
    const e = u.engine;
    const shape = (got: Awaited<ReturnType<Engine["append"]>>) =>
      got.map((r) => [r.message.seq, r.duplicate]);
    assert.deepEqual(shape(await e.append([draft(room, "one", { cid: "c" })])), [[1, false]]);
    assert.deepEqual(
      shape(
        await e.append([
          draft(room, "one", { cid: "c" }),
          draft(room, "one", { cid: "c", from: "bob", key: "k-bob" }), // another person's cid
          draft(room, "two", { cid: "d" }),
          draft(room, "two", { cid: "d" }), // twice in one group
        ]),
      ),
      [[1, true], [2, false], [3, false], [3, true]],
    );
    await new Promise((r) => setTimeout(r, 700)); // over twice the window
    assert.deepEqual(shape(await e.append([draft(room, "one", { cid: "c" })])), [[4, false]]);
    await u.cleanup();
  });

  Deno.test(`${kind}.append() with a dedup window of 0 dedups a cid within one group only`, async () => {
    const u = await make({ dedupWindowMs: 0 });
    const room = newRoom();
    const e = u.engine;
    const got = await e.append([draft(room, "one", { cid: "c" }), draft(room, "one", { cid: "c" })]);
    assert.deepEqual(got.map((r) => [r.message.seq, r.duplicate]), [[1, false], [1, true]]);
    await new Promise((r) => setTimeout(r, 5));
    const [again] = await e.append([draft(room, "one", { cid: "c" })]);
    assert.deepEqual([again.message.seq, again.duplicate], [2, false]);
    await u.cleanup();
  });

  Deno.test(`${kind}.react() toggles, sets, caps and counts; reactions() reads a page with the reader's own`, async () => {
    const u = await make({});
    const room = newRoom();
    const e = u.engine;
    await e.append([draft(room, "a"), draft(room, "b"), draft(room, "c")]);
    assert.deepEqual(await e.react!(room, 1, "k1", "👍", undefined, CAPS), {
      ok: true,
      on: true,
      counts: { "👍": 1 },
    });
    assert.deepEqual(await e.react!(room, 1, "k2", "👍", undefined, CAPS), {
      ok: true,
      on: true,
      counts: { "👍": 2 },
    });
    // Set (on: true) twice is once; toggled again is off.
    assert.deepEqual(await e.react!(room, 1, "k2", "👍", true, CAPS), {
      ok: true,
      on: true,
      counts: { "👍": 2 },
    });
    assert.deepEqual(await e.react!(room, 1, "k2", "👍", undefined, CAPS), {
      ok: true,
      on: false,
      counts: { "👍": 1 },
    });
    assert.deepEqual(await e.react!(room, 1, "k2", "🎉", false, CAPS), {
      ok: true,
      on: false,
      counts: { "👍": 1 },
    });
    // Per person: at most 2 here.
    await e.react!(room, 1, "k1", "🎉", undefined, CAPS);
    assert.deepEqual(await e.react!(room, 1, "k1", "❤️", undefined, CAPS), {
      ok: false,
      problem: "too_many_mine",
    });
    // Distinct emoji: at most 3; adding to one of them still works.
    await e.react!(room, 1, "k3", "❤️", undefined, CAPS);
    assert.deepEqual(await e.react!(room, 1, "k3", "🔥", undefined, CAPS), {
      ok: false,
      problem: "too_many_emoji",
    });
    assert.deepEqual(await e.react!(room, 1, "k4", "🎉", undefined, CAPS), {
      ok: true,
      on: true,
      counts: { "👍": 1, "🎉": 2, "❤️": 1 },
    });
    await e.react!(room, 3, "k2", "👀", undefined, CAPS);
    assert.deepEqual(await e.react!(room, 9, "k1", "👍", undefined, CAPS), {
      ok: false,
      problem: "not_found",
    });
    const page = await e.reactions!(room, 1, 3, "k1");
    assert.deepEqual([...page.keys()], [1, 3]);
    assert.deepEqual(page.get(1), { counts: { "👍": 1, "🎉": 2, "❤️": 1 }, mine: ["👍", "🎉"] });
    assert.deepEqual(page.get(3), { counts: { "👀": 1 }, mine: [] });
    assert.deepEqual([...(await e.reactions!(room, 2, 2, "k1")).keys()], []);
    // The last one taken back: the message has none.
    await e.react!(room, 3, "k2", "👀", false, CAPS);
    assert.deepEqual([...(await e.reactions!(room, 1, 3, "k2")).keys()], [1]);
    await u.cleanup();
  });

  Deno.test(`${kind}.react() caps a message's reactions in total, however many people add them`, async () => {
    const u = await make({});
    const room = newRoom();
    const e = u.engine;
    await e.append([draft(room, "a")]);
    const caps: ReactionCaps = { maxEmoji: 20, maxPerPerson: 10, maxTotal: 5 };
    // Fresh people each within their own cap: the total stops them (#18: 20 guests put 200 on one).
    const got = [];
    for (let i = 0; i < 4; i++) {
      for (const emoji of ["👍", "🎉"]) got.push(await e.react!(room, 1, `k${i}`, emoji, true, caps));
    }
    assert.deepEqual(got.map((r) => r.ok), [true, true, true, true, true, false, false, false]);
    assert.deepEqual(got[5], { ok: false, problem: "too_many_total" });
    assert.deepEqual((await e.reactions!(room, 1, 1, "k0")).get(1)?.counts, { "👍": 3, "🎉": 2 });
    // Taking one back makes room for one more, and only one.
    assert.equal((await e.react!(room, 1, "k0", "🎉", false, caps)).ok, true);
    assert.equal((await e.react!(room, 1, "k9", "👍", true, caps)).ok, true);
    assert.deepEqual(await e.react!(room, 1, "k8", "👍", true, caps), {
      ok: false,
      problem: "too_many_total",
    });
    await u.cleanup();
  });

  Deno.test(`${kind}: a deleted message loses its reactions, quote, mentions and mention rows`, async () => {
    const u = await make({});
    const room = newRoom();
    const e = u.engine;
    const mentions = [{ key: "k-bob", name: "bob" }];
    await e.append([draft(room, "one"), draft(room, "hey @bob", { replyTo: 1, mentions })]);
    await e.react!(room, 2, "k-bob", "👍", undefined, CAPS);
    assert.deepEqual(await e.mentionCounts!("k-bob", [{ room, after: 0 }]), { [room]: 1 });
    const r = await e.changeMessage!(room, 2, { kind: "delete", by: "alice" }, {});
    assert.ok(r.ok);
    assert.deepEqual(r.message, { room, seq: 2, from: "alice", ts: r.message.ts, text: "", deleted: true });
    assert.deepEqual((await page(e, room))[1], r.message);
    assert.deepEqual([...(await e.reactions!(room, 1, 2, "k-bob")).keys()], []);
    assert.deepEqual(await e.react!(room, 2, "k-bob", "👍", undefined, CAPS), {
      ok: false,
      problem: "not_found",
    });
    assert.deepEqual(await e.mentionCounts!("k-bob", [{ room, after: 0 }]), {});
    await u.cleanup();
  });

  Deno.test(`${kind}: an edit keeps the quote, the mentions and the reactions`, async () => {
    const u = await make({});
    const room = newRoom();
    const e = u.engine;
    await e.append([
      draft(room, "one"),
      draft(room, "hi @bob", { replyTo: 1, mentions: [{ key: "kb", name: "bob" }] }),
    ]);
    await e.react!(room, 2, "kb", "👍", undefined, CAPS);
    const r = await e.changeMessage!(room, 2, { kind: "edit", text: "hi @bob!", editedTs: Date.now() }, {});
    assert.ok(r.ok);
    const m = (await page(e, room))[1];
    assert.deepEqual([m.text, m.replyTo, m.mentions], ["hi @bob!", { seq: 1, from: "alice", text: "one" }, [
      "bob",
    ]]);
    assert.deepEqual(r.message.replyTo, m.replyTo);
    assert.deepEqual((await e.reactions!(room, 2, 2, "kb")).get(2), { counts: { "👍": 1 }, mine: ["👍"] });
    await u.cleanup();
  });

  Deno.test(`${kind}.changeMessage() rewrites the quotes of the replies: an edit's first line, a delete's nothing`, async () => {
    const u = await make({});
    const [room, other] = [newRoom(), newRoom()];
    const bob = { from: "bob", key: "k-bob" };
    await u.engine.append([
      draft(room, "secret plan\nsecond line"), // 1
      draft(room, "unrelated"), // 2
      draft(room, "agreed", { ...bob, replyTo: 1 }), // 3
      draft(room, "re unrelated", { replyTo: 2 }), // 4
      draft(room, "me too", { ...bob, replyTo: 1 }), // 5
      draft(room, "re agreed", { replyTo: 3 }), // 6: a reply to a reply quotes the reply
    ]);
    // The same seq in another room: its reply keeps its quote.
    await u.engine.append([draft(other, "secret plan"), draft(other, "elsewhere", { replyTo: 1 })]);
    const quotes = async (r = room) => (await page(u.engine, r)).map((m) => m.replyTo);
    const rest = [{ seq: 2, from: "alice", text: "unrelated" }, { seq: 3, from: "bob", text: "agreed" }];
    const edit = { kind: "edit", text: "revised plan\nsecond line", editedTs: Date.now() } as const;
    assert.ok((await u.engine.changeMessage!(room, 1, edit, {})).ok);
    const revised = { seq: 1, from: "alice", text: "revised plan" };
    const afterEdit = [undefined, undefined, revised, rest[0], revised, rest[1]];
    assert.deepEqual(await quotes(), afterEdit);
    assert.deepEqual((await u.engine.message!(room, 5))?.replyTo, revised);
    if (u.reopen) {
      await u.reopen();
      assert.deepEqual(await quotes(), afterEdit, "after a restart");
    }
    assert.ok((await u.engine.changeMessage!(room, 1, { kind: "delete", by: "mod" }, {})).ok);
    const gone = { seq: 1, from: "alice", text: "", deleted: true };
    const afterDelete = [undefined, undefined, gone, rest[0], gone, rest[1]];
    assert.deepEqual(await quotes(), afterDelete);
    assert.deepEqual((await u.engine.message!(room, 3))?.replyTo, gone);
    assert.ok(!JSON.stringify(await page(u.engine, room)).includes("plan"), "nothing of the text is left");
    assert.deepEqual(await quotes(other), [undefined, { seq: 1, from: "alice", text: "secret plan" }]);
    if (u.reopen) {
      await u.reopen();
      assert.deepEqual(await quotes(), afterDelete, "after a restart");
    }
    // The replies are otherwise as they were: text, sender, order.
    assert.deepEqual((await page(u.engine, room)).map((m) => m.text), [
      "",
      "unrelated",
      "agreed",
      "re unrelated",
      "me too",
      "re agreed",
    ]);
    await u.cleanup();
  });

  Deno.test(`${kind}.mentionCounts() counts per room after a seq, leaving out rooms without any`, async () => {
    const u = await make({});
    const [a, b, c] = [newRoom(), newRoom(), newRoom()];
    const e = u.engine;
    const bob = { key: "k-bob", name: "bob" }, carol = { key: "k-carol", name: "carol" };
    await e.append([
      draft(a, "@bob 1", { mentions: [bob] }),
      draft(a, "plain"),
      draft(a, "@bob @carol", { mentions: [bob, carol] }),
      draft(b, "@carol", { mentions: [carol] }),
      draft(b, "@bob", { mentions: [bob] }),
    ]);
    const live = (await page(e, a))[2];
    assert.deepEqual(live.mentions, ["bob", "carol"]);
    assert.deepEqual(
      await e.mentionCounts!("k-bob", [{ room: a, after: 0 }, { room: b, after: 0 }, { room: c, after: 0 }]),
      {
        [a]: 2,
        [b]: 1,
      },
    );
    assert.deepEqual(await e.mentionCounts!("k-bob", [{ room: a, after: 1 }, { room: b, after: 2 }]), {
      [a]: 1,
    });
    assert.deepEqual(await e.mentionCounts!("k-carol", [{ room: a, after: 0 }, { room: b, after: 0 }]), {
      [a]: 1,
      [b]: 1,
    });
    assert.deepEqual(await e.mentionCounts!("k-nobody", [{ room: a, after: 0 }]), {});
    await u.cleanup();
  });

  Deno.test(`${kind}: retention takes reactions and mentions with the messages it removes`, async () => {
    const u = await make({ retainMessages: 2 });
    const room = newRoom();
    const e = u.engine;
    await e.append([draft(room, "@bob", { mentions: [{ key: "kb", name: "bob" }] })]);
    await e.react!(room, 1, "kb", "👍", undefined, CAPS);
    await e.append([1, 2, 3].map((i) => draft(room, `m${i}`)));
    await u.prune();
    assert.deepEqual((await page(e, room)).map((m) => m.seq), [3, 4]);
    assert.deepEqual([...(await e.reactions!(room, 1, 4, "kb")).keys()], []);
    assert.deepEqual(await e.mentionCounts!("kb", [{ room, after: 0 }]), {});
    await u.cleanup();
  });

  Deno.test(`${kind}: subscribers get the quote and the mentions with the live message`, async () => {
    const u = await make({});
    const room = newRoom();
    const e = u.engine;
    const got: ChatMessage[] = [];
    const unsubscribe = e.subscribe({ message: (m) => got.push(m) });
    await sharingOf(e)?.watch(room);
    await e.append([
      draft(room, "one"),
      draft(room, "@bob yes", { replyTo: 1, mentions: [{ key: "kb", name: "bob" }] }),
    ]);
    const end = Date.now() + 3000;
    while (got.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(got[1].replyTo, { seq: 1, from: "alice", text: "one" });
    assert.deepEqual(got[1].mentions, ["bob"]);
    assert.equal(got[0].replyTo, undefined);
    unsubscribe();
    sharingOf(e)?.unwatch(room);
    await u.cleanup();
  });

  if (kind !== "MemoryStore") {
    Deno.test(`${kind}: quotes, mentions and reactions survive a restart`, async () => {
      const u = await make({});
      const room = newRoom();
      await u.engine.append([
        draft(room, "one"),
        draft(room, "@bob", { replyTo: 1, mentions: [{ key: "kb", name: "bob" }] }),
      ]);
      await u.engine.react!(room, 1, "kb", "👍", undefined, CAPS);
      const e = await u.reopen!();
      const m = (await page(e, room))[1];
      assert.deepEqual([m.replyTo, m.mentions], [{ seq: 1, from: "alice", text: "one" }, ["bob"]]);
      assert.deepEqual((await e.reactions!(room, 1, 2, "kb")).get(1), { counts: { "👍": 1 }, mine: ["👍"] });
      assert.deepEqual(await e.mentionCounts!("kb", [{ room, after: 0 }]), { [room]: 1 });
      await u.cleanup();
    });
  }
}

Deno.test("SqliteStore: a reply and a mention are one meta column and one mentions row; a reaction is one row", async () => {
  const dir = await Deno.makeTempDir();
  const engine = new EmbeddedEngine(
    await SqliteStore.open(dir, { retainMessages: 0, retainMs: 0, durability: "normal" }),
    { dedupWindowMs: 60_000 },
  );
  await engine.append([
    draft("r", "plain"),
    draft("r", "@bob", { replyTo: 1, mentions: [{ key: "kb", name: "bob" }] }),
  ]);
  await engine.react(room1(), 1, "kb", "👍", undefined, CAPS);
  await engine.close();
  const db = new DatabaseSync(`${dir}/chat.db`, { readOnly: true });
  const metas = db.prepare("SELECT seq, meta FROM messages ORDER BY seq").all();
  assert.deepEqual(metas.map((r) => ({ ...r })), [
    { seq: 1, meta: null },
    // The quote by reference: the engine makes its text from message 1 when it is read.
    { seq: 2, meta: '{"replyTo":{"seq":1,"from":"alice"},"mentions":["bob"]}' },
  ]);
  assert.deepEqual(db.prepare("SELECT ukey, room, seq FROM mentions").all().map((r) => ({ ...r })), [
    { ukey: "kb", room: "r", seq: 2 },
  ]);
  assert.equal((db.prepare("SELECT count(*) AS n FROM reactions").get() as { n: number }).n, 1);
  db.close();
  await Deno.remove(dir, { recursive: true });
});

function room1(): string {
  return "r";
}

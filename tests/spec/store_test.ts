/** One specification, run against every Store: memory and SQLite. */
import assert from "node:assert/strict";
import { MemoryStore, type Store, type StoredMessage, StoreError } from "../../lib/store.ts";
import { SqliteStore } from "../../lib/store_sqlite.ts";

type Make = (
  opts: { retainMessages?: number; retainMs?: number },
) => Promise<{ store: Store; cleanup(): Promise<void> }>;

const kinds: [string, Make][] = [
  ["MemoryStore", (o) =>
    Promise.resolve({
      store: new MemoryStore({ retainMessages: o.retainMessages ?? 0, retainMs: o.retainMs ?? 0 }),
      cleanup: () => Promise.resolve(),
    })],
  ["SqliteStore", async (o) => {
    const dir = await Deno.makeTempDir();
    const store = await SqliteStore.open(dir, {
      retainMessages: o.retainMessages ?? 0,
      retainMs: o.retainMs ?? 0,
      durability: "normal",
    });
    return { store, cleanup: async () => (await store.close(), await Deno.remove(dir, { recursive: true })) };
  }],
];

function msg(room: string, seq: number, extra: Partial<StoredMessage> = {}): StoredMessage {
  return { room, seq, from: "alice", text: `m${seq}`, ts: 1000 + seq, key: "k", ...extra };
}

for (const [kind, make] of kinds) {
  Deno.test(`${kind}.after() and before() page by seq, oldest first`, async () => {
    const { store, cleanup } = await make({});
    await store.append([1, 2, 3, 4, 5].map((i) => msg("r", i)));
    await store.append([msg("other", 1)]);
    assert.deepEqual(store.after("r", 2, 2).map((m) => m.seq), [3, 4]);
    assert.deepEqual(store.after("r", 5, 10), []);
    assert.deepEqual(store.before("r", 6, 2).map((m) => m.seq), [4, 5]);
    assert.deepEqual(store.before("r", 3, 10).map((m) => m.seq), [1, 2]);
    assert.equal(store.lastSeq("r"), 5);
    assert.equal(store.lastSeq("none"), 0);
    assert.deepEqual(store.after("r", 0, 1)[0], { room: "r", seq: 1, from: "alice", text: "m1", ts: 1001 });
    await cleanup();
  });

  Deno.test(`${kind}.findCid() finds a message by sender key and cid within the window`, async () => {
    const { store, cleanup } = await make({});
    await store.append([msg("r", 1, { cid: "c1", key: "alice" }), msg("r", 2, { cid: "c1", key: "bob" })]);
    assert.equal(store.findCid("alice", "c1", 0)?.seq, 1);
    assert.equal(store.findCid("bob", "c1", 0)?.seq, 2);
    assert.equal(store.findCid("alice", "c2", 0), undefined);
    assert.equal(store.findCid("alice", "c1", 5000), undefined, "outside the window");
    await cleanup();
  });

  Deno.test(`${kind} retention by count keeps lastSeq, so seq is never reused`, async () => {
    const { store, cleanup } = await make({ retainMessages: 3 });
    await store.append([1, 2, 3, 4, 5, 6].map((i) => msg("r", i)));
    await store.prune(0);
    assert.deepEqual(store.after("r", 0, 100).map((m) => m.seq), [4, 5, 6]);
    assert.equal(store.lastSeq("r"), 6);
    await cleanup();
  });

  Deno.test(`${kind} retention by age deletes old messages`, async () => {
    const { store, cleanup } = await make({ retainMs: 100 });
    await store.append([msg("r", 1, { ts: 0 }), msg("r", 2, { ts: 50 }), msg("r", 3, { ts: 500 })]);
    assert.equal(await store.prune(200), 2);
    assert.deepEqual(store.after("r", 0, 100).map((m) => m.seq), [3]);
    assert.equal(store.lastSeq("r"), 3);
    await cleanup();
  });

  Deno.test(`${kind}.append() refuses a seq that is not new, writing nothing of the batch`, async () => {
    const { store, cleanup } = await make({});
    await store.append([msg("r", 1)]);
    await assert.rejects(store.append([msg("r", 2), msg("r", 1)]), StoreError);
    assert.equal(store.lastSeq("r"), 1, "the batch is atomic");
    assert.deepEqual(store.after("r", 0, 10).map((m) => m.seq), [1]);
    await cleanup();
  });
}

Deno.test("SqliteStore keeps everything across close and reopen", async () => {
  const dir = await Deno.makeTempDir();
  const opts = { retainMessages: 0, retainMs: 0, durability: "full" as const };
  const a = await SqliteStore.open(dir, opts);
  await a.append([msg("r", 1, { cid: "x" }), msg("r", 2)]);
  await a.close();
  await a.close(); // idempotent
  const b = await SqliteStore.open(dir, opts);
  assert.equal(b.lastSeq("r"), 2);
  assert.equal(b.findCid("k", "x", 0)?.seq, 1);
  await b.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("SqliteStore.open() refuses a corrupt file and an unwritable directory with the path in the message", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/chat.db`, new TextEncoder().encode("this is not a database".repeat(300)));
  const opts = { retainMessages: 0, retainMs: 0, durability: "full" as const };
  await assert.rejects(
    SqliteStore.open(dir, opts),
    (e: Error) => e instanceof StoreError && e.message.includes(`${dir}/chat.db`),
  );
  const file = `${dir}/plain-file`;
  await Deno.writeTextFile(file, "");
  await assert.rejects(
    SqliteStore.open(`${file}/data`, opts),
    (e: Error) => e instanceof StoreError && e.message.includes(file),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("SqliteStore.open() refuses a database of another schema version instead of misreading it", async () => {
  const dir = await Deno.makeTempDir();
  const { DatabaseSync } = await import("node:sqlite");
  const old = new DatabaseSync(`${dir}/chat.db`);
  old.exec("CREATE TABLE messages (room TEXT, seq INTEGER, PRIMARY KEY (room, seq)) WITHOUT ROWID");
  old.close();
  const opts = { retainMessages: 0, retainMs: 0, durability: "full" as const };
  await assert.rejects(
    SqliteStore.open(dir, opts),
    (e: Error) => e instanceof StoreError && /schema version 0, this server reads version \d/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
});

/**
 * The room directory as storage sees it (`Engine.publicRooms`), one specification run against every
 * engine: the rooms a message was stored in or whose rules were changed, in name order, private ones
 * and conversations never, a prefix filter and a cursor that pages without skipping or repeating. On
 * Redis also who is in them across processes (`RedisSharing.occupiedRooms`), from live presence.
 * @module
 */
import assert from "node:assert/strict";
import type { Draft, Engine, RoomQuery } from "../../lib/engine.ts";
import { sharingOf } from "../../lib/app.ts";
import { connectRedisEngine, engineKinds } from "../helpers/engine_kinds.ts";

const kinds = engineKinds();

/** A prefix of its own per test: Redis runs are not flushed between tests. */
const newPrefix = () => `d${crypto.randomUUID().slice(0, 8)}-`;

const draft = (room: string, extra: Partial<Draft> = {}): Draft => ({
  room,
  from: "alice",
  text: "hi",
  ts: Date.now(),
  key: "k-alice",
  ...extra,
});

const audit = () => ({ ts: Date.now(), action: "room", by: "mod" });

/** Every room of `query`'s listing, page by page (at most 20 pages). */
async function allPages(engine: Engine, query: RoomQuery): Promise<string[]> {
  const out: string[] = [];
  let after = query.after;
  for (let i = 0; i < 20; i++) {
    const page = await engine.publicRooms({ ...query, after });
    out.push(...page.rooms.map((r) => r.room));
    if (page.through === undefined) return out;
    after = page.through;
  }
  throw new Error("more than 20 pages");
}

for (const [kind, make] of kinds) {
  Deno.test(`${kind}: publicRooms() lists stored and changed rooms in name order, with topics, never private ones`, async () => {
    const u = await make();
    try {
      const p = newPrefix();
      await u.engine.append([draft(`${p}beta`), draft(`${p}alpha`)]);
      await u.engine.changeRoom(`${p}gamma`, { kind: "rules", rules: { topic: "Gamma rays" } }, audit());
      await u.engine.append([draft(`${p}secret`)]);
      await u.engine.changeRoom(`${p}secret`, { kind: "rules", rules: { private: true } }, audit());
      await u.engine.changeRoom(
        `${p}hidden`,
        { kind: "rules", rules: { private: true, topic: "x" } },
        audit(),
      );
      const page = await u.engine.publicRooms({ prefix: p, after: "", limit: 10 });
      assert.deepEqual(page, {
        rooms: [
          { room: `${p}alpha`, topic: "" },
          { room: `${p}beta`, topic: "" },
          { room: `${p}gamma`, topic: "Gamma rays" },
        ],
      });
      // A room made public again is listed again.
      await u.engine.changeRoom(`${p}secret`, { kind: "rules", rules: { private: false } }, audit());
      assert.deepEqual(
        (await u.engine.publicRooms({ prefix: p, after: "", limit: 10 })).rooms.map((r) => r.room),
        [`${p}alpha`, `${p}beta`, `${p}gamma`, `${p}secret`],
      );
    } finally {
      await u.cleanup();
    }
  });

  Deno.test(`${kind}: publicRooms() filters by prefix and pages by name with after, each room once`, async () => {
    const u = await make();
    try {
      const p = newPrefix();
      const names = ["a1", "a2", "a3", "a4", "a5", "b1", "ab"].map((n) => `${p}${n}`);
      await u.engine.append(names.map((room) => draft(room)));
      // A private room among them takes no place on a page.
      await u.engine.changeRoom(`${p}a3`, { kind: "rules", rules: { private: true } }, audit());
      const first = await u.engine.publicRooms({ prefix: `${p}a`, after: "", limit: 2 });
      assert.deepEqual(first.rooms.map((r) => r.room), [`${p}a1`, `${p}a2`]);
      assert.equal(first.through, `${p}a2`);
      assert.deepEqual(await allPages(u.engine, { prefix: `${p}a`, after: "", limit: 2 }), [
        `${p}a1`,
        `${p}a2`,
        `${p}a4`,
        `${p}a5`,
        `${p}ab`,
      ]);
      assert.deepEqual(await allPages(u.engine, { prefix: p, after: `${p}a5`, limit: 3 }), [
        `${p}ab`,
        `${p}b1`,
      ]);
      assert.deepEqual(await u.engine.publicRooms({ prefix: `${p}zz`, after: "", limit: 5 }), { rooms: [] });
    } finally {
      await u.cleanup();
    }
  });

  Deno.test(`${kind}: publicRooms() pages past a run of private rooms longer than a page`, async () => {
    const u = await make();
    try {
      const p = newPrefix();
      const hidden = Array.from({ length: 12 }, (_, i) => `${p}h${String(i).padStart(2, "0")}`);
      for (const room of hidden) {
        await u.engine.changeRoom(room, { kind: "rules", rules: { private: true } }, audit());
      }
      await u.engine.append([draft(`${p}a`), draft(`${p}z`)]);
      assert.deepEqual(await allPages(u.engine, { prefix: p, after: "", limit: 2 }), [`${p}a`, `${p}z`]);
    } finally {
      await u.cleanup();
    }
  });

  Deno.test(`${kind}: publicRooms() never lists a direct conversation`, async () => {
    const u = await make();
    try {
      const conv = "@" + "c".repeat(22);
      await u.engine.append([draft(conv, { between: ["k-alice", "k-bob"] })]);
      const page = await u.engine.publicRooms({ prefix: "", after: "", limit: 500 });
      assert.ok(page.rooms.every((r) => !r.room.startsWith("@")), JSON.stringify(page.rooms.slice(0, 5)));
    } finally {
      await u.cleanup();
    }
  });

  // Memory keeps nothing over a restart.
  if (kind !== "MemoryStore") {
    Deno.test(`${kind}: publicRooms() lists the same rooms after a restart`, async () => {
      const u = await make();
      try {
        const p = newPrefix();
        await u.engine.append([draft(`${p}kept`)]);
        await u.engine.changeRoom(`${p}topic`, { kind: "rules", rules: { topic: "t" } }, audit());
        const engine = await u.reopen!();
        assert.deepEqual((await engine.publicRooms({ prefix: p, after: "", limit: 5 })).rooms, [
          { room: `${p}kept`, topic: "" },
          { room: `${p}topic`, topic: "t" },
        ]);
      } finally {
        await u.cleanup();
      }
    });
  }
}

const TEST_REDIS_URL = Deno.env.get("TEST_REDIS_URL");

Deno.test({
  name: "RedisSharing: occupiedRooms() counts each person once across processes, and drops empty rooms",
  ignore: !TEST_REDIS_URL,
  async fn() {
    const a = await connectRedisEngine(TEST_REDIS_URL!);
    const b = await connectRedisEngine(TEST_REDIS_URL!);
    try {
      const p = newPrefix();
      const [sa, sb] = [sharingOf(a)!, sharingOf(b)!];
      await sa.presence(`${p}one`, "alice", true);
      await sb.presence(`${p}one`, "alice", true); // the same person on another process
      await sb.presence(`${p}one`, "bob", true);
      await sb.presence(`${p}two`, "carol", true);
      const q = { prefix: p, after: "", limit: 10 };
      assert.deepEqual(await sa.occupiedRooms(q), {
        rooms: [{ room: `${p}one`, members: 2 }, { room: `${p}two`, members: 1 }],
      });
      await sb.presence(`${p}two`, "carol", false);
      assert.deepEqual(await sa.occupiedRooms(q), { rooms: [{ room: `${p}one`, members: 2 }] });
      // When the last process of a person closes, they are gone from the count.
      await b.close();
      assert.deepEqual(await sa.occupiedRooms(q), { rooms: [{ room: `${p}one`, members: 1 }] });
    } finally {
      await a.close();
      await b.close();
    }
  },
});

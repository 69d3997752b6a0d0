/**
 * Big rooms over real sockets (issue #22, item 1): a room filled past a small `--big-room` answers
 * `join` with a count and a first page of members, tells counts (coalesced) instead of every join
 * and leave, pages and filters its members (`members {room, after?, prefix?}`), tells a member the
 * presence of the people on the page it asked for only, names at most `--max-typers` typers, and
 * delivers every message exactly. On the memory store, SQLite, and (with `TEST_REDIS_URL`, as CI
 * runs tests/socket again) Redis.
 */
import assert from "node:assert/strict";
import type { ConfigInput } from "../../lib/config.ts";
import { type Msg, startServer, TestClient, type TestServer } from "../helpers/test_server.ts";

const BIG = { bigRoom: 5, membersPage: 4, countIntervalMs: 300, maxTypers: 2, presenceDelayMs: 20 };
const ROOM = "hall";

/** The engines this file runs on: the default one (memory, or Redis under `TEST_REDIS_URL`) and SQLite. */
function engines(): [string, (dir: string) => ConfigInput][] {
  return [
    [Deno.env.get("TEST_REDIS_URL") ? "redis" : "memory", () => ({})],
    ["sqlite", (dataDir) => ({ store: "sqlite", dataDir })],
  ];
}

async function settle(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Every page of the room's members from `c`, following `next`. */
async function allPages(c: TestClient, prefix?: string): Promise<Msg[]> {
  const pages: Msg[] = [];
  let after: string | undefined;
  do {
    c.send({ type: "members", room: ROOM, ...(after && { after }), ...(prefix && { prefix }) });
    const page = await c.next("members");
    pages.push(page);
    after = page.next;
  } while (after !== undefined && pages.length < 10);
  return pages;
}

for (const [engine, overrides] of engines()) {
  Deno.test(`a room filled past --big-room tells counts, pages and few names (${engine})`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "big-rooms-" });
    try {
      await using s: TestServer = await startServer({ ...BIG, ...overrides(dir) });
      await using first = await TestClient.connect(s, { name: "aaa", room: ROOM });
      const others: TestClient[] = [];
      const started = Date.now();
      try {
        for (let i = 1; i <= 11; i++) {
          others.push(await TestClient.connect(s, { name: `m${String(i).padStart(2, "0")}`, room: ROOM }));
        }
        const filled = Date.now() - started;
        await settle(BIG.countIntervalMs + 200);
        const last = others[10];
        const all = ["aaa", ...others.map((_, i) => `m${String(i + 1).padStart(2, "0")}`)];

        // The first member saw the joins while the room was small (5 people), then counts only.
        const told = first.all("presence").map((m) => m.name);
        assert.ok(told.every((n) => ["m01", "m02", "m03", "m04"].includes(n)), `presence told: ${told}`);
        const counts = first.all("count").map((m) => m.members);
        assert.ok(counts.length >= 1, "the count is told");
        assert.equal(counts.at(-1), 12);
        assert.ok(
          counts.length <= Math.ceil((filled + 500) / BIG.countIntervalMs) + 1,
          `${counts.length} counts in ${filled} ms: coalesced, not one per join`,
        );
        assert.ok(counts.length < 7, "fewer counts than the 7 big-room joins");

        // The last to come got a count, a first page and its cursor.
        const joined = last.all("joined")[0];
        assert.equal(joined.memberCount, 12);
        assert.deepEqual(joined.members, ["aaa", "m01", "m02", "m03"]);
        assert.equal(joined.next, "m03");

        // Pages follow the cursor to the end; a prefix filters (any case).
        const pages = await allPages(last);
        assert.deepEqual(pages.flatMap((p) => p.names), all);
        assert.ok(pages.every((p) => p.count === 12 && p.names.length <= BIG.membersPage));
        assert.equal(pages.at(-1)!.next, undefined);
        last.send({ type: "members", room: ROOM, prefix: "M1" });
        const search = await last.next("members");
        assert.deepEqual(search.names, ["m10", "m11"]);
        assert.equal(search.prefix, "M1");

        // Presence now reaches `last` for the names on its last page (m10, m11) only.
        await others[9].close(); // m10
        await others[4].close(); // m05
        const leave = await last.next("presence", (m) => m.event === "leave", 3000);
        assert.equal(leave.name, "m10");
        await settle(BIG.countIntervalMs + 200);
        assert.deepEqual(last.all("presence").map((m) => m.name), ["m10"], "nothing about m05");
        assert.ok(!first.all("presence").some((m) => m.name === "m10" || m.name === "m05"));
        assert.equal(first.all("count").at(-1)!.members, 10);

        // Typing: two named at a time; a third typer's line is dropped.
        for (const c of [others[0], others[1], others[2]]) {
          c.send({ type: "typing", room: ROOM });
          await settle(30);
        }
        // Messages stay exact: one of each, in seq order, to everyone.
        const sent: number[] = [];
        for (const [i, c] of [others[2], first, others[3]].entries()) {
          c.send({ type: "send", room: ROOM, text: `hello ${i}`, cid: `c${i}` });
          sent.push((await c.next("ack", (m) => m.cid === `c${i}`)).seq);
        }
        for (const c of [first, last, others[0]]) {
          const got: number[] = [];
          for (const seq of sent) got.push((await c.next("message", (m) => m.seq === seq)).seq);
          assert.deepEqual(got, sent);
        }
        await settle(150);
        assert.deepEqual(
          [...new Set(first.all("typing").map((m) => m.name))].sort(),
          ["m01", "m02"],
          "at most two typers named",
        );
        for (const c of [first, last]) {
          const seqs = c.all("message").map((m) => m.seq);
          assert.equal(new Set(seqs).size, seqs.length, "no message twice");
        }

        // A bad page request is a clear error and the connection goes on.
        last.send({ type: "members", room: ROOM, after: "x".repeat(40) });
        const bad = await last.next("error");
        assert.equal(bad.code, "bad_message");
        last.send({ type: "members", room: "elsewhere" });
        assert.equal((await last.next("error")).code, "not_member");
        last.send({ type: "ping" });
        await last.next("pong");
      } finally {
        for (const c of others) await c.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("a room at or below --big-room answers join and presence as always", async () => {
  await using s = await startServer(BIG);
  await using a = await TestClient.connect(s, { name: "a", room: ROOM });
  await using b = await TestClient.connect(s, { name: "b", room: ROOM });
  await using c = await TestClient.connect(s, { name: "c", room: ROOM });
  await using d = await TestClient.connect(s, { name: "d", room: ROOM });
  await using e = await TestClient.connect(s, { name: "e", room: ROOM }); // 5: not above --big-room
  const joined = e.all("joined")[0];
  assert.deepEqual(joined.members, ["a", "b", "c", "d", "e"]);
  assert.equal("memberCount" in joined, false);
  await d.close();
  // Within --presence-interval of the joins' presence: the leave comes when that is over.
  await a.next("presence", (m) => m.event === "leave" && m.name === "d");
  await settle(BIG.countIntervalMs + 100);
  assert.deepEqual(a.all("presence").map((m) => `${m.event} ${m.name}`), [
    "join b",
    "join c",
    "join d",
    "join e",
    "leave d",
  ]);
  b.send({ type: "members", room: ROOM });
  assert.deepEqual((await b.next("members")).names, ["a", "b", "c", "e"]);
  for (const x of [a, b, c, e]) assert.equal(x.all("count").length, 0, "no count in a small room");
});

Deno.test({
  name: "a big room's count and member pages span the processes of a Redis deployment",
  ignore: !Deno.env.get("TEST_REDIS_URL"),
  async fn() {
    // Both started before anyone connects: each start empties Redis.
    await using a = await startServer(BIG);
    await using b = await startServer(BIG);
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 8; i++) {
        clients.push(await TestClient.connect(i % 2 ? b : a, { name: `p${i}`, room: ROOM }));
      }
      const names = clients.map((_, i) => `p${i}`);
      const last = clients[7]; // on b, with three others there: the room is big only across both
      const joined = last.all("joined")[0];
      assert.equal(joined.memberCount, 8);
      assert.deepEqual(joined.members, names.slice(0, 4));
      // A process reads a big room's list for pages at most once per count interval.
      await settle(BIG.countIntervalMs + 50);
      const pages = await allPages(last);
      assert.deepEqual(pages.flatMap((p) => p.names), names);
      await settle(BIG.countIntervalMs + 300);
      assert.equal(
        clients[0].all("count").at(-1)?.members,
        8,
        "a member on the other process is told the count",
      );
      const told = clients[0].all("presence").map((m) => m.name);
      assert.ok(!told.includes("p6") && !told.includes("p7"), `no presence past the size: ${told}`);
    } finally {
      for (const c of clients) await c.close();
    }
  },
});

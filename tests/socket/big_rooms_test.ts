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
import { rawBulk } from "../helpers/redis.ts";

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

for (const [engine, overrides] of engines()) {
  Deno.test(`a big room tells a member of its direct partners and its page's people only, renames too (${engine})`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "big-watch-" });
    try {
      await using s: TestServer = await startServer({ ...BIG, ...overrides(dir) });
      await using first = await TestClient.connect(s, { name: "aaa", room: ROOM });
      const others: TestClient[] = [];
      try {
        for (let i = 1; i <= 8; i++) {
          others.push(await TestClient.connect(s, { name: `m${String(i).padStart(2, "0")}`, room: ROOM }));
        }
        const w = await TestClient.connect(s, { name: "w", room: ROOM });
        others.push(w);
        const [m06, m07] = [others[5], others[6]];
        const joined = w.all("joined")[0];
        assert.deepEqual(joined.members, ["aaa", "m01", "m02", "m03"], "w's page");
        assert.equal(joined.memberCount, 10);

        // A direct message makes each the other's partner: each is told at once that the other is here.
        w.send({ type: "send", to: "m07", text: "hi", cid: "d1" });
        await w.next("ack", (m) => m.cid === "d1");
        assert.equal((await w.next("presence", (m) => m.name === "m07")).event, "join");
        assert.equal((await m07.next("presence", (m) => m.name === "w")).event, "join");

        // Another tab of w hears of m07 from its conversations at connect.
        const token = w.all("welcome")[0].token;
        const w2 = await TestClient.connect(s, { name: "w", token, room: ROOM });
        others.push(w2);
        assert.equal((await w2.next("presence", (m) => m.name === "m07")).event, "join");

        // m07 (partner) and m06 (no one asked) leave: w hears of m07 only, aaa (no page: it joined the
        // room small) of neither.
        await m07.close();
        await m06.close();
        for (const c of [w, w2]) {
          assert.equal((await c.next("presence", (m) => m.name === "m07")).event, "leave");
        }
        await settle(BIG.countIntervalMs + 100);
        assert.deepEqual(w.all("presence").map((m) => `${m.event} ${m.name}`), ["join m07", "leave m07"]);
        assert.ok(!first.all("presence").some((m) => m.name === "m06" || m.name === "m07"));

        // Renames: m01 (on w's page) is told to w; m05 (on no page, no partner) to no one else.
        const m08 = others[7];
        m08.send({ type: "members", room: ROOM, prefix: "m08" }); // m08's page now: itself only
        assert.deepEqual((await m08.next("members")).names, ["m08"]);
        others[0].send({ type: "nick", name: "m01x" });
        others[4].send({ type: "nick", name: "m05x" });
        assert.equal((await w.next("nick", (m) => m.old === "m01")).name, "m01x");
        assert.equal((await others[4].next("nick", (m) => m.old === "m05")).name, "m05x", "to the person");
        await settle(150);
        assert.deepEqual(w.all("nick").map((m) => m.name), ["m01x"]);
        assert.equal(m08.all("nick").length, 0, "m08 watches neither");
        assert.equal(first.all("nick").length, 0, "aaa watches no one");
        // w watches the new name: its leave reaches w.
        await others[0].close();
        assert.equal((await w.next("presence", (m) => m.name === "m01x")).event, "leave");
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

      // A direct message across processes makes partners on both; a rename on b reaches a's watchers only.
      const [p3, p4, p6] = [clients[3], clients[4], clients[6]]; // p3 on b; p4 (joined small: no page), p6 on a
      last.send({ type: "send", to: "p6", text: "hi", cid: "x1" });
      assert.equal((await last.next("presence", (m) => m.name === "p6")).event, "join");
      assert.equal((await p6.next("presence", (m) => m.name === "p7")).event, "join");
      p3.send({ type: "nick", name: "p3x" });
      assert.equal((await p6.next("nick", (m) => m.old === "p3")).name, "p3x", "p3 is on p6's page");
      await settle(200);
      assert.equal(p4.all("nick").length, 0, "p4 asked about no one");
      await p6.close();
      assert.equal((await last.next("presence", (m) => m.name === "p6")).event, "leave");
    } finally {
      for (const c of clients) await c.close();
    }
  },
});

Deno.test({
  name: "joins into a room on Redis read its shared count once a process, not once a join",
  ignore: !Deno.env.get("TEST_REDIS_URL"),
  async fn() {
    // On a Cluster the room's hash is on one of the masters: every node's calls are counted.
    const ports = Deno.env.get("TEST_REDIS_NODES")?.split(",").map(Number) ??
      [Number(new URL(Deno.env.get("TEST_REDIS_URL")!).port)];
    const calls = async (port: number) =>
      Number((await rawBulk(port, "INFO", "commandstats")).match(/cmdstat_hlen:calls=(\d+)/)?.[1] ?? 0);
    const hlen = async () => (await Promise.all(ports.map(calls))).reduce((a, b) => a + b, 0);
    await using s = await startServer({ ...BIG, bigRoom: 50 });
    const clients: TestClient[] = [];
    try {
      const before = await hlen();
      for (let i = 0; i < 8; i++) {
        clients.push(await TestClient.connect(s, { name: `h${i}`, room: "counted" }));
      }
      assert.equal(await hlen() - before, 1, "the first join here reads it; the hub follows it after");
      assert.deepEqual(clients[7].all("joined")[0].members, clients.map((_, i) => `h${i}`));
    } finally {
      for (const c of clients) await c.close();
    }
  },
});

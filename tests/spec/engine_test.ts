/** The engine boundary: the embedded engine's numbering and de-duplication, and the join seam. */
import assert from "node:assert/strict";
import type { Draft, Engine, HistoryPage } from "../../lib/engine.ts";
import { EmbeddedEngine } from "../../lib/engine_embedded.ts";
import type { ChatMessage } from "../../lib/protocol.ts";
import { MemoryStore } from "../../lib/store.ts";
import { faultyStore, type Msg, startServer, TestClient } from "../helpers/test_server.ts";

const draft = (room: string, text: string, cid?: string, key = "k1"): Draft => ({
  room,
  from: "alice",
  text,
  ts: Date.now(),
  key,
  ...(cid === undefined ? {} : { cid }),
});

Deno.test("EmbeddedEngine numbers each room gap-free, delivers in order, and knows a repeated cid", async () => {
  const engine = new EmbeddedEngine(new MemoryStore({ retainMessages: 0, retainMs: 0 }), {
    dedupWindowMs: 60_000,
  });
  const seen: ChatMessage[] = [];
  const unsubscribe = engine.subscribe({ message: (m) => seen.push(m) });
  const first = await engine.append([
    draft("a", "1", "c1"),
    draft("b", "x"),
    draft("a", "2"),
    draft("a", "1", "c1"),
  ]);
  assert.deepEqual(first.map((r) => [r.message.room, r.message.seq, r.duplicate]), [
    ["a", 1, false],
    ["b", 1, false],
    ["a", 2, false],
    ["a", 1, true], // the same cid in the same group: the first one
  ]);
  // Another person may use the same cid; the same person later gets the stored message back.
  const second = await engine.append([draft("a", "1", "c1", "k2"), draft("a", "1 again", "c1")]);
  assert.deepEqual(second.map((r) => [r.message.seq, r.message.text, r.duplicate]), [[3, "1", false], [
    1,
    "1",
    true,
  ]]);
  assert.deepEqual(seen.map((m) => `${m.room}${m.seq}`), ["a1", "b1", "a2", "a3"]);
  assert.deepEqual((await engine.after("a", 0, 10)).messages.map((m) => m.seq), [1, 2, 3]);
  assert.equal((await engine.before("a", 3, 10)).lastSeq, 3);
  unsubscribe();
  await engine.close();
});

Deno.test("EmbeddedEngine: a failed append stores nothing and uses no seq", async () => {
  const faulty = faultyStore();
  const engine = new EmbeddedEngine(faulty.store, { dedupWindowMs: 60_000 });
  await engine.append([draft("a", "1")]);
  faulty.failing = true;
  await assert.rejects(engine.append([draft("a", "2"), draft("a", "3")]));
  faulty.failing = false;
  const [r] = await engine.append([draft("a", "2")]);
  assert.equal(r.message.seq, 2);
  await engine.close();
});

/** An engine whose history reads, once `hold()` is called, wait for `release()`: reading before or after. */
function slowReads(inner: Engine, when: "read first" | "wait first") {
  let gate: Promise<void> | undefined;
  let open = () => {};
  let held = 0;
  const slow = async (read: () => Promise<HistoryPage>) => {
    if (!gate) return read();
    const g = gate;
    held++;
    if (when === "wait first") return await g, await read();
    const page = await read();
    return await g, page;
  };
  const replaced: Partial<Engine> = {
    after: (room, after, limit) => slow(() => inner.after(room, after, limit)),
    before: (room, before, limit) => slow(() => inner.before(room, before, limit)),
  };
  const engine = new Proxy(inner, {
    get(target, p) {
      if (p in replaced) return replaced[p as keyof Engine];
      const v = Reflect.get(target, p, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return {
    engine,
    hold: () => void (gate = new Promise<void>((r) => open = r)),
    release: () => (open(), gate = undefined),
    held: () => held,
  };
}

for (const when of ["read first", "wait first"] as const) {
  Deno.test(`a message sent while a join {since} reads history arrives once, in order, after it (${when})`, async () => {
    const inner = new EmbeddedEngine(new MemoryStore({ retainMessages: 0, retainMs: 0 }), {
      dedupWindowMs: 60_000,
    });
    const slow = slowReads(inner, when);
    await using s = await startServer({ presenceDelayMs: 0 }, { engine: slow.engine });
    using _ = { [Symbol.dispose]: () => slow.release() }; // a failed assertion must not leave a read held
    await using alice = await TestClient.connect(s, { name: "alice", room: "r" });
    await alice.next("joined");
    for (const cid of ["m1", "m2"]) {
      alice.send({ type: "send", room: "r", text: cid, cid });
      await alice.next("ack", (m) => m.cid === cid);
    }
    await using bob = await TestClient.connect(s, { name: "bob", room: "" });
    slow.hold();
    bob.send({ type: "join", room: "r", since: 1 });
    while (slow.held() === 0) await new Promise((r) => setTimeout(r, 5));
    alice.send({ type: "send", room: "r", text: "m3", cid: "m3" });
    await alice.next("ack", (m) => m.cid === "m3");
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(bob.all("message").length, 0, "nothing of the room before joined");
    slow.release();
    const joined = await bob.next("joined");
    if (!joined.messages.some((m: Msg) => m.seq === 3)) await bob.next("message", (m) => m.seq === 3);
    const order = bob.lines.filter((m) => m.type === "joined" || m.type === "message");
    assert.equal(order[0].type, "joined");
    const seqs = [...joined.messages, ...bob.all("message")].map((m: Msg) => m.seq);
    assert.deepEqual(seqs, [2, 3], "every missed message once, in order");
    assert.equal(joined.lastSeq, when === "read first" ? 2 : 3);
  });
}

Deno.test("an idle writer waits commitDelayMs for company: messages of several people in that moment share one write", async () => {
  await using s = await startServer({ commitDelayMs: 300 });
  const people = await Promise.all(
    ["ann", "ben", "cat"].map((name) => TestClient.connect(s, { name, room: "r" })),
  );
  const before = s.app.metrics.storeBatches;
  // 25 ms apart: each in a turn of its own, all within the wait.
  for (const [i, c] of people.entries()) {
    c.send({ type: "send", room: "r", text: `hi ${i}`, cid: `c${i}` });
    await new Promise((r) => setTimeout(r, 25));
  }
  const acks = await Promise.all(people.map((c) => c.next("ack")));
  assert.deepEqual(acks.map((a) => a.seq).sort(), [1, 2, 3]);
  assert.equal(s.app.metrics.storeBatches - before, 1, "one durable write for the three");
  await Promise.all(people.map((c) => c.close()));
});

Deno.test("a sender in a loop (its last message just before) does not make the idle writer wait for company", async () => {
  await using s = await startServer({ commitDelayMs: 40 });
  await using bot = await TestClient.connect(s, { name: "bot", room: "r" });
  const timed = async (cid: string) => {
    const t = performance.now();
    bot.send({ type: "send", room: "r", text: cid, cid });
    await bot.next("ack", (m) => m.cid === cid);
    return performance.now() - t;
  };
  const first = await timed("b1"); // a first message: it waits the 40 ms
  const next = await timed("b2"); // sent as soon as b1 was acked: not at a person's pace
  assert.ok(first >= 35, `the first waited for company (${first.toFixed(1)} ms)`);
  assert.ok(next < 35, `the next did not (${next.toFixed(1)} ms)`);
});

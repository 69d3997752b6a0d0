/** Unit tests of `Chat` with fake connections: shutdown answers what it no longer takes, then closes 1001. */
import assert from "node:assert/strict";
import { EmbeddedEngine } from "../../lib/engine_embedded.ts";
import { SYSTEM_ACTOR } from "../../lib/moderation.ts";
import { CloseCode } from "../../lib/protocol.ts";
import { testChat } from "../helpers/chat_harness.ts";

const SHUTTING_DOWN =
  "The server is restarting and took nothing more; reconnect in a moment and send it again";

Deno.test("Chat: close() acks what it took, answers frames read meanwhile shutting_down, then closes every connection 1001", async () => {
  await using t = testChat();
  const a = await t.connect({ name: "alice", room: "r" });
  const b = await t.connect({ name: "bob", room: "" });
  a.frame({ type: "send", room: "r", text: "taken", cid: "c1" });
  const closing = t.chat.close();
  a.frame({ type: "send", room: "r", text: "too late", cid: "c2" });
  a.frame("raw too late");
  b.frame({ type: "ping" });
  b.frame("{broken");
  await closing;
  // Each frame got exactly one answer before the close (in whatever order).
  assert.deepEqual(
    a.lines.filter((m) => m.type === "ack" || m.type === "error").map((m) => [m.type, m.code, m.cid, m.room])
      .sort(),
    [
      ["ack", undefined, "c1", "r"],
      ["error", "shutting_down", undefined, "r"],
      ["error", "shutting_down", "c2", "r"],
    ],
  );
  assert.equal(a.all("error")[0].message, SHUTTING_DOWN);
  assert.deepEqual(b.all("error").map((e) => e.code), ["shutting_down", "shutting_down"]);
  assert.equal(b.all("pong").length, 0, "nothing is handled any more");
  for (const p of [a, b]) {
    assert.deepEqual(p.closedWith, { code: CloseCode.GOING_AWAY, reason: "server restarting" });
  }
  assert.equal(t.chat.pendingCount, 0);
  assert.equal(t.metrics.errors.get("shutting_down"), 4);
});

Deno.test("Chat: close() keeps a connection open until it has been silent, answering what it reads meanwhile", async () => {
  await using t = testChat({ shutdownQuietMs: 150 });
  const a = await t.connect({ name: "alice", room: "r" });
  const b = await t.connect({ name: "bob", room: "r" });
  const closing = t.chat.close();
  // Frames that were on their way when the stop began keep coming for a while.
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(a.closedWith, undefined, "not closed while it still talks");
    a.frame({ type: "send", room: "r", text: "late", cid: `c${i}` });
  }
  await closing;
  assert.deepEqual(
    a.all("error").map((e) => [e.code, e.cid]),
    [0, 1, 2, 3, 4].map((i) => ["shutting_down", `c${i}`]),
  );
  for (const p of [a, b]) {
    assert.deepEqual(p.closedWith, { code: CloseCode.GOING_AWAY, reason: "server restarting" });
  }
});

Deno.test("Chat: close() closes a client that never stops talking at half the shutdown timeout", async () => {
  await using t = testChat({ shutdownQuietMs: 100, shutdownTimeoutMs: 600 });
  const a = await t.connect({ name: "alice", room: "r" });
  const began = performance.now();
  const closing = t.chat.close();
  const talk = setInterval(() => a.closedWith || a.frame({ type: "ping" }), 20);
  await closing;
  clearInterval(talk);
  const took = performance.now() - began;
  assert.ok(took >= 290 && took < 3000, `closed after ${took.toFixed(0)} ms`);
  assert.equal(a.closedWith?.code, CloseCode.GOING_AWAY);
});

Deno.test("Chat: after close() a new connection is closed 1001 at once and post() refuses shutting_down", async () => {
  await using t = testChat();
  await t.chat.close();
  const late = t.open({ name: "late" });
  assert.deepEqual(late.closedWith, { code: CloseCode.GOING_AWAY, reason: "server restarting" });
  assert.deepEqual(late.lines, []);
  await assert.rejects(t.chat.post(SYSTEM_ACTOR, "r", "hello"), { code: "shutting_down" });
});

Deno.test("Chat: close() closes the engine once, however often it is called", async () => {
  let closes = 0;
  class Counting extends EmbeddedEngine {
    override close(): Promise<void> {
      closes++;
      return super.close();
    }
  }
  await using t = testChat({}, { engineClass: Counting });
  await t.connect({ name: "alice" });
  const [x, y] = [t.chat.close(), t.chat.close()];
  assert.equal(x, y);
  await x;
  await t.chat.close();
  assert.equal(closes, 1);
});

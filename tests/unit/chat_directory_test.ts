/** Unit tests of the room directory (`rooms`) on a `Chat` with fake connections: its answer budget. */
import assert from "node:assert/strict";
import { testChat } from "../helpers/chat_harness.ts";

Deno.test("Chat: rooms goes through the answer budget: busy while earlier answers are unread", async () => {
  await using t = testChat({ maxBufferedBytes: 64 * 1024, maxAnswerBytes: 16 * 1024 });
  const a = await t.connect({ name: "alice", room: "r" });
  a.queued = 64 * 1024 - 16 * 1024 + 1;
  a.frame({ type: "rooms", q: "R", after: "a" });
  // It names the request it refuses, as the answer would: q lower-cased like room names.
  const busy = await a.error("busy");
  assert.deepEqual([busy.code, busy.q, busy.after], ["busy", "r", "a"]);
  assert.equal(a.all("rooms").length, 0);
  a.queued = 64 * 1024 - 16 * 1024;
  a.frame({ type: "rooms" });
  assert.deepEqual(await a.next("rooms"), {
    type: "rooms",
    q: "",
    items: [{ room: "r", topic: "", members: 1 }],
  });
});

Deno.test("Chat: a rooms page too big for one answer ends early, and next goes on from there", async () => {
  await using t = testChat({ maxAnswerBytes: 16 * 1024, directoryPage: 200 });
  const topic = "t".repeat(200);
  const names = Array.from({ length: 80 }, (_, i) => `room-${String(i).padStart(2, "0")}`);
  for (const room of names) {
    await t.engine.changeRoom(room, { kind: "rules", rules: { topic } }, {
      ts: 1,
      action: "room",
      by: "mod",
    });
  }
  const a = await t.connect({ name: "alice", room: "" });
  a.frame({ type: "rooms" });
  const first = await a.next("rooms");
  assert.ok(first.items.length > 10 && first.items.length < 80, `${first.items.length} rooms`);
  assert.ok(JSON.stringify(first).length <= 16 * 1024, `${JSON.stringify(first).length} characters`);
  assert.equal(first.next, first.items.at(-1).room);
  a.frame({ type: "rooms", after: first.next });
  const second = await a.next("rooms");
  assert.equal(second.next, undefined);
  assert.deepEqual([...first.items, ...second.items].map((r) => r.room), names);
});

/**
 * Deletes, edits and moderation actions reach the room by one path: the engine's ordered change
 * events, which come in the room's order (on Redis a change waits on the room's channel until the
 * message it changes is delivered). Before, `Chat` also sent its own `deleted`/`edited`/`moderation`
 * line at once, on another path, so a change could overtake its message; these tests failed then.
 */
import assert from "node:assert/strict";
import type { ChangeInfo, ChatMessage, RoomChange, RoomRules } from "../../lib/domain.ts";
import type { EngineEvents } from "../../lib/engine.ts";
import { EmbeddedEngine } from "../../lib/engine_embedded.ts";
import { signed, testChat } from "../helpers/chat_harness.ts";

/** The embedded engine whose change events wait until the test lets them go, as a slow channel would. */
class HeldChanges extends EmbeddedEngine {
  static held: (() => void)[] = [];
  override subscribe(events: EngineEvents): () => void {
    return super.subscribe({
      ...events,
      messageChanged: (m: ChatMessage, info: ChangeInfo) => {
        HeldChanges.held.push(() => events.messageChanged?.(m, info));
      },
      roomChanged: (room: string, change: RoomChange, rules: RoomRules) => {
        HeldChanges.held.push(() => events.roomChanged?.(room, change, rules));
      },
    });
  }
}

/** Lets every held change event go, in order. */
function release(): void {
  for (const go of HeldChanges.held.splice(0)) go();
}

for (const change of ["delete", "edit"] as const) {
  Deno.test(`Chat: a ${change} reaches the room when the engine tells the change, not before`, async () => {
    HeldChanges.held = [];
    await using t = testChat({}, { engineClass: HeldChanges });
    const alice = await t.connect({ name: "alice" });
    const bob = await t.connect({ name: "bob" });
    alice.frame({ type: "send", room: "lobby", text: "helo", cid: "c1" });
    const { seq } = await alice.next("ack");
    await bob.next("message", (m) => m.seq === seq);
    alice.frame(
      change === "delete"
        ? { type: "delete", room: "lobby", seq }
        : { type: "edit", room: "lobby", seq, text: "hello" },
    );
    await t.settle();
    const type = change === "delete" ? "deleted" : "edited";
    assert.equal(HeldChanges.held.length, 1, "the engine told the change once");
    assert.deepEqual([...alice.all(type), ...bob.all(type)], [], "nothing before the engine's event");
    release();
    const line = await bob.next(type);
    assert.equal(line.seq, seq);
    assert.equal(line.rev, 1);
    if (change === "delete") assert.equal(line.by, "alice");
    else assert.equal(line.text, "hello");
    await alice.next(type);
    await t.settle();
    assert.equal(bob.all(type).length, 1, "told once");
  });
}

for (const action of ["kick", "mute"] as const) {
  Deno.test(`Chat: a ${action} is told to the room when the engine tells the change, not before`, async () => {
    HeldChanges.held = [];
    await using t = testChat({}, { engineClass: HeldChanges });
    const mod = await t.connect({ identity: signed("mo", { role: "moderator" }) });
    const bob = await t.connect({ identity: signed("bob") });
    mod.frame({ type: action, room: "lobby", name: "bob", reason: "calm down" });
    await t.settle();
    assert.equal(HeldChanges.held.length, 1, "the engine told the change once");
    assert.deepEqual(
      [...mod.all("moderation"), ...bob.all("moderation")],
      [],
      "nothing before the engine's event",
    );
    assert.deepEqual(bob.all("kicked"), []);
    release();
    const line = await mod.next("moderation");
    assert.deepEqual(
      [line.action, line.name, line.uid, line.by, line.reason],
      [action, "bob", "bob", "mo", "calm down"],
    );
    if (action === "kick") {
      assert.equal((await bob.next("kicked")).reason, "kicked");
      await t.settle();
      assert.deepEqual(bob.all("moderation"), [], "the person taken out hears kicked, not the line");
    } else {
      assert.equal((await bob.next("moderation")).until, 0);
    }
  });
}

Deno.test("Chat: an edit and a delete take a token of the sender's rate bucket, as a send does", async () => {
  await using t = testChat({ messagesPerSecond: 1, burst: 4, maxStrikes: 100 });
  const a = await t.connect({ name: "alice", room: "lobby" });
  a.frame({ type: "send", room: "lobby", text: "one", cid: "c1" });
  const { seq } = await a.next("ack");
  a.frame({ type: "edit", room: "lobby", seq, text: "one!" });
  a.frame({ type: "edit", room: "lobby", seq, text: "one!!" });
  a.frame({ type: "delete", room: "lobby", seq });
  // The bucket is empty: the next frame, whatever it is, is refused and not handled.
  a.frame({ type: "send", room: "lobby", text: "two", cid: "c2" });
  await a.error("rate_limited");
  await t.settle();
  assert.deepEqual([a.all("edited").length, a.all("deleted").length, a.all("ack").length], [2, 1, 1]);
});

/**
 * A message keeps its sender's display name (issue #19, item 3) on every engine: stored with it, read
 * back by every read, delivered live with it, kept by a tombstone and by an edit, and across a restart.
 * @module
 */
import assert from "node:assert/strict";
import type { Draft } from "../../lib/engine.ts";
import type { ChatMessage } from "../../lib/protocol.ts";
import { sharingOf } from "../../lib/app.ts";
import { engineKinds } from "../helpers/engine_kinds.ts";

/** A room of its own per test: Redis runs are not flushed between tests. */
const newRoom = () => `d${crypto.randomUUID().slice(0, 8)}`;

const draft = (room: string, text: string, extra: Partial<Draft> = {}): Draft => ({
  room,
  from: "Ada_Lovelace",
  display: "Ada Lovelace",
  text,
  ts: Date.now(),
  key: "k-ada",
  ...extra,
});

for (const [kind, make] of engineKinds()) {
  Deno.test(`${kind}: a message keeps its sender's display name, read, live, edited, deleted and resent`, async () => {
    const u = await make({});
    const room = newRoom();
    const e = u.engine;
    const got: ChatMessage[] = [];
    const unsubscribe = e.subscribe({ message: (m) => m.room === room && got.push(m) });
    await sharingOf(e)?.watch(room);
    // Escapes in JSON and a reply beside it: the Redis channel form takes another path for those.
    const tricky = 'Zoë "Z" Smith\\Jones';
    const appended = await e.append([
      draft(room, "one", { cid: "c1" }),
      draft(room, "plain", { from: "bob", key: "k-bob", display: undefined }),
      draft(room, "@bob re", { display: tricky, replyTo: 1, mentions: [{ key: "k-bob", name: "bob" }] }),
    ]);
    assert.deepEqual(appended.map((a) => a.message.display), ["Ada Lovelace", undefined, tricky]);
    const end = Date.now() + 3000;
    while (got.length < 3 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(got.map((m) => m.display), ["Ada Lovelace", undefined, tricky], "live");
    assert.equal("display" in got[1], false);
    const read = (await e.before(room, Number.MAX_SAFE_INTEGER, 10)).messages;
    assert.deepEqual(read.map((m) => m.display), ["Ada Lovelace", undefined, tricky], "before()");
    assert.deepEqual((await e.after(room, 0, 10)).messages.map((m) => m.display), [
      "Ada Lovelace",
      undefined,
      tricky,
    ]);
    // A resent cid answers the message as stored, with its display name.
    const [again] = await e.append([draft(room, "one", { cid: "c1", display: "Someone Else" })]);
    assert.equal(again.duplicate, true);
    assert.equal(again.message.display, "Ada Lovelace");
    // An edit keeps it; a delete keeps it on the tombstone.
    const edited = await e.changeMessage(
      room,
      3,
      { kind: "edit", text: "@bob re!", editedTs: Date.now() },
      {},
    );
    assert.ok(edited.ok);
    assert.equal(edited.message.display, tricky);
    const deleted = await e.changeMessage(room, 1, { kind: "delete", by: "Ada_Lovelace" }, {});
    assert.ok(deleted.ok);
    assert.equal(deleted.message.display, "Ada Lovelace");
    const after = (await e.before(room, Number.MAX_SAFE_INTEGER, 10)).messages;
    assert.deepEqual(after.map((m) => [m.deleted ?? false, m.display]), [
      [true, "Ada Lovelace"],
      [false, undefined],
      [false, tricky],
    ]);
    unsubscribe();
    sharingOf(e)?.unwatch(room);
    if (u.reopen) {
      const e2 = await u.reopen();
      const kept = (await e2.before(room, Number.MAX_SAFE_INTEGER, 10)).messages;
      assert.deepEqual(kept.map((m) => m.display), ["Ada Lovelace", undefined, tricky], "after a restart");
    }
    await u.cleanup();
  });
}

/**
 * The page's direct conversations (static/client/directs.js) hold their messages in order: by time,
 * and within one millisecond by seq. A conversation's list entry brings its last message before the
 * history page that holds the ones before it, often sent in the same millisecond by a script or a
 * paste of several lines.
 * @module
 */
import assert from "node:assert/strict";
import { DirectConversation } from "../../static/client/directs.js";

const msg = (convSeq: number, ts: number) => ({
  conv: "@c",
  convSeq,
  to: "ada",
  from: "bob",
  text: `m${convSeq}`,
  ts,
});

Deno.test("DirectConversation.add() orders by time, then by seq within one millisecond", () => {
  const c = new DirectConversation("bob");
  // The list's last message first, then the page before it: three of them share its millisecond.
  c.add(msg(5, 2000));
  for (const m of [msg(1, 1000), msg(2, 1500), msg(3, 2000), msg(4, 2000)]) c.add(m);
  assert.deepEqual(c.messages.map((m: { convSeq?: number }) => m.convSeq), [1, 2, 3, 4, 5]);
  // A live one without a seq yet (sent here, not acked) goes after those of its millisecond.
  c.add({ ...msg(0, 2000), convSeq: undefined, cid: "x" });
  assert.equal(c.messages.at(-1)?.cid, "x");
  assert.equal(c.lastSeq, 5);
});

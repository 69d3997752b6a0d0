/** The page's message ids (`newCid`): valid for the server, unique, and growing with time. */
import assert from "node:assert/strict";
import { newCid } from "../../static/client/outbox.js";
import { parseClientFrame } from "../../lib/protocol.ts";

const LIMITS = { maxTextChars: 4000, maxFrameBytes: 65536 };

Deno.test("newCid: the server takes it as a cid, 10,000 are distinct, and a later one sorts after", async () => {
  const ids = Array.from({ length: 10_000 }, () => newCid());
  assert.equal(new Set(ids).size, ids.length);
  for (const cid of ids.slice(0, 100)) {
    const m = parseClientFrame(JSON.stringify({ type: "send", room: "r", text: "hi", cid }), LIMITS);
    assert.equal((m as { cid?: string }).cid, cid);
  }
  // Time first, at a fixed width: the server's index of a person's cids takes each new one at its end.
  const before = newCid();
  await new Promise((r) => setTimeout(r, 3));
  const after = newCid();
  assert.ok(before < after, `${before} < ${after}`);
  assert.equal(before.length, after.length);
});

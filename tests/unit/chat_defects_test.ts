/**
 * Small defects of `Chat` found while writing its unit tests (issue #17, step 9), each pinned by a test
 * that failed before the chat split (one place maps engine errors, and a failed action is logged as
 * what it was).
 */
import assert from "node:assert/strict";
import { type ChangeResult, type ReactResult, type ReadMark, UnavailableError } from "../../lib/engine.ts";
import { EmbeddedEngine } from "../../lib/engine_embedded.ts";
import { testChat } from "../helpers/chat_harness.ts";

/** The embedded engine with a read-position store out of reach (Redis down). */
class UnreachableReads extends EmbeddedEngine {
  override markRead(): Promise<ReadMark> {
    return Promise.reject(new UnavailableError("redis unavailable"));
  }
}

/** The embedded engine whose reactions and message changes fail (a full disk). */
class FailingChanges extends EmbeddedEngine {
  override react(): Promise<ReactResult> {
    return Promise.reject(new Error("disk I/O error"));
  }
  override changeMessage(): Promise<ChangeResult> {
    return Promise.reject(new Error("disk I/O error"));
  }
}

Deno.test({
  name:
    "Chat: a read mark that finds the engine out of reach says the read position was not saved, not that people cannot be reached",
  async fn() {
    await using t = testChat({}, { engineClass: UnreachableReads });
    const a = await t.connect({ name: "alice", room: "r" });
    a.frame({ type: "read", room: "r", seq: 0 });
    const e = await a.error("unavailable");
    assert.equal(e.room, "r");
    assert.doesNotMatch(e.message, /People on other servers cannot be reached/);
    assert.match(e.message, /read/i, "the sentence speaks of the read position");
  },
});

Deno.test({
  name: 'Chat: a failed react is logged as a failed reaction, not as "moderation failed"',
  async fn() {
    await using t = testChat({}, { engineClass: FailingChanges });
    const a = await t.connect({ name: "alice" });
    a.frame({ type: "send", room: "lobby", text: "hi", cid: "c1" });
    await a.next("ack");
    a.frame({ type: "react", room: "lobby", seq: 1, emoji: "👍" });
    await a.next("error");
    const errors = t.logs.filter((l) => l.includes("level=error"));
    assert.equal(errors.filter((l) => l.includes('msg="moderation failed"')).length, 0, errors.join("\n"));
    assert.ok(
      errors.some((l) => /msg="?[^"=]*react/i.test(l)),
      `no error line names the reaction:\n${errors.join("\n")}`,
    );
  },
});

Deno.test({
  name: 'Chat: a failed edit is logged as a failed edit, not as "moderation failed"',
  async fn() {
    await using t = testChat({}, { engineClass: FailingChanges });
    const a = await t.connect({ name: "alice" });
    a.frame({ type: "send", room: "lobby", text: "helo", cid: "c1" });
    await a.next("ack");
    a.frame({ type: "edit", room: "lobby", seq: 1, text: "hello" });
    await a.next("error");
    const errors = t.logs.filter((l) => l.includes("level=error"));
    assert.equal(errors.filter((l) => l.includes('msg="moderation failed"')).length, 0, errors.join("\n"));
    assert.ok(
      errors.some((l) => /msg="?[^"=]*edit/i.test(l)),
      `no error line names the edit:\n${errors.join("\n")}`,
    );
  },
});

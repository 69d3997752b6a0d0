/**
 * Search in the page (#21): Ctrl-K and `/` focus the box, results come grouped by room with the
 * matched words marked (as text: a message's markup stays text), arrows and Enter open a result, and
 * its room opens at that message, far back in its history (one `history {around}`), focused and
 * marked. A server without search hides the box. In a real browser against a real server; skipped,
 * with the reason printed, where Chromium is not installed.
 * @module
 */
import assert from "node:assert/strict";
import { browserMissing, launchBrowser, openChat, waitMessage } from "../helpers/browser.ts";
import { startServer, TestClient } from "../helpers/test_server.ts";
import { EmbeddedEngine } from "../../lib/engine_embedded.ts";
import { MemoryStore } from "../../lib/store.ts";

const ignore = browserMissing !== undefined;

/** Inside `page.evaluate` callbacks only (tests type-check without the DOM lib). */
// deno-lint-ignore no-explicit-any
declare const document: any;

/** The result groups shown: each room's title and its results' texts and marked words. */
function shownResults(page: import("../helpers/browser.ts").Page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("#search-groups .search-group")].map((g: {
      querySelector(s: string): { textContent: string };
      querySelectorAll(s: string): { textContent: string; querySelectorAll(s: string): unknown[] }[];
    }) => ({
      where: g.querySelector(".search-where").textContent,
      texts: [...g.querySelectorAll(".search-text")].map((t) => t.textContent),
      marks: [...g.querySelectorAll(".search-text mark")].map((t) => t.textContent),
      imgs: [...g.querySelectorAll(".search-text img")].length,
    }))
  );
}

Deno.test({
  name: "browser: Ctrl-K searches, results grouped by room with marks, Enter opens the room at the message",
  ignore,
  async fn() {
    await using server = await startServer({ messagesPerSecond: 1000, burst: 1000, historyOnJoin: 20 });
    await using bob = await TestClient.connect(server, { name: "bob", room: "archive" });
    await bob.next("joined");
    const send = async (room: string, text: string, cid: string) => {
      bob.send({ type: "send", room, text, cid });
      await bob.next("ack", (m) => m.cid === cid);
    };
    await send("archive", "before the needle", "b0");
    await send("archive", "the needle 会議 is here", "n1");
    await send("archive", "after the needle", "a0");
    for (let i = 0; i < 120; i++) await send("archive", `filler ${i}`, `f${i}`);
    bob.send({ type: "join", room: "lobby" });
    await bob.next("joined");
    await send("lobby", "<img src=x onerror=alert(1)> needle in the lobby", "x1");

    await using tb = await launchBrowser();
    const { page, problems } = await openChat(tb, server.url, { name: "ada", hash: "archive" });
    await waitMessage(page, "filler 119");
    await page.evaluate(() => (location.hash = "#lobby"));
    await waitMessage(page, "<img src=x onerror=alert(1)> needle in the lobby");
    // The box is there (the server searches), Ctrl-K focuses it.
    await page.waitForSelector("#search-form:not([hidden])");
    await page.keyboard.down("Control");
    await page.keyboard.press("k");
    await page.keyboard.up("Control");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "search-input");
    await page.keyboard.type("needl");
    await page.waitForFunction(() => document.querySelectorAll("#search-groups .search-hit").length === 4);
    assert.deepEqual(await shownResults(page), [
      {
        where: "#lobby",
        texts: ["<img src=x onerror=alert(1)> needle in the lobby"],
        marks: ["needle"],
        imgs: 0,
      },
      {
        where: "#archive",
        texts: ["after the needle", "the needle 会議 is here", "before the needle"],
        marks: ["needle", "needle", "needle"],
        imgs: 0,
      },
    ]);
    assert.match(
      await page.$eval("#search-status", (e: { textContent: string }) => e.textContent),
      /4 messages/,
    );
    // A CJK word inside a sentence, and the marks the server computed.
    await page.keyboard.press("Escape");
    await page.focus("#composer-input");
    await page.keyboard.press("Escape");
    await page.evaluate(() => document.activeElement?.blur());
    await page.keyboard.press("/");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "search-input");
    await page.keyboard.type("会議");
    await page.waitForFunction(() => document.querySelectorAll("#search-groups .search-hit").length === 1);
    assert.deepEqual((await shownResults(page))[0].marks, ["会議"]);
    // Keyboard only: down to the result, Enter: the archive opens at that message, 120 messages back.
    await page.keyboard.press("ArrowDown");
    assert.equal(await page.evaluate(() => document.activeElement?.className), "search-hit");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => location.hash === "#archive");
    await page.waitForFunction(() => {
      const li = document.querySelector('.view:not([hidden]) li.msg[data-seq="2"]');
      return li && li.classList.contains("found") && document.activeElement === li;
    });
    // With its context before and after it, and no hole up to the newest.
    const seqs: number[] = await page.evaluate(() =>
      [...document.querySelectorAll(".view:not([hidden]) ol.messages:not(.pending-list) li.msg")]
        .map((li: { dataset: { seq: string } }) => Number(li.dataset.seq))
    );
    await page.waitForFunction(() =>
      document.querySelectorAll(".view:not([hidden]) ol.messages:not(.pending-list) li.msg").length >= 123
    );
    assert.ok(seqs.includes(1) && seqs.includes(3), `context around seq 2: ${seqs.slice(0, 5)}`);
    const all: number[] = await page.evaluate(() =>
      [...document.querySelectorAll(".view:not([hidden]) ol.messages:not(.pending-list) li.msg")]
        .map((li: { dataset: { seq: string } }) => Number(li.dataset.seq))
    );
    assert.deepEqual(all, Array.from({ length: 123 }, (_, i) => i + 1));
    assert.deepEqual(problems.errors, []);
  },
});

Deno.test({
  name: "browser: a server without search (as on Redis) hides the search box",
  ignore,
  async fn() {
    const engine = new EmbeddedEngine(new MemoryStore({ retainMessages: 0, retainMs: 0 }), {
      dedupWindowMs: 0,
    });
    Object.defineProperty(engine, "search", { value: undefined });
    await using server = await startServer({}, { engine });
    await using tb = await launchBrowser();
    const { page, problems } = await openChat(tb, server.url, { name: "ada" });
    await page.waitForSelector("#composer-input");
    assert.equal(await page.$eval("#search-form", (e: { hidden: boolean }) => e.hidden), true);
    // Ctrl-K does nothing there.
    await page.keyboard.down("Control");
    await page.keyboard.press("k");
    await page.keyboard.up("Control");
    assert.notEqual(await page.evaluate(() => document.activeElement?.id), "search-input");
    assert.deepEqual(problems.errors, []);
  },
});

Deno.test({
  name:
    "browser: a direct message found by search opens its conversation at the message, far back, with no hole",
  ignore,
  async fn() {
    await using server = await startServer({
      messagesPerSecond: 1000,
      burst: 1000,
      historyPage: 40,
      firstContactsPerHour: 1000,
      firstContactsPerIpPerHour: 1000,
    });
    await using tb = await launchBrowser();
    const { page, problems } = await openChat(tb, server.url, { name: "ada" });
    await using bob = await TestClient.connect(server, { name: "bob", room: "" });
    const dm = async (text: string, cid: string) => {
      bob.send({ type: "send", to: "ada", text, cid });
      await bob.next("ack", (m) => m.cid === cid);
    };
    await dm("before the haystack", "b0");
    await dm("the haystack hides 会議 here", "n1");
    await dm("after the haystack", "a0");
    for (let i = 0; i < 100; i++) await dm(`straw ${i}`, `s${i}`);
    // A reload holds only the newest page of the conversation (direct messages are not kept offline).
    await page.reload();
    await page.waitForSelector(`#conn-status[data-state="live"]`);
    await page.evaluate(() => (location.hash = "#@bob"));
    await waitMessage(page, "straw 99");
    const held = () =>
      page.evaluate(() =>
        [...document.querySelectorAll(".view:not([hidden]) ol.messages:not(.pending-list) li.msg")]
          .map((li: { dataset: { convSeq: string } }) => Number(li.dataset.convSeq))
      );
    assert.ok(!(await held()).includes(2), "the found message is not held before the jump");
    await page.evaluate(() => (location.hash = "#lobby"));
    await page.waitForSelector("#search-form:not([hidden])");
    await page.focus("#search-input");
    await page.keyboard.type("haystack hides");
    await page.waitForFunction(() => document.querySelectorAll("#search-groups .search-hit").length === 1);
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => location.hash === "#@bob");
    await page.waitForFunction(() => {
      const li = document.querySelector('.view:not([hidden]) li.msg[data-conv-seq="2"]');
      return li && li.classList.contains("found") && document.activeElement === li;
    });
    // Its context, and the pages forward up to what was held: every message once, in order.
    await page.waitForFunction(() =>
      document.querySelectorAll(".view:not([hidden]) ol.messages:not(.pending-list) li.msg").length >= 102
    );
    const seqs = await held();
    assert.deepEqual(seqs.slice(seqs.indexOf(2) - 1), Array.from({ length: 103 }, (_, i) => i + 1));
    assert.deepEqual(problems.errors, []);
  },
});

/**
 * Display names in the page (#19, item 3): a name with spaces or punctuation is taken at sign-in and
 * shown as written on messages, in the member list and in "is typing", with the handle on hover and
 * beside it in the member list; the rename box sets a new display name. In a real browser against a
 * real server; skipped, with the reason printed, where Chromium is not installed.
 * @module
 */
import assert from "node:assert/strict";
import { browserMissing, launchBrowser, openChat, say, waitMessage } from "../helpers/browser.ts";
import { startServer, TestClient } from "../helpers/test_server.ts";

const ignore = browserMissing !== undefined;

/** Inside `page.evaluate` callbacks only (tests type-check without the DOM lib). */
// deno-lint-ignore no-explicit-any
declare const document: any;

Deno.test({
  name: "browser: a name with spaces signs in and is shown as written, with the handle on hover",
  ignore,
  async fn() {
    await using server = await startServer();
    await using tb = await launchBrowser();
    const { page, problems } = await openChat(tb, server.url, { name: "Ada Lovelace" });
    // The sidebar shows the display name, the handle on hover.
    const me = await page.$eval("#me-name", (e) => [e.textContent, e.getAttribute("title")]);
    assert.deepEqual(me, ["Ada Lovelace", "@Ada_Lovelace"]);
    // A JSON client in the room sees who she is.
    await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
    await say(page, "hello from the page");
    const got = await bob.next("message", (m) => m.text === "hello from the page");
    assert.deepEqual([got.from, got.display], ["Ada_Lovelace", "Ada Lovelace"]);
    // Someone else with a display name: shown as written on the message and in the member list.
    await using zoe = await TestClient.connect(server, { display: "Zoë Smith-Jones", room: "lobby" });
    zoe.send({ type: "send", room: "lobby", text: "hi Ada", cid: "z1" });
    await waitMessage(page, "hi Ada");
    const from = await page.evaluate(() => {
      const li = [...document.querySelectorAll(".view:not([hidden]) li.msg")]
        .find((m: { querySelector(s: string): { textContent: string } | null }) =>
          m.querySelector(".msg-text")?.textContent === "hi Ada"
        );
      const f = li.querySelector(".msg-from");
      return [f.textContent, f.getAttribute("title"), li.querySelector(".avatar").textContent];
    });
    assert.deepEqual(from, ["Zoë Smith-Jones", "@Zoë_Smith-Jones", "Z"]);
    await page.waitForFunction(() =>
      [...document.querySelectorAll("#member-list .member-name")].some((e: { textContent: string }) =>
        e.textContent === "Zoë Smith-Jones"
      )
    );
    const row = await page.evaluate(() => {
      const li = [...document.querySelectorAll("#member-list li.member")]
        .find((e: { dataset: { name: string } }) => e.dataset.name === "Zoë_Smith-Jones");
      return [
        li.querySelector(".member-handle")?.textContent,
        li.querySelector("button")?.getAttribute("aria-label"),
      ];
    });
    assert.deepEqual(row, ["@Zoë_Smith-Jones", "Zoë Smith-Jones (@Zoë_Smith-Jones): send a direct message"]);
    // Bob, who has none, is shown by his handle alone.
    const bobRow = await page.evaluate(() => {
      const li = [...document.querySelectorAll("#member-list li.member")]
        .find((e: { dataset: { name: string } }) => e.dataset.name === "bob");
      return [li.querySelector(".member-name")?.textContent, li.querySelector(".member-handle")];
    });
    assert.deepEqual(bobRow, ["bob", null]);
    // Typing is shown under the display name.
    zoe.send({ type: "typing", room: "lobby" });
    await page.waitForFunction(() =>
      document.querySelector("#typing")?.textContent === "Zoë Smith-Jones is typing…"
    );
    // The rename box takes a new display name; the JSON client hears it.
    await page.click("#rename-button");
    await page.$eval("#rename-input", (e: { value: string }) => (e.value = ""));
    await page.type("#rename-input", "Ada King");
    await page.keyboard.press("Enter");
    const nick = await bob.next("nick");
    assert.deepEqual(nick, { type: "nick", old: "Ada_Lovelace", name: "Ada_Lovelace", display: "Ada King" });
    await page.waitForFunction(() => document.querySelector("#me-name")?.textContent === "Ada King");
    // The choice survives a reload (the device keeps it).
    await page.reload();
    await page.waitForSelector(`#conn-status[data-state="live"]`);
    await page.waitForFunction(() => document.querySelector("#me-name")?.textContent === "Ada King");
    assert.deepEqual(problems.errors, []);
  },
});

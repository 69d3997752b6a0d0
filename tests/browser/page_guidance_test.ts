/**
 * The page tells people what is going on (#19): why the server refuses it and what to do, that a
 * server without guests signs people in through its host site, whose message a message's tools belong
 * to, and which commands the message box runs. In a real browser against a real server; skipped, with
 * the reason printed, where Chromium is not installed.
 * @module
 */
import assert from "node:assert/strict";
import {
  browserMissing,
  launchBrowser,
  openChat,
  type Page,
  say,
  waitMessage,
  waitState,
  waitText,
} from "../helpers/browser.ts";
import { startServer } from "../helpers/test_server.ts";

const ignore = browserMissing !== undefined;

/** Inside `page.evaluate` callbacks only (tests type-check without the DOM lib). */
// deno-lint-ignore no-explicit-any
declare const document: any;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Box {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** The box of the first element matching `selector` inside the delivered message with `text`. */
function boxIn(page: Page, text: string, selector: string): Promise<Box | null> {
  return page.evaluate(
    (t: string, sel: string) => {
      const li = [...document.querySelectorAll(".view:not([hidden]) li.msg")]
        .find((m: { querySelector(s: string): { textContent: string } | null }) =>
          m.querySelector(".msg-text")?.textContent === t
        );
      const e = sel === "" ? li : li?.querySelector(sel);
      if (!e) return null;
      const r = e.getBoundingClientRect();
      return { left: r.left, right: r.right, top: r.top, bottom: r.bottom };
    },
    text,
    selector,
  );
}

function overlaps(a: Box, b: Box): boolean {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

function overlapsAcross(a: Box, b: Box): boolean {
  return a.left < b.right && b.left < a.right;
}

Deno.test({
  name:
    "browser: a page under a name the server refuses says why and what to do, not only that it reconnects",
  ignore,
  async fn() {
    await using server = await startServer();
    // A LAN name for this machine, as a colleague would open it: chat.test is 127.0.0.1 for this browser.
    await using tb = await launchBrowser({ args: ["--host-resolver-rules=MAP chat.test 127.0.0.1"] });
    const origin = `http://chat.test:${server.port}`;
    const { page } = await openChat(tb, origin);
    await page.waitForSelector("#name-input", { visible: true });
    await page.type("#name-input", "ada");
    await page.keyboard.press("Enter");
    await page.waitForSelector("#conn-problem:not([hidden])", { timeout: 6000 });
    const why = await page.$eval("#conn-problem", (e) => e.textContent ?? "");
    assert.match(why, /refuses this page/);
    assert.match(why, new RegExp(`--public-origin ${origin.replaceAll(".", "\\.")}`), why);
    assert.notEqual(await page.$eval("#conn-status", (e) => e.getAttribute("data-state")), "live");
    // The room it could not join holds nothing to scroll back to.
    await page.waitForSelector(".view:not([hidden]) .history-status");
    assert.doesNotMatch(
      await page.$eval(".view:not([hidden]) .history-status", (e) => e.textContent ?? ""),
      /Scroll up/,
    );
  },
});

Deno.test({
  name: "browser: a server without guests gets no name form but the host site's sign-in link",
  ignore,
  async fn() {
    await using server = await startServer({
      jwtSecret: "a-browser-test-secret-of-more-than-32-bytes",
      signInUrl: "https://host.example/sign-in?next=chat",
    });
    await using tb = await launchBrowser();
    const { page, problems } = await openChat(tb, server.url);
    await page.waitForSelector("#signed-only", { visible: true, timeout: 5000 });
    assert.match(
      await page.$eval("#signed-only", (e) => e.textContent ?? ""),
      /signs people in through the site/,
    );
    assert.equal(
      await page.$eval("#sign-in-link", (e) => e.getAttribute("href")),
      "https://host.example/sign-in?next=chat",
    );
    assert.equal(await page.$("#name-input").then((e) => e?.isVisible()), false, "no name asked");
    assert.equal(await page.$("#app").then((e) => e?.isVisible()), false, "no chat that cannot connect");
    await sleep(300);
    assert.equal(server.app.metrics.connectionsRefused, 0, "no connect tried");
    assert.deepEqual(problems.errors.filter((e) => !/favicon/.test(e)), []);
  },
});

Deno.test({
  name:
    "browser: a message's tools sit on its own bubble and its palette covers nothing above; /help lists the commands",
  ignore,
  async fn() {
    await using server = await startServer();
    await using tb = await launchBrowser();
    const carol = await openChat(tb, server.url, { name: "carol" });
    const ada = await openChat(tb, server.url, { name: "ada" });
    await say(carol.page, "hi from carol");
    await waitMessage(ada.page, "hi from carol");
    await say(ada.page, "mine");
    await waitMessage(ada.page, "mine");
    // A bare name is no mention (the server counts only @name); @ada is.
    await say(carol.page, "ada is here");
    await say(carol.page, "and @ada too");
    await waitMessage(ada.page, "and @ada too");
    assert.equal(await ada.page.evaluate(() => document.querySelectorAll("li.msg.mention").length), 1);
    assert.equal(
      await ada.page.evaluate(() => document.querySelector("li.msg.mention .msg-text").textContent),
      "and @ada too",
    );

    // Ada's own message, right below carol's: its tools are on ada's bubble, not under carol's.
    const mine = (await boxIn(ada.page, "mine", ".msg-text"))!;
    const carols = (await boxIn(ada.page, "hi from carol", ".msg-text"))!;
    await ada.page.hover(`li.msg.own .msg-text`);
    await sleep(250);
    const tools = (await boxIn(ada.page, "mine", ".msg-tools"))!;
    assert.ok(
      overlapsAcross(tools, mine),
      `tools ${JSON.stringify(tools)} over ada's bubble ${JSON.stringify(mine)}`,
    );
    assert.ok(Math.abs(tools.right - mine.right) <= 4, "from the bubble's own (right) edge");
    assert.ok(!overlaps(tools, carols), "not on carol's bubble");
    assert.ok(tools.top >= carols.bottom, "not into the message above");
    assert.ok(tools.bottom > mine.top - 14, "on ada's own message");

    // The reaction palette opens from there and covers nothing of the message above.
    await ada.page.click(`li.msg.own [data-action="add-reaction"]`);
    await ada.page.waitForSelector("li.msg.own .reaction-palette");
    const palette = (await boxIn(ada.page, "mine", ".reaction-palette"))!;
    assert.ok(!overlaps(palette, carols), `palette ${JSON.stringify(palette)} clear of carol's bubble`);
    assert.ok(palette.top >= carols.bottom, "the palette stays below the message above");
    await ada.page.keyboard.press("Escape");

    // Someone else's message: its tools are on that bubble too, from its left edge.
    const carolsLast = (await boxIn(ada.page, "and @ada too", ".msg-text"))!;
    await ada.page.hover(`li.msg.mention .msg-text`);
    await sleep(250);
    const theirTools = (await boxIn(ada.page, "and @ada too", ".msg-tools"))!;
    assert.ok(overlapsAcross(theirTools, carolsLast), "their tools over their bubble");
    assert.ok(Math.abs(theirTools.left - carolsLast.left) <= 4, "from the bubble's own (left) edge");

    // /help lists the commands rather than calling itself unknown.
    await say(ada.page, "/help");
    await waitText(ada.page, "#toasts", "/join");
    const help = await ada.page.$eval("#toasts", (e) => e.textContent ?? "");
    for (const cmd of ["/join", "/leave", "/nick", "/msg"]) {
      assert.ok(help.includes(cmd), `${cmd} in ${help}`);
    }
    assert.doesNotMatch(help, /Unknown command/);
    await waitState(ada.page, "live");
  },
});

/**
 * Conversations on the chat page (issue #11), in a real browser against a real server: stored
 * direct messages reach someone who was offline, read state follows the person to their other page,
 * replies quote their original, reactions reach every page, and what users type in them stays text.
 * Skipped, with the reason printed, where Chromium is not installed.
 * @module
 */
import assert from "node:assert/strict";
import {
  browserMissing,
  launchBrowser,
  messageTexts,
  openChat,
  type Page,
  type PageProblems,
  say,
  type TestBrowser,
  waitMessage,
  waitState,
  waitText,
} from "../helpers/browser.ts";
import { startServer, TestClient } from "../helpers/test_server.ts";

const ignore = browserMissing !== undefined;

/** Inside `page.evaluate` callbacks only (tests type-check without the DOM lib). */
// deno-lint-ignore no-explicit-any
declare const document: any;
// deno-lint-ignore no-explicit-any
declare const window: any;
// deno-lint-ignore no-explicit-any
declare const localStorage: any;

/**
 * Opens another page of the person signed in on `from` (a browser context of its own, holding the
 * same guest identity: another device of the same person), at `hash`.
 */
async function openSamePerson(tb: TestBrowser, url: string, from: Page | string, hash = "lobby") {
  const identity = typeof from === "string" ? from : await identityOf(from);
  const context = await tb.browser.createBrowserContext();
  const page = await context.newPage();
  page.setDefaultTimeout(8000);
  await page.setViewport({ width: 1280, height: 800 });
  const problems: PageProblems = { errors: [] };
  page.on("pageerror", (e) => problems.errors.push(`pageerror: ${(e as Error).message ?? e}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.errors.push(`console: ${m.text()}`);
  });
  await page.evaluateOnNewDocument((v: string) => {
    if (!localStorage.getItem("chat:identity")) localStorage.setItem("chat:identity", v);
  }, identity);
  await page.goto(`${url}/#${hash}`);
  await waitState(page, "live");
  return { page, context, problems };
}

/** The guest identity a page keeps (its name and token), to open another page of the same person. */
function identityOf(page: Page): Promise<string> {
  return page.evaluate(() => localStorage.getItem("chat:identity"));
}

/** The unread badge of a conversation link in the sidebar (`#room` or `#@name`), or null. */
function badge(page: Page, key: string): Promise<string | null> {
  return page.evaluate(
    (k: string) =>
      document.querySelector(`#sidebar a[href="#${k}"] .badge:not(.mention-badge)`)?.textContent ?? null,
    key,
  );
}

/** Waits until the badge of `key` reads `text` (null: no badge). */
async function waitBadge(page: Page, key: string, text: string | null): Promise<void> {
  await page.waitForFunction(
    (k: string, t: string | null) =>
      (document.querySelector(`#sidebar a[href="#${k}"] .badge:not(.mention-badge)`)?.textContent ?? null) ===
        t,
    {},
    key,
    text,
  );
}

/** Selector of the delivered message with exactly `text` in the open conversation (by its seq). */
async function msgSel(page: Page, text: string): Promise<string> {
  await waitMessage(page, text);
  const seq = await page.evaluate((t: string) => {
    const li = [...document.querySelectorAll(".view:not([hidden]) li.msg[data-seq]")]
      .find((e: { querySelector(s: string): { textContent: string } | null }) =>
        e.querySelector(".msg-text")?.textContent === t
      );
    return li?.dataset.seq ?? "";
  }, text);
  assert.notEqual(seq, "", `a message "${text}"`);
  return `.view:not([hidden]) li.msg[data-seq="${seq}"]`;
}

/** The reactions under a message: `[emoji, count, pressed]`. */
function reactionsOf(page: Page, sel: string): Promise<[string, string, string][]> {
  return page.$$eval(
    `${sel} .reactions button[data-action="react"]`,
    (bs) =>
      bs.map((b) =>
        [
          b.getAttribute("data-emoji") ?? "",
          b.querySelector(".reaction-count")?.textContent ?? "",
          b.getAttribute("aria-pressed") ?? "",
        ] as [string, string, string]
      ),
  );
}

Deno.test({
  name:
    "browser conversations: a DM to someone offline waits for them: an unread badge on connect, its stored history when opened",
  ignore,
  async fn() {
    await using server = await startServer();
    await using tb = await launchBrowser();
    // Bob has been here once (the server knows him), then goes.
    const bob1 = await openChat(tb, server.url, { name: "bob" });
    const alice = await openChat(tb, server.url, { name: "alice" });
    await alice.page.waitForSelector('#member-list li[data-name="bob"]');
    const bobIdentity = await identityOf(bob1.page);
    await bob1.context.close();
    await alice.page.waitForFunction(() => !document.querySelector('#member-list li[data-name="bob"]'));

    await say(alice.page, "/msg bob are you there?");
    await alice.page.waitForFunction(() => document.querySelector("#view-title").textContent === "@bob");
    await waitMessage(alice.page, "are you there?");
    await say(alice.page, "call me when you are back");
    await waitMessage(alice.page, "call me when you are back");
    assert.deepEqual(await alice.page.$$(".pending-list .msg"), [], "both stored and acked");

    // Bob comes back (the same identity, a new page): the conversation is listed with its badge.
    const bob = await openSamePerson(tb, server.url, bobIdentity);
    await waitBadge(bob.page, "@alice", "2");
    assert.match(await bob.page.title(), /^\(2\) #lobby/);
    await bob.page.click('#dm-list a[href="#@alice"]');
    await waitMessage(bob.page, "call me when you are back");
    assert.deepEqual(await messageTexts(bob.page), ["are you there?", "call me when you are back"]);
    await waitText(bob.page, ".view:not([hidden]) .history-status", "very beginning of your direct messages");
    assert.ok(
      !(await bob.page.$eval("#scroller", (e) => e.textContent ?? "")).includes("not stored"),
      "no 'not stored' text",
    );
    await waitBadge(bob.page, "@alice", null);
    await say(bob.page, "back now");
    await waitMessage(alice.page, "back now");

    // A reload: the history comes back from the server, nothing is unread.
    await bob.page.reload();
    await waitState(bob.page, "live");
    await bob.page.waitForSelector('#dm-list a[href="#@alice"]');
    await waitMessage(bob.page, "back now");
    assert.deepEqual(await messageTexts(bob.page), [
      "are you there?",
      "call me when you are back",
      "back now",
    ]);
    assert.equal(await badge(bob.page, "@alice"), null);
    assert.deepEqual(alice.problems.errors, []);
    assert.deepEqual(bob.problems.errors, []);
    await alice.context.close();
    await bob.context.close();
  },
});

Deno.test({
  name:
    "browser conversations: read state follows the person: reading on one page clears the badge on the other, and a reload shows the 'New messages' divider",
  ignore,
  async fn() {
    await using server = await startServer();
    await using tb = await launchBrowser();
    await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
    bob.send({ type: "join", room: "design" });
    await bob.next("joined", (m) => m.room === "design");
    const a = await openChat(tb, server.url, { name: "alice", hash: "design" });
    await bob.next("presence", (m) => m.room === "design" && m.name === "alice");
    bob.send({ type: "send", room: "design", text: "seen by alice", cid: "d0" });
    await waitMessage(a.page, "seen by alice");
    const a2 = await openSamePerson(tb, server.url, a.page, "design");
    await waitMessage(a2.page, "seen by alice");
    // Both pages on #lobby; bob writes in #design and to alice.
    for (const p of [a.page, a2.page]) {
      await p.evaluate(() => window.location.hash = "#lobby");
      await p.waitForFunction(() => document.querySelector("#view-title").textContent === "#lobby");
    }
    bob.send({ type: "send", room: "design", text: "d1", cid: "d1" });
    bob.send({ type: "send", room: "design", text: "d2 @alice", cid: "d2" });
    bob.send({ type: "send", to: "alice", text: "a word in private", cid: "p1" });
    for (const p of [a.page, a2.page]) {
      await waitBadge(p, "design", "2");
      await waitBadge(p, "@bob", "1");
      await p.waitForFunction(() =>
        document.querySelector('#room-list a[href="#design"] .mention-badge')?.textContent === "@1"
      );
    }

    // The first page reads #design: the second page's badges clear too.
    await a.page.click('#room-list a[href="#design"]');
    await waitMessage(a.page, "d2 @alice");
    // The message that mentions alice is highlighted.
    assert.match(await a.page.$eval(await msgSel(a.page, "d2 @alice"), (e) => e.className), /\bmention\b/);
    await waitBadge(a2.page, "design", null);
    assert.equal(await a2.page.$('#room-list a[href="#design"] .mention-badge'), null);
    assert.equal(await badge(a2.page, "@bob"), "1", "the DM is not read yet");
    await a.page.click('#dm-list a[href="#@bob"]');
    await waitMessage(a.page, "a word in private");
    await waitBadge(a2.page, "@bob", null);
    assert.match(await a2.page.title(), /^#lobby/, "nothing unread");

    // More comes while neither page shows #design; the second page is reloaded there.
    bob.send({ type: "send", room: "design", text: "d3", cid: "d3" });
    bob.send({ type: "send", room: "design", text: "d4", cid: "d4" });
    await waitBadge(a2.page, "design", "2");
    // Straight to #design by the reload (opening it first would read it).
    await a2.page.evaluate(() => window.history.replaceState(null, "", "#design"));
    await a2.page.reload();
    await waitState(a2.page, "live");
    await waitMessage(a2.page, "d4");
    const order = await a2.page.$$eval(
      ".view:not([hidden]) ol.messages:not(.pending-list) > li",
      (lis) =>
        lis.filter((li) => !li.classList.contains("day-sep"))
          .map((li) =>
            li.classList.contains("unread-sep") ? "--" : li.querySelector(".msg-text")?.textContent
          ),
    );
    assert.deepEqual(order, ["seen by alice", "d1", "d2 @alice", "--", "d3", "d4"]);
    assert.equal(
      await a2.page.$eval(".view:not([hidden]) .unread-sep", (e) => e.getAttribute("role")),
      "separator",
    );
    // Seen there (visible, focused, at the end): read on the first page too.
    await waitBadge(a.page, "design", null);
    assert.deepEqual(a.problems.errors, []);
    assert.deepEqual(a2.problems.errors, []);
    await a.context.close();
    await a2.context.close();
  },
});

Deno.test({
  name:
    "browser conversations: a reaction shows on both pages, yours pressed, toggled by a click; a refused one shows the server's sentence",
  ignore,
  async fn() {
    await using server = await startServer({ maxReactionsPerPerson: 1 });
    await using tb = await launchBrowser();
    const a = await openChat(tb, server.url, { name: "alice" });
    const b = await openChat(tb, server.url, { name: "bob" });
    await a.page.waitForSelector('#member-list li[data-name="bob"]');
    await say(b.page, "react to me");
    const onA = await msgSel(a.page, "react to me");
    const onB = await msgSel(b.page, "react to me");

    // Alice opens the palette from the message's React button, with the keyboard, and picks 🎉.
    await a.page.focus(`${onA} button[data-action="add-reaction"]`);
    await a.page.keyboard.press("Enter");
    await a.page.waitForSelector(`${onA} .reaction-palette`);
    assert.equal(
      await a.page.$eval(`${onA} button[data-action="add-reaction"]`, (e) => e.getAttribute("aria-expanded")),
      "true",
    );
    assert.equal(
      await a.page.evaluate(() => document.activeElement?.getAttribute("aria-label")),
      "React with 👍",
    );
    await a.page.keyboard.press("ArrowRight");
    await a.page.keyboard.press("ArrowRight");
    await a.page.keyboard.press("ArrowRight");
    assert.equal(
      await a.page.evaluate(() => document.activeElement?.getAttribute("aria-label")),
      "React with 🎉",
    );
    await a.page.keyboard.press("Enter");
    await a.page.waitForFunction((s: string) => document.querySelector(`${s} .reactions`), {}, onA);
    await b.page.waitForFunction((s: string) => document.querySelector(`${s} .reactions`), {}, onB);
    assert.deepEqual(await reactionsOf(a.page, onA), [["🎉", "1", "true"]]);
    assert.deepEqual(await reactionsOf(b.page, onB), [["🎉", "1", "false"]]);

    // Bob adds his to it: 2 on both pages, pressed on his.
    await b.page.click(`${onB} button[data-emoji="🎉"]`);
    await a.page.waitForFunction(
      (s: string) => document.querySelector(`${s} .reaction-count`)?.textContent === "2",
      {},
      onA,
    );
    await b.page.waitForFunction(
      (s: string) => document.querySelector(`${s} .reaction[aria-pressed="true"]`),
      {},
      onB,
    );
    assert.deepEqual(await reactionsOf(b.page, onB), [["🎉", "2", "true"]]);
    assert.deepEqual(await reactionsOf(a.page, onA), [["🎉", "2", "true"]]);

    // A second emoji from alice is past this server's cap of one per person: its sentence shows.
    await a.page.click(`${onA} .reactions button[data-action="add-reaction"]`);
    await a.page.click(`${onA} .reaction-palette button[aria-label="React with 👍"]`);
    await a.page.waitForSelector(".toast");
    assert.match(
      await a.page.$eval(".toast", (e) => e.textContent ?? ""),
      /reactions on message \d+ already: take one back first/,
    );
    assert.equal(await a.page.$(`${onA} .reaction-palette`), null, "the palette closed");

    // Alice takes hers back with a click on her pressed reaction.
    await a.page.click(`${onA} button[data-emoji="🎉"]`);
    await b.page.waitForFunction(
      (s: string) => document.querySelector(`${s} .reaction-count`)?.textContent === "1",
      {},
      onB,
    );
    await a.page.waitForFunction(
      (s: string) => document.querySelector(`${s} .reaction`)?.getAttribute("aria-pressed") === "false",
      {},
      onA,
    );
    assert.deepEqual(await reactionsOf(a.page, onA), [["🎉", "1", "false"]]);

    // After a reload the counts (and which are yours) come with the history.
    await b.page.reload();
    await waitState(b.page, "live");
    const again = await msgSel(b.page, "react to me");
    await b.page.waitForSelector(`${again} .reactions`);
    assert.deepEqual(await reactionsOf(b.page, again), [["🎉", "1", "true"]]);
    assert.deepEqual(a.problems.errors, []);
    assert.deepEqual(b.problems.errors, []);
    await a.context.close();
    await b.context.close();
  },
});

Deno.test({
  name:
    "browser conversations: a reply shows its quote on the other page, and 'original message deleted' once the original is gone",
  ignore,
  async fn() {
    await using server = await startServer();
    await using tb = await launchBrowser();
    const a = await openChat(tb, server.url, { name: "alice" });
    const b = await openChat(tb, server.url, { name: "bob" });
    await a.page.waitForSelector('#member-list li[data-name="bob"]');
    await say(b.page, "Lunch at noon?\nor later");
    const original = await msgSel(a.page, "Lunch at noon?\nor later");

    await a.page.click(`${original} button[data-action="reply"]`);
    await waitText(a.page, "#reply-bar", "Replying to bob: Lunch at noon?");
    assert.equal(await a.page.evaluate(() => document.activeElement?.id), "composer-input");
    // Escape cancels; Reply again, then send.
    await a.page.keyboard.press("Escape");
    await a.page.waitForSelector("#reply-bar", { hidden: true });
    await a.page.click(`${original} button[data-action="reply"]`);
    await waitText(a.page, "#reply-bar", "Replying to bob");
    await say(a.page, "noon works");
    await a.page.waitForSelector("#reply-bar", { hidden: true });

    const reply = await msgSel(b.page, "noon works");
    assert.deepEqual(
      await b.page.$eval(`${reply} .msg-quote`, (e) => [
        e.querySelector(".quote-from")?.textContent,
        e.querySelector(".quote-text")?.textContent,
      ]),
      ["You", "Lunch at noon?"],
    );
    const mine = await msgSel(a.page, "noon works");
    assert.equal(await a.page.$eval(`${mine} .quote-from`, (e) => e.textContent), "bob");

    // Bob deletes the original: the quote says so on both pages.
    await b.page.click(`${await msgSel(b.page, "Lunch at noon?\nor later")} button[data-action="delete"]`);
    await b.page.waitForSelector("dialog.ask[open]");
    await b.page.click('dialog.ask button[type="submit"]');
    for (const [p, sel] of [[a.page, mine], [b.page, reply]] as const) {
      await p.waitForFunction(
        (s: string) => document.querySelector(`${s} .msg-quote`)?.textContent === "original message deleted",
        {},
        sel,
      );
    }
    assert.deepEqual(a.problems.errors, []);
    assert.deepEqual(b.problems.errors, []);
    await a.context.close();
    await b.context.close();
  },
});

Deno.test({
  name:
    "browser conversations: an XSS payload in a reply quote and as a 'reaction' stays text and runs nothing",
  ignore,
  async fn() {
    await using server = await startServer();
    await using tb = await launchBrowser();
    await using mallory = await TestClient.connect(server, { name: "mallory", room: "lobby" });
    const { page, context, problems } = await openChat(tb, server.url, { name: "alice" });
    const payload = `<img src=x onerror="window.__xss='quote'"><script>window.__xss='s'</script>`;
    mallory.send({ type: "send", room: "lobby", text: `${payload}\nsecond line`, cid: "x1" });
    const { seq } = await mallory.next("ack");
    mallory.send({ type: "send", room: "lobby", text: "see above", cid: "x2", replyTo: seq });
    await mallory.next("ack", (m) => m.cid === "x2");
    // Not one emoji: refused by the server, nothing reaches the page.
    mallory.send({ type: "react", room: "lobby", seq, emoji: `<img src=x onerror="window.__xss='react'">` });
    assert.equal((await mallory.next("error")).code, "bad_message");
    mallory.send({ type: "react", room: "lobby", seq, emoji: "👍" });
    await mallory.next("reactions");

    const quoted = await msgSel(page, "see above");
    assert.equal(await page.$eval(`${quoted} .quote-text`, (e) => e.textContent), payload);
    const original = await msgSel(page, `${payload}\nsecond line`);
    await page.waitForSelector(`${original} .reactions`);
    assert.deepEqual(await reactionsOf(page, original), [["👍", "1", "false"]]);
    // Alice replies to it on the page: the bar and her reply's quote are text too.
    await page.click(`${original} button[data-action="reply"]`);
    await waitText(page, "#reply-bar", `Replying to mallory: ${payload}`);
    await say(page, "no thanks");
    const mine = await msgSel(page, "no thanks");
    assert.equal(await page.$eval(`${mine} .quote-text`, (e) => e.textContent), payload);
    await mallory.next("message", (m) => m.text === "no thanks" && m.replyTo?.seq === seq);

    assert.equal(await page.evaluate(() => window.__xss), undefined, "no payload ran");
    assert.equal(await page.$$eval("#scroller img, #scroller script, #reply-bar img", (l) => l.length), 0);
    assert.deepEqual(problems.errors.filter((e) => !e.includes("Content Security Policy")), []);
    await context.close();
  },
});

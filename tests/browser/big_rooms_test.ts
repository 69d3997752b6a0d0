/**
 * The member panel of a big room (issue #22, item 1) in a real browser against a real server: it shows
 * the room's count, not the length of the page it holds; "More" loads the next page; the search box
 * asks the server for names starting with what is typed; the count follows people arriving. Skipped,
 * with the reason printed, where Chromium is not installed.
 * @module
 */
import assert from "node:assert/strict";
import {
  browserMissing,
  launchBrowser,
  memberNames,
  openChat,
  type Page,
  waitText,
} from "../helpers/browser.ts";
import { startServer, TestClient, type TestServer } from "../helpers/test_server.ts";

const ignore = browserMissing !== undefined;

/** Inside `page.evaluate` callbacks only (tests type-check without the DOM lib). */
// deno-lint-ignore no-explicit-any
declare const document: any;

/** The big rooms' settings of these tests: past 5 people, pages of 4. */
const BIG = { bigRoom: 5, membersPage: 4, countIntervalMs: 200 };

/** m01 … m08 in `rooms` (the first from the query), closed when the test ends. */
async function crowd(server: TestServer, rooms: string[]): Promise<TestClient[] & AsyncDisposable> {
  const others: TestClient[] = [];
  const closeAll = async () => {
    for (const c of others) await c.close();
  };
  try {
    for (let i = 1; i <= 8; i++) {
      const c = await TestClient.connect(server, { name: `m0${i}`, room: rooms[0] });
      others.push(c);
      for (const room of rooms.slice(1)) {
        c.send({ type: "join", room });
        await c.next("joined", (m) => m.room === room);
      }
    }
  } catch (e) {
    await closeAll();
    throw e;
  }
  return Object.assign(others, { [Symbol.asyncDispose]: closeAll });
}

Deno.test({
  name: "browser big room: the member panel shows the count, loads more, searches by prefix",
  ignore,
  async fn() {
    await using server = await startServer(BIG);
    await using others = await crowd(server, ["hall"]);
    await using tb = await launchBrowser();
    const { page, problems } = await openChat(tb, server.url, { name: "viewer", hash: "hall" });
    await waitText(page, "#members-title", "Members · 9");
    assert.deepEqual(await memberNames(page), ["m01", "m02", "m03", "m04"], "the first page");
    assert.equal(await page.evaluate(() => document.querySelector("#view-sub").textContent), "9 members");

    await page.click("#member-more");
    await page.waitForFunction(() => document.querySelectorAll("#member-list li").length === 8);
    assert.deepEqual(await memberNames(page), ["m01", "m02", "m03", "m04", "m05", "m06", "m07", "m08"]);

    await page.type("#member-search", "M07");
    await page.waitForFunction(() => document.querySelectorAll("#member-list li").length === 1);
    assert.deepEqual(await memberNames(page), ["m07"]);
    assert.equal(await page.evaluate(() => document.querySelector("#member-more").hidden), true);

    others.push(await TestClient.connect(server, { name: "late", room: "hall" }));
    await waitText(page, "#members-title", "Members · 10");
    assert.deepEqual(problems.errors, []);
  },
});

/** Opens `room` and checks its member panel: an empty search box over the first page, unfiltered. */
async function showsFirstPage(page: Page, room: string): Promise<void> {
  await page.evaluate((r: string) => document.location.hash = `#${r}`, room);
  await page.waitForFunction(() => document.querySelectorAll("#member-list li").length === 4);
  assert.equal(await page.evaluate(() => document.querySelector("#member-search").value), "");
  assert.deepEqual(await memberNames(page), ["m01", "m02", "m03", "m04"]);
}

Deno.test({
  name: "browser big room: the member search box starts empty in the next room, and the list is whole again",
  ignore,
  async fn() {
    await using server = await startServer(BIG);
    await using _others = await crowd(server, ["hall", "hall2"]);
    await using tb = await launchBrowser();
    const { page, problems } = await openChat(tb, server.url, { name: "viewer", hash: "hall2" });
    await waitText(page, "#members-title", "Members · 9");
    await page.evaluate(() => document.location.hash = "#hall");
    await waitText(page, "#members-title", "Members · 9");
    await page.waitForFunction(() => document.querySelector("#view-title").textContent === "#hall");
    await page.type("#member-search", "M07");
    await page.waitForFunction(() => document.querySelectorAll("#member-list li").length === 1);

    // Another big room: its panel has an empty box and its first page, not "M07" over its list.
    await showsFirstPage(page, "hall2");
    // Back: the box is empty there too, and the list no longer filtered by what was typed.
    await showsFirstPage(page, "hall");
    assert.deepEqual(problems.errors, []);
  },
});

Deno.test({
  name: "browser big room: a direct partner off the member page shows online while in the room",
  ignore,
  async fn() {
    await using server = await startServer(BIG);
    await using others = await crowd(server, ["hall"]);
    await using tb = await launchBrowser();
    const { page, problems } = await openChat(tb, server.url, { name: "viewer", hash: "hall" });
    await waitText(page, "#members-title", "Members · 9");
    const dot = () =>
      page.evaluate(() => document.querySelector('#dm-list a[href="#@m07"] .presence')?.className ?? "");
    others[6].send({ type: "send", to: "viewer", text: "hi from the back row", cid: "d1" });
    await page.waitForSelector('#dm-list a[href="#@m07"]');
    await page.waitForFunction(() =>
      document.querySelector('#dm-list a[href="#@m07"] .presence')?.classList.contains("online")
    );
    assert.deepEqual(await memberNames(page), ["m01", "m02", "m03", "m04"], "m07 is not on the page");
    await others[6].close();
    await page.waitForFunction(() =>
      document.querySelector('#dm-list a[href="#@m07"] .presence')?.classList.contains("away")
    );
    assert.match(await dot(), /away/);
    assert.deepEqual(problems.errors, []);
  },
});

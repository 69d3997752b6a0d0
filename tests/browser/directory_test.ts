/**
 * "Browse rooms" on the chat page, in a real browser against a real server: the dialog lists the
 * public rooms with topic and member count (a private room never), the search box filters through
 * the server as you type, one Join joins and opens a room, a room you are in says so, and all of it
 * works from the keyboard (focus in the dialog, Escape closes it, the focus comes back). A topic is
 * shown as text. Skipped, with the reason printed, where Chromium is not installed.
 * @module
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { browserMissing, launchBrowser, openChat, type Page } from "../helpers/browser.ts";
import { startServer, TestClient } from "../helpers/test_server.ts";

const ignore = browserMissing !== undefined;

/** Inside `page.evaluate` callbacks only (tests type-check without the DOM lib). */
// deno-lint-ignore no-explicit-any
declare const document: any;
// deno-lint-ignore no-explicit-any
declare const window: any;

const SECRET = "directory-browser-secret-0123456789-abcd";
const XSS = `<img src=x onerror="window.__xss = 1">`;

function moderatorToken(): Promise<string> {
  return new SignJWT({ name: "mo", role: "moderator" })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("mo")
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(SECRET));
}

/** The rooms the dialog lists: name, topic, members text, button label, and whether it says joined. */
function listed(page: Page): Promise<{ name: string; topic: string; members: string; button: string }[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll("dialog.directory .directory-room")].map((
      li: { querySelector(s: string): { textContent: string; getAttribute(a: string): string } | null },
    ) => ({
      name: li.querySelector(".directory-name")!.textContent,
      topic: li.querySelector(".directory-topic")?.textContent ?? "",
      members: li.querySelector(".directory-members")!.textContent,
      button: li.querySelector("button")!.getAttribute("aria-label"),
    }))
  );
}

/** Waits until the dialog lists exactly the rooms `names`. */
async function waitListed(page: Page, names: string[]): Promise<void> {
  await page.waitForFunction(
    (want: string) =>
      JSON.stringify(
        [...document.querySelectorAll("dialog.directory .directory-name")].map((e: { textContent: string }) =>
          e.textContent
        ),
      ) === want,
    {},
    JSON.stringify(names),
  );
}

/** What has the focus: its tag, aria-label or text. */
function focused(page: Page): Promise<string> {
  return page.evaluate(() => {
    const e = document.activeElement;
    return `${e?.tagName.toLowerCase()} ${e?.getAttribute("aria-label") ?? e?.textContent?.trim() ?? ""}`;
  });
}

Deno.test({
  name: "browser directory: browse, search and join a room with the keyboard only; private rooms never show",
  ignore,
  async fn() {
    await using server = await startServer({ jwtSecret: SECRET, guests: "on" });
    await using mod = await TestClient.connect(server, { token: await moderatorToken(), room: "news" });
    mod.send({ type: "room", room: "news", topic: `Daily news ${XSS}` });
    await mod.next("room");
    mod.send({ type: "join", room: "vip" });
    await mod.next("joined", (m) => m.room === "vip");
    mod.send({ type: "room", room: "vip", private: true, topic: "the quiet room" });
    await mod.next("room", (m) => m.room === "vip");
    await using carol = await TestClient.connect(server, { name: "carol", room: "garden" });
    await using tb = await launchBrowser();
    const { page, problems } = await openChat(tb, server.url, { name: "alice", hash: "lobby" });
    await page.waitForSelector('#room-list a[href="#lobby"]');

    // Keyboard only: the sidebar's control opens the dialog with the focus in its search box.
    await page.focus("#browse-rooms");
    await page.keyboard.press("Enter");
    await page.waitForSelector("dialog.directory[open]");
    assert.equal(
      await page.evaluate(() =>
        document.getElementById(document.querySelector("dialog.directory").getAttribute("aria-labelledby"))
          .textContent
      ),
      "Browse rooms",
      "the dialog is named",
    );
    assert.equal(await focused(page), "input ");
    assert.equal(
      await page.evaluate(() => document.activeElement.closest("label")?.textContent.trim()),
      "Search rooms by name",
    );
    await waitListed(page, ["#garden", "#lobby", "#news"]);
    assert.deepEqual(await listed(page), [
      { name: "#garden", topic: "", members: "1 person", button: "Join #garden" },
      { name: "#lobby", topic: "", members: "1 person", button: "Open #lobby" },
      { name: "#news", topic: `Daily news ${XSS}`, members: "1 person", button: "Join #news" },
    ]);
    assert.ok(
      await page.evaluate(() =>
        document.querySelector("dialog.directory").textContent.includes("You are in this room")
      ),
      "a room already joined says so",
    );
    assert.ok(
      !(await page.evaluate(() => document.querySelector("dialog.directory").textContent.includes("vip"))),
      "a private room is never named",
    );
    assert.equal(await page.evaluate(() => document.querySelector("dialog.directory img")), null);

    // Typing filters through the server once the typing pauses.
    await page.keyboard.type("GA");
    await waitListed(page, ["#garden"]);
    await page.keyboard.type("x");
    await page.waitForFunction(() =>
      document.querySelector("dialog.directory .directory-status").textContent ===
        'No public room starts with "gax"'
    );
    await page.keyboard.press("Backspace");
    await waitListed(page, ["#garden"]);

    // Tab reaches the room's Join; Enter joins it and opens it, in one step.
    await page.keyboard.press("Tab");
    assert.equal(await focused(page), "button Join #garden");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => !document.querySelector("dialog.directory"));
    await page.waitForFunction(() => document.querySelector("#view-title").textContent === "#garden");
    await page.waitForSelector('#room-list a[href="#garden"]');
    await carol.next("presence", (m) => m.room === "garden" && m.name === "alice" && m.event === "join");

    // Escape closes the dialog and the focus goes back to the control that opened it.
    await page.focus("#browse-rooms");
    await page.keyboard.press("Enter");
    await page.waitForSelector("dialog.directory[open]");
    await waitListed(page, ["#garden", "#lobby", "#news"]);
    assert.deepEqual((await listed(page)).map((r) => r.button), [
      "Open #garden",
      "Open #lobby",
      "Join #news",
    ]);
    await page.keyboard.press("Escape");
    await page.waitForFunction(() => !document.querySelector("dialog.directory"));
    assert.equal(await page.evaluate(() => document.activeElement?.id), "browse-rooms");

    assert.equal(await page.evaluate(() => window.__xss), undefined);
    assert.deepEqual(problems.errors, []);
  },
});

/**
 * Moderation on the chat page, in a real browser against a real server with signed identities
 * (issue #10): deletes and edits reach the other page live and after a reload, a moderator mutes,
 * kicks and bans through the member list, the composer says why one cannot post, topics and reasons
 * are text. Skipped, with the reason printed, where Chromium is not installed.
 * @module
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import {
  browserMissing,
  launchBrowser,
  messageTexts,
  openChat,
  type Page,
  pendingTexts,
  say,
  type TestBrowser,
  waitMessage,
  waitState,
  waitText,
} from "../helpers/browser.ts";
import { startServer, type TestServer } from "../helpers/test_server.ts";

const ignore = browserMissing !== undefined;
const SECRET = "a-browser-moderation-secret-of-more-than-32-bytes";

/** Inside `page.evaluate` callbacks only (tests type-check without the DOM lib). */
// deno-lint-ignore no-explicit-any
declare const document: any;
// deno-lint-ignore no-explicit-any
declare const window: any;

/** Claims of the people the host application signs in, by the path of its token endpoint. */
const PEOPLE: Record<string, { name: string; role?: string; rooms?: string[] }> = {
  mo: { name: "mo", role: "moderator" },
  bob: { name: "bob" },
  tess: { name: "tess", rooms: ["lobby"] },
};

/** A chat server with signed identities, and the host application's token endpoint. */
async function setUp(): Promise<
  { server: TestServer; host: Deno.HttpServer; tokenUrl: (who: string) => string }
> {
  let chatOrigin = "";
  const host = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const cors = { "access-control-allow-origin": chatOrigin, "access-control-allow-credentials": "true" };
    // openChat() appends "/" and the hash to the page's address, so to this one too.
    const who = PEOPLE[new URL(req.url).pathname.replace(/\/+$/, "").slice(1)];
    if (req.method !== "POST" || !who) return new Response(null, { status: 404, headers: cors });
    const token = await new SignJWT({ ...who }).setProtectedHeader({ alg: "HS256" })
      .setSubject(`${who.name}-id`).setExpirationTime("10m").sign(new TextEncoder().encode(SECRET));
    return Response.json({ token }, { headers: cors });
  });
  const hostOrigin = `http://127.0.0.1:${host.addr.port}`;
  const server = await startServer({ jwtSecret: SECRET, allowedOrigins: hostOrigin });
  chatOrigin = server.url;
  return {
    server,
    host,
    tokenUrl: (who) => `${server.url}/?tokenUrl=${encodeURIComponent(`${hostOrigin}/${who}`)}`,
  };
}

/** Opens the page signed in as `who` (a key of PEOPLE), at `hash`. */
async function openAs(tb: TestBrowser, url: string, hash = "lobby") {
  const chat = await openChat(tb, url, { hash });
  await waitState(chat.page, "live");
  return chat;
}

/** The seq of the delivered message with exactly `text` in the open conversation. */
function seqOf(page: Page, text: string): Promise<string> {
  return page.evaluate((t: string) => {
    const li = [...document.querySelectorAll(".view:not([hidden]) li.msg[data-seq]")]
      .find((e: { querySelector(s: string): { textContent: string } | null }) =>
        e.querySelector(".msg-text")?.textContent === t
      );
    return li?.dataset.seq ?? "";
  }, text);
}

/** Selector of the delivered message `seq` in the open conversation. */
const msg = (seq: string) => `.view:not([hidden]) li.msg[data-seq="${seq}"]`;

/** Clicks the dialog's confirming button (after filling its text field with `value`, if given). */
async function confirmDialog(page: Page, value?: string): Promise<void> {
  await page.waitForSelector("dialog.ask[open]");
  if (value !== undefined) {
    await page.$eval("dialog.ask .ask-input", (e) => (e as unknown as { value: string }).value = "");
    await page.type("dialog.ask input.ask-input", value);
  }
  await page.click('dialog.ask button[type="submit"]');
  await page.waitForFunction(() => !document.querySelector("dialog.ask"));
}

const noProblems = (errors: string[]) => errors.filter((e) => !/favicon/.test(e));

Deno.test({
  name:
    "browser moderation: a moderator deletes a message and the other page shows 'message deleted', live and after a reload",
  ignore,
  async fn() {
    const { server, host, tokenUrl } = await setUp();
    await using _s = server;
    await using _h = host;
    await using tb = await launchBrowser();
    const mo = await openAs(tb, tokenUrl("mo"));
    const bob = await openAs(tb, tokenUrl("bob"));
    await say(bob.page, "buy cheap watches");
    await waitMessage(mo.page, "buy cheap watches");
    const seq = await seqOf(mo.page, "buy cheap watches");
    assert.notEqual(seq, "");
    // Bob, a member, has Edit and Delete on his own message only (besides Reply and React, which
    // every room message has); the moderator Delete on it.
    assert.deepEqual(
      await bob.page.$$eval(`${msg(seq)} [data-action]`, (es) => es.map((e) => e.getAttribute("aria-label"))),
      ["Reply to your message", "Add a reaction to your message", "Edit your message", "Delete your message"],
    );
    assert.deepEqual(
      await mo.page.$$eval(`${msg(seq)} [data-action]`, (es) => es.map((e) => e.getAttribute("data-action"))),
      ["reply", "add-reaction", "delete"],
    );
    await mo.page.click(`${msg(seq)} [data-action="delete"]`);
    await confirmDialog(mo.page);
    for (const page of [bob.page, mo.page]) {
      await page.waitForSelector(`${msg(seq)}.deleted`);
      assert.equal(await page.$eval(`${msg(seq)} .msg-text`, (e) => e.textContent), "message deleted");
      assert.equal(await page.$(`${msg(seq)} [data-action]`), null, "nothing to do to a tombstone");
    }
    assert.ok(!(await messageTexts(bob.page)).includes("buy cheap watches"));
    // After a reload the history's tombstone shows the same.
    await bob.page.reload();
    await waitState(bob.page, "live");
    await bob.page.waitForSelector(`${msg(seq)}.deleted`);
    assert.equal(await bob.page.$eval(`${msg(seq)} .msg-text`, (e) => e.textContent), "message deleted");
    assert.deepEqual(noProblems(mo.problems.errors), []);
    assert.deepEqual(noProblems(bob.problems.errors), []);
  },
});

Deno.test({
  name:
    "browser moderation: the author edits a message in place; the other page shows the new text with (edited)",
  ignore,
  async fn() {
    const { server, host, tokenUrl } = await setUp();
    await using _s = server;
    await using _h = host;
    await using tb = await launchBrowser();
    const mo = await openAs(tb, tokenUrl("mo"));
    const bob = await openAs(tb, tokenUrl("bob"));
    await say(bob.page, "helo everyone");
    await waitMessage(mo.page, "helo everyone");
    const seq = await seqOf(bob.page, "helo everyone");
    // Escape cancels an edit: nothing changes, the focus goes back to Edit.
    await bob.page.click(`${msg(seq)} [data-action="edit"]`);
    await bob.page.waitForSelector(`${msg(seq)} textarea.msg-edit-input`);
    await bob.page.keyboard.type(" typo");
    await bob.page.keyboard.press("Escape");
    assert.equal(await bob.page.$(`${msg(seq)} textarea`), null);
    assert.equal(await bob.page.evaluate(() => document.activeElement?.dataset.action), "edit");
    assert.equal(await bob.page.$eval(`${msg(seq)} .msg-text`, (e) => e.textContent), "helo everyone");
    // Enter saves.
    await bob.page.keyboard.press("Enter"); // on the focused Edit button: opens the box again
    await bob.page.waitForSelector(`${msg(seq)} textarea.msg-edit-input`);
    await bob.page.$eval(`${msg(seq)} textarea`, (e) => (e as unknown as { value: string }).value = "");
    await bob.page.keyboard.type("hello everyone");
    await bob.page.keyboard.press("Enter");
    for (const page of [mo.page, bob.page]) {
      await waitMessage(page, "hello everyone");
      await waitText(page, `${msg(seq)} .msg-edited`, "(edited)");
    }
    assert.ok(!(await messageTexts(mo.page)).includes("helo everyone"));
    await mo.page.reload();
    await waitState(mo.page, "live");
    await waitMessage(mo.page, "hello everyone");
    assert.equal(await mo.page.$eval(`${msg(seq)} .msg-edited`, (e) => e.textContent), "(edited)");
    assert.deepEqual(noProblems(mo.problems.errors), []);
    assert.deepEqual(noProblems(bob.problems.errors), []);
  },
});

Deno.test({
  name:
    "browser moderation: a moderator mutes a member from the member list; the member's page says so and the send fails with it",
  ignore,
  async fn() {
    const { server, host, tokenUrl } = await setUp();
    await using _s = server;
    await using _h = host;
    await using tb = await launchBrowser();
    const mo = await openAs(tb, tokenUrl("mo"));
    const bob = await openAs(tb, tokenUrl("bob"));
    // A signed person has no Rename (the server would refuse it).
    assert.equal(
      await bob.page.$eval("#rename-button", (e) => (e as unknown as { hidden: boolean }).hidden),
      true,
    );
    // Members get no moderation controls; the moderator does, for others only.
    assert.equal(await bob.page.$("#member-list .member-more"), null);
    await mo.page.waitForSelector('#member-list li[data-name="bob"] .member-more');
    assert.equal(await mo.page.$('#member-list li[data-name="mo"] .member-more'), null);

    // Keyboard: focus the "Moderate bob" button, open it, and take "Mute 10 min".
    await mo.page.focus('#member-list li[data-name="bob"] .member-more');
    await mo.page.keyboard.press("Enter");
    await mo.page.waitForSelector('#member-list li[data-name="bob"] .member-actions:not([hidden])');
    assert.equal(
      await mo.page.$eval(
        '#member-list li[data-name="bob"] .member-more',
        (e) => e.getAttribute("aria-expanded"),
      ),
      "true",
    );
    assert.equal(
      await mo.page.evaluate(() => document.activeElement?.getAttribute("aria-label")),
      "Mute bob for 10 minutes",
    );
    await mo.page.keyboard.press("Enter");

    await waitText(bob.page, "#composer-notice", "You are muted in #lobby until");
    await waitText(mo.page, ".view:not([hidden]) .system-line", "You muted bob until");
    await waitText(bob.page, ".view:not([hidden]) .system-line", "mo muted you until");
    const notice = await bob.page.$eval("#composer-notice .composer-notice-text", (e) => e.textContent);
    await say(bob.page, "am I muted?");
    await waitText(bob.page, ".view:not([hidden]) .pending-list .msg-state", `Not sent: ${notice}`);
    assert.deepEqual(await pendingTexts(bob.page), ["am I muted?"]);
    assert.ok(!(await messageTexts(mo.page)).includes("am I muted?"));
    // The member list now offers Unmute; it lifts the mute and bob posts again.
    await mo.page.waitForSelector('#member-list li[data-name="bob"] [data-control="unmute"]');
    await mo.page.click('#member-list li[data-name="bob"] [data-control="unmute"]');
    await bob.page.waitForSelector("#composer-notice", { hidden: true });
    await bob.page.click(".pending-list .msg-actions button:first-child"); // Retry
    await waitMessage(mo.page, "am I muted?");

    // Kick: bob's page says he was removed, and Join again brings him back.
    await mo.page.click('#member-list li[data-name="bob"] [data-control="kick"]');
    await waitText(bob.page, "#composer-notice", "You were removed from #lobby");
    await mo.page.waitForFunction(() => !document.querySelector('#member-list li[data-name="bob"]'));
    await bob.page.click("#composer-notice button");
    await mo.page.waitForSelector('#member-list li[data-name="bob"]');
    await bob.page.waitForSelector("#composer-notice", { hidden: true });
    assert.deepEqual(noProblems(mo.problems.errors), []);
  },
});

Deno.test({
  name:
    "browser moderation: a topic and a ban reason holding markup are shown as text; banned and refused joins are said",
  ignore,
  async fn() {
    const { server, host, tokenUrl } = await setUp();
    await using _s = server;
    await using _h = host;
    await using tb = await launchBrowser();
    const mo = await openAs(tb, tokenUrl("mo"));
    const bob = await openAs(tb, tokenUrl("bob"));
    const topic = `<img src=x onerror="window.__xss='topic'">`;
    const reason = `<img src=x onerror="window.__xss='reason'"><script>window.__xss='s'</script>`;

    await mo.page.click("#room-settings");
    await mo.page.waitForSelector("dialog.ask[open]");
    // Read-only too: bob's page says so, and a send fails with it.
    await mo.page.click("dialog.ask input[type=checkbox]");
    await confirmDialog(mo.page, topic);
    await waitText(bob.page, "#view-topic", topic);
    assert.equal(await bob.page.$eval("#view-topic", (e) => e.textContent), topic);
    await waitText(bob.page, "#composer-notice", "#lobby is read-only: only moderators post");
    await say(bob.page, "can I post?");
    await waitText(bob.page, ".pending-list .msg-state", "Not sent: #lobby is read-only");

    await mo.page.click('#member-list li[data-name="bob"] .member-more');
    await mo.page.click('#member-list li[data-name="bob"] [data-control="ban"]');
    await confirmDialog(mo.page, reason);
    await waitText(mo.page, ".view:not([hidden]) .system-line", `You banned bob: ${reason}`);
    await waitText(bob.page, "#composer-notice", "You are banned from #lobby");
    assert.equal(await bob.page.$("#composer-notice button"), null, "no Join again for a ban");

    for (const page of [mo.page, bob.page]) {
      assert.equal(await page.evaluate(() => window.__xss), undefined);
      assert.equal(await page.$("#view-topic img, .system-line img, .system-line script"), null);
    }

    // A token limited to lobby: another room is refused, and the page says so.
    const tess = await openAs(tb, tokenUrl("tess"), "secret");
    await waitText(tess.page, "#composer-notice", "You cannot join #secret");
    assert.deepEqual(noProblems(mo.problems.errors), []);
    assert.deepEqual(noProblems(bob.problems.errors), []);
  },
});

/**
 * The PHP tutorials' chat pages, unchanged but for the address they connect to (fixtures written
 * for this test in `tests/fixtures/tutorial/`, served from an origin of their own), chat in Chromium
 * with each other and with the real page, names included. Skipped, with the reason printed, where
 * Chromium is not installed.
 * @module
 */
import assert from "node:assert/strict";
import { browserMissing, launchBrowser, openChat, type Page, say, waitMessage } from "../helpers/browser.ts";
import { startServer } from "../helpers/test_server.ts";

const ignore = browserMissing !== undefined;

/** Inside `page.evaluate` callbacks only (tests type-check without the DOM lib). */
// deno-lint-ignore no-explicit-any
declare const document: any;

const FIXTURES = new URL("../fixtures/tutorial/", import.meta.url);
/** The address the fixtures connect to, as the tutorials write it (Swoole's default port). */
const TUTORIAL_URL = "ws://127.0.0.1:9501";

/** Serves the fixtures with their address replaced by `wsUrl`, and nothing else changed. */
async function serveFixtures(wsUrl: () => string) {
  const pages = new Map<string, string>();
  for (const name of ["chat.html", "nickname.html"]) {
    const text = await Deno.readTextFile(new URL(name, FIXTURES));
    assert.equal(text.split(TUTORIAL_URL).length, 2, `${name} names its address once`);
    pages.set(`/${name}`, text);
  }
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const page = pages.get(new URL(req.url).pathname);
    if (page === undefined) return new Response("not found", { status: 404 });
    return new Response(page.replace(TUTORIAL_URL, wsUrl()), {
      headers: { "content-type": "text/html; charset=utf-8" },
    });
  });
  return { server, origin: `http://127.0.0.1:${server.addr.port}` };
}

/** The lines the page printed (its textarea), one per frame it got. */
function printed(page: Page): Promise<string[]> {
  return page.evaluate(() => document.getElementById("content").value.split("\n").slice(0, -1));
}

async function waitPrinted(page: Page, line: string | RegExp): Promise<string> {
  const isString = typeof line === "string";
  const source = isString ? line : line.source;
  await page.waitForFunction(
    (s: string, exact: boolean) =>
      document.getElementById("content").value.split("\n")
        .some((l: string) => exact ? l === s : new RegExp(s).test(l)),
    { timeout: 8000 },
    source,
    isString,
  );
  return (await printed(page)).find((l) => isString ? l === line : line.test(l))!;
}

/** Types `text` in the tutorial page's message box and presses its Send button. */
async function sendFrom(page: Page, text: string): Promise<void> {
  await page.type("#msg", text);
  await page.click("#send");
}

/** The author the real page shows for the delivered message `text`. */
function authorOf(page: Page, text: string): Promise<string | undefined> {
  return page.evaluate(
    (t: string) =>
      [...document.querySelectorAll(".view:not([hidden]) ol.messages:not(.pending-list) li.msg")]
        .find((li: { querySelector(s: string): { textContent: string } | null }) =>
          li.querySelector(".msg-text")?.textContent === t
        )?.querySelector(".msg-from")?.textContent,
    text,
  );
}

Deno.test({
  name: "browser: the tutorials' msg= page and nickname page chat with each other and with the real page",
  ignore,
  async fn() {
    let chatUrl = "";
    const fixtures = await serveFixtures(() => chatUrl);
    try {
      // The pages come from another origin, as a tutorial's own web server would serve them.
      await using server = await startServer({ allowedOrigins: [fixtures.origin] });
      chatUrl = `ws://127.0.0.1:${server.port}`;
      await using tb = await launchBrowser();
      const real = await openChat(tb, server.url, { name: "alice" });

      const plain = await (await tb.browser.createBrowserContext()).newPage();
      await plain.goto(`${fixtures.origin}/chat.html`);
      await plain.click("#connect");
      const hello = await waitPrinted(plain, /^\* Hello, welcome: you are guest-[a-z0-9]+$/);
      const guest = hello.slice("* Hello, welcome: you are ".length);
      await waitPrinted(
        plain,
        new RegExp(`^\\* you joined lobby \\(2 here: (alice, ${guest}|${guest}, alice)\\)$`),
      );
      assert.equal(await plain.$eval("#status", (e: { textContent: string }) => e.textContent), "Connected");

      const nick = await (await tb.browser.createBrowserContext()).newPage();
      await nick.goto(`${fixtures.origin}/nickname.html`);
      await nick.type("#ming", "carol");
      await nick.click("#connect");
      await waitPrinted(nick, "* you are now carol");
      await waitPrinted(plain, new RegExp(`^\\* guest-[a-z0-9]+ is now carol$`));

      // The msg= page: text decoded as a form would be, "&" kept; everyone sees it under its name.
      await sendFrom(plain, "hello from the first page & all");
      await waitPrinted(plain, `${guest}: hello from the first page & all`);
      await waitPrinted(nick, `${guest}: hello from the first page & all`);
      await waitMessage(real.page, "hello from the first page & all");
      assert.equal(await authorOf(real.page, "hello from the first page & all"), guest);

      await sendFrom(nick, "carol here");
      await waitPrinted(plain, "carol: carol here");
      await waitMessage(real.page, "carol here");
      assert.equal(await authorOf(real.page, "carol here"), "carol");

      await say(real.page, "hello, pages");
      await waitPrinted(plain, "alice: hello, pages");
      await waitPrinted(nick, "alice: hello, pages");

      // The tutorial pages print every frame: not one of them was JSON.
      for (const page of [plain, nick]) {
        const lines = await printed(page);
        assert.deepEqual(lines.filter((l) => l.startsWith("{")), [], lines.join("\n"));
      }
      // The real page's members include the renamed tutorial user.
      await real.page.waitForFunction(
        () =>
          [...document.querySelectorAll("#member-list li")].some((e: { dataset: { name: string } }) =>
            e.dataset.name === "carol"
          ),
        { timeout: 8000 },
      );

      await nick.click("#close");
      await nick.waitForFunction(() => document.getElementById("status").textContent === "Closed");
      await waitPrinted(plain, "* carol left lobby");
      assert.deepEqual(real.problems.errors, []);
    } finally {
      await fixtures.server.shutdown();
    }
  },
});

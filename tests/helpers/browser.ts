/**
 * Browser test helpers: launches the system Chromium through puppeteer-core with a throw-away
 * profile, opens chat pages, and waits on the page's DOM.
 * @module
 */
// By full specifier, not through deno.json's imports: whatever those list, `deno task start` downloads
// (puppeteer-core brings about 80 packages), and the server has no use for a browser.
// deno-lint-ignore no-import-prefix
import puppeteer, { type Browser, type BrowserContext, type Page } from "npm:puppeteer-core@24.16.0";

export type { Page };

/** Where Debian (and CI) install Chromium. */
export const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";

/** Why browser tests cannot run here, or undefined when they can. */
export const browserMissing: string | undefined = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile ? undefined : `${CHROMIUM} is not a file`;
  } catch {
    return `${CHROMIUM} not found (install Debian's chromium package to run the browser tests)`;
  }
})();

if (browserMissing) console.warn(`Skipping the browser tests: ${browserMissing}`);

/** Inside `page.evaluate` callbacks only: the page's document (tests type-check without the DOM lib). */
// deno-lint-ignore no-explicit-any
declare const document: any;

/** A launched browser and its profile directory; `close()` removes both. */
export interface TestBrowser {
  browser: Browser;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Launches headless Chromium with a fresh profile that `close()` deletes; `args` go on its command
 * line (e.g. `--host-resolver-rules` to serve the page under a name).
 */
export async function launchBrowser(opts: { args?: string[] } = {}): Promise<TestBrowser> {
  const profile = await Deno.makeTempDir({ prefix: "chat-chromium-" });
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir: profile,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        ...opts.args ?? [],
      ],
    });
  } catch (e) {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
    throw e;
  }
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      await browser.close().catch(() => {});
      // When a page's session ends while the browser is still connected, puppeteer waits up to
      // 100 ms for a frame swap with a timer of its own; let it run out so no timer outlives the test.
      await new Promise((resolve) => setTimeout(resolve, 150));
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    })();
  return { browser, close, [Symbol.asyncDispose]: close };
}

/** Console errors, page errors and failed requests of a page, so a test can assert there are none. */
export interface PageProblems {
  errors: string[];
}

/**
 * Opens the chat in a fresh browser context (its own localStorage: another person), at `hash`,
 * and signs in as `name` when asked for one.
 */
export async function openChat(
  tb: TestBrowser,
  url: string,
  opts: { name?: string; hash?: string; width?: number; height?: number; context?: BrowserContext } = {},
): Promise<{ page: Page; context: BrowserContext; problems: PageProblems }> {
  const context = opts.context ?? await tb.browser.createBrowserContext();
  const page = await context.newPage();
  page.setDefaultTimeout(8000);
  await page.setViewport({ width: opts.width ?? 1280, height: opts.height ?? 800 });
  const problems: PageProblems = { errors: [] };
  page.on("pageerror", (e) => problems.errors.push(`pageerror: ${(e as Error).message ?? e}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.errors.push(`console: ${m.text()}`);
  });
  await page.goto(`${url}/${opts.hash ? `#${opts.hash}` : ""}`);
  if (opts.name) await signIn(page, opts.name);
  return { page, context, problems };
}

/** Types `name` into the sign-in form and waits for the connection to be live. */
export async function signIn(page: Page, name: string): Promise<void> {
  await page.waitForSelector("#name-input", { visible: true });
  await page.type("#name-input", name);
  await page.keyboard.press("Enter");
  await waitState(page, "live");
}

/** Waits until the connection status shows `state`. */
export async function waitState(page: Page, state: string, timeout = 8000): Promise<void> {
  await page.waitForSelector(`#conn-status[data-state="${state}"]`, { timeout });
}

/** Types `text` in the composer and presses Enter. */
export async function say(page: Page, text: string): Promise<void> {
  await page.focus("#composer-input");
  // Newlines would be Enter presses: type line by line with Shift+Enter between.
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (i > 0) {
      await page.keyboard.down("Shift");
      await page.keyboard.press("Enter");
      await page.keyboard.up("Shift");
    }
    await page.keyboard.sendCharacter(lines[i]);
  }
  await page.keyboard.press("Enter");
}

/** Texts of the delivered messages in the open conversation. */
export function messageTexts(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll(".view:not([hidden]) ol.messages:not(.pending-list) .msg-text")]
      .map((e: { textContent: string }) => e.textContent)
  );
}

/** Texts of the messages still waiting in the outbox, in the open conversation. */
export function pendingTexts(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll(".view:not([hidden]) .pending-list .msg-text")]
      .map((e: { textContent: string }) => e.textContent)
  );
}

/** Waits until a delivered message with exactly `text` is shown in the open conversation. */
export async function waitMessage(page: Page, text: string, timeout = 8000): Promise<void> {
  await page.waitForFunction(
    (t: string) =>
      [...document.querySelectorAll(".view:not([hidden]) ol.messages:not(.pending-list) .msg-text")]
        .some((e: { textContent: string }) => e.textContent === t),
    { timeout },
    text,
  );
}

/** Waits until the element matching `selector` has text containing `text`. */
export async function waitText(page: Page, selector: string, text: string, timeout = 8000): Promise<void> {
  await page.waitForFunction(
    (sel: string, t: string) => (document.querySelector(sel)?.textContent ?? "").includes(t),
    { timeout },
    selector,
    text,
  );
}

/** Names in the members list. */
export function memberNames(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll("#member-list li")].map((e: { dataset: { name: string } }) =>
      e.dataset.name
    )
  );
}

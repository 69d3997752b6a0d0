/**
 * The page offline, in a real browser against a real server: the service worker's copy of the page with
 * the server down, the rooms' history kept in IndexedDB (shown at once, resumed with `join {since}`, within
 * its budget), the outbox across a tab close, and "Forget this device". Skipped where Chromium is missing.
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
  waitMessage,
  waitState,
  waitText,
} from "../helpers/browser.ts";
import { startServer, TestClient, type TestServer, waitFor } from "../helpers/test_server.ts";

const ignore = browserMissing !== undefined;

/** Inside `page.evaluate` callbacks only (tests type-check without the DOM lib). */
// deno-lint-ignore no-explicit-any
declare const document: any;
// deno-lint-ignore no-explicit-any
declare const navigator: any;
// deno-lint-ignore no-explicit-any
declare const indexedDB: any;
// deno-lint-ignore no-explicit-any
declare const caches: any;
// deno-lint-ignore no-explicit-any
declare const localStorage: any;
// deno-lint-ignore no-explicit-any
declare const window: any;

/**
 * The host application's token endpoint: it signs whoever `who.subject` names now (as if they were signed
 * in there), for the chat page at `who.chatOrigin` (CORS with credentials).
 */
function hostSite() {
  const secret = "an-offline-test-secret-of-more-than-32-bytes";
  const who = { subject: "ada", chatOrigin: "" };
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async () => {
    const cors = {
      "access-control-allow-origin": who.chatOrigin,
      "access-control-allow-credentials": "true",
    };
    const token = await new SignJWT({ name: who.subject }).setProtectedHeader({ alg: "HS256" })
      .setSubject(who.subject).setExpirationTime("5m").sign(new TextEncoder().encode(secret));
    return Response.json({ token }, { headers: cors });
  });
  return {
    who,
    secret,
    origin: `http://127.0.0.1:${server.addr.port}`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the page is controlled by its service worker (the copy of its files is complete then). */
async function waitWorker(page: Page): Promise<void> {
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, { timeout: 8000 });
}

/**
 * Waits until what the device keeps satisfies `check` (the page writes it a moment after a change, and
 * later on a loaded machine), failing with `what` rather than going on without it.
 */
async function waitKept(page: Page, check: (kept: Kept) => boolean, what: string): Promise<void> {
  await waitFor(async () => check(await keptRooms(page)), 15_000, what);
}

/** The room snapshots kept in IndexedDB (all identities), by key. */
type Kept = Record<string, { lastSeq: number; texts: string[] }>;
function keptRooms(page: Page): Promise<Kept> {
  return page.evaluate(() =>
    new Promise<Kept>((resolve, reject) => {
      const req = indexedDB.open("chat-offline");
      req.onerror = () => reject(req.error);
      req.onsuccess = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains("rooms")) return db.close(), resolve({});
        const all = db.transaction("rooms").objectStore("rooms").getAll();
        all.onsuccess = () => {
          db.close();
          resolve(Object.fromEntries(
            // deno-lint-ignore no-explicit-any
            all.result.map((r: any) => [r.key, {
              lastSeq: r.snapshot.lastSeq,
              // deno-lint-ignore no-explicit-any
              texts: r.snapshot.messages.map((m: any) => m.text),
            }]),
          ));
        };
      };
    })
  );
}

/** Records the text frames the page sends on its WebSockets (DevTools' view of them). */
async function sentFrames(page: Page): Promise<string[]> {
  const frames: string[] = [];
  const cdp = await page.createCDPSession();
  await cdp.send("Network.enable");
  cdp.on("Network.webSocketFrameSent", (e) => frames.push(e.response.payloadData));
  return frames;
}

/** A server on the port `old` had, to come back at the address the page knows, with the same history. */
function restart(old: TestServer, dataDir: string): Promise<TestServer> {
  return startServer({ port: old.port, store: "sqlite", dataDir });
}

Deno.test({
  name: "browser: with the server down, a reload shows the page from this device, says so, and resumes",
  ignore,
  async fn() {
    const dataDir = await Deno.makeTempDir();
    let server = await startServer({ store: "sqlite", dataDir });
    try {
      await using tb = await launchBrowser();
      const { page, context, problems } = await openChat(tb, server.url, { name: "alice" });
      await say(page, "kept before the outage");
      await waitMessage(page, "kept before the outage");
      await waitWorker(page);
      await page.waitForFunction(
        () => document.querySelector("#forget-device") && !document.querySelector("#forget-device").hidden,
      );
      // Kept a moment after the change (one write for a burst).
      await waitKept(page, (k) => !!k["chat:lobby"]?.texts.length, "lobby kept on the device");
      assert.deepEqual((await keptRooms(page))["chat:lobby"], {
        lastSeq: 1,
        texts: ["kept before the outage"],
      });

      // The server goes away; a reload still opens the page, with what this device kept, and says why.
      await server.close();
      await page.reload();
      await page.waitForSelector("#app:not([hidden])");
      await waitMessage(page, "kept before the outage", 3000);
      await waitText(page, "#conn-problem-why", "The server cannot be reached");
      assert.equal(
        await page.$eval("#conn-problem", (e) => (e as unknown as { hidden: boolean }).hidden),
        false,
      );

      // Back: the room resumes from what was kept, asking only for what came meanwhile.
      server = await restart(server, dataDir);
      await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
      await bob.seen("joined");
      bob.send({ type: "send", room: "lobby", text: "written while alice was away", cid: "b1" });
      await bob.next("ack");
      const frames = await sentFrames(page);
      await page.evaluate(() => window.dispatchEvent(new Event("online"))); // skip the backoff's wait
      await waitState(page, "live", 10_000);
      await waitMessage(page, "written while alice was away");
      const joins = frames.map((f) => JSON.parse(f)).filter((m) => m.type === "join");
      assert.deepEqual(joins.map((j) => [j.room, j.since]), [["lobby", 1]]);
      assert.deepEqual(await messageTexts(page), ["kept before the outage", "written while alice was away"]);
      assert.equal(
        await page.$eval("#conn-problem", (e) => (e as unknown as { hidden: boolean }).hidden),
        true,
      );
      assert.deepEqual(problems.errors.filter((e) => !/ERR_CONNECTION_REFUSED|WebSocket/.test(e)), []);
      await context.close();
    } finally {
      await server.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "browser: a reopened page shows the kept messages before it connects and joins with since",
  ignore,
  async fn() {
    const dataDir = await Deno.makeTempDir();
    await using _cleanup = { [Symbol.asyncDispose]: () => Deno.remove(dataDir, { recursive: true }) };
    await using server = await startServer({ store: "sqlite", dataDir });
    await using tb = await launchBrowser();
    await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
    await bob.seen("joined");
    for (let i = 1; i <= 5; i++) bob.send({ type: "send", room: "lobby", text: `old ${i}`, cid: `o${i}` });
    for (let i = 1; i <= 5; i++) await bob.next("ack", (m) => m.cid === `o${i}`);
    const first = await openChat(tb, server.url, { name: "alice" });
    await waitMessage(first.page, "old 5");
    await waitKept(first.page, (k) => k["chat:lobby"]?.lastSeq === 5, "lobby kept up to seq 5");
    const context = first.context;
    await first.page.close();

    bob.send({ type: "send", room: "lobby", text: "new 6", cid: "n6" });
    await bob.next("ack", (m) => m.cid === "n6");
    // A new tab of the same browser: the kept messages are on screen before the socket is even open.
    const page = await context.newPage();
    const frames = await sentFrames(page);
    await page.evaluateOnNewDocument(() => {
      // What the page shows when the server's first frame arrives, before the page reads it.
      const Native = window.WebSocket;
      window.WebSocket = class extends Native {
        // deno-lint-ignore no-explicit-any
        constructor(...args: any[]) {
          super(...(args as [string]));
          this.addEventListener("message", () => {
            window.textsAtConnect ??= [
              ...document.querySelectorAll("ol.messages:not(.pending-list) .msg-text"),
            ]
              .map((e: { textContent: string }) => e.textContent);
          });
        }
      };
    });
    await page.goto(`${server.url}/`);
    await waitMessage(page, "new 6");
    assert.deepEqual(
      await page.evaluate(() => window.textsAtConnect),
      ["old 1", "old 2", "old 3", "old 4", "old 5"],
      "shown from this device before the server said anything",
    );
    assert.deepEqual(await messageTexts(page), ["old 1", "old 2", "old 3", "old 4", "old 5", "new 6"]);
    const joins = frames.map((f) => JSON.parse(f)).filter((m) => m.type === "join");
    assert.deepEqual(joins.map((j) => [j.room, j.since]), [["lobby", 5]], "only what is newer is asked");
    await context.close();
  },
});

Deno.test({
  name: "browser: KeptHistory.save() keeps the budget, dropping the rooms written least recently first",
  ignore,
  async fn() {
    await using server = await startServer();
    await using tb = await launchBrowser();
    const context = await tb.browser.createBrowserContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/favicon.svg`); // an origin of the server, without the page's own use
    const result = await page.evaluate(async () => {
      const { KeptHistory } = await import("/offline/history.js");
      const kept = await KeptHistory.open({ budgetBytes: 3000, perRoom: 200 });
      const room = (name: string, n: number) => ({
        room: name,
        messages: Array.from(
          { length: n },
          (_, i) => ({ seq: i + 1, from: "a", text: "x".repeat(40), ts: 1 }),
        ),
        lastSeq: n,
        epoch: "e",
        rev: 0,
        complete: true,
        lastRead: 0,
      });
      const wait = () => new Promise((r) => setTimeout(r, 5));
      await kept.save("chat:", room("oldest", 15));
      await wait();
      await kept.save("chat:", room("middle", 15));
      await wait();
      await kept.save("chat:", room("newest", 15));
      const afterThree = (await kept.load("chat:")).map((s: { room: string }) => s.room).sort();
      // One room larger than the whole budget keeps its newest messages that fit.
      await kept.save("chat:", room("huge", 200));
      const all = await kept.load("chat:");
      kept.close();
      return {
        afterThree,
        afterHuge: all.map((s: { room: string }) => s.room),
        huge: all.find((s: { room: string }) => s.room === "huge"),
      };
    });
    // Three rooms of about 1.2 kB do not fit 3 kB: the first written went.
    assert.deepEqual(result.afterThree, ["middle", "newest"]);
    assert.deepEqual(result.afterHuge, ["huge"]);
    assert.ok(result.huge.messages.length > 0 && result.huge.messages.length < 200);
    assert.equal(result.huge.messages.at(-1).seq, 200, "the newest are kept");
    assert.equal(result.huge.complete, false, "older ones are on the server");
    await context.close();
  },
});

Deno.test({
  name: "browser: a message written offline survives the tab's close and is sent once when the page reopens",
  ignore,
  async fn() {
    const dataDir = await Deno.makeTempDir();
    let server = await startServer({ store: "sqlite", dataDir });
    try {
      await using tb = await launchBrowser();
      const { page, context } = await openChat(tb, server.url, { name: "alice" });
      await waitWorker(page);
      // The network goes (DevTools' emulation) and the server with it: nothing can go out.
      await page.setOfflineMode(true);
      await server.close();
      await page.waitForFunction(() => document.querySelector("#conn-status").dataset.state !== "live");
      await say(page, "typed on the train");
      await page.waitForFunction(() =>
        [...document.querySelectorAll(".pending-list .msg-text")].some((e: { textContent: string }) =>
          e.textContent === "typed on the train"
        )
      );
      assert.deepEqual(await pendingTexts(page), ["typed on the train"]);
      await page.close(); // the tab goes; the outbox stays on this device

      server = await restart(server, dataDir);
      await using bob = await TestClient.connect(server, { name: "bob", room: "lobby" });
      await bob.seen("joined");
      const reopened = await context.newPage();
      await reopened.goto(`${server.url}/`);
      await waitMessage(reopened, "typed on the train");
      await bob.next("message", (m) => m.text === "typed on the train");
      await sleep(500); // a second copy would come by now
      assert.equal(bob.all("message").filter((m) => m.text === "typed on the train").length, 1);
      assert.deepEqual(await pendingTexts(reopened), []);
      await context.close();
    } finally {
      await server.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "browser: Forget this device clears the name, rooms, outbox, kept history and the page's copy",
  ignore,
  async fn() {
    await using server = await startServer();
    await using tb = await launchBrowser();
    const { page, context, problems } = await openChat(tb, server.url, { name: "alice" });
    await say(page, "something to forget");
    await waitMessage(page, "something to forget");
    await waitWorker(page);
    await waitKept(page, (k) => !!k["chat:lobby"]?.texts.includes("something to forget"), "the message kept");
    assert.ok((await keptRooms(page))["chat:lobby"]);

    await page.click("#forget-device");
    await page.waitForSelector("dialog.ask[open]");
    await Promise.all([page.waitForNavigation(), page.click('dialog.ask button[type="submit"]')]);
    await page.waitForSelector("#name-input", { visible: true });
    const left = await page.evaluate(async () => ({
      storage: Object.keys(localStorage).filter((k) => k.startsWith("chat:")),
      databases: (await indexedDB.databases()).map((d: { name: string }) => d.name),
      caches: await caches.keys(),
      workers: (await navigator.serviceWorker.getRegistrations()).length,
    }));
    assert.deepEqual(left, { storage: [], databases: [], caches: [], workers: 0 });
    assert.deepEqual(problems.errors, []);
    await context.close();
  },
});

Deno.test({
  name:
    "browser: with the network switched off (DevTools), a reload opens the page offline; on again, it goes live",
  ignore,
  async fn() {
    await using server = await startServer();
    await using tb = await launchBrowser();
    const { page, context } = await openChat(tb, server.url, { name: "alice" });
    await say(page, "before the tunnel");
    await waitMessage(page, "before the tunnel");
    await waitWorker(page);
    // Kept with the message: the room's first snapshot (at the join) holds none yet.
    await waitKept(page, (k) => !!k["chat:lobby"]?.texts.includes("before the tunnel"), "the message kept");

    await page.setOfflineMode(true);
    await page.reload();
    await page.waitForSelector("#app:not([hidden])");
    // Before any connection: what the device kept (not how fast: a loaded machine takes its time).
    await waitMessage(page, "before the tunnel", 20_000);
    await waitText(page, "#conn-text", "Offline");
    await waitText(page, "#conn-problem-why", "The server cannot be reached");

    await page.setOfflineMode(false); // the browser's `online` event: the page reconnects at once
    await waitState(page, "live");
    assert.deepEqual(await messageTexts(page), ["before the tunnel"]);
    await context.close();
  },
});

Deno.test({
  name:
    "browser: a signed person's kept history is keyed by the token's subject, never shown to the next person",
  ignore,
  async fn() {
    await using host = hostSite();
    const { who, origin: hostOrigin, secret } = host;
    await using server = await startServer({ jwtSecret: secret, allowedOrigins: hostOrigin });
    who.chatOrigin = server.url;
    const chatUrl = `${server.url}/?tokenUrl=${encodeURIComponent(`${hostOrigin}/token`)}`;
    await using tb = await launchBrowser();
    const context = await tb.browser.createBrowserContext();
    const ada = await context.newPage();
    await ada.goto(chatUrl);
    await waitState(ada, "live");
    await say(ada, "ada's words");
    await waitMessage(ada, "ada's words");
    await waitKept(
      ada,
      (k) => !!k["chat:signed:ada:lobby"]?.texts.includes("ada's words"),
      "ada's message kept",
    );
    assert.deepEqual(Object.keys(await keptRooms(ada)), ["chat:signed:ada:lobby"]);
    await ada.close();

    // Another person signs in to the host site on this browser: the chat shows nothing of ada's before
    // the server speaks (a server that lets the room's history be read sends it then, as to anyone).
    who.subject = "bob";
    const bob = await context.newPage();
    await bob.evaluateOnNewDocument(() => {
      const Native = window.WebSocket;
      window.WebSocket = class extends Native {
        // deno-lint-ignore no-explicit-any
        constructor(...args: any[]) {
          super(...(args as [string]));
          this.addEventListener("message", () => {
            window.textsAtConnect ??= [
              ...document.querySelectorAll("ol.messages:not(.pending-list) .msg-text"),
            ]
              .map((e: { textContent: string }) => e.textContent);
          });
        }
      };
    });
    await bob.goto(chatUrl);
    await waitState(bob, "live");
    assert.deepEqual(await bob.evaluate(() => window.textsAtConnect), []);
    await context.close();
  },
});

Deno.test({
  name:
    "browser: what a signed person left unsent is never sent as the next person who signs in on the browser",
  ignore,
  async fn() {
    await using host = hostSite();
    const { who, origin: hostOrigin, secret } = host;
    const first = await startServer({ jwtSecret: secret, allowedOrigins: hostOrigin });
    const port = first.port;
    who.chatOrigin = first.url;
    const chatUrl = `${first.url}/?tokenUrl=${encodeURIComponent(`${hostOrigin}/token`)}`;
    await using tb = await launchBrowser();
    const context = await tb.browser.createBrowserContext();
    const ada = await context.newPage();
    await ada.goto(chatUrl);
    await waitState(ada, "live");
    // The server goes away; what ada writes now waits in her outbox, and she closes the tab.
    await first.close();
    await ada.waitForFunction(() => document.querySelector("#conn-status")?.dataset.state !== "live");
    await say(ada, "ada's unsent words");
    await ada.waitForFunction(() =>
      [...document.querySelectorAll(".pending-list .msg-text")].some((e: { textContent: string }) =>
        e.textContent === "ada's unsent words"
      )
    );
    await ada.close();
    // The server is back, and bob signs in to the host site on this browser.
    await using second = await startServer({
      jwtSecret: secret,
      guests: "on",
      allowedOrigins: hostOrigin,
      port,
    });
    await using watcher = await TestClient.connect(second, { name: "watcher", room: "lobby" });
    who.subject = "bob";
    const bob = await context.newPage();
    await bob.goto(chatUrl);
    await waitState(bob, "live");
    await say(bob, "bob's own words");
    // An outbox is sent when the connection is welcomed, before anything typed after: had bob's page
    // taken ada's, it would have reached the room first.
    const got = await watcher.next("message", (m) => m.from === "bob");
    assert.equal(got.text, "bob's own words");
    assert.equal(watcher.all("message").some((m) => m.text === "ada's unsent words"), false);
    await context.close();
  },
});

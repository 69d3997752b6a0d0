/**
 * The page behind a proxy that refuses WebSocket upgrades (as some corporate proxies do): it falls
 * back to Server-Sent Events and POST by itself, says so, chats, and comes back after a server
 * restart with nothing lost or doubled. The proxy is the test's own, on loopback.
 * @module
 */
import assert from "node:assert/strict";
import {
  browserMissing,
  launchBrowser,
  messageTexts,
  openChat,
  pendingTexts,
  say,
  waitMessage,
  waitState,
} from "../helpers/browser.ts";
import { startServer, TestClient } from "../helpers/test_server.ts";

const ignore = browserMissing !== undefined;

/** Inside `page.evaluate` callbacks only (tests type-check without the DOM lib). */
// deno-lint-ignore no-explicit-any
declare const document: any;

/**
 * An HTTP proxy that passes every request to `upstream` and answers every WebSocket upgrade 403,
 * streaming responses (the event streams) as they come. The upstream port can change (a restart).
 */
function blockingProxy() {
  const state = { upstream: 0, refusedUpgrades: 0, inFlight: new Set<AbortController>() };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req, info) => {
    if (req.headers.get("upgrade")?.toLowerCase() === "websocket") {
      state.refusedUpgrades++;
      return new Response("WebSockets are not allowed through this proxy\n", { status: 403 });
    }
    const url = new URL(req.url);
    const headers = new Headers(req.headers);
    headers.delete("host");
    const abort = new AbortController();
    state.inFlight.add(abort);
    const done = () => {
      abort.abort();
      state.inFlight.delete(abort);
    };
    info.completed.then(done, done);
    try {
      return await fetch(`http://127.0.0.1:${state.upstream}${url.pathname}${url.search}`, {
        method: req.method,
        headers,
        body: req.body,
        redirect: "manual",
        signal: abort.signal,
      });
    } catch {
      done();
      return new Response("upstream unavailable\n", { status: 502 });
    }
  });
  return {
    state,
    url: `http://127.0.0.1:${server.addr.port}`,
    async close() {
      for (const a of state.inFlight) a.abort();
      await server.shutdown();
    },
  };
}

Deno.test({
  name:
    "browser: WebSockets blocked by a proxy: the page falls back to SSE, says so, chats, and resumes after a restart with nothing lost or doubled",
  ignore,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "chat-fallback-browser-" });
    const proxy = blockingProxy();
    try {
      // The page's origin is the proxy's, which the server is told (as --public-origin would).
      const opts = { store: "sqlite", dataDir, publicOrigins: [proxy.url] } as const;
      const first = await startServer(opts);
      const port = first.port;
      proxy.state.upstream = port;
      await using tb = await launchBrowser();
      const { page, context, problems } = await openChat(tb, proxy.url, { name: "alice" });
      assert.ok(proxy.state.refusedUpgrades >= 2, "WebSockets were tried first");
      assert.equal(await page.$eval("#conn-status", (e) => e.getAttribute("data-transport")), "sse");
      assert.equal(await page.$eval("#conn-text", (e) => e.textContent), "Live (fallback: SSE)");

      await using bob = await TestClient.connect(first, { name: "bob", room: "lobby" });
      await bob.next("joined");
      await say(page, "hello over sse");
      assert.equal((await bob.next("message", (m) => m.text === "hello over sse")).from, "alice");
      bob.send({ type: "send", room: "lobby", text: "hello from a websocket", cid: "b1" });
      await waitMessage(page, "hello from a websocket");

      await first.close();
      await waitState(page, "reconnecting");
      await say(page, "typed while the server was down");
      await page.waitForFunction(() =>
        [...document.querySelectorAll(".pending-list .msg-text")].some((e: { textContent: string }) =>
          e.textContent === "typed while the server was down"
        )
      );
      await using second = await startServer({ ...opts, port });
      await using carol = await TestClient.connect(second, { name: "carol", room: "lobby" });
      carol.send({ type: "send", room: "lobby", text: "sent while you were away", cid: "c1" });
      await carol.next("ack");

      await waitState(page, "live", 15_000);
      await waitMessage(page, "typed while the server was down", 10_000);
      await waitMessage(page, "sent while you were away");
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(await messageTexts(page), [
        "hello over sse",
        "hello from a websocket",
        "sent while you were away",
        "typed while the server was down",
      ]);
      assert.deepEqual(await pendingTexts(page), []);
      assert.equal(
        carol.all("message").filter((m) => m.text === "typed while the server was down").length,
        1,
      );
      assert.equal(await page.$eval("#conn-status", (e) => e.getAttribute("data-transport")), "sse");
      // What the browser logs about the refused upgrades and the restart is expected; nothing else.
      assert.deepEqual(
        problems.errors.filter((e) => !/WebSocket|Failed to load resource|ERR_|network error/.test(e)),
        [],
      );
      await context.close();
    } finally {
      await proxy.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

/**
 * The chat page with signed identities, in a real browser: its tokens come from a host application's
 * endpoint (`?tokenUrl=`). Skipped, with the reason printed, where Chromium is not installed.
 * @module
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { browserMissing, launchBrowser, openChat, waitState } from "../helpers/browser.ts";
import { startServer, TestClient } from "../helpers/test_server.ts";

const SECRET = "a-browser-test-secret-of-more-than-32-bytes";

Deno.test({
  name: "browser: the page with a token hook connects as the signed user, shows its name, and refreshes",
  ignore: browserMissing !== undefined,
  async fn() {
    let chatOrigin = "";
    let minted = 0;
    // The host application's token endpoint, on another origin: CORS for the chat page only.
    await using host = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
      const cors = { "access-control-allow-origin": chatOrigin, "access-control-allow-credentials": "true" };
      if (req.method !== "POST") return new Response(null, { status: 405, headers: cors });
      minted++;
      // Short-lived, so the page refreshes it on the open connection within the test.
      const token = await new SignJWT({ name: "Ada", role: "moderator" }).setProtectedHeader({ alg: "HS256" })
        .setSubject("ada-1").setExpirationTime(Math.floor(Date.now() / 1000) + 33)
        .sign(new TextEncoder().encode(SECRET));
      return Response.json({ token }, { headers: cors });
    });
    const hostOrigin = `http://127.0.0.1:${host.addr.port}`;
    await using server = await startServer({ jwtSecret: SECRET, allowedOrigins: hostOrigin });
    chatOrigin = server.url;
    await using watcher = await TestClient.connect(server, {
      token: await new SignJWT({ name: "watcher" }).setProtectedHeader({ alg: "HS256" }).setSubject("w")
        .setExpirationTime("5m").sign(new TextEncoder().encode(SECRET)),
    });
    await using tb = await launchBrowser();
    const { page, problems } = await openChat(
      tb,
      `${server.url}/?tokenUrl=${encodeURIComponent(`${hostOrigin}/token`)}`,
    );
    await waitState(page, "live");
    assert.equal(await page.$eval("#me-name", (e) => e.textContent), "Ada");
    await page.waitForSelector('#member-list li[data-name="Ada"]');
    assert.equal((await watcher.next("presence")).name, "Ada");
    assert.equal(
      await page.$("#name-input:not([hidden])").then((e) => e?.isVisible()),
      false,
      "no name asked",
    );
    // exp is 33 s away and the page refreshes 30 s before: within a few seconds, on the same connection.
    const deadline = Date.now() + 8000;
    while (minted < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(minted >= 2, "the page asked for a new token before exp");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(
      watcher.all("presence").length,
      1,
      "no reconnect: the refresh went over the open connection",
    );
    assert.deepEqual(problems.errors.filter((e) => !/favicon/.test(e)), []);
  },
});

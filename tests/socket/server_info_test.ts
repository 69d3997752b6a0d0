/**
 * `GET /ws/info`: what the page learns over HTTP before it connects, since a browser tells a page
 * nothing about a refused WebSocket (#19): guests or not, the host's sign-in link, and for the page's
 * origin whether its upgrade is refused, why, and what to do.
 * @module
 */
import assert from "node:assert/strict";
import { rawHandshake } from "../helpers/raw_ws.ts";
import { startServer } from "../helpers/test_server.ts";

const SECRET = "a-socket-test-secret-of-more-than-32-bytes";

/** GET `path` with `headers` (Host among them), as JSON. */
async function info(port: number, path: string, headers: Record<string, string> = {}) {
  const res = await rawHandshake(port, path, headers);
  assert.equal(res.status, 200, res.body);
  return JSON.parse(res.body);
}

Deno.test("GET /ws/info says whether guests may chat and where the host signs people in", async () => {
  await using open = await startServer();
  assert.deepEqual(await info(open.port, "/ws/info"), { guests: true, signInUrl: null, origin: null });
  await using signed = await startServer({ jwtSecret: SECRET, signInUrl: "https://host.example/login" });
  assert.deepEqual(await info(signed.port, "/ws/info"), {
    guests: false,
    signInUrl: "https://host.example/login",
    origin: null,
  });
  const post = await fetch(`${signed.url}/ws/info`, { method: "POST" });
  assert.equal(post.status, 405);
  await post.body?.cancel();
});

Deno.test("GET /ws/info?origin= repeats the upgrade's origin check: a proxy's Host without the port is named with its fix", async () => {
  await using s = await startServer();
  const p = s.port;
  // Same origin on loopback: allowed, as the upgrade is.
  assert.deepEqual(
    (await info(p, `/ws/info?origin=${encodeURIComponent(`http://localhost:${p}`)}`, {
      Host: `localhost:${p}`,
    }))
      .origin,
    { allowed: true },
  );
  // nginx with `proxy_set_header Host $host` in front on port 8088: the upgrade arrives with Host "localhost".
  const proxied = await info(p, `/ws/info?origin=${encodeURIComponent("http://localhost:8088")}`, {
    Host: "localhost",
  });
  assert.equal(proxied.origin.allowed, false);
  assert.equal(proxied.origin.code, "origin_forbidden");
  assert.match(proxied.origin.fix, /proxy_set_header Host \$http_host/);
  assert.match(proxied.origin.fix, /--public-origin http:\/\/localhost:8088/);
  const upgrade = await rawHandshake(p, "/ws", { Origin: "http://localhost:8088", Host: "localhost" });
  assert.equal(upgrade.status, 403);
  const { error } = JSON.parse(upgrade.body);
  assert.equal(error.code, "origin_forbidden");
  assert.match(error.message, /\$http_host/, "the refusal itself says what to do");
  // A LAN name the server was not told: start it with --public-origin.
  const lan = await info(p, `/ws/info?origin=${encodeURIComponent(`http://chatbox:${p}`)}`, {
    Host: `chatbox:${p}`,
  });
  assert.equal(lan.origin.allowed, false);
  assert.match(lan.origin.fix, new RegExp(`--public-origin http://chatbox:${p}`));
  await using named = await startServer({ publicOrigins: `http://chatbox:${p}` });
  assert.deepEqual(
    (await info(named.port, `/ws/info?origin=${encodeURIComponent(`http://chatbox:${p}`)}`)).origin,
    { allowed: true },
  );
});

/**
 * The fallback transport across the processes of a Redis deployment, with no sticky sessions: a
 * session's stream on one instance, its POSTs and its DELETE landing on another. Two instances in
 * this process on a private redis-server, stopped by PID.
 * @module
 */
import assert from "node:assert/strict";
import { redisMissing, startRedis } from "../helpers/redis.ts";
import { SseClient } from "../helpers/sse.ts";
import { startServer, TestClient, waitFor } from "../helpers/test_server.ts";

const missing = redisMissing();
if (missing) console.log(`fallback-on-Redis tests skipped: ${missing}`);

Deno.test({
  name:
    "redis: POSTs landing on another instance than the stream reach the session, in order; unknown ids are 404 there too",
  ignore: missing !== undefined,
  async fn() {
    await using redis = await startRedis();
    await using a = await startServer({ redisUrl: redis.url });
    await using b = await startServer({ redisUrl: redis.url });
    await using wendy = await TestClient.connect(b, { name: "wendy" });
    await wendy.next("joined");
    await using c = await SseClient.open(a.url, { name: "sam" });
    await c.next("joined");
    c.postTo = b.url;
    await c.send(
      { type: "send", room: "lobby", text: "one", cid: "c1" },
      { type: "send", room: "lobby", text: "two", cid: "c2" },
    );
    await c.send({ type: "send", room: "lobby", text: "three", cid: "c3" }, { type: "ping" });
    await c.next("pong");
    await c.next("ack", (m) => m.cid === "c3");
    assert.deepEqual(c.all("ack").map((m) => m.cid), ["c1", "c2", "c3"]);
    await wendy.next("message", (m) => m.text === "three");
    assert.deepEqual(wendy.all("message").map((m) => `${m.from}: ${m.text}`), [
      "sam: one",
      "sam: two",
      "sam: three",
    ]);
    // Limits hold wherever the POST lands: the frames are handled by the session's own instance.
    const many = await c.post(...Array.from({ length: 31 }, () => ({ type: "ping" })));
    assert.equal(many.status, 413);
    await many.body?.cancel();
    // An id no instance holds: 404 from the other instance as well, after asking Redis.
    const other = await fetch(`${b.url}/ws/sse/${"B".repeat(22)}`, {
      method: "POST",
      body: '{"type":"ping"}',
    });
    assert.equal(other.status, 404);
    assert.equal((await other.json()).error.code, "unknown_session");
    // A resume must come back to the stream's instance; elsewhere it is told to start over.
    const elsewhere = await fetch(`${b.url}/ws/sse?lastEventId=${c.lastId}`);
    assert.equal(elsewhere.status, 404);
    await elsewhere.body?.cancel();
    // The end, through the other instance: the session leaves its rooms everywhere.
    await c.close();
    await wendy.next("presence", (m) => m.name === "sam" && m.event === "leave");
    await waitFor(() => Promise.resolve(a.app.chat.connectionCount === 0), 3000, "the session's end");
    const gone = await fetch(`${b.url}/ws/sse/${c.session}`, { method: "POST", body: '{"type":"ping"}' });
    assert.equal(gone.status, 404);
    await gone.body?.cancel();
  },
});

/**
 * The fallback transport over a real server: a session's stream (`GET /ws/sse`) and its frames
 * (`POST /ws/sse/{session}`), resuming a dropped stream without loss or duplicates, and the limits and
 * guards every WebSocket connection has.
 */
import assert from "node:assert/strict";
import { startServer, TestClient, waitFor } from "../helpers/test_server.ts";
import { SseClient } from "../helpers/sse.ts";

Deno.test("GET /ws/sse: the first event names the session, then the welcome; POSTed frames are answered on the stream and chat with a WebSocket", async () => {
  await using s = await startServer();
  await using ws = await TestClient.connect(s, { name: "wendy" });
  await ws.next("joined");
  await using c = await SseClient.open(s.url, { name: "sam" });
  assert.equal(c.events[0].event, "session");
  assert.equal(c.events[0].id, `${c.session}.0`);
  assert.match(c.session, /^[A-Za-z0-9_-]{22}$/);
  assert.equal((await c.next("welcome")).name, "sam");
  await c.next("joined", (m) => m.room === "lobby");
  // Several frames in one POST, answered in order.
  await c.send(
    { type: "send", room: "lobby", text: "one", cid: "c1" },
    { type: "send", room: "lobby", text: "two", cid: "c2" },
    { type: "ping" },
  );
  await c.next("ack", (m) => m.cid === "c2");
  assert.deepEqual(c.all("ack").map((m) => m.cid), ["c1", "c2"]);
  await c.next("pong");
  assert.equal((await ws.next("message", (m) => m.text === "two")).from, "sam");
  ws.send({ type: "send", room: "lobby", text: "back at you" });
  assert.equal((await c.next("message", (m) => m.text === "back at you")).from, "wendy");
  // Every event after the first has an id of this session, numbered in order.
  const ids = c.events.slice(1).map((e) => Number(e.id!.split(".")[1]));
  assert.deepEqual(ids, ids.map((_, i) => i + 1));
  assert.equal(s.app.chat.connectionCount, 2);
});

Deno.test("a dropped stream resumed with Last-Event-ID or ?lastEventId= gets what it missed, once, in order", async () => {
  await using s = await startServer();
  await using ws = await TestClient.connect(s, { name: "wendy" });
  await ws.next("joined");
  await using c = await SseClient.open(s.url, { name: "sam" });
  await c.next("joined");
  ws.send({ type: "send", room: "lobby", text: "m1", cid: "w1" });
  await c.next("message", (m) => m.text === "m1");
  const m1 = c.lastId;
  // Two events the client never reads: the stream is gone while they are sent.
  await c.drop();
  ws.send({ type: "send", room: "lobby", text: "m2", cid: "w2" });
  await ws.next("ack", (m) => m.cid === "w2");
  ws.send({ type: "send", room: "lobby", text: "m3", cid: "w3" });
  await ws.next("ack", (m) => m.cid === "w3");
  const res = await c.resume();
  assert.equal(res.status, 200);
  await c.next("message", (m) => m.text === "m3");
  assert.deepEqual(c.all("message").map((m) => m.text), ["m1", "m2", "m3"]);
  // Resumed again from the same point, by query: the same events again (the client may have lost
  // them with the second stream), and nothing else.
  const before = c.lines.length;
  assert.equal((await c.resume({ after: m1, header: false })).status, 200);
  await waitFor(() => Promise.resolve(c.all("message").length === 5), 3000, "the messages again");
  assert.deepEqual(c.lines.slice(before).map((m) => m.text), ["m2", "m3"]);
  // The session is one connection throughout: it posts as before.
  await c.send({ type: "send", room: "lobby", text: "still me", cid: "s1" });
  assert.equal((await ws.next("message", (m) => m.text === "still me")).from, "sam");
  assert.equal(s.app.chat.connectionCount, 2);
});

Deno.test("a resume from before what the replay buffer keeps is told to start over (410), and the session ends", async () => {
  await using s = await startServer({ sseReplayBytes: 1024 });
  await using ws = await TestClient.connect(s, { name: "wendy" });
  await ws.next("joined");
  await using c = await SseClient.open(s.url, { name: "sam" });
  await c.next("joined");
  for (let i = 0; i < 12; i++) {
    ws.send({ type: "send", room: "lobby", text: `m${i} ${"x".repeat(100)}`, cid: `w${i}` });
    await c.next("message", (m) => m.cid === `w${i}`);
  }
  const res = await c.resume({ after: `${c.session}.1` });
  assert.equal(res.status, 410);
  const body = await res.json();
  assert.equal(body.error.code, "session_lost");
  assert.match(body.error.message, /no longer kept .*join \{since\}/);
  await ws.next("presence", (m) => m.name === "sam" && m.event === "leave");
  const again = await c.resume();
  assert.equal(again.status, 404);
  await again.body?.cancel();
});

Deno.test("an unknown or malformed session id gets 404 or 400 with a sentence, never another session's stream", async () => {
  await using s = await startServer();
  await using c = await SseClient.open(s.url, { name: "sam" });
  await c.next("joined");
  const other = `${"A".repeat(22)}`;
  for (
    const res of [
      await fetch(`${s.url}/ws/sse/${other}`, { method: "POST", body: '{"type":"ping"}' }),
      await fetch(`${s.url}/ws/sse/..%2f${c.session}`, { method: "POST", body: '{"type":"ping"}' }),
      await fetch(`${s.url}/ws/sse`, { headers: { "last-event-id": `${other}.3` } }),
      await fetch(`${s.url}/ws/sse/${other}`, { method: "DELETE" }),
    ]
  ) {
    assert.equal(res.status, 404);
    const body = await res.json();
    assert.equal(body.error.code, "unknown_session");
    assert.match(body.error.message, /^No session .* here: it ended, expired or never existed/);
  }
  const bad = await fetch(`${s.url}/ws/sse?lastEventId=${c.session}`);
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /a last event id is "<session>.<number>"/);
  // A resume past what was sent is no resume either: nothing of the session is shown.
  const ahead = await fetch(`${s.url}/ws/sse?lastEventId=${c.session}.999`);
  assert.equal(ahead.status, 410);
  await ahead.body?.cancel();
  const get = await fetch(`${s.url}/ws/sse/${c.session}`);
  assert.equal(get.status, 405);
  await get.body?.cancel();
});

Deno.test("POST limits: frame size, frames per POST, body size, rate limit and strikes are those of a WebSocket", async () => {
  await using s = await startServer({ maxFrameBytes: 256, ssePostFrames: 3, burst: 5, maxStrikes: 3 });
  await using c = await SseClient.open(s.url, { name: "sam" });
  await c.next("joined");
  const many = await c.post({ type: "ping" }, { type: "ping" }, { type: "ping" }, { type: "ping" });
  assert.equal(many.status, 413);
  assert.equal((await many.json()).error.code, "too_many_frames");
  const huge = await c.post("x".repeat(3 * 257 + 1));
  assert.equal(huge.status, 413);
  assert.equal((await huge.json()).error.code, "body_too_big");
  const notUtf8 = await fetch(`${s.url}/ws/sse/${c.session}`, {
    method: "POST",
    body: new Uint8Array([0x7b, 0xff, 0x7d]),
  });
  assert.equal(notUtf8.status, 400);
  await notUtf8.body?.cancel();
  // Refusals are answered on the stream with the same error frames, and count as strikes.
  await c.send("{bad", "{bad");
  await waitFor(() => Promise.resolve(c.all("error").length === 2), 3000, "two errors");
  assert.deepEqual(c.all("error").map((m) => m.code), ["bad_json", "bad_json"]);
  await c.send("{bad", "{bad");
  await waitFor(() => Promise.resolve(c.closedWith !== undefined), 3000, "the close event");
  assert.deepEqual(c.closedWith, { code: 1008, reason: "too many bad frames" });
  // The session is over: its id leads nowhere.
  const after = await c.post({ type: "ping" });
  assert.equal(after.status, 404);
  await after.body?.cancel();

  await using d = await SseClient.open(s.url, { name: "dee" });
  await d.next("joined");
  await d.send(JSON.stringify({ type: "send", room: "lobby", text: "y".repeat(300) }));
  await waitFor(() => Promise.resolve(d.closedWith !== undefined), 3000, "the close event");
  assert.equal(d.all("error")[0].code, "frame_too_big");
  assert.equal(d.closedWith?.code, 1009);

  await using e = await SseClient.open(s.url, { name: "eve" });
  await e.next("joined");
  for (let i = 0; i < 3; i++) await e.send({ type: "ping" }, { type: "ping" }, { type: "ping" });
  assert.equal((await e.next("error")).code, "rate_limited");
});

Deno.test("origin checks and connection caps apply to sessions as to WebSockets", async () => {
  await using s = await startServer({ maxConnectionsPerIp: 2 });
  const foreign = await fetch(`${s.url}/ws/sse?name=eve`, { headers: { origin: "http://evil.example" } });
  assert.equal(foreign.status, 403);
  assert.equal((await foreign.json()).error.code, "origin_forbidden");
  await using c = await SseClient.open(s.url, { name: "sam" }, { origin: s.url });
  await c.next("joined");
  const post = await fetch(`${s.url}/ws/sse/${c.session}`, {
    method: "POST",
    body: '{"type":"ping"}',
    headers: { origin: "http://evil.example" },
  });
  assert.equal(post.status, 403);
  await post.body?.cancel();
  assert.equal(c.all("pong").length, 0);
  await using ws = await TestClient.connect(s, { name: "wendy" });
  await ws.next("joined");
  // Two connections from this address: a third, of either kind, is refused.
  const third = await fetch(`${s.url}/ws/sse?name=tom`);
  assert.equal(third.status, 429);
  assert.equal((await third.json()).error.code, "too_many_connections_ip");
  await c.close();
  await waitFor(() => Promise.resolve(s.app.chat.connectionCount === 1), 3000, "the session's end");
  await using d = await SseClient.open(s.url, { name: "dee" });
  await d.next("joined");
});

Deno.test("a session without a stream expires after --sse-session-idle and leaves its rooms", async () => {
  await using s = await startServer({ sseSessionIdleSeconds: 1 });
  await using ws = await TestClient.connect(s, { name: "wendy" });
  await ws.next("joined");
  await using c = await SseClient.open(s.url, { name: "sam" });
  await c.next("joined");
  await ws.next("presence", (m) => m.name === "sam" && m.event === "join");
  await c.drop();
  const t0 = performance.now();
  await ws.next("presence", (m) => m.name === "sam" && m.event === "leave", 4000);
  assert.ok(performance.now() - t0 >= 900, "not before the idle time");
  const res = await c.resume();
  assert.equal(res.status, 404);
  await res.body?.cancel();
});

Deno.test("a session whose stream is gone and whose backlog passes --max-buffered-bytes ends as a slow consumer", async () => {
  await using s = await startServer({ maxBufferedBytes: 4096 });
  await using ws = await TestClient.connect(s, { name: "wendy" });
  await ws.next("joined");
  await using c = await SseClient.open(s.url, { name: "sam" });
  await c.next("joined");
  await c.drop();
  for (let i = 0; i < 10; i++) {
    ws.send({ type: "send", room: "lobby", text: "z".repeat(600), cid: `w${i}` });
    await ws.next("ack", (m) => m.cid === `w${i}`);
  }
  await ws.next("presence", (m) => m.name === "sam" && m.event === "leave");
  assert.equal(s.app.metrics.slowConsumerCloses, 1);
  const res = await c.resume();
  assert.equal(res.status, 404);
  await res.body?.cancel();
});

Deno.test("a shutdown ends each stream with a close event 1001", async () => {
  const s = await startServer({ shutdownQuietMs: 10 });
  try {
    await using c = await SseClient.open(s.url, { name: "sam" });
    await c.next("joined");
    await s.app.shutdown();
    await waitFor(() => Promise.resolve(c.closedWith !== undefined), 3000, "the close event");
    assert.deepEqual(c.closedWith, { code: 1001, reason: "server restarting" });
  } finally {
    await s.close();
  }
});

Deno.test("format=text and batch=off work on a session as on /ws: human lines, or one message per event", async () => {
  await using s = await startServer();
  const res = await fetch(`${s.url}/ws/sse?name=tia&format=text`);
  assert.equal(res.status, 200);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("you joined lobby")) text += (await reader.read()).value ?? "";
  await reader.cancel();
  const data = text.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6));
  assert.equal(data[1], "* Hello, welcome: you are tia");
  assert.ok(data.slice(1).every((l) => !l.startsWith("{")), data.join(" | "));
  await using c = await SseClient.open(s.url, { name: "bo", batch: "off" });
  await c.next("joined");
  // The welcome, conversations and joined of one turn: three events, not one.
  const messages = c.events.filter((e) => e.event === "message");
  assert.ok(messages.length >= 3);
  assert.ok(messages.every((e) => !e.data.includes("\n")));
  const bad = await fetch(`${s.url}/ws/sse?format=xml`);
  assert.equal(bad.status, 400);
  await bad.body?.cancel();
});

/** Integration tests: a real server on port 0, real WebSocket clients, every protocol message. */
import assert from "node:assert/strict";
import { type Msg, startServer, TestClient, waitFor, wsHeaders } from "../helpers/test_server.ts";
import { findCloseCode, rawHandshake, type RawHeaders, RawSocket } from "../helpers/raw_ws.ts";
import manifest from "../../deno.json" with { type: "json" };

Deno.test("welcome is the first message and carries id, name, token, rooms, limits, version, release", async () => {
  await using s = await startServer();
  await using c = new TestClient(`${s.wsUrl}?name=alice`);
  const w = await c.next("welcome");
  assert.equal(c.lines[0], w);
  assert.equal(w.name, "alice");
  assert.equal(typeof w.id, "number");
  assert.match(w.token, /^[A-Za-z0-9_-]{22,}$/);
  assert.deepEqual(w.rooms, []);
  assert.equal(w.version, 1);
  assert.equal(w.release, manifest.version);
  assert.deepEqual(Object.keys(w.limits).sort(), [
    "burst",
    "editSeconds",
    "frameBytes",
    "historyPage",
    "messagesPerSecond",
    "roomsPerConnection",
    "searchPage",
    "searchQueryChars",
    "textChars",
  ]);
  const j = await c.next("joined");
  assert.equal(j.room, "lobby");
  assert.deepEqual(j.members, ["alice"]);
});

Deno.test("the subprotocol chat is chosen when offered, and none is invented", async () => {
  await using s = await startServer();
  await using a = new TestClient(s.wsUrl, ["chat", "superchat"]);
  await a.opened;
  assert.equal(a.ws.protocol, "chat");
  await using b = new TestClient(s.wsUrl);
  await b.opened;
  assert.equal(b.ws.protocol, "");
  const lists: RawHeaders[] = [{}, { "Sec-WebSocket-Protocol": "" }, { "Sec-WebSocket-Protocol": " , " }];
  for (const headers of lists) {
    const none = await rawHandshake(s.port, "/ws", headers);
    assert.equal(none.status, 101, JSON.stringify(headers));
    assert.doesNotMatch(none.head.toLowerCase(), /sec-websocket-protocol/);
  }
});

Deno.test("any RFC list that holds chat gets chat: no spaces, other order, tabs, several header lines", async () => {
  await using s = await startServer();
  const lists: [string, string | string[]][] = [
    ["no space (Node's ws)", "chat,json"],
    ["chat second", "json, chat"],
    ["tab and empty element", "json,\tchat ,"],
    ["two header lines", ["json", "chat"]],
  ];
  for (const [what, list] of lists) {
    const raw = await RawSocket.open(s.port, "/ws", { "Sec-WebSocket-Protocol": list });
    try {
      assert.match(raw.head, /\r\nsec-websocket-protocol: chat\r\n/i, what);
      // The socket behind the 101 is the app's: welcome arrives and a ping is answered.
      await raw.sendText(JSON.stringify({ type: "ping" }));
      let got = "";
      for (let i = 0; i < 40 && !got.includes('"type":"pong"'); i++) {
        got += new TextDecoder().decode(await raw.drain(50));
      }
      assert.match(got, /"type":"welcome"/, what);
      assert.match(got, /"type":"pong"/, what);
    } finally {
      await raw.close();
    }
  }
});

Deno.test("a client that offers only other subprotocols is refused with 400 naming chat, before its room sees it", async () => {
  await using s = await startServer({ presenceDelayMs: 0 });
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  for (const list of ["foo", "foo, superchat", "Chat"]) {
    const res = await rawHandshake(s.port, "/ws?name=bob&room=r", { "Sec-WebSocket-Protocol": list });
    assert.equal(res.status, 400, list);
    assert.doesNotMatch(res.head.toLowerCase(), /sec-websocket-protocol/);
    const { error } = JSON.parse(res.body);
    assert.equal(error.code, "unsupported_subprotocol");
    assert.match(error.message, /"chat"/);
  }
  a.send({ type: "ping" });
  await a.next("pong");
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(a.all("presence"), []);
  // The listener is still up.
  await using c = await TestClient.connect(s, { name: "carol" });
  assert.ok(c);
});

Deno.test("send reaches every member including the sender, ack goes to the sender only, seq has no gaps", async () => {
  await using s = await startServer();
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  await using b = await TestClient.connect(s, { name: "bob", room: "r" });
  await using c = await TestClient.connect(s, { name: "carol", room: "other" });
  await a.next("presence", (m) => m.name === "bob" && m.event === "join");
  for (let i = 1; i <= 3; i++) a.send({ type: "send", room: "r", text: `m${i}`, cid: `c${i}` });
  for (const cl of [a, b]) {
    for (let i = 1; i <= 3; i++) {
      const m = await cl.next("message");
      assert.deepEqual({ ...m, ts: 0 }, {
        type: "message",
        room: "r",
        seq: i,
        from: "alice",
        text: `m${i}`,
        ts: 0,
        cid: `c${i}`,
      });
    }
  }
  const acks = [await a.next("ack"), await a.next("ack"), await a.next("ack")];
  assert.deepEqual(acks.map((x) => [x.cid, x.seq, x.room]), [["c1", 1, "r"], ["c2", 2, "r"], ["c3", 3, "r"]]);
  assert.equal(b.all("ack").length, 0);
  await c.next("pong", () => true, 50).catch(() => {});
  assert.equal(c.all("message").length, 0);
});

Deno.test("join answers members and history, presence tells the others, leave answers left", async () => {
  await using s = await startServer({ historyOnJoin: 2 });
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  for (let i = 1; i <= 3; i++) a.send({ type: "send", room: "r", text: `m${i}` });
  await a.next("message", (m) => m.seq === 3);
  await using b = await TestClient.connect(s, { name: "bob", room: "" });
  b.send({ type: "join", room: "R" });
  const j = await b.next("joined");
  assert.deepEqual(j.members, ["alice", "bob"]);
  assert.deepEqual(j.messages.map((m: { text: string }) => m.text), ["m2", "m3"]);
  assert.equal(j.truncated, true);
  assert.equal(j.lastSeq, 3);
  assert.deepEqual(await a.next("presence"), { type: "presence", room: "r", event: "join", name: "bob" });
  b.send({ type: "leave", room: "r" });
  assert.deepEqual(await b.next("left"), { type: "left", room: "r" });
  assert.deepEqual(await a.next("presence"), { type: "presence", room: "r", event: "leave", name: "bob" });
  b.send({ type: "leave", room: "r" });
  assert.equal((await b.next("error")).code, "not_member");
});

Deno.test("join with since resumes exactly after lastSeq; beyond resumeCap it says truncated", async () => {
  await using s = await startServer({ resumeCap: 3 });
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  for (let i = 1; i <= 6; i++) a.send({ type: "send", room: "r", text: `m${i}` });
  await a.next("message", (m) => m.seq === 6);
  await using b = await TestClient.connect(s, { name: "bob", room: "" });
  b.send({ type: "join", room: "r", since: 4 });
  const j = await b.next("joined");
  assert.deepEqual(j.messages.map((m: { seq: number }) => m.seq), [5, 6]);
  assert.equal(j.truncated, false);
  b.send({ type: "leave", room: "r" });
  await b.next("left");
  b.send({ type: "join", room: "r", since: 1 });
  const t = await b.next("joined");
  assert.deepEqual(t.messages.map((m: { seq: number }) => m.seq), [4, 5, 6]);
  assert.equal(t.truncated, true);
  b.send({ type: "history", room: "r", before: 4 });
  const h = await b.next("history");
  assert.deepEqual(h.messages.map((m: { seq: number }) => m.seq), [1, 2, 3]);
  assert.equal(h.complete, true);
});

Deno.test("joined names the history's epoch; a since of another epoch is not resumed but says truncated", async () => {
  await using s = await startServer({ historyOnJoin: 2 });
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  const first = await a.next("joined");
  assert.match(first.epoch, /^[A-Za-z0-9_-]{16,64}$/);
  for (let i = 1; i <= 4; i++) a.send({ type: "send", room: "r", text: `m${i}` });
  await a.next("message", (m) => m.seq === 4);
  await using b = await TestClient.connect(s, { name: "bob", room: "" });
  b.send({ type: "join", room: "r", since: 2, epoch: first.epoch });
  const same = await b.next("joined");
  assert.deepEqual([same.messages.map((m: Msg) => m.seq), same.truncated, same.epoch], [
    [3, 4],
    false,
    first.epoch,
  ]);
  b.send({ type: "leave", room: "r" });
  await b.next("left");
  // Seqs from a history that was lost (another epoch) must not be resumed into: the newest
  // historyOnJoin messages come back, marked truncated, with the epoch that holds now.
  b.send({ type: "join", room: "r", since: 3, epoch: "another-history" });
  const other = await b.next("joined");
  assert.deepEqual([other.messages.map((m: Msg) => m.seq), other.truncated, other.epoch], [
    [3, 4],
    true,
    first.epoch,
  ]);
  b.send({ type: "join", room: "q", since: 1, epoch: "bad epoch!" });
  assert.equal((await b.next("error")).code, "bad_message");
});

Deno.test("history pages backwards with before and limit, capped at historyPage", async () => {
  await using s = await startServer({ historyPage: 4 });
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  for (let i = 1; i <= 10; i++) a.send({ type: "send", room: "r", text: `m${i}` });
  await a.next("message", (m) => m.seq === 10);
  a.send({ type: "history", room: "r", limit: 100 });
  let h = await a.next("history");
  assert.deepEqual(h.messages.map((m: { seq: number }) => m.seq), [7, 8, 9, 10]);
  assert.equal(h.complete, false);
  a.send({ type: "history", room: "r", before: 3, limit: 5 });
  h = await a.next("history");
  assert.deepEqual(h.messages.map((m: { seq: number }) => m.seq), [1, 2]);
  assert.equal(h.complete, true);
  a.send({ type: "history", room: "elsewhere" });
  assert.equal((await a.next("error")).code, "not_member");
});

Deno.test("history refuses limit 0 with bad_message; complete is never true while older messages exist", async () => {
  await using s = await startServer();
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  for (let i = 1; i <= 3; i++) a.send({ type: "send", room: "r", text: `m${i}` });
  await a.next("message", (m) => m.seq === 3);
  a.send({ type: "history", room: "r", limit: 0 });
  const e = await a.next("error");
  assert.equal(e.code, "bad_message");
  assert.match(e.message, /"limit" must be a whole number of 1 or more, got 0/);
  assert.equal(a.all("history").length, 0, "no history answer claims completeness for an empty page");
  a.send({ type: "history", room: "r", limit: 1 });
  const h = await a.next("history");
  assert.deepEqual(h.messages.map((m: { seq: number }) => m.seq), [3]);
  assert.equal(h.complete, false);
});

Deno.test("a direct message is seen only by the two people, on all their tabs", async () => {
  await using s = await startServer();
  await using a = await TestClient.connect(s, { name: "alice" });
  const { token } = a.all("welcome")[0];
  await using a2 = await TestClient.connect(s, { token });
  await using b = await TestClient.connect(s, { name: "bob" });
  await using c = await TestClient.connect(s, { name: "carol" });
  a.send({ type: "send", to: "BOB", text: "psst", cid: "d1" });
  const got = await b.next("message");
  assert.equal(got.to, "bob");
  assert.equal(got.from, "alice");
  assert.equal(got.text, "psst");
  assert.equal(got.room, undefined);
  assert.equal((await a.next("message")).text, "psst");
  assert.equal((await a2.next("message")).text, "psst");
  assert.equal((await a.next("ack")).cid, "d1");
  a.send({ type: "send", to: "bob", text: "psst", cid: "d1" });
  assert.equal((await a.next("ack")).cid, "d1");
  a.send({ type: "send", to: "nobody", text: "hello?" });
  assert.equal((await a.next("error")).code, "user_not_found");
  assert.equal(b.all("message").length, 1, "the re-send with the same cid was not delivered again");
  assert.equal(c.all("message").filter((m) => m.to).length, 0);
});

Deno.test("typing goes to the room and is not stored", async () => {
  await using s = await startServer();
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  await using b = await TestClient.connect(s, { name: "bob", room: "r" });
  a.send({ type: "typing", room: "r" });
  assert.deepEqual(await b.next("typing"), { type: "typing", room: "r", name: "alice" });
  a.send({ type: "history", room: "r" });
  assert.deepEqual((await a.next("history")).messages, []);
  a.send({ type: "typing", room: "nowhere" });
  assert.equal((await a.next("error")).code, "not_member");
});

Deno.test("nick renames on every tab, tells the room, refuses a taken or bad name", async () => {
  await using s = await startServer();
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  await using b = await TestClient.connect(s, { name: "bob", room: "r" });
  a.send({ type: "nick", name: "alicia" });
  assert.deepEqual(await b.next("nick"), { type: "nick", old: "alice", name: "alicia" });
  assert.deepEqual(await a.next("nick"), { type: "nick", old: "alice", name: "alicia" });
  a.send({ type: "send", room: "r", text: "hi" });
  assert.equal((await b.next("message")).from, "alicia");
  a.send({ type: "nick", name: "Bob" });
  assert.equal((await a.next("error")).code, "name_taken");
  a.send({ type: "nick", name: "no spaces" });
  assert.equal((await a.next("error")).code, "bad_name");
});

Deno.test("two people never hold one name; one person's tabs and reconnects share it", async () => {
  await using s = await startServer();
  await using a = await TestClient.connect(s, { name: "alice" });
  const w = a.all("welcome")[0];
  await using other = await TestClient.connect(s, { name: "ALICE" });
  const w2 = other.all("welcome")[0];
  assert.equal(w2.name, "ALICE-2");
  assert.match(w2.notice, /taken/);
  await using tab = await TestClient.connect(s, { name: "alice", token: w.token });
  assert.equal(tab.all("welcome")[0].name, "alice");
  assert.equal(tab.all("welcome")[0].notice, undefined);
  await a.close();
  await tab.close();
  // Within the hold the name still belongs to alice's token.
  await using thief = await TestClient.connect(s, { name: "alice" });
  assert.equal(thief.all("welcome")[0].name, "alice-3", "alice-2 is online as ALICE-2");
  await using back = await TestClient.connect(s, { token: w.token });
  assert.equal(back.all("welcome")[0].name, "alice");
});

Deno.test("ping answers pong; a non-JSON frame is a message to the current room", async () => {
  await using s = await startServer();
  await using a = await TestClient.connect(s, { name: "alice", room: "tutorial" });
  await a.next("joined");
  a.send({ type: "ping" });
  assert.equal(typeof (await a.next("pong")).ts, "number");
  a.ws.send("hello from websocat");
  const m = await a.next("message");
  assert.equal(m.room, "tutorial");
  assert.equal(m.text, "hello from websocat");
  await using none = await TestClient.connect(s, { name: "nobody", room: "" });
  none.ws.send("hello?");
  assert.equal((await none.next("error")).code, "not_member");
});

Deno.test("bad frames get an error with a stable code, the connection and the others carry on", async () => {
  await using s = await startServer();
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  await using b = await TestClient.connect(s, { name: "bob", room: "r" });
  const bad: [string | Uint8Array, string][] = [
    ["{not json", "bad_json"],
    ["[1,2,3]", "bad_json"],
    [JSON.stringify({ type: "explode" }), "bad_message"],
    [JSON.stringify({ type: "send", room: "r", text: 42 }), "bad_message"],
    [JSON.stringify({ type: "send", room: "r", text: "x".repeat(4001) }), "text_too_long"],
    [JSON.stringify({ type: "join", room: "no spaces" }), "bad_room"],
    [new Uint8Array([1, 2, 3]), "bad_message"],
  ];
  for (const [frame, code] of bad) {
    a.ws.send(frame);
    const e = await a.next("error");
    assert.equal(e.code, code, String(frame).slice(0, 40));
    assert.ok(e.message.length > 10);
  }
  a.send({ type: "send", room: "r", text: "still here", cid: "ok" });
  assert.equal((await b.next("message")).text, "still here");
  assert.equal((await a.next("ack")).cid, "ok");
  const metrics = await (await fetch(`${s.url}/metrics`)).text();
  assert.match(metrics, /chat_errors_total\{code="bad_json"\} 2/);
});

Deno.test("a frame over frameBytes closes that connection with 1009; others are unharmed", async () => {
  await using s = await startServer({ maxFrameBytes: 1024 });
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  await using b = await TestClient.connect(s, { name: "bob", room: "r" });
  a.ws.send("x".repeat(5000));
  assert.equal((await a.next("error")).code, "frame_too_big");
  assert.equal((await a.closed).code, 1009);
  b.send({ type: "send", room: "r", text: "fine" });
  assert.equal((await b.next("message", (m) => m.from === "bob")).text, "fine");
});

Deno.test("repeated abuse closes the connection with 1008", async () => {
  await using s = await startServer({ maxStrikes: 3 });
  await using a = await TestClient.connect(s, { name: "alice" });
  // One frame past the strikes. (Frames that arrive after the close began make Deno drop the TCP
  // connection without its close frame: the client then sees 1006, still closed.)
  for (let i = 0; i < 4; i++) a.ws.send("{");
  const ev = await a.closed;
  assert.equal(ev.code, 1008);
  assert.equal(ev.reason, "too many bad frames");
  assert.equal(a.all("error").length, 4);
});

Deno.test("more frames than the token bucket allows are refused with rate_limited", async () => {
  await using s = await startServer({ messagesPerSecond: 1, burst: 3, maxStrikes: 100 });
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  for (let i = 0; i < 6; i++) a.send({ type: "send", room: "r", text: `m${i}` });
  await a.next("error", (e) => e.code === "rate_limited");
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(a.all("message").length, 3);
  assert.equal(a.all("error").length, 3);
});

Deno.test("a connection may be in roomsPerConnection rooms", async () => {
  await using s = await startServer({ maxRoomsPerConnection: 2 });
  await using a = await TestClient.connect(s, { name: "alice", room: "one" });
  a.send({ type: "join", room: "two" });
  await a.next("joined", (j) => j.room === "two");
  a.send({ type: "join", room: "three" });
  const e = await a.next("error");
  assert.equal(e.code, "too_many_rooms");
  assert.match(e.message, /three/);
});

Deno.test("connections past maxConnections get 503, past maxConnectionsPerIp get 429, before the upgrade", async () => {
  await using s = await startServer({ maxConnections: 3, maxConnectionsPerIp: 2 });
  await using a = await TestClient.connect(s);
  await using b = await TestClient.connect(s);
  const perIp = await fetch(`${s.url}/ws`, { headers: wsHeaders() });
  assert.equal(perIp.status, 429);
  assert.equal((await perIp.json()).error.code, "too_many_connections_ip");
  await b.close();
  await waitFor(async () =>
    (await fetch(`${s.url}/metrics`).then((r) => r.text())).includes("chat_connections 1")
  );
  await using s2 = await startServer({ maxConnections: 1 });
  await using c = await TestClient.connect(s2);
  const full = await fetch(`${s2.url}/ws`, { headers: wsHeaders() });
  assert.equal(full.status, 503);
  assert.equal((await full.json()).error.code, "server_full");
  assert.ok(a && c);
});

Deno.test("upgrade checks: path, method, headers, version, name and room answer HTTP errors", async () => {
  await using s = await startServer();
  const cases: [string, RequestInit, number][] = [
    ["/ws", {}, 426],
    ["/ws", { headers: { ...wsHeaders(), "sec-websocket-version": "8" } }, 426],
    ["/ws?name=no%20spaces", { headers: wsHeaders() }, 400],
    ["/ws?room=" + "x".repeat(65), { headers: wsHeaders() }, 400],
  ];
  for (const [path, init, status] of cases) {
    const res = await fetch(s.url + path, init);
    const body = await res.json();
    assert.equal(res.status, status, `${path} ${JSON.stringify(init)}`);
    assert.equal(typeof body.error.code, "string");
  }
  // Deno refuses a POST upgrade itself, before the handler.
  const post = await fetch(`${s.url}/ws`, { method: "POST", headers: wsHeaders() });
  assert.ok(post.status === 400 || post.status === 405, String(post.status));
  await post.body?.cancel();
  // No Sec-WebSocket-Key: Deno's upgradeWebSocket throws, the handler answers 400.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  await conn.write(new TextEncoder().encode(
    `GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  const buf = new Uint8Array(1024);
  const n = await conn.read(buf);
  conn.close();
  assert.match(new TextDecoder().decode(buf.subarray(0, n ?? 0)), /^HTTP\/1.1 400/);
  // The listener survived every refusal.
  await using a = await TestClient.connect(s);
  assert.ok(a);
});

Deno.test("a foreign Origin is refused unless allowed; same origin and no Origin pass", async () => {
  await using s = await startServer();
  const evil = await fetch(`${s.url}/ws`, { headers: { ...wsHeaders(), origin: "https://evil.example" } });
  assert.equal(evil.status, 403);
  assert.equal((await evil.json()).error.code, "origin_forbidden");
  const same = await RawSocket.open(s.port, "/ws", { Origin: s.url });
  await same.close();
  const none = await RawSocket.open(s.port, "/ws");
  await none.close();
  await using open = await startServer({ allowedOrigins: "https://chat.example" });
  const allowed = await RawSocket.open(open.port, "/ws", { Origin: "https://chat.example" });
  await allowed.close();
});

Deno.test("a DNS-rebinding page is refused: Origin and Host both naming another host is not same origin", async () => {
  await using s = await startServer();
  for (
    const [origin, host] of [
      [`http://evil.example:${s.port}`, `evil.example:${s.port}`],
      ["https://evil.example", "evil.example"],
      [`http://127.0.0.1.nip.io:${s.port}`, `127.0.0.1.nip.io:${s.port}`],
    ]
  ) {
    const res = await rawHandshake(s.port, "/ws", { Origin: origin, Host: host });
    assert.equal(res.status, 403, origin);
    const { error } = JSON.parse(res.body);
    assert.equal(error.code, "origin_forbidden");
    assert.match(error.message, /--public-origin/);
  }
});

Deno.test("same origin passes on localhost, IP addresses and the listening name, on the port connected to", async () => {
  await using s = await startServer({ hostname: "chat.test" });
  const p = s.port;
  const cases: [string, string, number][] = [
    [`http://127.0.0.1:${p}`, `127.0.0.1:${p}`, 101],
    [`http://localhost:${p}`, `localhost:${p}`, 101],
    [`http://[::1]:${p}`, `[::1]:${p}`, 101],
    // A LAN address or a mapped port (docker -p 8080:8000): the browser's URL is what counts.
    ["http://192.168.1.5:8080", "192.168.1.5:8080", 101],
    [`http://chat.test:${p}`, `chat.test:${p}`, 101],
    // Another port or scheme on the same host is another origin.
    [`http://127.0.0.1:${p + 1}`, `127.0.0.1:${p}`, 403],
    [`http://localhost:${p}`, `127.0.0.1:${p}`, 403],
    [`file://127.0.0.1:${p}`, `127.0.0.1:${p}`, 403],
    ["null", `127.0.0.1:${p}`, 403],
  ];
  for (const [origin, host, status] of cases) {
    const res = await rawHandshake(p, "/ws", { Origin: origin, Host: host });
    assert.equal(res.status, status, `${origin} with Host ${host}`);
  }
});

Deno.test("--public-origin admits the page behind a proxy under its name; --allowed-origins and * still work", async () => {
  await using s = await startServer({ publicOrigins: "https://Chat.Example:443, http://intranet.example" });
  for (const host of [`127.0.0.1:${s.port}`, "chat.example"]) {
    const res = await rawHandshake(s.port, "/ws", { Origin: "https://chat.example", Host: host });
    assert.equal(res.status, 101, host);
  }
  assert.equal((await rawHandshake(s.port, "/ws", { Origin: "http://intranet.example" })).status, 101);
  const evil = await rawHandshake(s.port, "/ws", { Origin: "https://evil.example", Host: "evil.example" });
  assert.equal(evil.status, 403);
  await using other = await startServer({ allowedOrigins: "https://other.example" });
  assert.equal((await rawHandshake(other.port, "/ws", { Origin: "https://other.example" })).status, 101);
  assert.equal((await rawHandshake(other.port, "/ws", { Origin: "https://evil.example" })).status, 403);
  await using any = await startServer({ allowedOrigins: "*" });
  const anyone = await rawHandshake(any.port, "/ws", {
    Origin: "https://evil.example",
    Host: "evil.example",
  });
  assert.equal(anyone.status, 101);
});

Deno.test("a client that stops reading is closed with 4001 and the broadcast goes on for the others", async () => {
  await using s = await startServer({
    maxBufferedBytes: 256 * 1024,
    messagesPerSecond: 100_000,
    burst: 100_000,
    maxTextChars: 4000,
  });
  const stuck = await RawSocket.open(s.port, "/ws?name=stuck&room=r");
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  const text = "y".repeat(4000);
  // Enough to fill the kernel's socket buffers and then the server's queue for "stuck".
  const total = 3000;
  // In batches that alice reads before the next, so only "stuck" falls behind.
  for (let sent = 0; sent < total;) {
    for (let i = 0; i < 100; i++) a.send({ type: "send", room: "r", text });
    sent += 100;
    await a.next("message", (m) => m.seq === sent, 10_000);
  }
  await waitFor(async () =>
    /chat_slow_consumer_closes_total 1/.test(await (await fetch(`${s.url}/metrics`)).text())
  );
  assert.equal(a.all("message").length, total);
  const bytes = await stuck.drain(3000);
  // Whatever made it into the socket before the cap, then the close frame.
  assert.equal(findCloseCode(bytes), 4001);
  await stuck.close();
});

Deno.test("idleTimeout closes a connection that sends nothing and ignores pings", async () => {
  await using s = await startServer({ idleTimeoutSeconds: 1 });
  const quiet = await RawSocket.open(s.port, "/ws?name=quiet");
  const bytes = await quiet.drain(4000);
  assert.equal(findCloseCode(bytes), 1001);
  await quiet.close();
});

Deno.test("shutdown tells clients 1001 server restarting, health turns 503, new upgrades are refused", async () => {
  const s = await startServer();
  const a = await TestClient.connect(s, { name: "alice" });
  const closing = a.closed;
  const down = s.app.shutdown();
  const ev = await closing;
  assert.equal(ev.code, 1001);
  assert.equal(ev.reason, "server restarting");
  await down;
  const h = await fetch(`${s.url}/healthz`);
  assert.equal(h.status, 503);
  await h.body?.cancel();
  const w = await fetch(`${s.url}/ws`, { headers: wsHeaders() });
  assert.equal(w.status, 503);
  await w.body?.cancel();
  await s.close();
});

Deno.test("GET /healthz and /metrics answer in text", async () => {
  await using s = await startServer();
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  a.send({ type: "send", room: "r", text: "count me", cid: "m1" });
  // The ack, not the message: on Redis the room's line can arrive before the write is counted.
  await a.next("ack");
  const h = await fetch(`${s.url}/healthz`);
  assert.equal(h.status, 200);
  assert.equal(await h.text(), "ok\n");
  const m = await fetch(`${s.url}/metrics`);
  assert.match(m.headers.get("content-type")!, /text\/plain/);
  const text = await m.text();
  for (
    const line of [
      "chat_connections 1",
      "chat_rooms 1",
      "chat_messages_stored_total 1",
      "chat_connections_opened_total 1",
      "# TYPE chat_frames_out_total counter",
    ]
  ) assert.ok(text.includes(line), line);
  const rss = Number(/^chat_resident_memory_bytes (\d+)$/m.exec(text)?.[1]);
  const heap = Number(/^chat_heap_used_bytes (\d+)$/m.exec(text)?.[1]);
  assert.ok(rss > heap && heap > 1_000_000, `rss ${rss} > heap ${heap} > 1 MB`);
});

Deno.test("a burst reaches each member in few frames (several lines each); a lone message goes at once", async () => {
  await using s = await startServer({ messagesPerSecond: 100_000, burst: 100_000 });
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  await using b = await TestClient.connect(s, { name: "bob", room: "r" });
  await a.next("presence");
  const before = b.frames;
  const t0 = performance.now();
  a.send({ type: "send", room: "r", text: "lone" });
  await b.next("message");
  assert.ok(performance.now() - t0 < 100, "no batching delay for a lone message");
  assert.equal(b.frames - before, 1);
  const start = b.frames;
  for (let i = 0; i < 200; i++) a.send({ type: "send", room: "r", text: `burst ${i}` });
  await b.next("message", (m) => m.seq === 201);
  const frames = b.frames - start;
  assert.ok(frames < 50, `200 messages arrived in ${frames} frames`);
  assert.deepEqual(b.all("message").map((m) => m.seq), Array.from({ length: 201 }, (_, i) => i + 1));
});

Deno.test("a room that keeps filling sends each member presence at most once a --presence-interval", async () => {
  // The default interval (1 s) with a short delay: without the interval every 100 ms would be a frame.
  await using s = await startServer({ presenceDelayMs: 100 });
  await using w = await TestClient.connect(s, { name: "watcher", room: "r" });
  const framesBefore = w.frames;
  const people: TestClient[] = [];
  const began = performance.now();
  for (let i = 0; i < 24; i++) {
    people.push(await TestClient.connect(s, { name: `p${i}`, room: "r" }));
    await new Promise((r) => setTimeout(r, 50));
  }
  for (let i = 0; i < 24; i++) await w.next("presence", (m) => m.name === `p${i}` && m.event === "join");
  const seconds = (performance.now() - began) / 1000;
  const frames = w.frames - framesBefore;
  assert.ok(seconds > 1.2, `the joins took ${seconds} s`);
  assert.ok(
    frames <= Math.ceil(seconds) + 1,
    `${seconds.toFixed(1)} s of joins reached the watcher in ${frames} frames`,
  );
  // A message still comes after the presence of its sender, even within the interval.
  people[0].send({ type: "send", room: "r", text: "hi" });
  await w.next("message");
  const order = w.lines.filter((m) => m.type === "message" || (m.type === "presence" && m.name === "p0"));
  assert.deepEqual(order.map((m) => m.type), ["presence", "message"]);
  await Promise.all(people.map((p) => p.close()));
});

Deno.test("joins and leaves in a room go out together after presenceDelay, never to the one who moved", async () => {
  await using s = await startServer({ presenceDelayMs: 300 });
  await using w = await TestClient.connect(s, { name: "watcher", room: "r" });
  const framesBefore = w.frames;
  const people: TestClient[] = [];
  // One after another, so that each join is a turn of its own: only the delay groups them.
  for (let i = 0; i < 30; i++) people.push(await TestClient.connect(s, { name: `p${i}`, room: "r" }));
  for (let i = 0; i < 30; i++) await w.next("presence", (m) => m.name === `p${i}` && m.event === "join");
  const frames = w.frames - framesBefore;
  assert.ok(frames <= 10, `30 joins reached the watcher in ${frames} frames`);
  for (const [i, p] of people.entries()) {
    assert.ok(!p.all("presence").some((m) => m.name === `p${i}`), `p${i} is not told of its own join`);
  }
  // A message after a join never overtakes the presence that announces its sender.
  await using late = await TestClient.connect(s, { name: "late", room: "r" });
  late.send({ type: "send", room: "r", text: "hi" });
  const msg = await w.next("message");
  const order = w.lines.filter((m) => m === msg || (m.type === "presence" && m.name === "late"));
  assert.deepEqual(order.map((m) => m.type), ["presence", "message"]);
  await Promise.all(people.map((p) => p.close()));
  for (let i = 0; i < 30; i++) await w.next("presence", (m) => m.name === `p${i}` && m.event === "leave");
});

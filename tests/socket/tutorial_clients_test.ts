/**
 * The tutorials' clients over a real server: an upgrade on `/`, text mode, the form frames, one message
 * per frame, and the tutorial's curl handshake, under the same limits as every connection.
 */
import assert from "node:assert/strict";
import { startServer, TestClient, type TestServer, waitFor } from "../helpers/test_server.ts";
import { rawHandshake } from "../helpers/raw_ws.ts";

/** A client that keeps each frame as the text it is, as the tutorials' pages print it. */
class TextClient {
  readonly ws: WebSocket;
  readonly frames: string[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseEvent>;

  constructor(url: string, protocols?: string[]) {
    this.ws = new WebSocket(url, protocols);
    this.opened = new Promise((resolve, reject) => {
      this.ws.addEventListener("open", () => resolve(), { once: true });
      this.ws.addEventListener("error", () => reject(new Error(`cannot connect to ${url}`)), { once: true });
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => this.ws.addEventListener("close", resolve, { once: true }));
    this.ws.onmessage = (e) => this.frames.push(String(e.data));
  }

  /** Waits for a frame that is `line` (or matches it), returns it. */
  async line(line: string | RegExp, ms = 3000): Promise<string> {
    const match = (f: string) => typeof line === "string" ? f === line : line.test(f);
    await waitFor(() => Promise.resolve(this.frames.some(match)), ms, `a frame ${line}; got ${this.frames}`);
    return this.frames.find(match)!;
  }

  send(s: string): void {
    this.ws.send(s);
  }

  async close(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
    await this.closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

const rootUrl = (s: TestServer, q = "") => `ws://127.0.0.1:${s.port}/${q}`;

Deno.test("GET / still serves the page, and an upgrade on / speaks text mode from the welcome on", async () => {
  await using s = await startServer();
  const page = await fetch(`${s.url}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<html/i);
  await using t = new TextClient(rootUrl(s));
  await t.opened;
  await t.line(/^\* you joined lobby \(1 here: guest-/);
  assert.match(t.frames[0], /^\* Hello, welcome: you are guest-[a-z0-9]+$/);
  assert.deepEqual(t.frames.slice(1), ["* no direct conversations", t.frames[2]]);
  await using bob = await TestClient.connect(s, { name: "bob" });
  bob.send({ type: "send", room: "lobby", text: "hi\nthere" });
  await t.line("bob: hi ↵ there");
  // Never a JSON line, and one line per frame.
  assert.ok(t.frames.every((f) => !f.startsWith("{") && !f.includes("\n")), t.frames.join(" | "));
});

Deno.test("an upgrade on / asks for JSON with format=json or the chat subprotocol; /ws asks for text with format=text", async () => {
  await using s = await startServer();
  await using a = new TestClient(rootUrl(s, "?format=json&name=ann"));
  assert.equal((await a.next("welcome")).name, "ann");
  await using b = new TestClient(rootUrl(s, "?name=ben"), ["chat"]);
  assert.equal((await b.next("welcome")).name, "ben");
  await using t = new TextClient(`${s.wsUrl}?name=tia&format=text`);
  await t.line("* Hello, welcome: you are tia");
  for (const q of ["format=xml", "batch=maybe"]) {
    const refused = await rawHandshake(s.port, `/?${q}`);
    assert.equal(refused.status, 400, q);
    assert.equal(JSON.parse(refused.body).error.code, "bad_request");
    assert.match(JSON.parse(refused.body).error.message, /must be "(json" or "text|on" or "off)"/);
  }
});

Deno.test("form frames send and rename on every connection, and JSON clients get them as usual", async () => {
  await using s = await startServer();
  await using bob = await TestClient.connect(s, { name: "bob" });
  // A JSON first frame: bob stays a JSON client whatever he sends later.
  bob.send({ type: "ping" });
  await bob.next("pong");
  await using t = new TextClient(rootUrl(s));
  await t.line(/^\* you joined lobby/);
  t.send("type=add&ming=carol");
  await t.line("* you are now carol");
  assert.equal((await bob.next("nick")).name, "carol");
  t.send("msg=hello+world%21 & more");
  await t.line("carol: hello world! & more");
  const m = await bob.next("message", (m) => m.from === "carol");
  assert.equal(m.text, "hello world! & more");
  // The same forms from a JSON connection on /ws: understood, answered in JSON.
  bob.ws.send("msg=100%");
  assert.equal((await bob.next("message", (m) => m.from === "bob")).text, "100%");
  await t.line("bob: 100%");
  bob.ws.send("type=msg&text=hi");
  await t.line("bob: type=msg&text=hi");
});

Deno.test("a /ws connection whose first frame is a form speaks text mode; a JSON first frame keeps JSON", async () => {
  await using s = await startServer();
  await using t = new TextClient(`${s.wsUrl}?name=dan`);
  await waitFor(() => Promise.resolve(t.frames.some((f) => f.includes('"joined"'))), 3000, "joined");
  t.send("msg=switching");
  await t.line("dan: switching");
  t.send('{"type":"ping"}');
  await t.line("* pong");
  assert.ok(t.frames.slice(-2).every((f) => !f.startsWith("{")));
  await using j = await TestClient.connect(s, { name: "eve" });
  j.send({ type: "ping" });
  await j.next("pong");
  j.ws.send("msg=later");
  assert.equal((await j.next("message", (m) => m.from === "eve")).text, "later");
  j.ws.send("type=add&ming=eva");
  assert.equal((await j.next("nick")).name, "eva");
  // Chose JSON with the subprotocol: a first form frame changes nothing.
  await using k = new TestClient(`${s.wsUrl}?name=fay`, ["chat"]);
  await k.next("joined");
  k.ws.send("msg=still json");
  assert.equal((await k.next("message", (m) => m.from === "fay")).text, "still json");
});

Deno.test("a malformed form frame is answered with an error line and the connection survives", async () => {
  await using s = await startServer();
  await using t = new TextClient(rootUrl(s, "?name=gil"));
  await t.line(/^\* you joined lobby/);
  t.send("type=add&ming=");
  await t.line("! bad_name: Cannot change name: type=add needs the name as ming=NAME, got none");
  t.send("type=add&ming=two%E2%80%AEwords");
  await t.line(/^! bad_name: Cannot change name to "two\u202ewords": .*U\+202E/);
  t.send("msg=");
  await t.line(/^! bad_message: A msg= frame carries the text to send after msg=/);
  t.send("msg=%ff still here");
  await t.line("gil: %ff still here");
  assert.equal(t.ws.readyState, WebSocket.OPEN);
  // A nickname with spaces, as the nickname page's users type one: a display name and a handle from it.
  t.send("type=add&ming=Ada+Lovelace");
  await t.line("* you are now Ada_Lovelace");
  await t.line("* you are now Ada Lovelace (@Ada_Lovelace)");
  t.send("msg=hi");
  await t.line("Ada Lovelace: hi");
});

Deno.test("text mode and form frames obey the rate limit, the strikes and the frame size", async () => {
  await using s = await startServer({ messagesPerSecond: 1, burst: 3, maxStrikes: 4, maxFrameBytes: 2000 });
  await using obs = await TestClient.connect(s, { name: "obs" });
  await using t = new TextClient(rootUrl(s, "?name=hal"));
  await t.line(/^\* you joined lobby/);
  // The burst, then one refusal past the strikes.
  for (let i = 0; i < 3 + 4 + 1; i++) t.send(`msg=flood ${i}`);
  const closed = await t.closed;
  assert.equal(closed.code, 1008);
  assert.equal(closed.reason, "too many bad frames");
  // The burst was taken (another member sees it), the rest refused; the close outran their delivery here.
  await waitFor(() => Promise.resolve(obs.all("message").length === 3), 3000, "the burst stored");
  assert.deepEqual(obs.all("message").map((m) => m.text), ["flood 0", "flood 1", "flood 2"]);
  const refused = t.frames.filter((f) =>
    f.startsWith("! rate_limited: Slow down: at most 1 messages a second")
  );
  assert.equal(refused.length, 5);

  await using u = new TextClient(rootUrl(s, "?name=ida"));
  await u.line(/^\* you joined lobby/);
  u.send(`msg=${"x".repeat(2100)}`);
  await u.line("! frame_too_big: Frames are at most 2000 bytes, got 2104");
  assert.equal((await u.closed).code, 1009);
});

Deno.test("an upgrade on / from a foreign page is refused like one on /ws", async () => {
  await using s = await startServer();
  // `null`: a page opened from a file (or any sandboxed frame).
  for (const path of ["/", "/ws"]) {
    for (const origin of ["http://evil.example", "null"]) {
      const r = await rawHandshake(s.port, path, { Origin: origin });
      assert.equal(r.status, 403, `${path} ${origin}`);
      assert.equal(JSON.parse(r.body).error.code, "origin_forbidden");
    }
  }
});

Deno.test("batch=off gives one message per frame, where the default coalesces the first three", async () => {
  // The embedded engine on every pass: framing is the socket's, and on it the first three lines of a
  // connection are ready in one turn (on Redis, joined may come a turn later).
  await using s = await startServer({ store: "memory" });
  await using batched = await TestClient.connect(s, { name: "jay" });
  await using single = await TestClient.connect(s, { name: "kim", batch: "off" });
  // welcome, conversations and joined: one frame by default.
  assert.equal(batched.frames, 1);
  for (let i = 0; i < 5; i++) batched.send({ type: "send", room: "lobby", text: `m${i}`, cid: `c${i}` });
  await waitFor(() => Promise.resolve(single.all("message").length === 5), 3000, "five messages");
  // Every frame parsed whole (TestClient parses each line; a frame of one line is one message).
  assert.equal(single.frames, single.lines.length);
  assert.equal(single.lines.length, 3 + 5);
});

Deno.test("the tutorial's curl handshake (key: the word websocket) gets 101 with its RFC accept value and text lines", async () => {
  await using s = await startServer();
  let curl: Deno.ChildProcess;
  try {
    curl = new Deno.Command("curl", {
      args: [
        "--silent",
        "--include",
        "--no-buffer",
        "--max-time",
        "10",
        "-H",
        "Connection: Upgrade",
        "-H",
        "Upgrade: websocket",
        "-H",
        "Sec-WebSocket-Version: 13",
        "-H",
        "Sec-WebSocket-Key: websocket",
        `${s.url}/`,
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    console.warn("Skipping: curl is not installed");
    return;
  }
  let out = "";
  const reader = curl.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const deadline = Date.now() + 5000;
  while (!out.includes("* you joined lobby") && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  curl.kill();
  await reader.cancel();
  await curl.status;
  const head = out.split("\r\n\r\n")[0];
  assert.match(head, /^HTTP\/1\.1 101 /);
  assert.match(head, /\r\nsec-websocket-accept: qVby4apnn2tTYtB1nPPVYUn68gY=\r?$/im);
  assert.match(out, /\* Hello, welcome: you are guest-[a-z0-9]+/);
  assert.match(out, /\* you joined lobby \(1 here: guest-/);
  assert.doesNotMatch(out.slice(head.length), /\{"type"/);
});

/**
 * The protocol client (static/chat-client.js) on the fallback transport, under Deno against a real
 * server: it falls back by itself when WebSockets cannot open, chats, survives a restart with nothing
 * lost or doubled, and comes back to a WebSocket once one opens.
 * @module
 */
import assert from "node:assert/strict";
import { startServer, TestClient } from "../helpers/test_server.ts";
import { ChatClient } from "../../static/chat-client.js";
import { sseUrl } from "../../static/client/connection.js";

/** A `localStorage` stand-in. */
class MemoryStorage {
  readonly map = new Map<string, string>();
  getItem(k: string): string | null {
    return this.map.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.map.set(k, v);
  }
  removeItem(k: string): void {
    this.map.delete(k);
  }
}

async function until(pred: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * WebSockets as a network that blocks them leaves them: while `blocked`, every one goes to a path
 * that refuses the upgrade (a 404), so it fails to open as behind a proxy that strips `Upgrade`.
 */
function network() {
  const net = { blocked: true };
  class MaybeWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: ConstructorParameters<typeof globalThis.WebSocket>[1]) {
      super(net.blocked ? String(url).replace("/ws?", "/blocked?") : url, protocols);
    }
  }
  return { net, WebSocket: MaybeWebSocket };
}

function texts(c: ChatClient, room = "lobby"): string[] {
  return (c.rooms.get(room)?.messages ?? []).map((m: { text: string }) => m.text);
}

Deno.test("sseUrl() is the fallback's address of a WebSocket endpoint", () => {
  assert.equal(sseUrl("ws://127.0.0.1:8000/ws"), "http://127.0.0.1:8000/ws/sse");
  assert.equal(sseUrl("wss://chat.example/ws"), "https://chat.example/ws/sse");
  assert.equal(sseUrl("wss://chat.example/chat/ws/"), "https://chat.example/chat/ws/sse");
});

Deno.test("ChatClient falls back to SSE when WebSockets fail to open, chats over it, and returns to a WebSocket once one opens", async () => {
  await using s = await startServer();
  const { net, WebSocket } = network();
  const client = new ChatClient({
    url: s.wsUrl,
    name: "alice",
    storage: new MemoryStorage(),
    backoff: { baseMs: 20, maxMs: 100 },
    WebSocket,
    websocketRetryMs: 300,
  });
  try {
    client.start();
    await until(() => client.rooms.get("lobby")?.joined === true, "joined over the fallback");
    assert.equal(client.transport, "sse");
    assert.equal(client.state, "live");
    await using bob = await TestClient.connect(s, { name: "bob" });
    await bob.next("joined");
    client.send({ room: "lobby", text: "over sse" });
    assert.equal((await bob.next("message", (m) => m.text === "over sse")).from, "alice");
    bob.send({ type: "send", room: "lobby", text: "to sse", cid: "b1" });
    await until(() => texts(client).includes("to sse"), "bob's message");
    await until(() => client.outbox.length === 0, "acked");

    // The network lets WebSockets through again: the next try finds out and the client moves.
    net.blocked = false;
    await until(() => client.transport === "websocket" && client.state === "live", "back on a WebSocket");
    await until(() => client.rooms.get("lobby")?.joined === true, "joined again");
    bob.send({ type: "send", room: "lobby", text: "to ws", cid: "b2" });
    await until(() => texts(client).includes("to ws"), "bob's message on the WebSocket");
    assert.deepEqual(texts(client), ["over sse", "to sse", "to ws"]);
    // The sessions ended with the move: bob and the WebSocket remain.
    await until(() => s.app.chat.connectionCount === 2, "the fallback session's end");
  } finally {
    await client.stop();
  }
});

Deno.test("ChatClient on the fallback comes back by itself after a server restart: nothing lost or doubled", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-fallback-test-" });
  const { WebSocket } = network();
  try {
    const first = await startServer({ store: "sqlite", dataDir });
    const port = first.port;
    const c = new ChatClient({
      url: first.wsUrl,
      name: "alice",
      storage: new MemoryStorage(),
      backoff: { baseMs: 50, maxMs: 300 },
      WebSocket,
    });
    try {
      c.start();
      await until(() => c.rooms.get("lobby")?.joined === true && c.transport === "sse", "joined over SSE");
      c.send({ room: "lobby", text: "before" });
      await until(() => c.outbox.length === 0, "before acked");
      await first.close();
      await until(() => c.state === "reconnecting", "reconnecting");
      c.send({ room: "lobby", text: "during" });
      await using second = await startServer({ store: "sqlite", dataDir, port });
      await using bob = await TestClient.connect(second, { name: "bob", room: "lobby" });
      bob.send({ type: "send", room: "lobby", text: "meanwhile", cid: "b1" });
      await bob.next("ack");
      await until(() => c.live && c.outbox.length === 0, "back and flushed", 8000);
      await until(() => texts(c).length === 3, "three messages");
      assert.deepEqual(texts(c), ["before", "meanwhile", "during"]);
      assert.equal(c.transport, "sse");
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(bob.all("message").filter((m) => m.text === "during").length, 1);
    } finally {
      await c.stop();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("ChatClient does not fall back while HTTP fails too (offline, server down): WebSockets come first when it is back", async () => {
  const port = (() => {
    using l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return l.addr.port;
  })();
  const client = new ChatClient({
    url: `ws://127.0.0.1:${port}/ws`,
    name: "alice",
    storage: new MemoryStorage(),
    backoff: { baseMs: 20, maxMs: 60 },
  });
  try {
    client.start();
    await until(() => client.stats.connects >= 6, "several failed attempts");
    assert.equal(client.transport, "websocket");
    await using _server = await startServer({ port });
    await until(() => client.state === "live", "live once the server is up");
    assert.equal(client.transport, "websocket");
  } finally {
    await client.stop();
  }
});

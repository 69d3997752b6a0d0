/**
 * The README's bot (`examples/bot.mjs`) runs as it is under Node and under Deno against a real server
 * process: it answers `!ping` with `pong`, and after the server restarts it comes back by itself and
 * answers again. This is what keeps `static/chat-client.js` importable from both runtimes.
 * @module
 */
import assert from "node:assert/strict";
import { spawnServer } from "../helpers/process.ts";
import { TestClient } from "../helpers/test_server.ts";

const BOT = new URL("../../examples/bot.mjs", import.meta.url).pathname;
const ROOM = "pings";
/** Everything one run may take, so a stuck bot fails the test instead of hanging it. */
const RUN_MS = 60_000;

/** How to run Node with a global `WebSocket` (a flag before Node 22), or undefined without Node. */
async function nodeArgs(): Promise<string[] | undefined> {
  try {
    const probe = await new Deno.Command("node", { args: ["-p", "typeof WebSocket"], stdin: "null" })
      .output();
    return new TextDecoder().decode(probe.stdout).trim() === "function" ? [] : ["--experimental-websocket"];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

const NODE_ARGS = await nodeArgs();
if (!NODE_ARGS) console.warn("client_bot_test: node is not installed here, so the Node run is skipped");

/** The bot as a child process, its output collected. */
function startBot(cmd: string, args: string[], url: string) {
  const child = new Deno.Command(cmd, {
    args: [...args, BOT, url, ROOM, "pingbot"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(RUN_MS),
  }).spawn();
  let out = "";
  const decoder = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) out += decoder.decode(chunk, { stream: true });
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  return {
    output: () => out,
    joins: () => out.split("\n").filter((l) => l === `joined ${ROOM}`).length,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* exited already */ }
      const status = await child.status;
      await pumps;
      return status;
    },
  };
}

async function until(check: () => boolean, what: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Says `!ping` in the room as a fresh client and waits for the bot's `pong`. */
async function pingPong(port: number, tag: string): Promise<void> {
  await using alice = new TestClient(`ws://127.0.0.1:${port}/ws?name=alice&room=${ROOM}`);
  await alice.next("welcome", () => true, 5000);
  await alice.seen("joined", 5000);
  alice.send({ type: "send", room: ROOM, text: "!ping", cid: `ping-${tag}` });
  const pong = await alice.next("message", (m) => m.from === "pingbot", 10_000);
  assert.equal(pong.text, "pong");
}

async function scenario(cmd: string, args: string[]): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "client-bot-" });
  let srv = await spawnServer(dir, ["--store", "memory"]);
  const bot = startBot(cmd, args, `ws://127.0.0.1:${srv.port}/ws`);
  try {
    await until(() => bot.joins() === 1, "the bot joins", 20_000);
    await pingPong(srv.port, "1");

    // A restart on the same port: the bot's connection drops and it must come back on its own.
    const port = srv.port;
    await srv.stop();
    srv = await spawnServer(dir, ["--store", "memory", "--port", String(port)]);
    assert.equal(srv.port, port);
    await until(() => bot.joins() === 2, "the bot rejoins after the restart", 20_000);
    await pingPong(srv.port, "2");
  } catch (e) {
    throw new Error(`${e instanceof Error ? e.message : e}\nbot output:\n${bot.output()}`);
  } finally {
    await bot.stop();
    await srv.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "examples/bot.mjs under Node answers !ping with pong and reconnects after a server restart",
  ignore: NODE_ARGS === undefined,
  fn: () => scenario("node", NODE_ARGS ?? []),
});

Deno.test("examples/bot.mjs under Deno answers !ping with pong and reconnects after a server restart", () =>
  scenario(Deno.execPath(), ["run", "--quiet", "--no-lock", "--allow-net=127.0.0.1"]));

Deno.test("README's Use from code shows examples/bot.mjs as it is", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const section = readme.split(/^## Use from code$/m)[1]?.split(/^## /m)[0] ?? "";
  const shown = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  assert.equal(shown, await Deno.readTextFile(BOT));
});

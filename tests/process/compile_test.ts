/**
 * `deno task compile` builds one binary with static/ embedded. `deno compile` needs its `denort`
 * runtime, which it downloads; where that cannot happen, point DENORT_BIN at a local copy.
 */
import assert from "node:assert/strict";

const denort = Deno.env.get("DENORT_BIN");
if (!denort) {
  console.log("compile_test: skipped: set DENORT_BIN to a denort binary to build and run dist/chat");
}

Deno.test({
  name: "the compiled binary serves the page and chats, with static/ embedded",
  ignore: !denort,
  async fn() {
    const root = new URL("../..", import.meta.url).pathname;
    const out = await Deno.makeTempDir();
    // Build with exactly the flags of `deno task compile`, into a temp dir.
    const config = JSON.parse(await Deno.readTextFile(`${root}deno.json`));
    const args = (config.tasks.compile as string).split(/\s+/).slice(1);
    args[args.indexOf("--output") + 1] = `${out}/chat`;
    const build = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: root,
      env: { DENORT_BIN: denort! },
      stdin: "null",
    }).output();
    assert.equal(build.code, 0, new TextDecoder().decode(build.stderr));
    // Run it from elsewhere: nothing may be read from the source tree.
    const child = new Deno.Command(`${out}/chat`, {
      args: ["--hostname", "127.0.0.1", "--port", "0", "--data-dir", `${out}/data`],
      cwd: out,
      stdout: "piped",
      stderr: "inherit",
      stdin: "null",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    let m: RegExpExecArray | null = null;
    while (!(m = /listening on http:\/\/[^:]+:(\d+)\//.exec(text))) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    assert.ok(m, text);
    const port = Number(m[1]);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    // The page's modules live in subdirectories too (static/views/): embedded and served as well.
    const view = await fetch(`http://127.0.0.1:${port}/views/thread.js`);
    assert.equal(view.status, 200);
    assert.match(await view.text(), /export function createThread/);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?name=bin`);
    const lines: Record<string, unknown>[] = [];
    const acked = new Promise<void>((resolve) =>
      ws.onmessage = (e) => {
        for (const line of String(e.data).split("\n")) {
          const m = JSON.parse(line);
          lines.push(m);
          if (m.type === "welcome") {
            ws.send(JSON.stringify({ type: "send", room: "lobby", text: "hi", cid: "c1" }));
          }
          if (m.type === "ack") resolve();
        }
      }
    );
    await acked; // the ack comes after the durable write: the embedded store writer works
    assert.equal(lines[0].type, "welcome");
    ws.close();
    await new Promise((r) => ws.onclose = r);
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    await reader.cancel();
    await Deno.remove(out, { recursive: true });
  },
});

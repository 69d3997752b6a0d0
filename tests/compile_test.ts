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
    const root = new URL("..", import.meta.url).pathname;
    const out = await Deno.makeTempDir();
    const build = await new Deno.Command(Deno.execPath(), {
      args: [
        "compile",
        "--allow-net",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--include",
        "static",
        "--output",
        `${out}/chat`,
        "main.ts",
      ],
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
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?name=bin`);
    const first = await new Promise<string>((resolve) => ws.onmessage = (e) => resolve(String(e.data)));
    assert.equal(JSON.parse(first.split("\n")[0]).type, "welcome");
    ws.close();
    await new Promise((r) => ws.onclose = r);
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    await reader.cancel();
    await Deno.remove(out, { recursive: true });
  },
});

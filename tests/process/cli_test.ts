/**
 * The command line as a person meets it: `deno task start` with any data directory, `--help`, a plain
 * `deno run main.ts` without permissions, and Ctrl-C.
 */
import assert from "node:assert/strict";
import { SETTINGS } from "../../lib/config.ts";
import { spawnServer } from "../helpers/process.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const decoder = new TextDecoder();

/** Runs `deno <args>` in the project folder to its end (at most 30 s). */
async function deno(args: string[]): Promise<{ code: number; output: string }> {
  const res = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(30_000),
  }).output();
  return { code: res.code, output: decoder.decode(res.stdout) + decoder.decode(res.stderr) };
}

/** A started command whose output is collected; `listening` resolves to the server's port. */
function start(cmd: string, args: string[]) {
  const child = new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let out = "";
  let found: (port: number) => void;
  const listening = new Promise<number>((resolve) => found = resolve);
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) {
      out += decoder.decode(chunk, { stream: true });
      const m = /listening on http:\/\/[^:]+:(\d+)\//.exec(out);
      if (m) found(Number(m[1]));
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status.then(async (s) => {
    found(-1);
    await pumps;
    return s;
  });
  const timer = setTimeout(() => found(-1), 20_000);
  return {
    child,
    output: () => out,
    listening: listening.finally(() => clearTimeout(timer)),
    status,
  };
}

Deno.test("deno task start --help: the usage of deno task start, by section, what each flag takes and grants", async () => {
  const { code, output } = await deno(["task", "-q", "start", "--help"]);
  assert.equal(code, 0, output);
  assert.match(output, /^Usage: deno task start \[options\]/);
  for (const section of ["Server:", "Signed identities:", "Limits:"]) {
    assert.ok(output.includes(section), section);
  }
  for (const s of SETTINGS) {
    assert.match(output, new RegExp(`\\n  --${s.flag}[ [].*${s.env.replace("*", "\\*")}\\n`));
  }
  assert.match(output, /--log debug\|info\|warn\|error/);
  assert.match(output, /--guests on\|off\|auto/);
  const flat = output.replace(/\s+/g, " ");
  assert.match(
    flat,
    /--data-dir <path> CHAT_DATA_DIR [^-]*Granted by deno task start: read and write access/,
  );
  assert.match(flat, /--reuse-port\[=on\|off\] CHAT_REUSE_PORT .*deno task start adds --unstable-net/);
});

Deno.test("deno task start --data-dir <any directory>: one command starts the server with write access there", async () => {
  const dir = await Deno.makeTempDir();
  const data = `${dir}/data2`;
  const task = start(Deno.execPath(), [
    "task",
    "start",
    "--hostname",
    "127.0.0.1",
    "--port",
    "0",
    "--data-dir",
    data,
  ]);
  try {
    const port = await task.listening;
    assert.ok(port > 0, `the server did not start:\n${task.output()}`);
    assert.ok((await Deno.stat(`${data}/chat.db`)).isFile, "the history is in the directory named");
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    await res.body?.cancel();
    assert.equal(res.status, 200);
    // A supervisor signals the PID it started: deno task passes it to start.ts, which passes it on.
    task.child.kill("SIGTERM");
    const status = await task.status;
    assert.equal(status.code, 0, task.output());
    assert.match(task.output(), /chat: stopping/);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), "the server exited with the task");
  } finally {
    try {
      task.child.kill("SIGKILL");
    } catch { /* exited */ }
    await task.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno run main.ts without permissions: what is missing and the exact commands, which work", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const args = ["--data-dir", `${dir}/d`, "--hostname", "127.0.0.1", "--port", "0"];
    const { code, output } = await deno(["run", "main.ts", ...args]);
    assert.equal(code, 1, output);
    assert.doesNotMatch(output, /NotCapable|Uncaught|\n\s+at /, "no stack trace");
    assert.match(
      output,
      /^chat: Deno has not granted network access, .*read and write access to ".*\/d" \(--data-dir\)/,
    );
    assert.ok(output.includes(`\n    deno task start ${args.join(" ")}\n`), output);
    const line = output.split("\n").find((l) => l.startsWith("    deno run "));
    assert.ok(line, output);
    assert.ok(line.includes(`--allow-write=${dir}/d `), line);
    // The printed line, as a person would paste it.
    const run = start("bash", ["-c", `exec ${line.trim().replace(/^deno /, '"$0" ')}`, Deno.execPath()]);
    try {
      assert.ok(await run.listening > 0, run.output());
    } finally {
      run.child.kill("SIGTERM");
      assert.equal((await run.status).code, 0, run.output());
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Ctrl-C prints a line and stops gently; a second Ctrl-C exits at once", async () => {
  const dir = await Deno.makeTempDir();
  const server = await spawnServer(dir, ["--store", "memory", "--shutdown-drain", "20000"]);
  try {
    server.child.kill("SIGINT");
    const deadline = Date.now() + 5000;
    while (!server.output().includes("chat: stopping") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(server.output(), /chat: stopping; Ctrl-C again exits at once/);
    await new Promise((r) => setTimeout(r, 400));
    const t0 = performance.now();
    const status = await server.stop("SIGINT");
    assert.ok(performance.now() - t0 < 3000, "the second Ctrl-C did not wait for the 20 s drain");
    assert.equal(status.code, 130, server.output());
    assert.match(server.output(), /chat: exiting at once/);
  } finally {
    await server.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("one Ctrl-C that arrives twice at once (process group and deno task) still stops gently", async () => {
  const dir = await Deno.makeTempDir();
  const server = await spawnServer(dir, ["--store", "memory", "--shutdown-drain", "300"]);
  try {
    server.child.kill("SIGINT");
    server.child.kill("SIGINT");
    const status = await server.stop("SIGINT");
    assert.equal(status.code, 0, server.output());
    assert.doesNotMatch(server.output(), /exiting at once/);
  } finally {
    await server.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task start --version prints the release and exits 0, with no other option read", async () => {
  const manifest = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const { code, output } = await deno(["task", "-q", "start", "--version", "--port", "not-a-port"]);
  assert.deepEqual([code, output], [0, `chat ${manifest.version}\n`]);
});

/**
 * The terminal client (`terminal/chat.ts`) as a child process run with exactly the permissions of
 * `deno task chat`: stdin to type into, stdout and stderr collected to wait on.
 * @module
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
const ENTRY = "terminal/chat.ts";

/** The `deno run` flags of the `chat` task in `deno.json`, so the tests run it with no more than it grants. */
export async function chatTaskFlags(): Promise<string[]> {
  const task: string = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).tasks.chat;
  const m = /^deno run ((?:--[\w-]+(?:=\S+)? )*)terminal\/chat\.ts$/.exec(task);
  assert.ok(m, `the chat task is "deno run <flags> ${ENTRY}", got "${task}"`);
  return m[1].trim().split(" ").filter(Boolean);
}

/** Options of {@link Terminal.start}. */
export interface TerminalOptions {
  /** Everything the process may take; then it is killed and the test fails. @default 60000 */
  timeoutMs?: number;
  /** Runs it under `script` so that its stdout is a terminal (a pty). */
  pty?: boolean;
}

/** A running terminal client. */
export class Terminal {
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #stdinOpen = true;
  #pumps: Promise<unknown>;
  #out = "";
  #err = "";

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    const pump = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
      const decoder = new TextDecoder();
      for await (const chunk of s) add(decoder.decode(chunk, { stream: true }));
    };
    this.#pumps = Promise.all([
      pump(child.stdout, (t) => this.#out += t),
      pump(child.stderr, (t) => this.#err += t),
    ]);
  }

  /** Starts `deno run <the task's flags> terminal/chat.ts ...args`. */
  static async start(args: string[], opts: TerminalOptions = {}): Promise<Terminal> {
    const deno = [Deno.execPath(), "run", ...await chatTaskFlags(), new URL(ENTRY, ROOT).pathname, ...args];
    const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
    // `script` gives the client a pty for stdout and passes our pipe on as its stdin.
    const [cmd, cmdArgs] = opts.pty
      ? ["script", ["-qfec", deno.map(quote).join(" "), "/dev/null"]]
      : [deno[0], deno.slice(1)];
    const child = new Deno.Command(cmd, {
      args: cmdArgs,
      cwd: ROOT.pathname,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      // A terminal that asks for no colours (CI sets NO_COLOR) gets none: the pty case runs without it.
      ...(opts.pty ? { clearEnv: true, env: withoutNoColor() } : {}),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
    }).spawn();
    return new Terminal(child);
  }

  /** What it wrote on stdout so far. */
  get stdout(): string {
    return this.#out;
  }

  /** What it wrote on stderr so far. */
  get stderr(): string {
    return this.#err;
  }

  /** Types lines (a line break after each). */
  async type(...lines: string[]): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(lines.map((l) => `${l}\n`).join("")));
  }

  /** Ends its input (as a pipe's end, or Ctrl-D). */
  async endInput(): Promise<void> {
    if (!this.#stdinOpen) return;
    this.#stdinOpen = false;
    await this.#stdin.close().catch(() => {});
  }

  /**
   * Waits until stdout (or `stream`) matches `pattern`, and returns the match.
   * @throws naming what was awaited, with what was written
   */
  async wait(pattern: RegExp, ms = 10_000, stream: "stdout" | "stderr" = "stdout"): Promise<RegExpExecArray> {
    const end = Date.now() + ms;
    for (;;) {
      const m = pattern.exec(stream === "stdout" ? this.#out : this.#err);
      if (m) return m;
      if (Date.now() > end) {
        throw new Error(`${pattern} not on ${stream} within ${ms} ms\n${this.transcript()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Both streams, for a failure's message. */
  transcript(): string {
    return `--- stdout\n${this.#out}--- stderr\n${this.#err}---`;
  }

  /** Waits for it to exit by itself. */
  async exit(): Promise<Deno.CommandStatus> {
    await this.endInput();
    const status = await this.#child.status;
    await this.#pumps;
    return status;
  }

  /** Kills it if it still runs; waits until its streams are closed. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.endInput();
    try {
      this.#child.kill("SIGKILL");
    } catch { /* exited already */ }
    await this.#child.status;
    await this.#pumps;
  }
}

function withoutNoColor(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.NO_COLOR;
  return env;
}

/**
 * The terminal client: `deno task chat [URL] [--name N] [--room R] [--token T] [--json]`. Reads lines
 * (typed, or piped in), writes readable lines (or the server's, with `--json`), and exits once the
 * input ends and the server has acknowledged what was sent. Built on `static/chat-client.js`: its
 * reconnect, resume and outbox are the page's.
 *
 * Permissions: `--allow-net` only (the server's address is an argument, so it cannot be named in
 * `deno.json`); colours read `Deno.noColor` and `isTerminal()`, which need none.
 * @module
 */
import { helpText, parseArgs, UsageError } from "./args.ts";
import { ConnectError, type Output, Session } from "./session.ts";

/** What the client reads and writes: the process's own streams, or a test's. */
export interface Io {
  stdin: ReadableStream<Uint8Array>;
  out: Output;
}

/**
 * Runs the client to its end.
 * @returns the exit code: 0 done, 1 refused or unreachable, 2 a bad command line
 */
export async function main(args: readonly string[], io: Io): Promise<number> {
  let opts;
  try {
    opts = parseArgs(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.out.error(`chat: ${e.message}`);
    return 2;
  }
  if (opts.help) {
    io.out.line(helpText());
    return 0;
  }
  const session = new Session(opts, io.out);
  try {
    await session.connect();
  } catch (e) {
    if (!(e instanceof ConnectError)) throw e;
    await session.close();
    io.out.error(`chat: ${e.message}`);
    return 1;
  }
  for await (const line of lines(io.stdin)) {
    if (!await session.input(line)) break;
  }
  return await session.finish();
}

/** The lines of a byte stream (`\n` or `\r\n`), the last one even without its line break. */
export async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    let nl;
    while ((nl = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, nl).replace(/\r$/, "");
      rest = rest.slice(nl + 1);
    }
  }
  if (rest !== "") yield rest;
}

/**
 * The process's stdout and stderr. A reader that went away (`| head`) gets nothing more, and the
 * session goes on: what was typed is still sent, and the exit code still says whether it went.
 */
function processOutput(): Output {
  const gone = new Set<typeof Deno.stdout>();
  const write = (stream: typeof Deno.stdout, text: string) => {
    if (gone.has(stream)) return;
    try {
      // A write to a pipe may take part of the bytes: the rest follows, so no line is cut.
      for (let bytes = new TextEncoder().encode(`${text}\n`); bytes.length > 0;) {
        bytes = bytes.subarray(stream.writeSync(bytes));
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
      gone.add(stream);
    }
  };
  return {
    colour: Deno.stdout.isTerminal() && !Deno.noColor,
    line: (text) => write(Deno.stdout, text),
    error: (text) => write(Deno.stderr, text),
  };
}

if (import.meta.main) {
  // Exit here: the read of stdin that /quit left pending would keep the process alive.
  Deno.exit(await main(Deno.args, { stdin: Deno.stdin.readable, out: processOutput() }));
}

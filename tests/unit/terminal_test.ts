/**
 * The terminal client's pure parts: its command line, what a typed line asks for, and how a line is
 * written (times, colours, and no control character of anyone's text reaching the terminal).
 * @module
 */
import assert from "node:assert/strict";
import { DEFAULT_URL, helpText, OPTIONS, parseArgs, UsageError } from "../../terminal/args.ts";
import { parseInput } from "../../terminal/commands.ts";
import { Formatter, safe, timeOf } from "../../terminal/format.ts";
import { lines } from "../../terminal/chat.ts";
import { TABLE } from "../../lib/settings.ts";

const usage = (pattern: RegExp) => (e: unknown) => e instanceof UsageError && pattern.test(e.message);

Deno.test("parseArgs() gives the defaults: the server's default port, lobby, readable lines", () => {
  const o = parseArgs([]);
  assert.equal(o.url, DEFAULT_URL);
  assert.equal(DEFAULT_URL, `ws://127.0.0.1:${TABLE.server.port.default}/ws`);
  assert.deepEqual(o.rooms, ["lobby"]);
  assert.equal(o.json, false);
  assert.equal(o.name, undefined);
  assert.equal(o.backlog, 10);
  assert.equal(o.connectTimeout, 10);
  assert.equal(o.sendTimeout, 30);
});

Deno.test("parseArgs() reads every option, in both spellings, rooms repeated and canonical", () => {
  const o = parseArgs([
    "ws://chat.example:9000/ws",
    "--name",
    "zoë",
    "--room=Dev",
    "--room",
    "#lobby",
    "--room",
    "dev",
    "--token",
    "t0k",
    "--json",
    "--backlog",
    "0",
    "--connect-timeout=2.5",
    "--send-timeout",
    "5",
  ]);
  assert.equal(o.url, "ws://chat.example:9000/ws");
  assert.equal(o.name, "zoë");
  assert.deepEqual(o.rooms, ["dev", "lobby"]);
  assert.equal(o.token, "t0k");
  assert.equal(o.json, true);
  assert.equal(o.backlog, 0);
  assert.equal(o.connectTimeout, 2.5);
  assert.equal(o.sendTimeout, 5);
  assert.ok(Object.isFrozen(o));
});

Deno.test("parseArgs() takes the page's http address the server prints as its /ws", () => {
  assert.equal(parseArgs(["http://localhost:8000/"]).url, "ws://localhost:8000/ws");
  assert.equal(parseArgs(["https://chat.example"]).url, "wss://chat.example/ws");
  assert.equal(parseArgs(["https://chat.example/chat/ws"]).url, "wss://chat.example/chat/ws");
  assert.equal(parseArgs(["wss://chat.example/ws"]).url, "wss://chat.example/ws");
});

Deno.test("parseArgs() refuses a bad command line with one sentence naming the option and the value", () => {
  assert.throws(() => parseArgs(["--bogus"]), usage(/^unknown option --bogus \(see --help\)$/));
  assert.throws(() => parseArgs(["-x"]), usage(/^unknown option -x/));
  assert.throws(() => parseArgs(["--name"]), usage(/^--name needs a value \(N\)$/));
  assert.throws(() => parseArgs(["--name", "a b"]), usage(/^--name must be .*got "a b"$/));
  assert.throws(() => parseArgs(["--name", "a", "--name", "b"]), usage(/^--name is given twice$/));
  assert.throws(() => parseArgs(["--room", "no room"]), usage(/^--room must be .*got "no room"$/));
  assert.throws(() => parseArgs(["--token", " "]), usage(/^--token is empty$/));
  assert.throws(() => parseArgs(["--json=yes"]), usage(/^--json takes no value, got "yes"$/));
  assert.throws(
    () => parseArgs(["--backlog", "-1"]),
    usage(/^--backlog must be an integer, 0 or more, got "-1"$/),
  );
  assert.throws(
    () => parseArgs(["--send-timeout", "0"]),
    usage(/^--send-timeout must be a number of seconds/),
  );
  assert.throws(() => parseArgs(["--connect-timeout", "x"]), usage(/got "x"$/));
  assert.throws(() => parseArgs(["a", "b"]), usage(/^one URL at most, got "a" "b"$/));
  assert.throws(() => parseArgs(["ftp://x/"]), usage(/^the URL must start with ws:\/\//));
  assert.throws(() => parseArgs(["not a url"]), usage(/^the URL must look like ws:\/\/host:port\/ws/));
  assert.throws(() => parseArgs(["ws://h/ws?name=x"]), usage(/^the URL must have no query/));
  assert.throws(() => parseArgs(["ws://u:p@h/ws"]), usage(/^the URL must have no user or password/));
});

Deno.test("helpText() lists every option and its default", () => {
  const help = helpText();
  for (const [key, spec] of Object.entries(OPTIONS)) {
    assert.match(help, new RegExp(`--${key}\\b`));
    if ("default" in spec) assert.match(help, new RegExp(`--${key} .*\\(default ${spec.default}\\)`));
  }
  for (const cmd of ["/join", "/leave", "/msg", "/nick", "/rooms", "/who", "/quit"]) {
    assert.ok(help.includes(cmd));
  }
});

Deno.test("parseInput() tells text from commands", () => {
  assert.deepEqual(parseInput("hello"), { kind: "say", text: "hello" });
  assert.deepEqual(parseInput("  "), { kind: "none" });
  assert.deepEqual(parseInput("//not a command"), { kind: "say", text: "/not a command" });
  assert.deepEqual(parseInput("/join dev"), { kind: "join", room: "dev" });
  assert.deepEqual(parseInput("/JOIN dev"), { kind: "join", room: "dev" });
  assert.deepEqual(parseInput("/leave"), { kind: "leave", room: undefined });
  assert.deepEqual(parseInput("/leave dev"), { kind: "leave", room: "dev" });
  assert.deepEqual(parseInput("/msg bob  hi  there "), { kind: "msg", to: "bob", text: "hi  there " });
  assert.deepEqual(parseInput("/nick zoë"), { kind: "nick", name: "zoë" });
  assert.deepEqual(parseInput("/rooms"), { kind: "rooms" });
  assert.deepEqual(parseInput("/who"), { kind: "who", room: undefined });
  assert.deepEqual(parseInput("/who dev"), { kind: "who", room: "dev" });
  assert.deepEqual(parseInput("/quit"), { kind: "quit" });
  assert.deepEqual(parseInput("/help"), { kind: "help" });
});

Deno.test("parseInput() answers a malformed command with its usage", () => {
  assert.deepEqual(parseInput("/join"), { kind: "bad", message: "usage: /join ROOM" });
  assert.deepEqual(parseInput("/join a b"), { kind: "bad", message: "usage: /join ROOM" });
  assert.deepEqual(parseInput("/msg bob"), { kind: "bad", message: "usage: /msg NAME TEXT" });
  assert.deepEqual(parseInput("/msg bob   "), { kind: "bad", message: "usage: /msg NAME TEXT" });
  assert.deepEqual(parseInput("/nick"), { kind: "bad", message: "usage: /nick NAME" });
  assert.deepEqual(parseInput("/rooms x"), { kind: "bad", message: "usage: /rooms" });
  assert.match((parseInput("/frob x") as { message: string }).message, /^unknown command \/frob /);
});

Deno.test("safe() shows control characters instead of obeying them", () => {
  assert.equal(safe("\x1b[31mred\x1b[0m"), "^[[31mred^[[0m");
  assert.equal(safe("\x1b]0;title\x07"), "^[]0;title^G");
  assert.equal(safe("a\x7fb\x9bc"), "a^?b<U+009B>c");
  assert.equal(safe("abc\u202edcba\u2066x\u2069"), "abc<U+202E>dcba<U+2066>x<U+2069>");
  assert.equal(safe("tab\tstays, zoë 日本 🙂"), "tab\tstays, zoë 日本 🙂");
});

Deno.test("Formatter writes time, name and text, and colours only when asked", () => {
  const ts = new Date(2026, 11, 7, 9, 5).getTime();
  const plain = new Formatter(false);
  assert.equal(plain.message({ ts, from: "alice", text: "hi" }), `${timeOf(ts)} alice: hi`);
  assert.match(plain.message({ ts, from: "alice", text: "hi" }), /^\d\d:\d\d alice: hi$|^\d{4}-/);
  assert.equal(
    plain.message({ ts, from: "bob", text: "@alice x" }, { where: "#dev" }),
    `${timeOf(ts)} #dev bob: @alice x`,
  );
  assert.equal(plain.message({ ts, from: "a", text: "one\ntwo\x1b" }), `${timeOf(ts)} a: one\n      two^[`);
  assert.equal(plain.direct({ ts, from: "a", to: "b", text: "psst" }, false), `${timeOf(ts)} *a* psst`);
  assert.equal(plain.direct({ ts, from: "a", to: "b", text: "psst" }, true), `${timeOf(ts)} -> *b* psst`);
  assert.equal(plain.status("joined"), "-- joined");
  assert.equal(plain.error("no"), "!! no");
  // deno-lint-ignore no-control-regex
  const esc = /\x1b/;
  for (const line of [plain.message({ ts, from: "a", text: "x" }), plain.status("s"), plain.error("e")]) {
    assert.doesNotMatch(line, esc);
  }
  const colour = new Formatter(true);
  assert.match(colour.message({ ts, from: "alice", text: "hi" }), esc);
  assert.match(colour.error("e"), esc);
  // The same name gets the same colour every time.
  assert.equal(
    colour.message({ ts, from: "alice", text: "x" }),
    colour.message({ ts, from: "alice", text: "x" }),
  );
});

Deno.test("Formatter names every person through its one name function, made safe", () => {
  const ts = Date.now();
  const fmt = new Formatter(false, (handle) => handle === "ada" ? "Ada \x1b[2JLovelace" : handle);
  assert.equal(fmt.person("ada"), "Ada ^[[2JLovelace");
  assert.equal(fmt.message({ ts, from: "ada", text: "hi" }), `${timeOf(ts)} Ada ^[[2JLovelace: hi`);
  assert.equal(
    fmt.direct({ ts, from: "bob", to: "ada", text: "x" }, true),
    `${timeOf(ts)} -> *Ada ^[[2JLovelace* x`,
  );
  assert.equal(new Formatter(false).person("bob"), "bob");
});

Deno.test("timeOf() is HH:MM today and carries the date before", () => {
  const now = new Date(2026, 11, 7, 12, 0).getTime();
  assert.equal(timeOf(new Date(2026, 11, 7, 9, 5).getTime(), now), "09:05");
  assert.equal(timeOf(new Date(2026, 11, 6, 23, 59).getTime(), now), "2026-12-06 23:59");
});

Deno.test("lines() splits a byte stream into lines, CRLF too, and keeps a last line without its break", async () => {
  const chunks = ["hel", "lo\r\nwor", "ld\n\nlast"].map((s) => new TextEncoder().encode(s));
  const stream = ReadableStream.from(chunks);
  assert.deepEqual(await Array.fromAsync(lines(stream)), ["hello", "world", "", "last"]);
});

Deno.test("README's Terminal part names every option and command of the terminal client", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const part = readme.split(/^### Terminal$/m)[1]?.split(/^##/m)[0] ?? "";
  assert.match(readme, /^## Clients$/m);
  for (const key of Object.keys(OPTIONS)) assert.ok(part.includes(`--${key}`), `--${key}`);
  for (const cmd of ["/join", "/leave", "/msg", "/nick", "/rooms", "/who", "/quit", "/help"]) {
    assert.ok(part.includes(`\`${cmd}`), cmd);
  }
});

Deno.test("terminal/chat.ts imports only terminal/ and the page's client in static/ (no server module)", async () => {
  const root = new URL("../../", import.meta.url).href;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "terminal/chat.ts"],
    cwd: new URL(root),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const modules: { specifier: string }[] = JSON.parse(new TextDecoder().decode(out.stdout)).modules;
  const ours = modules.map((m) => m.specifier).filter((s) => s.startsWith(root)).map((s) =>
    s.slice(root.length)
  );
  assert.ok(ours.includes("static/chat-client.js"));
  assert.deepEqual(
    ours.filter((p) => !/^(terminal|static\/(client|shared))\/|^static\/chat-client\.js$/.test(p)),
    [],
  );
  assert.deepEqual(modules.filter((m) => !m.specifier.startsWith(root)).map((m) => m.specifier), []);
});

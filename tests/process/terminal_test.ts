/**
 * The terminal client (`deno task chat`) as a user drives it: a real server on port 0, the client as a
 * child process with the task's permissions, typed into through stdin and read on stdout. Two
 * terminals and a raw JSON WebSocket client talk; commands, unread counts, `--json`, pipe mode, exit
 * codes, colours and a server restart are each a test.
 * @module
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { spawnServer } from "../helpers/process.ts";
import { chatTaskFlags, Terminal } from "../helpers/terminal.ts";
import { startServer, type TestServer } from "../helpers/test_server.ts";
import { TestClient } from "../helpers/test_server.ts";

/** A message line: `HH:MM name: text`. */
const said = (name: string, text: string) =>
  new RegExp(`^\\d\\d:\\d\\d ${name}: ${text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`, "m");

/** A terminal connected to `server` and showing its first room. */
async function terminal(server: TestServer | number, ...args: string[]): Promise<Terminal> {
  const port = typeof server === "number" ? server : server.port;
  const t = await Terminal.start([`ws://127.0.0.1:${port}/ws`, ...args]);
  await t.wait(/^-- joined #\S+ /m, 20_000);
  return t;
}

Deno.test("terminal: two terminals and a raw WebSocket client talk in a room", async () => {
  await using server = await startServer();
  await using alice = await terminal(server, "--name", "alice");
  await using bob = await terminal(server, "--name", "bob");
  await using carol = await TestClient.connect(server, { name: "carol", room: "lobby" });
  await alice.wait(/^-- bob joined #lobby$/m);

  await alice.type("hello from alice");
  await bob.wait(said("alice", "hello from alice"));
  await alice.wait(said("alice", "hello from alice"));
  const m = await carol.next("message", (m) => m.from === "alice");
  assert.equal(m.text, "hello from alice");

  carol.send({ type: "send", room: "lobby", text: "carol here", cid: "c1" });
  await alice.wait(said("carol", "carol here"));
  await bob.wait(said("carol", "carol here"));

  await bob.type("bob too");
  await alice.wait(said("bob", "bob too"));
  assert.equal((await carol.next("message", (m) => m.from === "bob")).text, "bob too");
  // Each message once: shown on arrival, never again.
  assert.equal(alice.stdout.match(/ bob: bob too$/gm)?.length, 1, alice.transcript());
  assert.equal(alice.stderr, "");
});

Deno.test("terminal: a person with a display name is shown by it", async () => {
  await using server = await startServer();
  await using alice = await terminal(server, "--name", "alice");
  await using ada = await TestClient.connect(server, { display: "Ada Lovelace", room: "lobby" });
  ada.send({ type: "send", room: "lobby", text: "hello terminal", cid: "a1" });
  await alice.wait(said("Ada Lovelace", "hello terminal"));
  assert.equal(alice.stderr, "");
});

Deno.test("terminal: /msg sends a direct message only its recipient sees", async () => {
  await using server = await startServer();
  await using alice = await terminal(server, "--name", "alice");
  await using bob = await terminal(server, "--name", "bob");
  await using carol = await TestClient.connect(server, { name: "carol", room: "lobby" });

  await alice.type("/msg bob just between us");
  await bob.wait(/^\d\d:\d\d \*alice\* just between us$/m);
  await alice.wait(/^\d\d:\d\d -> \*bob\* just between us$/m);

  carol.send({ type: "send", to: "alice", text: "psst alice", cid: "d1" });
  await alice.wait(/^\d\d:\d\d \*carol\* psst alice$/m);
  await carol.next("ack", (m) => m.cid === "d1");
  // A room message after it: had the DM reached carol (or the room), it would have come first.
  await alice.type("in the room");
  await carol.next("message", (m) => m.text === "in the room");
  assert.equal(carol.all("message").filter((m) => m.text === "just between us").length, 0);
  assert.doesNotMatch(bob.stdout, /psst alice/);
});

Deno.test("terminal: /nick renames you and the others see it; /who lists the room", async () => {
  await using server = await startServer();
  await using alice = await terminal(server, "--name", "alice");
  await using bob = await terminal(server, "--name", "bob");
  await using carol = await TestClient.connect(server, { name: "carol", room: "lobby" });

  await alice.type("/nick alicia");
  await alice.wait(/^-- you are now alicia$/m);
  await bob.wait(/^-- alice is now alicia$/m);
  assert.equal((await carol.next("nick")).name, "alicia");
  await alice.type("under a new name");
  await bob.wait(said("alicia", "under a new name"));

  await bob.type("/who");
  await bob.wait(/^-- #lobby: alicia, bob, carol \(3\)$/m);

  // A name that is taken is refused with the server's sentence, and the session goes on.
  await bob.type("/nick carol");
  await bob.wait(/^!! .*carol.* \(name_taken\)$/m, 10_000, "stderr");
  await bob.type("still bob");
  await alice.wait(said("bob", "still bob"));
});

Deno.test("terminal: a room not shown counts its unread messages; /join shows them, /leave leaves", async () => {
  await using server = await startServer();
  await using alice = await terminal(server, "--name", "alice", "--room", "lobby", "--room", "dev");
  await alice.wait(/^-- joined #dev$/m);
  await using bob = await TestClient.connect(server, { name: "bob", room: "dev" });

  bob.send({ type: "send", room: "dev", text: "dev news 1", cid: "b1" });
  bob.send({ type: "send", room: "dev", text: "dev news 2", cid: "b2" });
  await bob.next("ack", (m) => m.cid === "b2");
  await alice.wait(/^-- #dev: 1 unread \(\/join dev to show it\)$/m);
  // bob's ack does not wait for alice to have the message: ask until she has both.
  for (let i = 0; !/^#dev \(2 unread\)$/m.test(alice.stdout); i++) {
    assert.ok(i < 50, alice.transcript());
    await alice.type("/rooms");
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(alice.stdout, /^#lobby \(shown\)$/m);
  assert.doesNotMatch(alice.stdout, /dev news/, "a room not shown does not print its messages");
  // Told once, not once a message.
  assert.equal(alice.stdout.match(/#dev: \d+ unread/g)?.length, 1);

  // A mention is shown even from a room not shown, with its room.
  bob.send({ type: "send", room: "dev", text: "@alice look", cid: "b3" });
  await alice.wait(/^\d\d:\d\d #dev bob: @alice look$/m);

  await alice.type("/join dev");
  await alice.wait(/^-- now in #dev$/m);
  await alice.wait(said("bob", "dev news 1"));
  await alice.wait(said("bob", "dev news 2"));
  await alice.type("/rooms");
  await alice.wait(/^#dev \(shown\)$/m);

  await alice.type("/leave");
  await alice.wait(/^-- left #dev\n-- now in #lobby$/m);
  const left = await bob.next("presence", (m) => m.event === "leave");
  assert.equal(left.name, "alice");
  const mark = alice.stdout.length;
  await alice.type("/rooms", "/who dev");
  await alice.wait(/^!! you are not in #dev$/m, 10_000, "stderr");
  assert.deepEqual(alice.stdout.slice(mark).trimEnd().split("\n"), ["#lobby (shown)"], alice.transcript());
});

Deno.test("terminal: a room opened shows its newest --backlog messages and says how many unread it left out", async () => {
  // `joined` brings the newest 8: the count must come from the seqs, not from what is held.
  await using server = await startServer({ historyOnJoin: 8 });
  await using carol = await TestClient.connect(server, { name: "carol", room: "lobby" });
  for (let n = 1; n <= 15; n++) carol.send({ type: "send", room: "lobby", text: `old ${n}`, cid: `o${n}` });
  await carol.next("ack", (m) => m.cid === "o15");

  await using alice = await terminal(server, "--name", "alice", "--backlog", "4");
  await alice.wait(said("carol", "old 15"));
  const shown = alice.stdout.split("\n").filter((l) => / carol: /.test(l)).map((l) => l.split(": ")[1]);
  assert.deepEqual(shown, ["old 12", "old 13", "old 14", "old 15"]);
  assert.match(alice.stdout, /^-- 11 earlier unread in #lobby not shown \(--backlog\)$/m);
});

Deno.test("terminal: --token brings a guest back, and what it shows is read on every device", async () => {
  await using server = await startServer();
  await using gina = await TestClient.connect(server, { name: "gina", room: "dev" });
  const token: string = gina.all("welcome")[0].token;
  await using bob = await TestClient.connect(server, { name: "bob", room: "dev" });
  for (const n of [1, 2]) bob.send({ type: "send", room: "dev", text: `for gina ${n}`, cid: `g${n}` });
  await gina.next("message", (m) => m.text === "for gina 2");

  await using t = await terminal(server, "--token", token, "--room", "lobby", "--room", "dev");
  await t.wait(/^-- connected to .* as gina$/m);
  await t.wait(/^-- #dev: 2 unread /m);
  await t.type("/join dev");
  await t.wait(said("bob", "for gina 2"));
  // The read position is the person's: another connection of gina's hears it.
  const read = await gina.next("read", (m) => m.room === "dev", 5000);
  assert.equal(read.seq, 2);
  await using again = await TestClient.connect(server, { token, room: "dev" });
  assert.equal((await again.next("joined")).unread, 0);
});

Deno.test("terminal: a signed --token signs in; a refused one exits 1 with the server's sentence", async () => {
  const secret = "a-secret-of-at-least-thirty-two-bytes!!";
  await using server = await startServer({ jwtSecret: secret });
  const mint = (exp: string) =>
    new SignJWT({ name: "signed-sam" }).setProtectedHeader({ alg: "HS256" }).setSubject("u-sam")
      .setExpirationTime(exp).sign(new TextEncoder().encode(secret));

  await using sam = await terminal(server, "--token", await mint("5m"));
  await sam.wait(/^-- connected to .* as signed-sam$/m);
  await sam.type("/nick other");
  await sam.wait(/^!! .*sign-in/m, 10_000, "stderr");

  await using forged = await Terminal.start([server.wsUrl, "--token", `${await mint("5m")}x`]);
  assert.equal((await forged.exit()).code, 1, forged.transcript());
  assert.match(forged.stderr, /^chat: .*\(bad_token\)\n$/);
  assert.equal(forged.stdout, "");
});

Deno.test("terminal: --json prints each server line as JSON on stdout and nothing else", async () => {
  await using server = await startServer();
  await using carol = await TestClient.connect(server, { name: "carol", room: "lobby" });
  await using alice = await Terminal.start([server.wsUrl, "--name", "alice", "--json"]);
  await alice.wait(/"type":"joined"/);
  carol.send({ type: "send", room: "lobby", text: "for the json reader", cid: "j1" });
  await alice.wait(/for the json reader/);
  await alice.type("from json mode");
  await alice.wait(/"type":"ack"/);
  assert.equal((await alice.exit()).code, 0, alice.transcript());

  const lines = alice.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.slice(0, 3).map((m) => m.type), ["welcome", "conversations", "joined"]);
  assert.ok(
    lines.some((m) => m.type === "message" && m.from === "carol" && m.text === "for the json reader"),
  );
  assert.ok(lines.some((m) => m.type === "message" && m.from === "alice" && m.text === "from json mode"));
  // The readable lines went to stderr.
  assert.match(alice.stderr, /^-- connected to .* as alice$/m);
});

Deno.test("terminal: piped input is sent, and the client exits 0 once every message is acked", async () => {
  await using server = await startServer();
  await using carol = await TestClient.connect(server, { name: "carol", room: "lobby" });
  await using pipe = await Terminal.start([server.wsUrl, "--name", "piper"]);
  await pipe.type("line one", "/join dev", "line two in dev", "/msg carol and a dm");
  await pipe.endInput();
  const status = await pipe.exit();
  assert.equal(status.code, 0, pipe.transcript());
  assert.equal(pipe.stderr, "");
  // Acked means stored: a client that comes now reads them from the history.
  assert.equal(
    (await carol.next("message", (m) => m.room === "lobby" && m.from === "piper")).text,
    "line one",
  );
  assert.equal((await carol.next("message", (m) => m.to === "carol")).text, "and a dm");
  await using dave = await TestClient.connect(server, { name: "dave", room: "dev" });
  const joined = await dave.next("joined");
  assert.deepEqual(joined.messages.map((m: { text: string }) => m.text), ["line two in dev"]);
});

Deno.test("terminal: a reader of its output that goes away (| head) does not stop what was typed from going", async () => {
  await using server = await startServer();
  await using carol = await TestClient.connect(server, { name: "carol", room: "lobby" });
  const entry = new URL("../../terminal/chat.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...await chatTaskFlags(), entry, server.wsUrl, "--name", "headless"],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout(30_000),
  }).spawn();
  // The first line read, the reader goes (as `head -1` does): later writes to stdout fail.
  const reader = child.stdout.getReader();
  await reader.read();
  await reader.cancel();
  const stdin = child.stdin.getWriter();
  await stdin.write(new TextEncoder().encode("after the reader left 1\nafter the reader left 2\n"));
  await stdin.close();
  assert.equal((await child.status).code, 0);
  for (const n of [1, 2]) {
    assert.equal(
      (await carol.next("message", (m) => m.from === "headless")).text,
      `after the reader left ${n}`,
    );
  }
});

Deno.test("terminal: piped input that is refused exits 1 with one line per refusal", async () => {
  await using server = await startServer();
  await using pipe = await Terminal.start([server.wsUrl, "--name", "piper"]);
  await pipe.type("/msg nobody-here hello?", "/frobnicate", "this one goes");
  const status = await pipe.exit();
  assert.equal(status.code, 1, pipe.transcript());
  const errors = pipe.stderr.trimEnd().split("\n");
  assert.equal(errors.length, 2, pipe.transcript());
  assert.match(pipe.stderr, /^!! not sent to \*nobody-here\*: .*nobody-here.*: hello\?$/m);
  assert.match(pipe.stderr, /^!! unknown command \/frobnicate/m);
  assert.match(pipe.stdout, said("piper", "this one goes"));
});

Deno.test("terminal: a bad command line, --help and an unreachable server: one line, no stack trace", async () => {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = closed.addr.port;
  closed.close();
  const cases: [string[], number, RegExp][] = [
    [["--help"], 0, /^usage: deno task chat \[URL\]/m],
    [["--name", "not ok"], 2, /^chat: --name must be .*got "not ok"\n$/],
    [["--bogus"], 2, /^chat: unknown option --bogus \(see --help\)\n$/],
    [["ftp://x"], 2, /^chat: the URL must start with ws:\/\/.*got "ftp:\/\/x"\n$/],
    [[`ws://127.0.0.1:${port}/ws`], 1, /^chat: cannot connect to ws:\/\/127\.0\.0\.1:\d+\/ws: .*\n$/],
  ];
  for (const [args, code, pattern] of cases) {
    await using t = await Terminal.start(args);
    const status = await t.exit();
    assert.equal(status.code, code, `${args.join(" ")}\n${t.transcript()}`);
    assert.match(code === 0 ? t.stdout : t.stderr, pattern, t.transcript());
    assert.doesNotMatch(t.stdout + t.stderr, /\bat .*:\d+:\d+|error: Uncaught/, "no stack trace");
  }
});

Deno.test("deno task chat runs the client as it is documented", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "chat", "--help"],
    cwd: new URL("../../", import.meta.url).pathname,
    stdin: "null",
    signal: AbortSignal.timeout(30_000),
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(new TextDecoder().decode(out.stdout), /^usage: deno task chat \[URL\] \[--name N\]/m);
});

Deno.test("terminal: no colour codes when stdout is not a terminal, and none from anyone's text", async () => {
  await using server = await startServer();
  await using alice = await terminal(server, "--name", "alice");
  await using carol = await TestClient.connect(server, { name: "carol", room: "lobby" });
  carol.send({
    type: "send",
    room: "lobby",
    text: "\x1b[2J\x1b]0;pwned\x07red \x1b[31mtext\u202e",
    cid: "x1",
  });
  await alice.wait(/red /);
  await alice.type("/rooms", "/nope");
  await alice.wait(/^!! unknown command/m, 10_000, "stderr");
  assert.match(alice.stdout, /^\d\d:\d\d carol: \^\[\[2J\^\[\]0;pwned\^Gred \^\[\[31mtext<U\+202E>$/m);
  // deno-lint-ignore no-control-regex
  assert.ok(!/[\x00-\x08\x0b-\x1f\x7f]/.test(alice.stdout + alice.stderr), alice.transcript());
});

Deno.test({
  name: "terminal: colours on a terminal (a pty)",
  ignore: !await hasScript(),
  fn: async () => {
    await using server = await startServer();
    await using alice = await Terminal.start([server.wsUrl, "--name", "alice"], { pty: true });
    await alice.wait(/joined #lobby/);
    await alice.type("in colour");
    // The pty echoes what is typed: wait for the message's own line.
    // deno-lint-ignore no-control-regex
    await alice.wait(/\x1b\[1malice\x1b\[0m: in colour/);
    await alice.type("/quit");
    assert.equal((await alice.exit()).code, 0, alice.transcript());
  },
});

Deno.test("terminal: reconnects after the server restarts on the same port, and loses nothing it had to send", async () => {
  const dir = await Deno.makeTempDir({ prefix: "terminal-restart-" });
  let srv = await spawnServer(dir, ["--durability", "normal"]);
  try {
    await using alice = await terminal(srv.port, "--name", "alice");
    await alice.type("before the restart");
    await alice.wait(said("alice", "before the restart"));

    const port = srv.port;
    await srv.stop();
    await alice.wait(/^-- connection lost; reconnecting$/m);
    // Typed while the server is away: they wait in the outbox.
    await alice.type("while away 1", "while away 2", "while away 3");
    srv = await spawnServer(dir, ["--durability", "normal", "--port", String(port)]);
    await alice.wait(/^-- reconnected as alice$/m, 30_000);
    for (const n of [1, 2, 3]) await alice.wait(said("alice", `while away ${n}`));

    await using carol = new TestClient(`ws://127.0.0.1:${port}/ws?name=carol&room=lobby`);
    await carol.opened;
    const joined = await carol.next("joined", () => true, 10_000);
    assert.deepEqual(
      joined.messages.map((m: { text: string }) => m.text),
      ["before the restart", "while away 1", "while away 2", "while away 3"],
      alice.transcript(),
    );
    // Each shown once, in order.
    const shown = alice.stdout.split("\n").filter((l) => / alice: /.test(l)).map((l) => l.split(": ")[1]);
    assert.deepEqual(
      shown,
      ["before the restart", "while away 1", "while away 2", "while away 3"],
      alice.transcript(),
    );
    assert.equal((await alice.exit()).code, 0, alice.transcript());
  } finally {
    await srv.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

async function hasScript(): Promise<boolean> {
  try {
    return (await new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
      .output())
      .success;
  } catch {
    return false;
  }
}

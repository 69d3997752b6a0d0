import assert from "node:assert/strict";
import { ConfigError, configFromArgs, DEFAULTS, helpText, resolveConfig, SETTINGS } from "../lib/config.ts";

Deno.test("resolveConfig() fills every default and freezes the result", () => {
  const c = resolveConfig();
  assert.deepEqual({ ...c }, { ...DEFAULTS });
  assert.ok(Object.isFrozen(c));
  assert.equal(c.port, 8000);
  assert.equal(c.hostname, "0.0.0.0");
});

Deno.test("configFromArgs() reads flags over environment variables", () => {
  const env: Record<string, string> = { PORT: "9000", CHAT_MAX_TEXT_CHARS: "10", HOST: "127.0.0.1" };
  const c = configFromArgs([
    "--port",
    "9100",
    "--burst=5",
    "--allowed-origins",
    "https://a.example,https://b.example",
  ], (
    n,
  ) => env[n]);
  assert.equal(c.port, 9100);
  assert.equal(c.burst, 5);
  assert.equal(c.maxTextChars, 10);
  assert.equal(c.hostname, "127.0.0.1");
  assert.deepEqual(c.allowedOrigins, ["https://a.example", "https://b.example"]);
});

Deno.test("configFromArgs() stops on a bad value with one sentence naming setting and value", () => {
  const env = () => undefined;
  assert.throws(() => configFromArgs(["--port", "eighty"], env), {
    name: "ConfigError",
    message: '--port (PORT) must be an integer from 0 to 65535, got "eighty"',
  });
  assert.throws(() => configFromArgs(["--port", "70000"], env), ConfigError);
  assert.throws(
    () => configFromArgs(["--store", "redis"], env),
    /--store \(CHAT_STORE\) must be one of sqlite, memory, got "redis"/,
  );
  assert.throws(() => configFromArgs(["--allowed-origins", "evil"], env), /--allowed-origins/);
  assert.throws(() => configFromArgs(["--public-origin", "*"], env), {
    message: '--public-origin (CHAT_PUBLIC_ORIGIN) takes origins like "https://chat.example.com", got "*"',
  });
  assert.throws(
    () => configFromArgs(["--public-origin", "https://chat.example/app"], env),
    /--public-origin/,
  );
  assert.throws(() => configFromArgs(["--frobnicate"], env), /unknown option "--frobnicate"/);
  assert.throws(() => configFromArgs(["--port"], env), /--port needs a value/);
  assert.throws(
    () => configFromArgs([], (n) => n === "CHAT_BURST" ? "0" : undefined),
    /--burst \(CHAT_BURST\)/,
  );
});

Deno.test("helpText() lists every setting with its environment variable and default", () => {
  const text = helpText();
  for (const s of SETTINGS) {
    assert.ok(text.includes(`--${s.flag}`), s.flag);
    assert.ok(text.includes(s.env), s.env);
  }
});

Deno.test("--metrics-token is off by default and takes only what a bearer token can hold", () => {
  assert.equal(resolveConfig().metricsToken, "");
  assert.match(helpText(), /--metrics-token +CHAT_METRICS_TOKEN .*\[\(none\)\]/);
  const env = (v: string) => (n: string) => n === "CHAT_METRICS_TOKEN" ? v : undefined;
  assert.equal(configFromArgs([], env("abc.DEF_123-~+/=")).metricsToken, "abc.DEF_123-~+/=");
  assert.throws(() => configFromArgs([], env("has space")), (e: Error) => {
    assert.equal(e.name, "ConfigError");
    assert.match(e.message, /^--metrics-token \(CHAT_METRICS_TOKEN\) takes .* at character 4, " "$/);
    assert.doesNotMatch(e.message, /has/, "a secret is not repeated into logs");
    return true;
  });
  assert.throws(() => configFromArgs(["--metrics-token", "a=b"], () => undefined), /character 3, "b"/);
});

Deno.test("configFromArgs() reads --public-origin as a list of origins written the way browsers send them", () => {
  const env = (n: string) =>
    n === "CHAT_PUBLIC_ORIGIN" ? "https://Chat.Example.com:443, http://[::1]:80" : undefined;
  assert.deepEqual(configFromArgs([], env).publicOrigins, ["https://chat.example.com", "http://[::1]"]);
  const c = configFromArgs(["--public-origin=http://chat.lan:8000", "--allowed-origins", "*"], env);
  assert.deepEqual(c.publicOrigins, ["http://chat.lan:8000"]);
  assert.deepEqual(c.allowedOrigins, ["*"]);
  assert.deepEqual(resolveConfig().publicOrigins, []);
});

Deno.test("--idle-timeout cannot be turned off: it is what ends a socket whose receive side Deno gave up on", () => {
  assert.throws(
    () => configFromArgs(["--idle-timeout", "0"], () => undefined),
    /^ConfigError: --idle-timeout \(CHAT_IDLE_TIMEOUT\) must be an integer from 1 to 3600, got "0"$/,
  );
  assert.equal(configFromArgs(["--idle-timeout", "1"], () => undefined).idleTimeoutSeconds, 1);
});

Deno.test("--reuse-port is a switch: alone it is on, =false or CHAT_REUSE_PORT=0 turn it off", () => {
  const none = () => undefined;
  assert.equal(configFromArgs([], none).reusePort, false);
  assert.equal(configFromArgs(["--reuse-port", "--port", "9"], none).reusePort, true);
  assert.equal(configFromArgs(["--reuse-port=false"], none).reusePort, false);
  assert.equal(configFromArgs([], (n) => n === "CHAT_REUSE_PORT" ? "0" : undefined).reusePort, false);
  assert.throws(() => configFromArgs(["--reuse-port=maybe"], none), /is on or off/);
});

Deno.test("the README's tables name every setting, with its environment variable and default", () => {
  const readme = Deno.readTextFileSync(new URL("../README.md", import.meta.url));
  for (const s of SETTINGS) {
    const row = readme.split("\n").find((l) => l.startsWith(`| \`--${s.flag}\``));
    assert.ok(row, `README has no row for --${s.flag}`);
    assert.ok(row.includes(`\`${s.env}\``), `README's row for --${s.flag} names ${s.env}`);
  }
});

Deno.test("--commit-delay is 2 ms on a durable store, 0 on the memory store (nothing to share there); a value given wins", () => {
  assert.equal(resolveConfig().commitDelayMs, 2);
  assert.equal(resolveConfig({ store: "memory" }).commitDelayMs, 0);
  assert.equal(resolveConfig({ store: "memory", redisUrl: "redis://127.0.0.1:6379" }).commitDelayMs, 2);
  assert.equal(resolveConfig({ store: "memory", commitDelayMs: 5 }).commitDelayMs, 5);
  assert.equal(configFromArgs(["--commit-delay", "0"], () => undefined).commitDelayMs, 0);
  assert.throws(() => configFromArgs(["--commit-delay", "5000"], () => undefined), ConfigError);
});

import assert from "node:assert/strict";
import {
  ConfigError,
  configFromArgs,
  DEFAULTS,
  ms,
  resolveConfig,
  SETTINGS,
  settingsFor,
} from "../../lib/config.ts";
import { SECTION_ORDER } from "../../lib/settings.ts";
import { helpText, settingsMarkdown, withSettingsTables } from "../../lib/settings_doc.ts";

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
  assert.match(
    helpText().replace(/\s+/g, " "),
    /--metrics-token <token> CHAT_METRICS_TOKEN [^-]*Default: \(none: \/metrics open\)/,
  );
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
  const readme = Deno.readTextFileSync(new URL("../../README.md", import.meta.url));
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

Deno.test("DEFAULTS, derived from the settings table, are the values each setting had before the table", () => {
  // Written out, not derived: a default changed in the table by mistake fails here.
  const before = {
    port: 8000,
    hostname: "0.0.0.0",
    dataDir: "./data",
    store: "sqlite",
    durability: "full",
    search: "on",
    publicOrigins: [],
    allowedOrigins: [],
    logLevel: "warn",
    metricsToken: "",
    redisUrl: "",
    presenceTtlMs: 15_000,
    redisWaitReplicas: 0,
    redisWaitMs: 500,
    maxTextChars: 4000,
    maxFrameBytes: 64 * 1024,
    maxRoomsPerConnection: 20,
    maxRooms: 10_000,
    messagesPerSecond: 10,
    burst: 30,
    busyFlushDelayMs: 5,
    busyFlushPeers: 256,
    maxStrikes: 20,
    maxConnections: 10_000,
    maxConnectionsPerIp: 50,
    idleTimeoutSeconds: 60,
    maxBufferedBytes: 1024 * 1024,
    sseReplayBytes: 256 * 1024,
    sseSessionIdleSeconds: 30,
    ssePostFrames: 30,
    nameHoldSeconds: 60,
    presenceDelayMs: 250,
    presenceIntervalMs: 1000,
    bigRoom: 500,
    membersPage: 100,
    countIntervalMs: 1000,
    maxTypers: 5,
    typingWindowMs: 3000,
    commitDelayMs: 2,
    historyOnJoin: 50,
    historyPage: 200,
    directoryPage: 50,
    searchMaxQueryChars: 256,
    searchPage: 20,
    searchesPerMinute: 30,
    searchBestWindow: 1000,
    searchTimeoutMs: 250,
    resumeCap: 1000,
    retainMessages: 10_000,
    retainDays: 30,
    dedupWindowSeconds: 86_400,
    editWindowSeconds: 900,
    apiKeys: "",
    apiRate: 50,
    apiAuthFailures: 10,
    apiMaxBody: 64 * 1024,
    auditRetain: 1000,
    maxReactionEmoji: 20,
    maxReactionsPerPerson: 10,
    maxReactionsPerMessage: 200,
    maxMentions: 20,
    guestForgetSeconds: 600,
    firstContactsPerHour: 30,
    firstContactsPerIpPerHour: 60,
    shutdownTimeoutMs: 5000,
    signInUrl: "",
    shutdownDrainMs: 500,
    shutdownQuietMs: 100,
    relistenTimeoutSeconds: 30,
    tcpBacklog: 4096,
    reusePort: false,
    maxAnswerBytes: 256 * 1024,
    jwtSecret: "",
    jwtPublicKey: "",
    jwtAudience: "",
    jwtIssuer: "",
    guests: "auto",
    createRooms: "anyone",
    guestBans: "person",
    nameLookupMs: 3000,
    authTimeoutMs: 10_000,
    maxTokenBytes: 8 * 1024,
  };
  assert.deepEqual({ ...DEFAULTS }, before);
  assert.deepEqual(SETTINGS.map((s) => s.key).sort(), Object.keys(before).sort());
  assert.ok(Object.isFrozen(DEFAULTS) && Object.isFrozen(DEFAULTS.publicOrigins));
});

Deno.test("the settings table: one key, flag and environment variable each; durations named by their unit", () => {
  for (const field of ["key", "flag", "env"] as const) {
    const seen = SETTINGS.map((s) => s[field]);
    assert.deepEqual(seen.filter((v, i) => seen.indexOf(v) !== i), [], `duplicate ${field}`);
  }
  const suffix: Record<string, string> = { ms: "Ms", s: "Seconds", days: "Days" };
  for (const s of SETTINGS) {
    assert.match(s.flag, /^[a-z][a-z-]*$/, s.key);
    assert.doesNotMatch(s.help, /\|/, `${s.key}: a | would split the README's table`);
    const unit = s.kind === "int" ? s.unit : undefined;
    if (unit !== undefined && suffix[unit]) assert.ok(s.key.endsWith(suffix[unit]), `${s.key} in ${unit}`);
    // Every default is a value the setting itself accepts (an empty string means "off").
    if (s.default !== "") assert.deepEqual(resolveConfig({ [s.key]: s.default })[s.key], s.default, s.key);
  }
});

/** A valid value other than the default for each setting, as a flag or a variable would carry it. */
function sample(s: (typeof SETTINGS)[number]): { text: string; value: unknown } {
  const special: Record<string, string> = {
    metricsToken: "tok.EN-1~+/=",
    redisUrl: "redis://127.0.0.1:6390",
    apiKeys: "0123456789abcdef,fedcba9876543210",
    jwtSecret: "s".repeat(32),
    signInUrl: "https://host.example/sign-in",
  };
  if (special[s.key]) return { text: special[s.key], value: special[s.key] };
  switch (s.kind) {
    case "int": {
      const n = s.default === (s.max ?? Infinity) ? s.default - 1 : s.default + 1;
      return { text: String(n), value: n };
    }
    case "bool":
      return { text: s.default ? "false" : "true", value: !s.default };
    case "choice": {
      const c = s.choices.find((c) => c !== s.default)!;
      return { text: c, value: c };
    }
    case "origins":
      return {
        text: "https://a.example, http://b.example:8080",
        value: ["https://a.example", "http://b.example:8080"],
      };
    case "string":
      assert.equal(s.pattern, undefined, `${s.key} has a pattern: give it a sample above`);
      return { text: "some/value", value: "some/value" };
  }
}

Deno.test("every setting is read from its flag and from its environment variable, the flag winning", () => {
  for (const s of SETTINGS) {
    const { text, value } = sample(s);
    assert.notDeepEqual(value, DEFAULTS[s.key], s.key);
    const fromEnv = configFromArgs([], (n) => n === s.env ? text : undefined);
    assert.deepEqual(fromEnv[s.key], value, `${s.env}=${text}`);
    // A switch takes its value only after `=`: `--reuse-port` alone is on.
    const flag = (v: string) => s.kind === "bool" ? [`--${s.flag}=${v}`] : [`--${s.flag}`, v];
    const fromFlag = configFromArgs(flag(text), () => undefined);
    assert.deepEqual(fromFlag[s.key], value, `--${s.flag} ${text}`);
    assert.deepEqual(configFromArgs([`--${s.flag}=${text}`], () => undefined)[s.key], value, `--${s.flag}=`);
    const other = String(DEFAULTS[s.key]);
    if (other !== "") {
      const both = configFromArgs(flag(other), (n) => n === s.env ? text : undefined);
      assert.deepEqual(both[s.key], DEFAULTS[s.key], `--${s.flag} over ${s.env}`);
    }
  }
});

Deno.test("a bad value of any setting stops with one sentence naming the setting, its variable and the value", () => {
  const bad: Record<string, string> = { int: "12x", bool: "maybe", choice: "nope", origins: "ftp://x" };
  for (const s of SETTINGS) {
    const text = s.kind === "string" ? (s.pattern ? "has space" : undefined) : bad[s.kind];
    if (text === undefined) continue; // a free string: any value is a value
    const fromFlag = () => configFromArgs([`--${s.flag}=${text}`], () => undefined);
    const fromEnv = () => configFromArgs([], (n) => n === s.env ? text : undefined);
    for (const read of [fromFlag, fromEnv]) {
      assert.throws(read, (e: Error) => {
        assert.equal(e.name, "ConfigError");
        assert.ok(e.message.startsWith(`--${s.flag} (${s.env}) `), e.message);
        assert.doesNotMatch(e.message, /\n/);
        if (s.kind === "string" && s.secret) {
          assert.doesNotMatch(e.message, /has space/, "a secret is not quoted");
        } else assert.ok(e.message.includes(JSON.stringify(text)), `${e.message} quotes ${text}`);
        return true;
      });
    }
  }
  assert.throws(() => configFromArgs(["--max-mentions", "1001"], () => undefined), {
    message: '--max-mentions (CHAT_MAX_MENTIONS) must be an integer from 0 to 1000, got "1001"',
  });
  assert.throws(() => configFromArgs([], (n) => n === "CHAT_NAME_HOLD" ? "-1" : undefined), {
    message: '--name-hold (CHAT_NAME_HOLD) must be an integer at least 0, got "-1"',
  });
});

Deno.test("settingsFor() gives a component its settings with durations in milliseconds under …Ms names", () => {
  const config = resolveConfig({ nameHoldSeconds: 5, retainDays: 2, idleTimeoutSeconds: 7 });
  const mine = settingsFor(config, ["nameHoldSeconds", "retainDays", "presenceDelayMs", "maxTextChars"]);
  assert.deepEqual(mine, {
    nameHoldMs: 5000,
    retainMs: 2 * 86_400_000,
    presenceDelayMs: 250,
    maxTextChars: 4000,
  });
  assert.ok(Object.isFrozen(mine));
  assert.equal(ms(config, "idleTimeoutSeconds"), 7000);
  assert.equal(ms(config, "dedupWindowSeconds"), 86_400_000);
  assert.equal(ms(config, "shutdownDrainMs"), 500);
  assert.equal(ms(DEFAULTS, "retainDays"), 30 * 86_400_000);
  // Every duration converts; nothing else does.
  const all = settingsFor(DEFAULTS, SETTINGS.map((s) => s.key)) as Record<string, unknown>;
  for (const s of SETTINGS) {
    const unit = s.kind === "int" ? s.unit : undefined;
    const factor = unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "days" ? 86_400_000 : undefined;
    if (factor === undefined) assert.deepEqual(all[s.key], DEFAULTS[s.key], s.key);
    else assert.equal(all[s.key.replace(/(Ms|Seconds|Days)$/, "Ms")], (s.default as number) * factor, s.key);
  }
});

Deno.test("helpText() shows each setting's default with its unit, by section", () => {
  const text = helpText();
  // A setting is its flag line, then its meaning, indented, up to the next flag.
  const entry = (flag: string) =>
    text.split(/\n(?= {2}-)/).find((e) => e.startsWith(`  --${flag} `) || e.startsWith(`  --${flag}[`))
      ?.replace(/\s+/g, " ") ?? "";
  assert.match(entry("name-hold"), /CHAT_NAME_HOLD seconds a name .* Default: 60 s\.$/);
  assert.match(entry("presence-ttl"), /Default: 15000 ms\.$/);
  assert.match(entry("retain-days"), /Default: 30 days\.$/);
  assert.match(entry("max-frame-bytes"), /Default: 65536 bytes\.$/);
  assert.match(entry("messages-per-second"), /Default: 10\/s\.$/);
  assert.match(entry("reuse-port"), /Default: off\./);
  assert.match(
    entry("store"),
    /sqlite \(durable\) or memory \(lost on restart\)\. Default: sqlite\.$/,
    "no Markdown",
  );
  assert.ok(text.indexOf("Server:") < text.indexOf("Signed identities:"));
  assert.ok(text.indexOf("Signed identities:") < text.indexOf("Limits:"));
});

Deno.test("helpText() says what each flag takes: a choice's values, a unit, a path", () => {
  const text = helpText();
  assert.match(text, /^Usage: deno task start \[options\]/);
  assert.match(text, /\n {2}--log debug\|info\|warn\|error +CHAT_LOG\n/);
  assert.match(text, /\n {2}--guests on\|off\|auto +CHAT_GUESTS\n/);
  assert.match(text, /\n {2}--idle-timeout <seconds> +CHAT_IDLE_TIMEOUT\n/);
  assert.match(text, /\n {2}--data-dir <path> +CHAT_DATA_DIR\n/);
  assert.match(text, /\n {2}--reuse-port\[=on\|off\] +CHAT_REUSE_PORT\n/);
  for (const line of text.split("\n")) assert.ok(line.length <= 100, `longer than 100 columns: ${line}`);
});

Deno.test("helpText() names the permission or Deno flag deno task start adds for a setting", () => {
  const text = helpText().replace(/\s+/g, " ");
  assert.match(
    text,
    /--data-dir <path> CHAT_DATA_DIR [^-]*Granted by deno task start: read and write access to it\./,
  );
  assert.match(
    text,
    /--jwt-public-key <path> CHAT_JWT_PUBLIC_KEY [^]*?Granted by deno task start: read access/,
  );
  assert.match(
    text,
    /--reuse-port\[=on\|off\] CHAT_REUSE_PORT .* When on, deno task start adds --unstable-net\./,
  );
});

Deno.test("the README's settings tables are exactly the ones generated from the settings table", () => {
  const readme = Deno.readTextFileSync(new URL("../../README.md", import.meta.url));
  for (const section of SECTION_ORDER) {
    const begin = `<!-- settings:${section}:begin -->`, end = `<!-- settings:${section}:end -->`;
    const block = readme.slice(readme.indexOf(begin) + begin.length, readme.indexOf(end));
    assert.ok(readme.includes(begin) && readme.includes(end), `README has the ${section} markers`);
    assert.equal(
      block,
      `\n\n${settingsMarkdown(section)}\n\n`,
      `README's ${section} table: run deno task settings-doc`,
    );
  }
  assert.equal(withSettingsTables(readme), readme);
  // The generator notices a change: a default edited in the README is rewritten back.
  const edited = readme.replace("| 15000 ms ", "| 16000 ms ");
  assert.notEqual(edited, readme);
  assert.equal(withSettingsTables(edited), readme);
});

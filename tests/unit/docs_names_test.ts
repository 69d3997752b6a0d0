/**
 * The docs (README.md, CHANGELOG.md, SECURITY.md, docs/*.md) speak the user's language: every `--flag`
 * they name is one a program really has, and prose never names the server's internals where a user needs
 * a flag.
 *
 * The rules, precisely:
 * - A `--flag` anywhere (code blocks too: they are commands to copy) is one of the server's (the settings
 *   table, `--help`, `--version`), one of `bench/run.ts`'s, one of the terminal client's (`terminal/args.ts`),
 *   or one of {@link FOREIGN}'s: another program's, listed by program. A misspelt or removed server flag
 *   fails here.
 * - Outside fenced code blocks (which may show code of the embedding API or log lines), no settings key
 *   written in camelCase (`nameHoldSeconds`), nor one with another unit (`presenceDelay`, `retainMs`) or
 *   cut to its leading words (`firstContacts`), is named: the flag is what a user can set (`--name-hold`).
 *   The `welcome.limits` fields are the protocol's own names and stay allowed.
 * - Outside fenced code blocks, no UPPER_SNAKE constant of the code (`CONVERSATIONS_PAGE`) is named; the
 *   settings' environment variables are not constants and stay allowed.
 * - No doc (bench/README.md too) points at a folder of one machine (`/work/…`, `/home/…`): a path is
 *   relative to the repository.
 */
import assert from "node:assert/strict";
import { TABLE } from "../../lib/settings.ts";
import { OPTIONS as TERMINAL_OPTIONS } from "../../terminal/args.ts";

const ROOT = new URL("../../", import.meta.url);

/** Other programs' flags the docs use, by program; a test keeps each entry used. */
const FOREIGN: Record<string, readonly string[]> = {
  deno: [
    "allow-env",
    "allow-net",
    "allow-read",
    "cached-only",
    "entrypoint",
    "filter",
    "frozen",
    "json",
    "unstable-net",
  ],
  systemctl: ["now"],
  curl: ["no-buffer"],
  node: ["experimental-websocket"],
  npx: ["yes"],
  "redis-server": ["appendonly"],
  "redis-cli": ["cluster", "cluster-replicas"],
};

type Spec = { flag: string; env: string };
const SETTINGS: Spec[] = Object.values(TABLE).flatMap((s) => Object.values(s) as Spec[]);

/** A camelCase name without its unit: `presenceDelay`, `presenceDelayMs`, `presenceDelaySeconds` meet. */
const stem = (name: string) => name.replace(/(Ms|Seconds|Days)$/, "");

async function docs(): Promise<{ path: string; text: string }[]> {
  const out = [];
  for (const path of ["README.md", "CHANGELOG.md", "SECURITY.md"]) {
    out.push({ path, text: await Deno.readTextFile(new URL(path, ROOT)) });
  }
  for await (const e of Deno.readDir(new URL("docs/", ROOT))) {
    if (e.isFile && e.name.endsWith(".md")) {
      out.push({ path: `docs/${e.name}`, text: await Deno.readTextFile(new URL(`docs/${e.name}`, ROOT)) });
    }
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** The lines of a Markdown text outside fenced code blocks, with their line numbers. */
function prose(text: string): { line: string; n: number }[] {
  let fenced = false;
  const out: { line: string; n: number }[] = [];
  text.split("\n").forEach((line, i) => {
    if (/^\s*```/.test(line)) fenced = !fenced;
    else if (!fenced) out.push({ line, n: i + 1 });
  });
  return out;
}

/** The option names of `bench/run.ts`'s `parseArgs`, read from its source. */
async function benchFlags(): Promise<string[]> {
  const src = await Deno.readTextFile(new URL("bench/run.ts", ROOT));
  const options = src.split(/parseArgs\(\{/)[1]?.split(/\n\s*\},\n/)[0];
  assert.ok(options, "bench/run.ts calls parseArgs({ options })");
  return [...options.matchAll(/^\s*"?([a-z][a-z0-9-]*)"?: \{ type:/gm)].map((m) => m[1]);
}

/** Every UPPER_SNAKE constant declared in lib/ and static/. */
async function constants(): Promise<Set<string>> {
  const names = new Set<string>();
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(new URL(dir, ROOT))) {
      if (e.isDirectory) await walk(`${dir}${e.name}/`);
      else if (/\.(ts|js)$/.test(e.name)) {
        const src = await Deno.readTextFile(new URL(`${dir}${e.name}`, ROOT));
        for (const m of src.matchAll(/\bconst ([A-Z][A-Z0-9]*_[A-Z0-9_]+)\b/g)) names.add(m[1]);
      }
    }
  };
  await walk("lib/");
  await walk("static/");
  await walk("terminal/");
  for (const s of SETTINGS) names.delete(s.env);
  return names;
}

Deno.test("docs: every --flag they name is the server's, the bench's, the terminal client's or a listed program's", async () => {
  const known = new Set([
    ...SETTINGS.map((s) => s.flag),
    "help",
    "version",
    ...await benchFlags(),
    ...Object.keys(TERMINAL_OPTIONS),
    ...Object.values(FOREIGN).flat(),
  ]);
  const unknown: string[] = [];
  const used = new Set<string>();
  for (const { path, text } of await docs()) {
    text.split("\n").forEach((line, i) => {
      for (const m of line.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)) {
        used.add(m[1]);
        if (!known.has(m[1])) unknown.push(`${path}:${i + 1}: --${m[1]}`);
      }
    });
  }
  assert.deepEqual(unknown, []);
  // An entry no doc uses any more only widens what passes unchecked.
  assert.deepEqual(
    Object.values(FOREIGN).flat().filter((f) => !used.has(f)),
    [],
    "FOREIGN entries no doc uses",
  );
});

Deno.test("docs: prose names a setting by its flag, never by its key in the code", async () => {
  const wire = new Set(
    [
      ...(await Deno.readTextFile(new URL("lib/server_messages.ts", ROOT)))
        .split(/interface WelcomeLimits \{/)[1].split("}")[0].matchAll(/(\w+):/g),
    ].map((m) => m[1]),
  );
  assert.ok(wire.has("historyPage"), "the welcome.limits fields were read from lib/server_messages.ts");
  // A field of `GET /ws/info`'s answer (lib/app.ts) that shares a setting's name.
  wire.add("signInUrl");
  const keys = new Map<string, string>();
  for (const section of Object.values(TABLE)) {
    for (const [key, spec] of Object.entries(section)) {
      if (/[A-Z]/.test(key)) keys.set(stem(key), `--${spec.flag}`);
    }
  }
  const found: string[] = [];
  for (const { path, text } of await docs()) {
    for (const { line, n } of prose(text)) {
      for (const m of line.matchAll(/\b[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+\b/g)) {
        // A key's leading words name it too (`firstContacts` for `firstContactsPerHour`).
        const flag = keys.get(stem(m[0])) ??
          [...keys].find(([k]) => k.startsWith(m[0]) && /[A-Z]/.test(k[m[0].length] ?? ""))?.[1];
        if (flag && !wire.has(m[0])) found.push(`${path}:${n}: ${m[0]} (say ${flag})`);
      }
    }
  }
  assert.deepEqual(found, []);
});

Deno.test("docs: prose names no constant of the code", async () => {
  const names = await constants();
  assert.ok(names.has("PROTOCOL_VERSION"), "the constants were read from lib/");
  const found: string[] = [];
  for (const { path, text } of await docs()) {
    for (const { line, n } of prose(text)) {
      for (const m of line.matchAll(/\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b/g)) {
        if (names.has(m[0])) found.push(`${path}:${n}: ${m[0]}`);
      }
    }
  }
  assert.deepEqual(found, []);
});

Deno.test("docs: no doc points at a path of one machine", async () => {
  const all = [...await docs(), {
    path: "bench/README.md",
    text: await Deno.readTextFile(new URL("bench/README.md", ROOT)),
  }];
  const found: string[] = [];
  for (const { path, text } of all) {
    text.split("\n").forEach((line, i) => {
      for (const m of line.matchAll(/(?<![\w.])\/(?:work|home|Users)\/[^\s`)]*/g)) {
        found.push(`${path}:${i + 1}: ${m[0]}`);
      }
    });
  }
  assert.deepEqual(found, []);
});

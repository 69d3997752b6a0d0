import assert from "node:assert/strict";
import { resolveConfig, SETTINGS } from "../../lib/config.ts";
import {
  denoRunFlags,
  ENV_READS,
  grantsFor,
  missingGrants,
  OWN_READS,
  shellWords,
} from "../../lib/permissions.ts";

Deno.test("grantsFor() grants the data directory the settings name, read and write, and nothing else", () => {
  const flags = denoRunFlags(grantsFor(resolveConfig({ dataDir: "/srv/chat" })));
  assert.deepEqual(flags, [
    "--allow-net",
    `--allow-read=${[...OWN_READS, "/srv/chat"].join(",")}`,
    "--allow-write=/srv/chat",
    "--allow-env=PORT,HOST,REDIS_*,CHAT_*",
  ]);
});

Deno.test("grantsFor() leaves out the data directory when nothing opens it (memory store, Redis)", () => {
  for (
    const config of [resolveConfig({ store: "memory" }), resolveConfig({ redisUrl: "redis://127.0.0.1:1" })]
  ) {
    const g = grantsFor(config);
    assert.deepEqual(g.write, []);
    assert.deepEqual(g.read, [...OWN_READS]);
    assert.ok(!denoRunFlags(g).some((f) => f.startsWith("--allow-write")));
  }
});

Deno.test("grantsFor() reads the key file and adds --unstable-net for --reuse-port", () => {
  const g = grantsFor(resolveConfig({ jwtPublicKey: "/etc/chat/jwt.pem", reusePort: true }), "/app/");
  assert.deepEqual(g.read, [...OWN_READS.map((p) => `/app/${p}`), "./data", "/etc/chat/jwt.pem"]);
  assert.deepEqual(g.flags, ["--unstable-net"]);
});

Deno.test("grantsFor() refuses a path with a comma, which Deno's lists cannot hold", () => {
  assert.throws(
    () => grantsFor(resolveConfig({ dataDir: "/srv/a,b" })),
    /--data-dir "\/srv\/a,b": a path with a comma/,
  );
});

Deno.test("ENV_READS covers every setting's environment variable", () => {
  const covers = (name: string) =>
    ENV_READS.some((p) => p.endsWith("*") ? name.startsWith(p.slice(0, -1)) : p === name);
  assert.deepEqual(SETTINGS.map((s) => s.env).filter((e) => !covers(e)), []);
});

Deno.test("missingGrants() names what is not granted, with the flag that named a path", () => {
  const g = grantsFor(resolveConfig({ dataDir: "/d", jwtPublicKey: "/k.pem" }));
  const none = missingGrants(g, () => "prompt");
  assert.deepEqual(none, [
    "network access",
    "access to the environment variables PORT, HOST, REDIS_*, CHAT_*",
    'read and write access to "/d" (--data-dir)',
    'read access to "/k.pem" (--jwt-public-key)',
  ]);
  const readOnly = missingGrants(g, (d) => d.name === "write" ? "prompt" : "granted");
  assert.deepEqual(readOnly, ['write access to "/d" (--data-dir)']);
  assert.deepEqual(missingGrants(g, () => "granted"), []);
});

Deno.test("shellWords() quotes only what a shell would change", () => {
  assert.equal(
    shellWords(["deno", "run", "--allow-env=PORT,REDIS_*", "main.ts", "--data-dir", "my data", "it's"]),
    `deno run '--allow-env=PORT,REDIS_*' main.ts --data-dir 'my data' 'it'\\''s'`,
  );
});

/** The project modules `lib/<file>` imports at run time (type-only imports load nothing), transitively. */
function runtimeImports(file: string, seen = new Set<string>()): Set<string> {
  const source = Deno.readTextFileSync(new URL(`../../lib/${file}`, import.meta.url));
  for (const [, dep] of source.matchAll(/^import (?!type )[^;]*?from "\.\/([^"]+)";/gms)) {
    if (!seen.has(dep)) seen.add(dep), runtimeImports(dep, seen);
  }
  return seen;
}

Deno.test("OWN_READS names the history writer and every module it loads, and deno.json's dev and compile tasks grant them", () => {
  // The writer is a Worker, loaded from its file after start-up: each module it imports is read then,
  // under the granted permissions, and must be in the compiled binary.
  const needed = ["store_writer.ts", ...runtimeImports("store_writer.ts")].map((f) => `lib/${f}`);
  assert.deepEqual(needed, ["lib/store_writer.ts", "lib/search_text.ts"]);
  for (const f of needed) assert.ok(OWN_READS.includes(f), `${f} is not in OWN_READS`);
  const tasks = JSON.parse(Deno.readTextFileSync(new URL("../../deno.json", import.meta.url))).tasks;
  const devReads = (tasks.dev as string).match(/--allow-read=(\S+)/)![1].split(",");
  const included = [...(tasks.compile as string).matchAll(/--include (\S+)/g)].map((m) => m[1]);
  for (const p of OWN_READS) {
    assert.ok(devReads.includes(p), `the dev task does not read ${p}`);
    assert.ok(included.includes(p), `the compile task does not include ${p}`);
  }
});

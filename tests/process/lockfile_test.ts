/**
 * What `deno task start` downloads. Deno installs every npm package of the lockfile it uses before it runs
 * anything (a task included), so `deno.lock` must hold only what the server imports; the test tools are
 * pinned in `tests/deno.lock`, which `deno task test` and `deno task check` use.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

interface Lock {
  specifiers: Record<string, string>;
  npm: Record<string, unknown>;
}

async function lock(path: string): Promise<Lock> {
  return JSON.parse(await Deno.readTextFile(new URL(path, ROOT)));
}

Deno.test("deno.lock holds only the npm packages main.ts imports (no test tools)", async () => {
  // Read before `deno info`, which rewrites a lockfile that disagrees with deno.json's imports.
  const locked = Object.keys((await lock("deno.lock")).npm).sort();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "main.ts"],
    cwd: ROOT.pathname,
    stdin: "null",
    stderr: "null",
    signal: AbortSignal.timeout(30_000),
  }).output();
  assert.equal(out.code, 0, "deno info main.ts");
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { npmPackage?: string }[];
    npmPackages: Record<string, { dependencies: string[] }>;
  };
  // `npmPackages` is the whole lockfile's snapshot: what main.ts uses is what its modules name, and
  // their dependencies.
  const used: string[] = [];
  const visit = (id: string) => {
    if (used.includes(id)) return;
    used.push(id);
    graph.npmPackages[id]?.dependencies.forEach(visit);
  };
  graph.modules.forEach((m) => m.npmPackage && visit(m.npmPackage));
  used.sort();
  assert.ok(used.length > 0, "the server uses npm packages");
  assert.deepEqual(
    locked,
    used,
    "deno.lock has packages the server does not use: a `deno check`/`deno test` of tests/ without " +
      "--lock=tests/deno.lock wrote them; `git checkout deno.lock` and use `deno task check`/`deno task test`",
  );
});

Deno.test("tests/deno.lock pins the server's packages as deno.lock does, and the test tools", async () => {
  const server = await lock("deno.lock"), tests = await lock("tests/deno.lock");
  for (const [spec, version] of Object.entries(server.specifiers)) {
    assert.equal(tests.specifiers[spec], version, spec);
  }
  for (const [pkg, entry] of Object.entries(server.npm)) assert.deepEqual(tests.npm[pkg], entry, pkg);
  assert.ok(Object.keys(tests.specifiers).some((s) => s.startsWith("npm:puppeteer-core@")));
});

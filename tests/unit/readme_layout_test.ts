/**
 * The README's Layout table matches the tree: every path it names exists, and every module of
 * `lib/` and every top-level folder is named by a row (its own, or a folder row ending in `/`).
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

/** The paths named in the first column of the README's Layout table. */
async function layoutPaths(): Promise<string[]> {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  const section = readme.split(/^## Layout$/m)[1]?.split(/^## /m)[0];
  assert.ok(section, "the README has a Layout section");
  const rows = section.split("\n").filter((l) => l.startsWith("| `"));
  return rows.flatMap((row) => [...row.split("|")[1].matchAll(/`([^`]+)`/g)].map((m) => m[1]));
}

/** Every file below `dir` (relative to the root), recursively. */
async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(new URL(dir, ROOT))) {
    const path = `${dir}${e.name}`;
    if (e.isDirectory) out.push(...await files(`${path}/`));
    else out.push(path);
  }
  return out;
}

Deno.test("README Layout: every path it names exists", async () => {
  const missing: string[] = [];
  for (const p of await layoutPaths()) {
    try {
      await Deno.stat(new URL(p, ROOT));
    } catch {
      missing.push(p);
    }
  }
  assert.deepEqual(missing, []);
});

Deno.test("README Layout: every module of lib/ and every top-level folder has a row", async () => {
  const named = await layoutPaths();
  const covered = (p: string) => named.some((n) => n === p || (n.endsWith("/") && p.startsWith(n)));
  const lib = (await files("lib/")).filter((p) => /\.(ts|lua)$/.test(p));
  const top: string[] = [];
  for await (const e of Deno.readDir(ROOT)) {
    if (e.isDirectory && !e.name.startsWith(".") && !["data", "dist", "node_modules"].includes(e.name)) {
      top.push(`${e.name}/`);
    }
  }
  assert.deepEqual(lib.filter((p) => !covered(p)).sort(), [], "lib/ modules without a row");
  assert.deepEqual(
    top.filter((p) => !named.some((n) => n.startsWith(p))).sort(),
    [],
    "folders without a row",
  );
});

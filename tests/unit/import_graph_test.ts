/**
 * The module graph of the server has no import cycle: `deno info --json main.ts` lists every module
 * with its imports (code and type), and a depth-first walk over the project's own modules finds none.
 * docs/architecture.md says how to run the same check by hand.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).href;

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier?: string }; type?: { specifier?: string } }[];
}

/** The project's modules reachable from `entry`, each with the project modules it imports. */
async function projectGraph(entry: string): Promise<Map<string, string[]>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: new URL(ROOT),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] };
  const graph = new Map<string, string[]>();
  for (const m of info.modules) {
    if (!m.specifier.startsWith(ROOT)) continue;
    const deps = (m.dependencies ?? []).flatMap((d) => [d.code?.specifier, d.type?.specifier])
      .filter((s): s is string => s !== undefined && s.startsWith(ROOT));
    graph.set(m.specifier.slice(ROOT.length), [...new Set(deps.map((s) => s.slice(ROOT.length)))]);
  }
  return graph;
}

/** Every cycle a depth-first walk meets, as the path that closes it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const found: string[][] = [];
  const visit = (u: string) => {
    state.set(u, "open");
    path.push(u);
    for (const v of graph.get(u) ?? []) {
      if (state.get(v) === "open") found.push([...path.slice(path.indexOf(v)), v]);
      else if (!state.has(v)) visit(v);
    }
    path.pop();
    state.set(u, "done");
  };
  for (const u of graph.keys()) if (!state.has(u)) visit(u);
  return found;
}

Deno.test("import graph: main.ts reaches no module of ours through an import cycle", async () => {
  const graph = await projectGraph("main.ts");
  assert.ok(graph.size > 10, `expected the server's modules, got ${[...graph.keys()].join(", ")}`);
  assert.ok(graph.has("lib/domain.ts"), "the domain module is part of the server");
  assert.deepEqual(cycles(graph).map((c) => c.join(" -> ")), []);
});

Deno.test("import graph: the cycle finder finds a cycle (so the test above can fail)", () => {
  const graph = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", []]]);
  assert.deepEqual(cycles(graph), [["a", "b", "c", "a"]]);
});

Deno.test("import graph: the domain module imports nothing of the server, only the rules it shares with the page", async () => {
  const graph = await projectGraph("lib/domain.ts");
  const imports = graph.get("lib/domain.ts") ?? [];
  assert.deepEqual(imports.filter((p) => !p.startsWith("static/shared/")), []);
});

/** `--version` prints the release `deno.json` names and exits before opening anything; `--help` lists it. */
import assert from "node:assert/strict";
import manifest from "../../deno.json" with { type: "json" };

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

Deno.test("main.ts --version prints `chat <deno.json version>` and exits 0", async () => {
  // Only read permission: --version must not listen, open the store or read the environment.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-read", MAIN, "--version"],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.equal(new TextDecoder().decode(out.stdout), `chat ${manifest.version}\n`);
});

Deno.test("main.ts --help lists --version", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-read", MAIN, "--help"],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(new TextDecoder().decode(out.stdout), /^ {2}-V, --version +print the release and exit$/m);
});

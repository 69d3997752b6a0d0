/**
 * What `deno task start` runs: reads the settings as the server will, and runs `main.ts` with exactly the
 * permissions they need (the data directory and key file they name, `--unstable-net` for `--reuse-port`;
 * `lib/permissions.ts`). A task's permissions are fixed in `deno.json`, so without this step any data
 * directory but `./data` needed a hand-written `deno run` line.
 *
 *     deno task start [options]        # deno task start --help lists them
 * @module
 */
import { ConfigError, configFromArgs } from "./lib/config.ts";
import { denoRunFlags, grantsFor } from "./lib/permissions.ts";

if (import.meta.main) {
  const args = Deno.args;
  let flags: string[] = [];
  // --help and --version need no permission, and print even when another option is wrong.
  if (!["--help", "-h", "--version", "-V"].some((a) => args.includes(a))) {
    try {
      flags = denoRunFlags(grantsFor(configFromArgs(args, (name) => Deno.env.get(name))));
    } catch (e) {
      if (!(e instanceof ConfigError) && !(e instanceof RangeError)) throw e;
      console.error(`chat: ${e.message}`);
      Deno.exit(1);
    }
  }
  // "deno" from PATH is the one program this may run (`--allow-run=deno`); npx puts the Deno it fetched
  // first on PATH.
  const child = new Deno.Command("deno", {
    args: ["run", ...flags, "main.ts", ...args],
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  // Signals sent to this process alone (`deno task` passes its own on, a supervisor sends one PID) reach
  // the server; copies of one Ctrl-C that also reach it through the process group are told apart there.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    Deno.addSignalListener(signal, () => {
      try {
        child.kill(signal);
      } catch { /* exited already */ }
    });
  }
  const status = await child.status;
  Deno.exit(status.code);
}

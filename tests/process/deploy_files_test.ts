/**
 * deploy/ checked as far as this machine allows: the systemd unit through `systemd-analyze verify`
 * (when installed) and against the settings table, the page's instance command and `deno task start`'s
 * permissions; the Dockerfile against the same, and its command started for real from the files it
 * copies, with its health check asked before and after a stop. No image is built (no Docker daemon).
 * @module
 */
import { denoRunFlags, grantsFor } from "../../lib/permissions.ts";
import assert from "node:assert/strict";
import { configFromArgs, DEFAULTS, SETTINGS } from "../../lib/config.ts";
import { docSnippet } from "../helpers/cluster.ts";

const ROOT = new URL("../../", import.meta.url);
const UNIT = new URL("deploy/chat@.service", ROOT);
const DOCKERFILE = new URL("deploy/Dockerfile", ROOT);

/** A unit file's `key=value` lines by section, in order (keys repeat: Environment=, ...). */
function parseUnit(text: string): Map<string, [string, string][]> {
  const sections = new Map<string, [string, string][]>();
  let section: [string, string][] | undefined;
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const head = /^\[(\w+)\]$/.exec(line);
    if (head) {
      section = [];
      sections.set(head[1], section);
      continue;
    }
    const kv = /^(\w+)=(.*)$/.exec(line);
    if (!kv || !section) {
      throw new Error(`deploy/chat@.service:${i + 1}: not a key=value in a section: ${raw}`);
    }
    section.push([kv[1], kv[2]]);
  }
  return sections;
}

/** The one value of `key` in `[Service]`. */
function serviceValue(unit: Map<string, [string, string][]>, key: string): string {
  const values = (unit.get("Service") ?? []).filter(([k]) => k === key).map(([, v]) => v);
  assert.equal(values.length, 1, `deploy/chat@.service sets ${key} once`);
  return values[0];
}

/**
 * A `deno run ... main.ts <args>` command split at main.ts: its deno flags must be exactly the
 * permissions `deno task start` grants for those settings (`lib/permissions.ts`, as `start.ts` does)
 * plus `--cached-only` (never fetch code at start), and its args must be settings.
 */
function checkRunCommand(
  words: string[],
  where: string,
  env: (name: string) => string | undefined,
): string[] {
  assert.equal(words[0], "run", `${where} runs deno run`);
  const main = words.indexOf("main.ts");
  assert.ok(main > 0, `${where} runs main.ts`);
  const denoFlags = words.slice(1, main);
  const args = words.slice(main + 1);
  const config = configFromArgs(args.map((a) => a.replace("%i", "8001")), env);
  assert.deepEqual(
    denoFlags.filter((f) => f !== "--cached-only"),
    denoRunFlags(grantsFor(config)),
    `${where}: the permissions deno task start grants for these settings`,
  );
  assert.ok(denoFlags.includes("--cached-only"), `${where} never fetches code at start (--cached-only)`);
  return args;
}

Deno.test("deploy/chat@.service: systemd-analyze verify has nothing to say about it", async (t) => {
  const analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
  if (!analyze) {
    console.log("systemd-analyze is not installed: the unit is checked by the other tests only");
    return;
  }
  const dir = await Deno.makeTempDir();
  try {
    // verify checks that ExecStart's program exists: point it at this machine's deno.
    const text = (await Deno.readTextFile(UNIT)).replace("/usr/bin/deno", Deno.execPath());
    for (const name of ["chat@.service", "chat@8001.service"]) {
      await t.step(name, async () => {
        await Deno.writeTextFile(`${dir}/${name}`, text);
        const out = await new Deno.Command(analyze, {
          args: ["verify", `${dir}/${name}`],
          stdout: "piped",
          stderr: "piped",
          signal: AbortSignal.timeout(20_000),
        }).output();
        // verify exits 0 on an unknown key or a value it cannot parse: it only says so.
        const said = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 0, said);
        assert.equal(said, "");
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deploy/chat@.service: runs the page's instance command with the permissions deno task start grants it, hardened", () => {
  const unit = parseUnit(Deno.readTextFileSync(UNIT));
  const exec = serviceValue(unit, "ExecStart").split(/\s+/);
  assert.match(exec[0], /^\/.*\/deno$/, "ExecStart names deno by its absolute path");
  const unitEnv = new Map(
    (unit.get("Service") ?? []).filter(([k]) => k === "Environment").map(([, v]) => {
      const [name, ...value] = v.split("=");
      return [name, value.join("=")] as [string, string];
    }),
  );
  const args = checkRunCommand(exec.slice(1), "ExecStart", (n) => unitEnv.get(n));

  // The instance command of docs/deploy.md, its port the unit's instance name (chat@8001).
  const page = docSnippet("instance").trim().split(/\s+/).slice(3);
  page[page.indexOf("--port") + 1] = "%i";
  assert.deepEqual(args, page, "ExecStart runs docs/deploy.md's instance command");
  const env = new Map(
    (unit.get("Service") ?? []).filter(([k]) => k === "Environment").map(([, v]) => {
      const [name, ...value] = v.split("=");
      return [name, value.join("=")] as [string, string];
    }),
  );
  const settingEnv = new Set(SETTINGS.map((s) => s.env));
  for (const name of env.keys()) {
    assert.ok(
      name.startsWith("DENO_") || settingEnv.has(name),
      `Environment=${name} is a setting's variable`,
    );
  }
  // Every flag exists and every value is valid: the server would start with them.
  const config = configFromArgs(args.map((a) => a.replace("%i", "8001")), (n) => env.get(n));
  assert.equal(config.port, 8001);

  assert.equal(serviceValue(unit, "NoNewPrivileges"), "yes");
  assert.equal(serviceValue(unit, "ProtectSystem"), "strict");
  assert.equal(serviceValue(unit, "ProtectHome"), "yes");
  assert.equal(serviceValue(unit, "CapabilityBoundingSet"), "");
  assert.notEqual(serviceValue(unit, "User"), "root");
  const files = Number(serviceValue(unit, "LimitNOFILE"));
  assert.ok(files > config.maxConnections + 100, `LimitNOFILE=${files} leaves room past --max-connections`);
  // --allow-write=data is relative to the working directory; ProtectSystem=strict must let it write there.
  const cwd = serviceValue(unit, "WorkingDirectory");
  assert.equal(serviceValue(unit, "ReadWritePaths"), `${cwd}/data`);
  // systemd must wait out the graceful stop before it kills.
  const stopSeconds = Number(/^(\d+)s$/.exec(serviceValue(unit, "TimeoutStopSec"))?.[1]);
  assert.ok(stopSeconds * 1000 > DEFAULTS.shutdownTimeoutMs, `TimeoutStopSec=${stopSeconds}s`);
  assert.equal(serviceValue(unit, "KillSignal"), "SIGTERM");
});

/** The Dockerfile's instructions, continuation lines joined. */
function dockerInstructions(): { op: string; arg: string }[] {
  const text = Deno.readTextFileSync(DOCKERFILE).replace(/\\\n/g, " ");
  return text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#")).map((l) => {
    const [op, ...rest] = l.split(/\s+/);
    return { op: op.toUpperCase(), arg: rest.join(" ") };
  });
}

function dockerfile() {
  const ins = dockerInstructions();
  const one = (op: string) => {
    const all = ins.filter((i) => i.op === op);
    assert.equal(all.length, 1, `deploy/Dockerfile has one ${op}`);
    return all[0].arg;
  };
  const cmd: string[] = JSON.parse(one("CMD"));
  const health = /^(?:--\S+\s+)*CMD\s+(\[.*\])$/.exec(one("HEALTHCHECK"));
  assert.ok(health, "HEALTHCHECK runs a command in exec form");
  const copied = ins.filter((i) => i.op === "COPY").flatMap((i) => i.arg.split(/\s+/).slice(0, -1));
  return { ins, from: one("FROM"), cmd, health: JSON.parse(health[1]) as string[], copied, one };
}

Deno.test("deploy/Dockerfile: the official Deno image of this Deno, a non-root user, the permissions deno task start grants, a health check on /healthz", () => {
  const d = dockerfile();
  assert.equal(d.from, `denoland/deno:${Deno.version.deno}`);
  // The last USER before CMD is the one the server runs as.
  const users = d.ins.filter((i) => i.op === "USER").map((i) => i.arg);
  assert.ok(users.length > 0 && !["root", "0"].includes(users.at(-1)!), `runs as ${users.at(-1)}`);
  const args = checkRunCommand(d.cmd, "CMD", () => undefined);
  configFromArgs(args, () => undefined);
  assert.deepEqual(d.health.slice(0, 2), ["deno", "eval"]);
  assert.match(d.health[2], /\/healthz`/);
  assert.match(d.health[2], /Deno\.env\.get\('PORT'\) \?\? 8000/);
  assert.equal(d.one("EXPOSE"), String(DEFAULTS.port));
  for (const path of d.copied) Deno.statSync(new URL(path, ROOT));
});

/** A port nothing listens on now. */
function freePort(): number {
  using probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return probe.addr.port;
}

Deno.test("deploy/Dockerfile: its command serves from the files it copies, and its health check follows the server", async () => {
  const d = dockerfile();
  const app = await Deno.makeTempDir({ prefix: "chat-image-" });
  const port = freePort();
  const env = { PORT: String(port), HOST: "127.0.0.1" };
  // What `docker build` would put in /app: the COPY lines, and the RUN's data directory.
  for (const path of d.copied) {
    const to = `${app}/${path}`;
    if (path.endsWith("/")) {
      await new Deno.Command("cp", { args: ["-r", new URL(path, ROOT).pathname, to] }).output();
    } else await Deno.copyFile(new URL(path, ROOT), to);
  }
  await Deno.mkdir(`${app}/data`);
  const healthy = async () =>
    (await new Deno.Command(Deno.execPath(), {
      args: d.health.slice(1),
      env,
      stdout: "null",
      stderr: "null",
      signal: AbortSignal.timeout(10_000),
    }).output()).code;
  // The image's entrypoint runs `deno <CMD>`; the cache here stands in for the image's DENO_DIR.
  const server = new Deno.Command(Deno.execPath(), {
    args: d.cmd,
    cwd: app,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = Promise.all([server.stdout.text(), server.stderr.text()]).then((o) => o.join(""));
  try {
    const end = Date.now() + 20_000;
    while ((await healthy()) !== 0) {
      assert.ok(Date.now() < end, "the health check never passed");
      await new Promise((r) => setTimeout(r, 200));
    }
    server.kill("SIGTERM");
    assert.equal((await server.status).code, 0, "SIGTERM stops it cleanly");
    assert.equal(await healthy(), 1, "the health check fails once the server is gone");
    assert.match(
      await out,
      new RegExp(`listening on http://127\\.0\\.0\\.1:${port}/ .*store: sqlite in \\./data`),
    );
  } catch (e) {
    console.log(await Promise.race([out, Promise.resolve("(still running)")]));
    throw e;
  } finally {
    try {
      server.kill("SIGKILL");
    } catch { /* exited */ }
    await server.status;
    await out;
    await Deno.remove(app, { recursive: true });
  }
});

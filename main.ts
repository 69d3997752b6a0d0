/**
 * Entry point: the only place that reads flags and the environment, listens and handles signals.
 * `deno task start` runs it through `start.ts`, which grants it the permissions its settings need.
 *
 *     deno task start [--port 8000] [--hostname 0.0.0.0] [--data-dir ./data] [--help] [--version]
 * @module
 */
import { createApp } from "./lib/app.ts";
import { type Config, ConfigError, configFromArgs, ms } from "./lib/config.ts";
import { UnavailableError } from "./lib/engine.ts";
import { redactUrl } from "./lib/engine_redis.ts";
import { createLogger } from "./lib/log.ts";
import {
  denoRunFlags,
  ENV_READS,
  grantsFor,
  missingGrants,
  OWN_READS,
  shellWords,
} from "./lib/permissions.ts";
import { listen, ListenError } from "./lib/server.ts";
import { helpText } from "./lib/settings_doc.ts";
import { StoreError } from "./lib/store.ts";
import { RELEASE } from "./lib/version.ts";

if (import.meta.main) {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log(helpText());
    Deno.exit(0);
  }
  if (Deno.args.includes("--version") || Deno.args.includes("-V")) {
    console.log(`chat ${RELEASE}`);
    Deno.exit(0);
  }
  let config;
  try {
    // Asked first, so that a missing permission is one message below, not a prompt per variable.
    const env = (name: string) =>
      Deno.permissions.querySync({ name: "env", variable: name }).state === "granted"
        ? Deno.env.get(name)
        : undefined;
    config = configFromArgs(Deno.args, env);
    const missing = missingGrants(grantsFor(config));
    if (missing.length > 0) {
      console.error(`chat: ${notGranted(missing.join(", "), config)}`);
      Deno.exit(1);
    }
  } catch (e) {
    if (!(e instanceof ConfigError) && !(e instanceof RangeError)) throw e;
    console.error(`chat: ${e.message}`);
    Deno.exit(1);
  }
  const log = createLogger(config.logLevel);
  // A stray rejection or error must not take every conversation down with it.
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    // Deno's receive loop of one socket failed on a message too large to hold as a string; which
    // socket is not said. It leaves its rooms when the idle timeout closes it.
    if (/failed to allocate string/.test(String(e.reason))) {
      return log.warn("a client sent a message too large to hold; its connection ends at the idle timeout", {
        idleTimeoutSeconds: config.idleTimeoutSeconds,
      });
    }
    log.error("unhandled rejection", { error: String(e.reason?.stack ?? e.reason) });
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    log.error("uncaught error", { error: String(e.error?.stack ?? e.message) });
  });

  // Signal listeners come first: a stop signal during start-up ends the start-up, not the process
  // with the signal's default action (143) while the history writer may be half-started.
  const stopper: { stop?: (code: number) => void; early?: boolean; since?: number } = {};
  const onSignal = (signal: Deno.Signal) => () => {
    const now = performance.now();
    if (stopper.since === undefined) {
      stopper.since = now;
      console.log(signal === "SIGINT" ? "chat: stopping; Ctrl-C again exits at once" : "chat: stopping");
      return stopper.stop ? stopper.stop(0) : (stopper.early = true);
    }
    // One Ctrl-C can arrive several times: the terminal signals the whole process group, and `deno task`
    // and `start.ts` pass it on to their child as well, within milliseconds. A person's second one
    // comes later.
    if (signal === "SIGINT" && now - stopper.since > REPEATED_CTRL_C_MS) {
      console.log("chat: exiting at once (second Ctrl-C); messages not yet acked may be lost");
      Deno.exit(130);
    }
  };
  Deno.addSignalListener("SIGINT", onSignal("SIGINT"));
  Deno.addSignalListener("SIGTERM", onSignal("SIGTERM"));

  let app;
  try {
    app = await createApp(config, { log });
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) {
      console.error(`chat: ${notGranted(e.message.replace(/, run again with .*$/s, ""), config)}`);
      Deno.exit(1);
    }
    if (!(e instanceof StoreError) && !(e instanceof UnavailableError) && !(e instanceof ConfigError)) {
      throw e;
    }
    console.error(`chat: ${e.message}`);
    Deno.exit(1);
  }
  let server;
  try {
    server = listen(app.handler, {
      port: config.port,
      hostname: config.hostname,
      relistenTimeoutMs: ms(config, "relistenTimeoutSeconds"),
      tcpBacklog: config.tcpBacklog,
      reusePort: config.reusePort,
      log,
      onRelisten: () => app.metrics.listenerRestarts++,
    });
  } catch (e) {
    if (!(e instanceof ListenError)) throw e;
    console.error(`chat: ${e.message}`);
    await app.shutdown();
    Deno.exit(1);
  }
  console.log(banner(config, server.addr));

  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    log.info("stopping");
    const deadline = setTimeout(
      () => Deno.exit(code),
      Math.max(config.shutdownTimeoutMs, config.shutdownDrainMs) + 1000,
    );
    // New upgrades and /healthz get 503 while clients are told to go and pending writes finish, and
    // for at least the drain time: a balancer or a reconnecting client hears "shutting down", not a
    // refused connection.
    const drained = new Promise((r) => setTimeout(r, config.shutdownDrainMs));
    await app.shutdown();
    await drained;
    await server.stop();
    clearTimeout(deadline);
    Deno.exit(code);
  };
  server.failed.then((e) => {
    console.error(`chat: ${e.message}`);
    stop(1);
  });
  stopper.stop = stop;
  if (stopper.early) stop(0);
}

/** Copies of one Ctrl-C arrive within this; a later SIGINT is a person's second Ctrl-C. */
const REPEATED_CTRL_C_MS = 250;

/** What to run instead, when Deno has not granted `what`: the command that grants exactly the settings' needs. */
function notGranted(what: string, config: Config): string {
  const grants = grantsFor(config);
  if (Deno.build.standalone) {
    return `this binary was not compiled with ${what}. Compile it with ${
      shellWords(["deno", "compile", ...denoRunFlags({ ...grants, read: grants.named.map((n) => n.path) })])
    } --include static --include lib/store_writer.ts --include lib/redis/lua --output dist/chat main.ts`;
  }
  return `Deno has not granted ${what}. Start it with\n\n    ${
    shellWords(["deno", "task", "start", ...Deno.args])
  }\n\nwhich grants exactly what these settings need; or, from the project folder,\n\n    ${
    shellWords(["deno", "run", ...denoRunFlags(grants), "main.ts", ...Deno.args])
  }\n\n(${OWN_READS.join(", ")}: the page, the history writer and the Redis scripts; ${
    ENV_READS.join(", ")
  }: the settings' variables)`;
}

/** The start-up line: where to open the page, what it listens on and where history goes. */
function banner(config: { store: string; dataDir: string; redisUrl: string }, addr: Deno.NetAddr): string {
  const any = addr.hostname === "0.0.0.0" || addr.hostname === "::";
  const shown = any ? "localhost" : addr.hostname;
  const host = shown.includes(":") ? `[${shown}]` : shown;
  const bound = addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
  const iface = any ? " (every interface)" : "";
  const store = config.redisUrl
    ? `redis at ${redactUrl(config.redisUrl)}`
    : config.store === "sqlite"
    ? `sqlite in ${config.dataDir}`
    : "memory (lost on restart)";
  return `chat: listening on http://${host}:${addr.port}/ (bound to ${bound}${iface}; store: ${store})`;
}

/**
 * Entry point: the only place that reads flags and the environment, listens and handles signals.
 *
 *     deno task start [--port 8000] [--hostname 0.0.0.0] [--help] [--version]
 * @module
 */
import { createApp } from "./lib/app.ts";
import { ConfigError, configFromArgs, ms } from "./lib/config.ts";
import { UnavailableError } from "./lib/engine.ts";
import { redactUrl } from "./lib/engine_redis.ts";
import { createLogger } from "./lib/log.ts";
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
    config = configFromArgs(Deno.args, (name) => Deno.env.get(name));
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
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
  const stopper: { stop?: (code: number) => void; early?: boolean } = {};
  const onSignal = () => stopper.stop ? stopper.stop(0) : (stopper.early = true);
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  let app;
  try {
    app = await createApp(config, { log });
  } catch (e) {
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

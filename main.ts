/**
 * Entry point: the only place that reads flags and the environment and calls `Deno.serve`.
 *
 *     deno task start [--port 8000] [--hostname 0.0.0.0] [--help]
 * @module
 */
import { createApp } from "./lib/app.ts";
import { ConfigError, configFromArgs, helpText } from "./lib/config.ts";
import { createLogger } from "./lib/log.ts";
import { StoreError } from "./lib/store.ts";

if (import.meta.main) {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log(helpText());
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
    log.error("unhandled rejection", { error: String(e.reason?.stack ?? e.reason) });
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    log.error("uncaught error", { error: String(e.error?.stack ?? e.message) });
  });

  let app;
  try {
    app = await createApp(config, { log });
  } catch (e) {
    if (!(e instanceof StoreError)) throw e;
    console.error(`chat: ${e.message}`);
    Deno.exit(1);
  }
  const stop = new AbortController();
  const server = Deno.serve({
    port: config.port,
    hostname: config.hostname,
    signal: stop.signal,
    onListen({ hostname, port }) {
      const shown = hostname === "0.0.0.0" || hostname === "::" ? "localhost" : hostname;
      const host = shown.includes(":") ? `[${shown}]` : shown;
      console.log(
        `chat: listening on http://${host}:${port}/ (store: ${config.store}, data: ${config.dataDir})`,
      );
    },
    onError(e) {
      log.error("request failed", { error: String((e as Error)?.stack ?? e) });
      return new Response("Internal server error\n", { status: 500 });
    },
  }, app.handler);

  let stopping = false;
  const onSignal = async () => {
    if (stopping) return;
    stopping = true;
    log.info("stopping");
    await app.shutdown();
    stop.abort();
    const deadline = setTimeout(() => Deno.exit(0), config.shutdownTimeoutMs);
    await server.finished;
    clearTimeout(deadline);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
}

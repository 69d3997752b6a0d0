/**
 * The listener: runs `Deno.serve` for an app and keeps a listener on the port through accept errors.
 *
 * When `accept` fails (most often "Too many open files"), Deno 2.9.6 rejects the server's `finished`
 * promise and nothing listens on the port any more, while every connection already accepted (upgraded
 * WebSockets included) keeps working. So the listener is opened again on the same port, with backoff,
 * until descriptors are free; if that does not succeed within `relistenTimeoutMs`, `failed` settles with
 * a {@link ListenError} and the caller exits, so a supervisor can restart the process.
 * @module
 */
import type { Logger } from "./log.ts";

/** What {@link listen} needs. */
export interface ListenOptions {
  port: number;
  hostname: string;
  /** How long to keep trying to listen again after the listener failed. */
  relistenTimeoutMs: number;
  /** Connections the kernel queues for accept. @default Deno's (511) */
  tcpBacklog?: number;
  /** SO_REUSEPORT: other processes may listen on the same port. */
  reusePort?: boolean;
  log: Logger;
  /** Called after each successful (re)listen. */
  onRelisten?: () => void;
}

/** Listening failed for good; the message is one sentence for the operator. */
export class ListenError extends Error {
  override name = "ListenError";
}

/** A listening server. */
export interface Listening {
  /** The address actually bound (the real port when 0 was asked for). */
  readonly addr: Deno.NetAddr;
  /** Times the listener had to be opened again. */
  readonly restarts: number;
  /** Settles with a {@link ListenError} if the listener failed and could not be restored. */
  readonly failed: Promise<ListenError>;
  /** Stops listening and closes every connection the listener accepted. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const RETRY_FIRST_MS = 20;
const RETRY_MAX_MS = 1000;

/**
 * Starts serving `handler`. Throws a {@link ListenError} with one sentence when the address cannot be
 * bound at all (port in use, no such address, no permission).
 */
export function listen(
  handler: Deno.ServeHandler<Deno.NetAddr>,
  opts: ListenOptions,
): Listening {
  const { log } = opts;
  const stopped = new AbortController();
  const servers = new Set<Deno.HttpServer<Deno.NetAddr>>();
  let reportFailure: (e: ListenError) => void = () => {};
  const failed = new Promise<ListenError>((resolve) => reportFailure = resolve);
  let restarts = 0;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;

  const open = (port: number): Deno.HttpServer<Deno.NetAddr> => {
    const server = Deno.serve({
      port,
      hostname: opts.hostname,
      tcpBacklog: opts.tcpBacklog,
      reusePort: opts.reusePort,
      signal: stopped.signal,
      onListen() {},
      onError(e) {
        log.error("request failed", { error: String((e as Error)?.stack ?? e) });
        return new Response("Internal server error\n", { status: 500 });
      },
    }, handler);
    servers.add(server);
    server.finished.then(
      () => servers.delete(server),
      (e) => {
        // The old server's connections stay with it; only its listener is gone.
        if (stopped.signal.aborted) return;
        log.error("listener failed; listening again", { error: String((e as Error)?.message ?? e) });
        relisten(Date.now() + opts.relistenTimeoutMs, RETRY_FIRST_MS);
      },
    );
    return server;
  };

  const relisten = (deadline: number, delay: number) => {
    if (stopped.signal.aborted) return;
    try {
      open(addr.port);
      restarts++;
      log.warn("listening again", { port: addr.port, restarts });
      opts.onRelisten?.();
    } catch (e) {
      if (Date.now() >= deadline) {
        return reportFailure(
          new ListenError(
            `cannot listen on ${where(addr)} again after ${opts.relistenTimeoutMs} ms: ${
              (e as Error).message
            }`,
          ),
        );
      }
      retryTimer = setTimeout(() => relisten(deadline, Math.min(delay * 2, RETRY_MAX_MS)), delay);
    }
  };

  // Deno 2.9 ends the process (no exception) when reusePort is asked for without --unstable-net.
  if (opts.reusePort && typeof (Deno as { listenDatagram?: unknown }).listenDatagram !== "function") {
    throw new ListenError(
      "--reuse-port needs Deno's --unstable-net flag (SO_REUSEPORT is unstable in Deno 2.9): " +
        "deno run --unstable-net ... main.ts --reuse-port",
    );
  }
  let first: Deno.HttpServer<Deno.NetAddr>;
  try {
    first = open(opts.port);
  } catch (e) {
    throw listenError(e, opts);
  }
  const addr = first.addr;

  let stopping: Promise<void> | undefined;
  const stop = () =>
    stopping ??= (async () => {
      clearTimeout(retryTimer);
      stopped.abort();
      reportFailure = () => {};
      await Promise.allSettled([...servers].map((s) => s.finished));
    })();
  return {
    addr,
    get restarts() {
      return restarts;
    },
    failed,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

function listenError(e: unknown, opts: ListenOptions): ListenError | unknown {
  const at = where({ hostname: opts.hostname, port: opts.port });
  if (e instanceof Deno.errors.AddrInUse) {
    return new ListenError(`port ${opts.port} is in use on ${opts.hostname}; pick another with --port`);
  }
  if (e instanceof Deno.errors.AddrNotAvailable) {
    return new ListenError(`cannot listen on ${at}: no such address here; check --hostname`);
  }
  if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
    return new ListenError(`not allowed to listen on ${at}: ${(e as Error).message}`);
  }
  if (e instanceof Error) return new ListenError(`cannot listen on ${at}: ${e.message}`);
  return e;
}

function where(a: { hostname: string; port: number }): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

/**
 * The connection: one WebSocket at a time, opened with the guest's name and token or with a signed
 * token (an `auth` frame), reconnected with exponential backoff and jitter, pinged when quiet, its
 * signed token refreshed before it expires, and a token bucket a little under the server's. It splits
 * frames into lines and hands each to the client; what a line means is not its business.
 *
 * Where a WebSocket cannot be opened (a proxy that strips `Upgrade`), it falls back by itself to the
 * fallback transport (`sse.js`: Server-Sent Events down, POST up) and tries the WebSocket again now
 * and then; `transport` says which one it uses.
 * @module
 */
import { SseSocket } from "./sse.js";

/** @typedef {import("./types.js").BackoffOptions} BackoffOptions */
/** @typedef {import("./types.js").ConnState} ConnState */
/** @typedef {import("./types.js").Limits} Limits */

/**
 * Splits one server frame into its messages (one JSON object per line). Lines that do not parse
 * as a JSON object are skipped.
 * @param {string} data
 * @returns {Record<string, any>[]}
 */
export function parseFrame(data) {
  /** @type {Record<string, any>[]} */
  const out = [];
  for (const line of data.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const v = JSON.parse(line);
      if (v && typeof v === "object" && !Array.isArray(v)) out.push(v);
    } catch { /* not JSON: ignore the line, keep the others */ }
  }
  return out;
}

/**
 * The delay before reconnect attempt `attempt` (0-based): exponential, capped, with "equal jitter"
 * (half fixed, half random) so that clients of a restarted server do not all come back at once.
 * @param {number} attempt
 * @param {BackoffOptions} opts
 * @param {() => number} [random]
 */
export function backoffDelay(attempt, opts, random = Math.random) {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * ceiling / 2);
}

/**
 * The fallback transport's address for a WebSocket endpoint: `ws://host/ws` is `http://host/ws/sse`.
 * @param {string} wsUrl
 */
export function sseUrl(wsUrl) {
  return besideWs(wsUrl, "sse");
}

/**
 * An HTTP address below a WebSocket endpoint: `ws://host/ws` and `info` give `http://host/ws/info`.
 * @param {string} wsUrl
 * @param {string} name
 */
function besideWs(wsUrl, name) {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === "wss:" ? "https:" : "http:";
  u.pathname = `${u.pathname.replace(/\/$/, "")}/${name}`;
  u.search = "";
  return u.toString();
}

/**
 * @typedef {object} ConnectionHooks What the connection tells the client, and asks it.
 * @property {(m: Record<string, any>) => void} line each line of each frame, in order
 * @property {() => void} closed the socket closed: what belonged to it is over (before a reconnect)
 * @property {(state: ConnState) => void} state the state changed (or, reconnecting, its retry time)
 * @property {(message: string) => void} noToken `getToken` failed
 * @property {() => { name?: string, display?: string, token?: string }} guest the guest identity to connect with
 * @property {() => Limits} limits the server's limits, for the token bucket
 */

/** One WebSocket at a time, and what keeps it up. */
export class Connection {
  /**
   * @param {import("./types.js").ChatClientOptions} opts
   * @param {ConnectionHooks} hooks
   */
  constructor(opts, hooks) {
    this.#url = opts.url;
    this.#backoff = { baseMs: 500, maxMs: 30_000, ...opts.backoff };
    this.#random = opts.random ?? Math.random;
    this.#pingIntervalMs = opts.pingIntervalMs ?? 25_000;
    this.#pongTimeoutMs = opts.pongTimeoutMs ?? 10_000;
    this.#stableMs = opts.stableMs ?? 5000;
    this.#WebSocket = opts.WebSocket ?? globalThis.WebSocket;
    this.#trace = opts.trace;
    this.#getToken = opts.getToken;
    this.#refreshBeforeMs = opts.refreshBeforeMs ?? 30_000;
    this.#mode = opts.transport ?? "auto";
    this.#fallbackAfter = opts.fallbackAfter ?? 2;
    this.#websocketRetryMs = opts.websocketRetryMs ?? 60_000;
    this.#fetch = opts.fetch ??
      (typeof globalThis.fetch === "function" ? globalThis.fetch.bind(globalThis) : undefined);
    this.#hooks = hooks;
    if (this.#mode === "sse") this.transport = "sse";
  }

  /** @type {ConnState} */
  state = "offline";
  /** When the next reconnect attempt starts (ms since epoch), 0 when none is waiting. */
  retryAt = 0;
  /** Counters, for tests and diagnostics. */
  stats = { frames: 0, lines: 0, connects: 0 };
  /** Signed identities: when the token expires (ms), from `welcome`/`authed`. */
  exp = 0;
  /** @type {WebSocket | SseSocket | undefined} */
  ws = undefined;
  /** @type {"websocket" | "sse"} the transport of the current (or last) connection */
  transport = "websocket";

  #url;
  #backoff;
  #random;
  #pingIntervalMs;
  #pongTimeoutMs;
  #stableMs;
  #WebSocket;
  #trace;
  #getToken;
  #refreshBeforeMs;
  #hooks;
  /** @type {"auto" | "websocket" | "sse"} */
  #mode;
  #fallbackAfter;
  #websocketRetryMs;
  /** @type {typeof fetch | undefined} */
  #fetch;
  /** WebSockets in a row that closed before they opened: past `fallbackAfter`, the fallback is used. */
  #wsFailures = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #probeTimer;
  /** @type {WebSocket | undefined} */
  #probe;
  #welcomed = false;
  #stopped = true;
  #attempt = 0;
  #liveSince = 0;
  #lastInbound = 0;
  #tokens = 0;
  #tokensAt = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #retryTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #pingTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #refreshTimer;
  /** Counts connects, so a token that arrives after its connect was given up is not used. */
  #connectSeq = 0;
  /** @type {(() => void) | undefined} */
  #onClosed;

  /** Whether the socket is open and the server's `welcome` came on it. */
  get welcomed() {
    return this.#welcomed;
  }

  /** Whether {@link stop} was called (and no {@link start} since). */
  get stopped() {
    return this.#stopped;
  }

  /** Connects (and keeps reconnecting until {@link stop}). */
  start() {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#attempt = 0;
    this.#connect();
  }

  /**
   * Closes the socket and stops reconnecting.
   * @returns {Promise<void>} resolves once the socket has closed
   */
  stop() {
    this.#stopped = true;
    for (const t of [this.#retryTimer, this.#pingTimer, this.#refreshTimer]) clearTimeout(t);
    this.#retryTimer = this.#pingTimer = this.#refreshTimer = undefined;
    this.#stopProbing();
    this.#connectSeq++;
    this.retryAt = 0;
    const ws = this.ws;
    /** @type {Promise<void>} */
    let closed = Promise.resolve();
    if (ws && ws.readyState !== 3) {
      closed = new Promise((resolve) => this.#onClosed = resolve);
      try {
        ws.close(1000, "bye");
      } catch { /* closing already */ }
    } else {
      this.ws = undefined;
    }
    this.#setState("offline");
    return closed;
  }

  /** Skips the wait of a pending reconnect. */
  reconnectNow() {
    if (this.#stopped || this.ws) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#connect();
  }

  /**
   * The server's `welcome` came: the connection is live. `exp` (signed identities): when its token expires.
   * @param {unknown} exp
   */
  welcome(exp) {
    this.#welcomed = true;
    this.#liveSince = Date.now();
    if (this.#getToken) {
      this.exp = typeof exp === "number" ? exp : 0;
      this.#scheduleRefresh();
    }
    this.#tokens = this.#capacity();
    this.#tokensAt = Date.now();
    this.#setState("live");
    this.#schedulePing();
    if (this.transport === "sse" && this.#mode === "auto") this.#scheduleProbe();
  }

  /**
   * A refreshed token was taken (`authed`): it expires at `exp`.
   * @param {unknown} exp
   */
  authed(exp) {
    if (typeof exp === "number") this.exp = exp;
    this.#scheduleRefresh();
  }

  /**
   * Sends one message as a frame, if the socket is open.
   * @param {Record<string, unknown>} msg
   */
  send(msg) {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return false;
    this.#trace?.("out", msg);
    ws.send(JSON.stringify(msg));
    return true;
  }

  /** Takes one token of the client-side bucket, a little under the server's so we are never rate limited. */
  takeToken() {
    const now = Date.now();
    const rate = this.#hooks.limits().messagesPerSecond * 0.8 / 1000;
    this.#tokens = Math.min(this.#capacity(), this.#tokens + (now - this.#tokensAt) * rate);
    this.#tokensAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #capacity() {
    return Math.max(1, this.#hooks.limits().burst - 5);
  }

  #connect() {
    this.retryAt = 0;
    this.#setState(this.stats.connects === 0 || this.#attempt === 0 ? "connecting" : "reconnecting");
    if (!this.#getToken) return this.#open(undefined);
    // A fresh token before every connect: the last one may have expired meanwhile.
    const seq = ++this.#connectSeq;
    this.#getToken().then(
      (token) => {
        if (seq !== this.#connectSeq || this.#stopped || this.ws) return;
        if (typeof token !== "string" || token === "") throw new TypeError("getToken() gave no token");
        this.#open(token);
      },
    ).catch((/** @type {unknown} */ e) => {
      if (seq !== this.#connectSeq || this.#stopped) return;
      this.#hooks.noToken(`Cannot sign in: ${String(e)}`);
      this.#scheduleReconnect();
    });
  }

  /** @param {string | undefined} token a signed token, sent as the first frame */
  #open(token) {
    const q = new URLSearchParams({ room: "" });
    if (token !== undefined) q.set("auth", "frame");
    else {
      const guest = this.#hooks.guest();
      if (guest.name) q.set("name", guest.name);
      if (guest.display) q.set("display", guest.display);
      if (guest.token) q.set("token", guest.token);
    }
    const sse = this.#useSse();
    this.transport = sse ? "sse" : "websocket";
    /** @type {WebSocket | SseSocket} */
    let ws;
    try {
      ws = sse
        ? new SseSocket(`${sseUrl(this.#url)}?${q}`, { fetch: this.#fetch })
        : new this.#WebSocket(`${this.#url}?${q}`, ["chat"]);
    } catch {
      this.#scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.stats.connects++;
    ws.onmessage = (/** @type {{ data: unknown }} */ e) => {
      if (this.ws !== ws) return;
      this.#lastInbound = Date.now();
      this.stats.frames++;
      for (const m of parseFrame(String(e.data))) {
        this.stats.lines++;
        this.#trace?.("in", m);
        this.#hooks.line(m);
      }
    };
    let opened = false;
    ws.onopen = () => {
      opened = true;
      if (!sse) this.#wsFailures = 0;
      // Not in the URL: a query string ends up in logs, a frame does not.
      if (token !== undefined) this.send({ type: "auth", token });
    };
    /** @param {number | undefined} code */
    const ended = (code) => {
      if (!opened && !this.#stopped && this.ws === ws) {
        // A WebSocket that never opened counts towards the fallback only if plain HTTP reaches the
        // server meanwhile: offline, or with the server down, the fallback would fail too, and the first
        // attempt after the network comes back should be a WebSocket. A fallback that did not open
        // gives the WebSocket one more try first.
        if (!sse) this.#countFailure();
        else this.#wsFailures = this.#fallbackAfter - 1;
      }
      this.#closed(ws, code);
    };
    // Browsers and Deno follow an error with a close event; Node 20's WebSocket does not when the
    // connection is refused, so the error itself ends this socket (a later close is ignored).
    ws.onerror = () => ended(1006);
    ws.onclose = (/** @type {{ code?: number }} */ e) => ended(e?.code);
  }

  /** Asks the host for a new token `refreshBeforeMs` before `exp`, and sends it on this connection. */
  #scheduleRefresh() {
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    if (!this.#getToken || !this.exp) return;
    const getToken = this.#getToken;
    const delay = Math.max(1000, this.exp - this.#refreshBeforeMs - Date.now());
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = undefined;
      const ws = this.ws;
      getToken().then((token) => {
        if (this.ws === ws && this.#welcomed) this.send({ type: "auth", token });
      }).catch((/** @type {unknown} */ e) => {
        // Try again shortly; at exp the server closes and the reconnect asks once more.
        this.#hooks.noToken(`Cannot renew the sign-in: ${String(e)}`);
        if (this.exp - Date.now() > 2000) {
          this.exp = Math.max(Date.now() + this.#refreshBeforeMs - 1000, this.exp - 1000);
          this.#scheduleRefresh();
        }
      });
    }, delay);
  }

  /**
   * @param {WebSocket | SseSocket} ws
   * @param {number} [code]
   */
  #closed(ws, code) {
    if (this.ws !== ws) return;
    this.ws = undefined;
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    const wasLive = this.#welcomed;
    this.#welcomed = false;
    clearTimeout(this.#pingTimer);
    this.#pingTimer = undefined;
    this.#stopProbing();
    this.#hooks.closed();
    if (this.#onClosed) {
      this.#onClosed();
      this.#onClosed = undefined;
    }
    if (this.#stopped) return this.#setState("offline");
    // A connection that stayed up a while starts the backoff over; one that dropped at once does not.
    if (wasLive && Date.now() - this.#liveSince >= this.#stableMs) this.#attempt = 0;
    // An expired sign-in is no fault of the network: come back at once with a new token.
    if (code === 4003) this.#attempt = 0;
    this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    const delay = backoffDelay(this.#attempt++, this.#backoff, this.#random);
    this.retryAt = Date.now() + delay;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (!this.#stopped) this.#connect();
    }, delay);
    this.#setState("reconnecting");
  }

  /** A WebSocket failed to open: counted when the server answers HTTP (`/ws/info`). */
  #countFailure() {
    const fetch = this.#fetch;
    if (this.#mode !== "auto" || !fetch) return;
    const seq = this.#connectSeq;
    fetch(besideWs(this.#url, "info"), { cache: "no-store" }).then(async (res) => {
      await res.body?.cancel();
      if (res.ok && !this.#stopped && seq === this.#connectSeq) this.#wsFailures++;
    }).catch(() => {});
  }

  /** Whether the next connection uses the fallback transport. */
  #useSse() {
    if (this.#mode !== "auto") return this.#mode === "sse";
    return this.#fetch !== undefined && this.#wsFailures >= this.#fallbackAfter;
  }

  /**
   * On the fallback, tries a WebSocket every `websocketRetryMs`: when one opens, the fallback session
   * ends and the connection comes back on a WebSocket (rooms resume with `join {since}` as after any
   * reconnect).
   */
  #scheduleProbe() {
    this.#stopProbing();
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = undefined;
      const current = this.ws;
      if (!current || this.transport !== "sse" || this.#stopped) return;
      /** @type {WebSocket} */
      let probe;
      try {
        probe = this.#probe = new this.#WebSocket(`${this.#url}?room=`, [
          "chat",
        ]);
      } catch {
        return this.#scheduleProbe();
      }
      probe.onopen = () => {
        if (this.#probe !== probe) return;
        this.#probe = undefined;
        try {
          probe.close(1000, "probe");
        } catch { /* closing */ }
        this.#wsFailures = 0;
        this.#attempt = 0;
        if (this.ws === current) current.close(1000, "back to WebSocket");
      };
      probe.onerror = probe.onclose = () => {
        if (this.#probe !== probe) return;
        this.#probe = undefined;
        this.#scheduleProbe();
      };
    }, this.#websocketRetryMs);
  }

  #stopProbing() {
    clearTimeout(this.#probeTimer);
    this.#probeTimer = undefined;
    const probe = this.#probe;
    this.#probe = undefined;
    if (probe) {
      try {
        probe.close(1000, "probe");
      } catch { /* closing */ }
    }
  }

  #schedulePing() {
    clearTimeout(this.#pingTimer);
    this.#pingTimer = setTimeout(() => {
      this.#pingTimer = undefined;
      const ws = this.ws;
      if (!ws || !this.#welcomed) return;
      const quiet = Date.now() - this.#lastInbound;
      if (quiet >= this.#pingIntervalMs + this.#pongTimeoutMs) {
        // Nothing came back, not even a pong: the connection is dead without knowing it.
        try {
          ws.close(4000, "no answer");
        } catch { /* closing */ }
        this.#closed(ws);
        return;
      }
      if (quiet >= this.#pingIntervalMs) {
        this.takeToken();
        this.send({ type: "ping" });
      }
      this.#schedulePing();
    }, Math.min(this.#pingIntervalMs, this.#pongTimeoutMs));
  }

  /** @param {ConnState} state */
  #setState(state) {
    const changed = this.state !== state;
    this.state = state;
    // "reconnecting" fires again when the retry time changes.
    if (changed || state === "reconnecting") this.#hooks.state(state);
  }
}

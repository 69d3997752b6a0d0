/**
 * The fallback transport's client side (see docs/protocol.md, "Fallback transport"): a chat session
 * over Server-Sent Events down and HTTP POST up, behind the part of the `WebSocket` interface the
 * connection uses, so the connection treats it as one more socket. It reads the stream with `fetch`
 * (not `EventSource`) so that it runs in a page, a worker, Deno and Node alike and can tell a session
 * that is gone (404, 410) from a network that blinked. A dropped stream is resumed from its last event
 * id, out of sight of the connection; only a session that cannot be resumed closes the socket.
 * @module
 */

/** WebSocket's readyState values. */
const CONNECTING = 0, OPEN = 1, CLOSING = 2, CLOSED = 3;

/**
 * @typedef {object} SseSocketOptions
 * @property {typeof fetch} [fetch]
 * @property {number} [resumeAttempts] tries to resume a dropped stream before giving up, default 3
 * @property {number} [resumeDelayMs] wait before each try, default 500
 */

/** A fallback session with the face of a WebSocket: `send`, `close`, `readyState`, `on*` handlers. */
export class SseSocket {
  /**
   * @param {string} url the stream's address with the query of `/ws`, e.g. `http://host/ws/sse?name=ann`
   * @param {SseSocketOptions} [opts]
   */
  constructor(url, opts = {}) {
    const u = new URL(url);
    this.url = url;
    this.#base = `${u.origin}${u.pathname}`;
    this.#fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.#resumeAttempts = opts.resumeAttempts ?? 3;
    this.#resumeDelayMs = opts.resumeDelayMs ?? 500;
    // Like a WebSocket's: the caller sets the handlers after the constructor returns.
    setTimeout(() => this.#stream(url, 0), 0);
  }

  /** The server speaks the chat protocol's JSON lines: what the `chat` subprotocol says on a WebSocket. */
  protocol = "chat";
  readyState = CONNECTING;
  /** The session id, once the stream named it. */
  session = "";
  /** @type {((e: { type: string }) => void) | null} */
  onopen = null;
  /** @type {((e: { data: string }) => void) | null} */
  onmessage = null;
  /** @type {((e: { type: string }) => void) | null} */
  onerror = null;
  /** @type {((e: { code: number, reason: string, wasClean: boolean }) => void) | null} */
  onclose = null;

  #base;
  #fetch;
  #resumeAttempts;
  #resumeDelayMs;
  #lastId = "";
  /** @type {AbortController | undefined} */
  #abort;
  /** @type {string[]} */
  #out = [];
  #posting = false;

  /**
   * Sends one frame (a POST carries what was sent while the last one was on its way, in order).
   * @param {string} data
   */
  send(data) {
    if (this.readyState !== OPEN) throw new Error("InvalidStateError: the session is not open");
    this.#out.push(data);
    if (!this.#posting) this.#post();
  }

  /**
   * Ends the session on the server too, as a WebSocket's close does.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = "") {
    if (this.readyState >= CLOSING) return;
    const session = this.session;
    this.readyState = CLOSING;
    if (session) {
      this.#fetch(`${this.#base}/${session}`, { method: "DELETE" }).then(
        (r) => r.body?.cancel(),
        () => {},
      );
    }
    this.#finish(code, reason, true);
  }

  async #post() {
    this.#posting = true;
    while (this.#out.length > 0 && this.readyState === OPEN) {
      const frames = this.#out.splice(0, this.#out.length);
      try {
        const res = await this.#fetch(`${this.#base}/${this.session}`, {
          method: "POST",
          headers: { "content-type": "text/plain;charset=utf-8" },
          body: frames.join("\n"),
        });
        await res.body?.cancel();
        if (res.status !== 202) throw new Error(`POST answered ${res.status}`);
      } catch {
        // Whether the frames arrived is unknown, as with a WebSocket that drops: the connection starts
        // over, and the outbox sends again what was not acked (the server knows each by its cid).
        this.#fail();
        break;
      }
    }
    this.#posting = false;
  }

  /**
   * Reads one stream; when it ends without a close event, resumes it.
   * @param {string} url
   * @param {number} attempt 0 for the session's first stream, else which try at resuming this is
   */
  async #stream(url, attempt) {
    if (this.readyState >= CLOSING) return;
    const abort = this.#abort = new AbortController();
    /** @type {Response} */
    let res;
    try {
      res = await this.#fetch(url, {
        headers: { accept: "text/event-stream" },
        cache: "no-store",
        signal: abort.signal,
      });
    } catch {
      if (abort.signal.aborted) return;
      return attempt === 0 ? this.#fail() : this.#resume(attempt + 1);
    }
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel().catch(() => {});
      // 404/410: the session is gone or too far behind; anything else at the start is a refusal.
      return this.#fail();
    }
    let buf = "";
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buf += value.replaceAll("\r\n", "\n");
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          this.#event(block);
          if (this.readyState >= CLOSING) return;
        }
      }
    } catch {
      /* dropped: resumed below */
    } finally {
      reader.cancel().catch(() => {});
    }
    if (this.readyState >= CLOSING || abort.signal.aborted) return;
    if (!this.session) return this.#fail();
    this.#resume(1);
  }

  /** @param {number} attempt */
  #resume(attempt) {
    if (this.readyState >= CLOSING) return;
    if (attempt > this.#resumeAttempts || !this.#lastId) return this.#fail();
    setTimeout(() => {
      // By query, not the Last-Event-ID header: a header would need a CORS preflight from another origin.
      const q = new URLSearchParams({ lastEventId: this.#lastId });
      this.#stream(`${this.#base}?${q}`, attempt);
    }, this.#resumeDelayMs * attempt);
  }

  /** @param {string} block */
  #event(block) {
    let event = "message", id;
    /** @type {string[]} */
    const data = [];
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const at = line.indexOf(":");
      const field = at < 0 ? line : line.slice(0, at);
      const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (id !== undefined) this.#lastId = id;
    if (data.length === 0) return;
    const text = data.join("\n");
    if (event === "session") {
      if (this.readyState !== CONNECTING) return;
      try {
        this.session = JSON.parse(text).session;
      } catch {
        return this.#fail();
      }
      this.readyState = OPEN;
      this.onopen?.({ type: "open" });
    } else if (event === "close") {
      /** @type {{ code?: number, reason?: string }} */
      let why = {};
      try {
        why = JSON.parse(text);
      } catch { /* a close all the same */ }
      this.#finish(why.code ?? 1006, why.reason ?? "", true);
    } else if (event === "message") {
      this.onmessage?.({ data: text });
    }
  }

  #fail() {
    if (this.readyState === CLOSED) return;
    this.onerror?.({ type: "error" });
    this.#finish(1006, "", false);
  }

  /**
   * @param {number} code
   * @param {string} reason
   * @param {boolean} wasClean
   */
  #finish(code, reason, wasClean) {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.#abort?.abort();
    this.#out.length = 0;
    this.onclose?.({ code, reason, wasClean });
  }
}

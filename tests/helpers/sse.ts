/**
 * Test helper: a fallback-transport (SSE) client over `fetch`, keeping every event it reads, so a test
 * can drop its stream, resume it, and check that nothing came twice or went missing.
 * @module
 */
import { type Msg, waitFor } from "./test_server.ts";

/** One event as read from the stream. */
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** A session of the fallback transport. */
export class SseClient {
  readonly base: string;
  /** Where POSTs and the DELETE go: another process of the deployment than the stream's. @default base */
  postTo: string;
  readonly events: SseEvent[] = [];
  /** The JSON lines of the message events, in order. */
  readonly lines: Msg[] = [];
  session = "";
  lastId = "";
  /** The `close` event's data, once one came. */
  closedWith: { code: number; reason: string } | undefined;
  #abort: AbortController | undefined;
  #reading: Promise<void> = Promise.resolve();
  #ended = false;

  /** `base`: `http://127.0.0.1:PORT`. */
  constructor(base: string) {
    this.base = base;
    this.postTo = base;
  }

  /** Opens a new session with the query of `/ws`; resolves once its first event named it. */
  static async open(base: string, q: Record<string, string> = {}, headers?: HeadersInit): Promise<SseClient> {
    const c = new SseClient(base);
    const res = await c.#get(`/ws/sse?${new URLSearchParams(q)}`, headers);
    if (res.status !== 200) {
      const body = await res.text();
      throw new Error(`GET /ws/sse answered ${res.status}: ${body}`);
    }
    await waitFor(() => Promise.resolve(c.session !== ""), 3000, "the session event");
    return c;
  }

  /** Resumes after the last event read (or `after`); the response, read on when it is 200. */
  async resume(opts: { after?: string; header?: boolean } = {}): Promise<Response> {
    await this.drop();
    const last = opts.after ?? this.lastId;
    const res = opts.header === false
      ? await this.#get(`/ws/sse?lastEventId=${encodeURIComponent(last)}`)
      : await this.#get("/ws/sse", { "last-event-id": last });
    return res;
  }

  async #get(path: string, headers?: HeadersInit): Promise<Response> {
    const abort = this.#abort = new AbortController();
    const res = await fetch(`${this.base}${path}`, { headers, signal: abort.signal });
    if (res.status === 200 && res.body) this.#reading = this.#read(res.body, abort);
    return res;
  }

  async #read(body: ReadableStream<Uint8Array>, abort: AbortController): Promise<void> {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buf += value;
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          this.#event(buf.slice(0, end));
          buf = buf.slice(end + 2);
        }
      }
    } catch (e) {
      if (!abort.signal.aborted) throw e;
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  #event(block: string): void {
    const e: SseEvent = { event: "message", data: "" };
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const at = line.indexOf(":");
      const field = at < 0 ? line : line.slice(0, at);
      const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
      if (field === "id") e.id = value;
      else if (field === "event") e.event = value;
      else if (field === "data") data.push(value);
    }
    if (data.length === 0 && e.id === undefined) return;
    e.data = data.join("\n");
    this.events.push(e);
    if (e.id !== undefined) this.lastId = e.id;
    if (e.event === "session") this.session ||= JSON.parse(e.data).session;
    else if (e.event === "close") this.closedWith = JSON.parse(e.data);
    else if (e.event === "message") {
      for (const l of e.data.split("\n")) this.lines.push(JSON.parse(l));
    }
  }

  /** POSTs `frames` (objects are JSON-encoded), one a line. */
  post(...frames: (Msg | string)[]): Promise<Response> {
    const body = frames.map((f) => typeof f === "string" ? f : JSON.stringify(f)).join("\n");
    return fetch(`${this.postTo}/ws/sse/${this.session}`, { method: "POST", body });
  }

  /** POSTs and expects 202. */
  async send(...frames: (Msg | string)[]): Promise<void> {
    const res = await this.post(...frames);
    const body = await res.text();
    if (res.status !== 202) throw new Error(`POST answered ${res.status}: ${body}`);
  }

  /** Waits for a line of `type` matching `pred`, among all lines read so far. */
  async next(type: string, pred: (m: Msg) => boolean = () => true, ms = 3000): Promise<Msg> {
    const match = (m: Msg) => m.type === type && pred(m);
    await waitFor(
      () => Promise.resolve(this.lines.some(match)),
      ms,
      `a ${type} line; got ${JSON.stringify(this.lines.map((l) => l.type))}`,
    );
    return this.lines.find(match)!;
  }

  /** Every line of `type` read so far. */
  all(type: string): Msg[] {
    return this.lines.filter((m) => m.type === type);
  }

  /** Drops the stream (the session stays on the server until it expires). */
  async drop(): Promise<void> {
    this.#abort?.abort();
    this.#abort = undefined;
    await this.#reading;
  }

  /** Ends the session (DELETE) and the stream. Idempotent. */
  async close(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    if (this.session && !this.closedWith) {
      await fetch(`${this.postTo}/ws/sse/${this.session}`, { method: "DELETE" }).then((r) =>
        r.body?.cancel()
      );
    }
    await this.drop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

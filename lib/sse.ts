/**
 * The fallback transport, for networks that do not pass WebSockets: a chat connection whose server
 * frames come as Server-Sent Events (`GET /ws/sse`) and whose client frames go up by `POST
 * /ws/sse/{session}`. A session is one more kind of {@link Peer}: the chat does not know which
 * transport a connection uses, so limits, rate limits, strikes and slow-consumer closes are the same.
 * Every event has an id (`{session}.{n}`): a dropped stream opened again with its last id
 * (`Last-Event-ID`, or `?lastEventId=`) gets what it missed, from a bounded replay buffer.
 * @module
 */
import type { Chat, OpenParams } from "./chat.ts";
import type { Peer } from "./hub.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { CloseCode } from "./protocol.ts";
import type { Sharing } from "./sharing.ts";
import { TextMode } from "./text_mode.ts";
import { type Flusher, OutQueue, type WireFormat } from "./ws.ts";

/** Limits of {@link SseSessions}, from the config. */
export interface SseLimits {
  /** Bytes queued for a session (unsent events and the stream's own queue) before it ends as slow. */
  maxBufferedBytes: number;
  /** Bytes of sent events kept for a stream that resumes. */
  replayBytes: number;
  /** How long a session without a stream lives (ms). */
  sessionIdleMs: number;
  /** A stream that has carried nothing for this long gets a comment line (ms): proxies close silent ones. */
  keepaliveMs: number;
  /** Frames one POST may carry. */
  maxPostFrames: number;
  /** Bytes in one client frame (a POST body holds at most `maxPostFrames` of them). */
  maxFrameBytes: number;
}

/** What {@link SseSessions} needs. */
export interface SseOptions extends SseLimits {
  chat: Chat;
  flusher: Flusher;
  metrics: Metrics;
  log: Logger;
  /**
   * How a POST that landed on another process reaches the session's (several processes, no sticky
   * sessions). @default none: one process holds every session
   */
  relay?: Pick<Sharing, "toSession" | "holdSession" | "releaseSession">;
}

/** What goes between processes for a session: the frames of one POST, or its end (a DELETE). */
type Relayed = { frames: string[] } | { end: true };

/** A new session. */
export interface SessionOptions {
  /** Unique connection id, from the app's counter (shared with WebSockets). */
  id: number;
  params: OpenParams;
  /** @default JSON lines, several to an event */
  format?: WireFormat;
  /** Called once when the session has ended: the app stops counting it. */
  onClose: () => void;
  /** Settles when the response has ended (`Deno.ServeHandlerInfo.completed`): the client may be gone. */
  completed: Promise<void>;
  /** Extra response headers (CORS for an allowed foreign origin). */
  headers?: Record<string, string>;
}

/** Session ids: 128 random bits, base64url. Knowing one is what lets a client post and read as it. */
const KEY_RE = /^[A-Za-z0-9_-]{22}$/;
/** An event id: the session and the event's number. */
const EVENT_ID_RE = /^([A-Za-z0-9_-]{22})\.(\d{1,15})$/;
/** Events are split near this size, like WebSocket frames. */
const MAX_EVENT_CHARS = 256 * 1024;
/** How often sessions are looked at for expiry and keep-alives, at most. */
const TICK_MS = 1000;

const encoder = new TextEncoder();

/** What a `Last-Event-ID` names: the session and the last event its client has. */
export function parseEventId(value: string): { key: string; n: number } | undefined {
  const m = EVENT_ID_RE.exec(value.trim());
  return m ? { key: m[1], n: Number(m[2]) } : undefined;
}

function newKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** A JSON refusal like the app's others. */
function refusal(status: number, code: string, message: string, headers?: Record<string, string>): Response {
  return Response.json({ error: { code, message } }, {
    status,
    headers: { "cache-control": "no-store", ...headers },
  });
}

interface SentEvent {
  n: number;
  bytes: Uint8Array;
}

/**
 * An event's `data:` lines as bytes, reusing the last result for the same data: a room's members get
 * the same frame (the Flusher's join), so a broadcast encodes it once, not once per member.
 */
class DataEncoder {
  #last = "";
  #bytes = encoder.encode("data: \n\n");
  encode(data: string): Uint8Array {
    if (data !== this.#last) {
      // A JSON line holds no line break; text mode's lines neither. A joined frame has one per line,
      // and each becomes a `data:` line, which EventSource joins back with "\n".
      this.#bytes = encoder.encode(`data: ${data.replaceAll("\n", "\ndata: ")}\n\n`);
      this.#last = data;
    }
    return this.#bytes;
  }
}

/** One fallback connection: what the chat sends it, as numbered events, and the stream they go down. */
class SseSession implements Peer {
  readonly id: number;
  readonly key: string;
  readonly #limits: SseLimits;
  readonly #flusher: Flusher;
  readonly #data: DataEncoder;
  readonly #metrics: Metrics;
  readonly #ended: (s: SseSession) => void;
  readonly #out: OutQueue;
  /** Events not yet acknowledged by a resume: the first `#sent` went down the current stream. */
  readonly #events: SentEvent[] = [];
  #sent = 0;
  /** Bytes of the first `#sent` events (kept for a resume), and of the rest (not sent yet). */
  #keptBytes = 0;
  #unsentBytes = 0;
  #nextN = 1;
  #stream: ReadableStreamDefaultController<Uint8Array> | undefined;
  #streamQueued = 0;
  /** performance.now() of the stream's loss (or the session's start), and of its last write. */
  detachedAt = performance.now();
  wroteAt = 0;
  #closing = false;
  #single = false;

  constructor(
    id: number,
    key: string,
    deps: {
      limits: SseLimits;
      flusher: Flusher;
      data: DataEncoder;
      metrics: Metrics;
      ended: (s: SseSession) => void;
    },
    format: WireFormat | undefined,
  ) {
    this.id = id;
    this.key = key;
    this.#limits = deps.limits;
    this.#flusher = deps.flusher;
    this.#data = deps.data;
    this.#metrics = deps.metrics;
    this.#ended = deps.ended;
    this.#out = new OutQueue(deps.flusher, this, format?.text ? new TextMode(deps.flusher.parse) : undefined);
    this.#single = format?.single ?? false;
  }

  get attached(): boolean {
    return this.#stream !== undefined;
  }

  send(line: string): boolean {
    if (this.#closing) return false;
    this.#out.add(line);
    return true;
  }

  /** Queued lines, unsent events and what the stream holds that the client has not taken. */
  backlog(): number {
    if (this.#closing) return Infinity;
    return this.#out.chars + this.#unsentBytes + this.#streamQueued;
  }

  /** Turns the queued lines into events (one per turn, or one per line) and sends what it can. */
  flush(): void {
    const q = this.#out.lines;
    if (q.length === 0) return;
    const chars = this.#out.chars;
    if (this.#closing) return this.#out.clear();
    if (q.length === 1) this.#add(q[0]);
    else if (this.#single || chars > MAX_EVENT_CHARS) { for (const line of q) this.#add(line); }
    else this.#add(this.#flusher.join(q));
    this.#out.clear();
    this.#pump();
  }

  #add(data: string): void {
    const n = this.#nextN++;
    const head = encoder.encode(`id: ${this.key}.${n}\n`);
    const body = this.#data.encode(data);
    const bytes = new Uint8Array(head.byteLength + body.byteLength);
    bytes.set(head);
    bytes.set(body, head.byteLength);
    this.#events.push({ n, bytes });
    this.#unsentBytes += bytes.byteLength;
  }

  /** Writes the unsent events to the stream, if there is one; ends a session that does not keep up. */
  #pump(): void {
    // Deno's response stream takes whatever is enqueued: a client that stops reading grows server
    // memory unless its backlog is checked, as a WebSocket's bufferedAmount is.
    if (this.#unsentBytes + this.#streamQueued > this.#limits.maxBufferedBytes) return this.#slow();
    const c = this.#stream;
    if (!c) return;
    const events = this.#events;
    while (this.#sent < events.length) {
      const e = events[this.#sent++];
      this.#write(c, e.bytes);
      this.#unsentBytes -= e.bytes.byteLength;
      this.#keptBytes += e.bytes.byteLength;
      this.#metrics.framesOut++;
    }
    // The oldest sent events go first; at least the last one stays, so a resume can tell where it is.
    let drop = 0;
    while (this.#keptBytes > this.#limits.replayBytes && drop < this.#sent - 1) {
      this.#keptBytes -= events[drop++].bytes.byteLength;
    }
    if (drop > 0) {
      events.splice(0, drop);
      this.#sent -= drop;
    }
  }

  #write(c: ReadableStreamDefaultController<Uint8Array>, chunk: string | Uint8Array): void {
    try {
      c.enqueue(typeof chunk === "string" ? encoder.encode(chunk) : chunk);
      this.#streamQueued = Math.max(0, -(c.desiredSize ?? 0));
      this.wroteAt = performance.now();
    } catch {
      this.detach(c); // the response was cancelled in between
    }
  }

  /** A comment line on a silent stream. */
  keepalive(): void {
    const c = this.#stream;
    if (c) this.#write(c, ": keepalive\n\n");
  }

  #slow(): void {
    this.#out.clear();
    this.#metrics.slowConsumerCloses++;
    this.close(CloseCode.SLOW_CONSUMER, "slow consumer");
  }

  /**
   * A stream for this session's events after event `after` (0 for all), or undefined when the events
   * from there on are no longer kept (or were never sent). A stream already open is ended: the
   * client that resumes is the one that has the session id.
   */
  attach(after: number, first: string, completed: Promise<void>): ReadableStream<Uint8Array> | undefined {
    const events = this.#events;
    const oldest = events.length > 0 ? events[0].n : this.#nextN;
    if (after + 1 < oldest || after >= this.#nextN) return undefined;
    const old = this.#stream;
    if (old) {
      this.detach(old);
      try {
        old.close();
      } catch { /* cancelled already */ }
    }
    // What the client says it has is acknowledged; the rest goes down the new stream.
    let drop = 0;
    while (drop < events.length && events[drop].n <= after) drop++;
    events.splice(0, drop);
    this.#sent = 0;
    this.#keptBytes = 0;
    this.#unsentBytes = events.reduce((sum, e) => sum + e.bytes.byteLength, 0);
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({
      start: (c) => void (controller = c),
      cancel: () => this.detach(controller),
    }, { highWaterMark: 0, size: (chunk) => chunk.byteLength });
    this.#stream = controller;
    this.#streamQueued = 0;
    // Deno says so when the client went away (a rejection); a stream we ended resolves it.
    const lost = () => this.detach(controller);
    completed.then(lost, lost);
    this.#write(controller, first);
    this.#pump();
    return stream;
  }

  /** Stream `c` is gone: events wait (bounded) for the client to resume. */
  detach(c: ReadableStreamDefaultController<Uint8Array>): void {
    if (this.#stream !== c) return;
    this.#stream = undefined;
    this.#streamQueued = 0;
    this.detachedAt = performance.now();
    // What went down the lost stream may not have reached the client: a resume sends it again.
    this.#unsentBytes += this.#keptBytes;
    this.#keptBytes = 0;
    this.#sent = 0;
  }

  close(code: number, reason: string): void {
    if (this.#closing) return;
    // What is queued (often the error that explains this close) goes out before the close event.
    if (this.#out.lines.length) this.flush();
    if (this.#closing) return; // the flush found a slow consumer and closed it
    this.#closing = true;
    this.#out.clear();
    this.#events.length = 0;
    const c = this.#stream;
    this.#stream = undefined;
    if (c) {
      try {
        c.enqueue(encoder.encode(`event: close\ndata: ${JSON.stringify({ code, reason })}\n\n`));
        c.close();
      } catch { /* the client went first */ }
    }
    // Not from inside the chat code that asked for the close: it lets go of the connection after.
    queueMicrotask(() => this.#ended(this));
  }
}

/** The fallback sessions of one app: opened, resumed, posted to, expired. */
export class SseSessions {
  readonly #sessions = new Map<string, SseSession>();
  readonly #onClose = new Map<SseSession, () => void>();
  readonly #opts: SseOptions;
  readonly #data = new DataEncoder();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(opts: SseOptions) {
    this.#opts = opts;
  }

  /** Open sessions. */
  get size(): number {
    return this.#sessions.size;
  }

  /**
   * A new session and its stream; its first event names it. The app has done every check. With a
   * relay, the response waits until other processes can reach the session.
   */
  async open(opts: SessionOptions): Promise<Response> {
    const { chat, flusher, metrics, relay, log } = this.#opts;
    let key = newKey();
    while (this.#sessions.has(key)) key = newKey();
    const session = new SseSession(opts.id, key, {
      limits: this.#opts,
      flusher,
      data: this.#data,
      metrics,
      ended: (s) => this.#end(s),
    }, opts.format);
    this.#sessions.set(key, session);
    this.#onClose.set(session, opts.onClose);
    this.#startTimer();
    if (relay) {
      try {
        await relay.holdSession(key, (payload) => this.#relayed(key, payload));
      } catch (e) {
        // The session still works through this process; POSTs landing elsewhere get 404 until then.
        log.warn("fallback session not shared", { error: (e as Error).message });
      }
    }
    // `retry`: how long EventSource waits before it resumes on its own.
    const first = `retry: 1000\nid: ${key}.0\nevent: session\ndata: ${JSON.stringify({ session: key })}\n\n`;
    const stream = session.attach(0, first, opts.completed)!;
    chat.open(session, opts.params);
    return this.#streamResponse(stream, opts.headers);
  }

  /**
   * The stream of the session `lastEventId` names, from the event after it: 404 for a session that
   * is not here, 410 when those events are no longer kept (the session then ends: the client opens a
   * new one and resumes its rooms with `join {since}`).
   */
  resume(lastEventId: string, completed: Promise<void>, headers?: Record<string, string>): Response {
    const at = parseEventId(lastEventId);
    if (!at) {
      return refusal(
        400,
        "bad_request",
        `Cannot resume: a last event id is "<session>.<number>", got ${
          JSON.stringify(lastEventId.slice(0, 60))
        }`,
        headers,
      );
    }
    const session = this.#sessions.get(at.key);
    if (!session) return unknown(at.key, headers);
    const first = `event: session\ndata: ${JSON.stringify({ session: at.key, resumed: at.n })}\n\n`;
    const stream = session.attach(at.n, first, completed);
    if (!stream) {
      session.close(CloseCode.GOING_AWAY, "resume too late");
      return refusal(
        410,
        "session_lost",
        `Cannot resume session ${at.key} after event ${at.n}: the events since are no longer kept ` +
          `(see --sse-replay-bytes); open a new stream and resume rooms with join {since}`,
        headers,
      );
    }
    return this.#streamResponse(stream, headers);
  }

  /**
   * Client frames for session `key`, one per line of the body, handled in order as if read from a
   * socket; answers come on the stream. 202 once they are handed to the chat.
   */
  async post(key: string, req: Request, headers?: Record<string, string>): Promise<Response> {
    const { maxPostFrames, maxFrameBytes, chat, relay } = this.#opts;
    if (!KEY_RE.test(key) || (!relay && !this.#sessions.has(key))) return unknown(key, headers);
    // Every frame may be as big as a WebSocket frame, plus its line break.
    const cap = maxPostFrames * (maxFrameBytes + 1);
    const body = await readCapped(req, cap);
    if (body === undefined) {
      return refusal(
        413,
        "body_too_big",
        `A POST carries at most ${maxPostFrames} frames of at most ${maxFrameBytes} bytes (${cap} bytes)`,
        headers,
      );
    }
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(body);
    } catch {
      return refusal(400, "bad_request", "A POST body is UTF-8 text: one frame a line", headers);
    }
    const frames = text.split("\n").map((l) => l.endsWith("\r") ? l.slice(0, -1) : l).filter((l) =>
      l.trim() !== ""
    );
    if (frames.length > maxPostFrames) {
      return refusal(
        413,
        "too_many_frames",
        `A POST carries at most ${maxPostFrames} frames (--sse-post-frames), got ${frames.length}`,
        headers,
      );
    }
    // The session may have ended while the body came, or be another process's.
    const session = this.#sessions.get(key);
    if (session) { for (const frame of frames) chat.message(session.id, frame); }
    else {
      const relayed = await this.#relay(key, { frames }, headers);
      if (relayed) return relayed;
    }
    return Response.json({ frames: frames.length }, {
      status: 202,
      headers: { "cache-control": "no-store", ...headers },
    });
  }

  /** Hands `what` to the process holding session `key`: undefined when one took it, else the refusal. */
  async #relay(key: string, what: Relayed, headers?: Record<string, string>): Promise<Response | undefined> {
    const relay = this.#opts.relay;
    if (!relay) return unknown(key, headers);
    try {
      if (await relay.toSession(key, JSON.stringify(what))) return undefined;
    } catch {
      return refusal(503, "unavailable", "The session's process cannot be reached now; try again", headers);
    }
    return unknown(key, headers);
  }

  /** A POST or DELETE for a session held here came through another process. */
  #relayed(key: string, payload: string): void {
    const session = this.#sessions.get(key);
    if (!session) return;
    let what: Relayed;
    try {
      what = JSON.parse(payload);
    } catch {
      return;
    }
    if ("end" in what) return session.close(1000, "closed by the client");
    for (const frame of what.frames) this.#opts.chat.message(session.id, frame);
  }

  /** The client is done with session `key` (a page closing): it ends as a closed WebSocket does. */
  async end(key: string, headers?: Record<string, string>): Promise<Response> {
    if (!KEY_RE.test(key)) return unknown(key, headers);
    const session = this.#sessions.get(key);
    if (session) session.close(1000, "closed by the client");
    else {
      const relayed = await this.#relay(key, { end: true }, headers);
      if (relayed) return relayed;
    }
    return new Response(null, { status: 204, headers });
  }

  /** Stops the expiry timer. The chat's own shutdown closes the sessions (1001). Idempotent. */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #streamResponse(stream: ReadableStream<Uint8Array>, headers?: Record<string, string>): Response {
    return new Response(stream, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        // nginx would otherwise hold events back until its buffer fills.
        "x-accel-buffering": "no",
        ...headers,
      },
    });
  }

  #end(session: SseSession): void {
    if (this.#sessions.get(session.key) !== session) return;
    this.#sessions.delete(session.key);
    this.#opts.relay?.releaseSession(session.key);
    this.#opts.chat.closed(session.id);
    const onClose = this.#onClose.get(session);
    this.#onClose.delete(session);
    onClose?.();
    if (this.#sessions.size === 0) this.close();
  }

  /** One timer for every session, running only while there are sessions. */
  #startTimer(): void {
    if (this.#timer !== undefined) return;
    const { sessionIdleMs, keepaliveMs } = this.#opts;
    const tick = Math.max(10, Math.min(TICK_MS, sessionIdleMs / 4, keepaliveMs / 2));
    this.#timer = setInterval(() => {
      const t = performance.now();
      for (const s of this.#sessions.values()) {
        if (s.attached) {
          if (t - s.wroteAt >= keepaliveMs) s.keepalive();
        } else if (t - s.detachedAt >= sessionIdleMs) s.close(CloseCode.GOING_AWAY, "session expired");
      }
    }, tick);
  }
}

function unknown(key: string, headers?: Record<string, string>): Response {
  const shown = JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}...` : key);
  return refusal(
    404,
    "unknown_session",
    `No session ${shown} here: it ended, expired or never existed; open a new stream with GET /ws/sse`,
    headers,
  );
}

/** The request's body, or undefined once it passes `cap` bytes (what is left is not read). */
async function readCapped(req: Request, cap: number): Promise<Uint8Array | undefined> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > cap) {
    await req.body?.cancel().catch(() => {});
    return undefined;
  }
  if (!req.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > cap) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) out.set(c, at), at += c.byteLength;
  return out;
}

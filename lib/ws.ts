/**
 * The WebSocket adapter: wraps Deno's socket as a {@link Peer}, coalesces what one client receives
 * in one turn of the event loop into one frame, and closes clients that stop reading.
 * @module
 */
import { setImmediate } from "node:timers";
import type { Chat, OpenParams } from "./chat.ts";
import type { Peer } from "./hub.ts";
import type { Metrics } from "./metrics.ts";
import { CloseCode, isFormFrame } from "./protocol.ts";
import { TextMode } from "./text_mode.ts";

/** Coalesced frames are split near this size, so one busy turn does not make one huge frame. */
const MAX_FRAME_CHARS = 256 * 1024;

/** What the {@link Flusher} drives: a peer that sends what it queued when told to. */
export interface Flushable {
  flush(): void;
}

/** Options of {@link Flusher}. */
export interface FlusherOptions {
  /**
   * After a flush that wrote to at least {@link busyPeers} peers, the next ones wait this many ms from
   * their first queued line, so what a busy room gets meanwhile shares each member's frame. 0: never wait.
   * @default 0
   */
  busyDelayMs?: number;
  /** @default 256 */
  busyPeers?: number;
  /**
   * How long after such a flush every flush waits: a small one in between (an ack, one answer) does
   * not end the busy spell, or the next fan-out would go out at once and alternate.
   * @default 100
   */
  busyWindowMs?: number;
}

/**
 * Sends every peer's queued lines at the end of the current turn, one frame per peer. WebSocket
 * peers and fallback (SSE) sessions share one, so a broadcast joins its lines once for both.
 */
export class Flusher {
  #dirty: Flushable[] = [];
  #spare: Flushable[] = [];
  #scheduled = false;
  readonly #busyDelayMs: number;
  readonly #busyPeers: number;
  readonly #busyWindowMs: number;
  /** When a flush last wrote to at least `busyPeers` peers (`performance.now()`). */
  #busyAt = -Infinity;
  /** The last frame built and the lines it holds: members of one room get the same lines. */
  #lastLines: string[] = [];
  #lastFrame = "";
  readonly #run = () => {
    this.#scheduled = false;
    const dirty = this.#dirty;
    if (dirty.length >= this.#busyPeers && this.#busyDelayMs > 0) this.#busyAt = performance.now();
    this.#dirty = this.#spare;
    for (let i = 0; i < dirty.length; i++) dirty[i].flush();
    dirty.length = 0;
    this.#spare = dirty;
    this.#lastLines.length = 0;
    this.#lastFrame = "";
  };

  #lastParsedLine = "";
  #lastParsed: unknown;

  constructor(options: FlusherOptions = {}) {
    this.#busyDelayMs = options.busyDelayMs ?? 0;
    this.#busyPeers = options.busyPeers ?? 256;
    this.#busyWindowMs = options.busyWindowMs ?? 100;
  }

  /**
   * `JSON.parse(line)`, reusing the previous result for the same line: text mode reads each line it
   * sends, and a room's line goes to its members one after another. The result is read, never changed.
   */
  readonly parse = (line: string): unknown => {
    if (line !== this.#lastParsedLine) {
      this.#lastParsed = JSON.parse(line);
      this.#lastParsedLine = line;
    }
    return this.#lastParsed;
  };

  /**
   * `lines` joined by newlines, reusing the previous result when the lines are the same strings:
   * a broadcast to a room of N then joins once, not N times.
   */
  join(lines: readonly string[]): string {
    const last = this.#lastLines;
    if (lines.length === last.length) {
      let same = true;
      for (let i = 0; i < lines.length && same; i++) same = lines[i] === last[i];
      if (same) return this.#lastFrame;
    }
    last.length = 0;
    for (let i = 0; i < lines.length; i++) last.push(lines[i]);
    return this.#lastFrame = lines.join("\n");
  }

  /** Schedules `peer` for the next flush. */
  mark(peer: Flushable): void {
    this.#dirty.push(peer);
    if (!this.#scheduled) {
      this.#scheduled = true;
      // At the end of this turn: what every frame read in this turn produced for a peer goes in one
      // frame, and a lone message still goes out at once (setImmediate costs microseconds).
      // After a big fan-out, waiting a few ms instead: each frame costs the server about 10 us (one
      // write, mostly kernel) whatever it holds, so a busy room's frames carry more lines each
      // (docs/performance.md, "S1 against Bun").
      if (performance.now() - this.#busyAt < this.#busyWindowMs) setTimeout(this.#run, this.#busyDelayMs);
      else setImmediate(this.#run);
    }
  }
}

/**
 * What a peer queued for its client in this turn, as the client wants it: in text mode each JSON line
 * becomes a human line, or nothing (an ack). The first line of a turn schedules the peer with the
 * {@link Flusher}, which has it send them all. WebSocket peers and fallback (SSE) sessions queue alike.
 */
export class OutQueue {
  /** The lines, oldest first. */
  readonly lines: string[] = [];
  /** Their characters. */
  chars = 0;
  #text: TextMode | undefined;
  readonly #flusher: Flusher;
  readonly #owner: Flushable;

  constructor(flusher: Flusher, owner: Flushable, text?: TextMode) {
    this.#flusher = flusher;
    this.#owner = owner;
    this.#text = text;
  }

  /** Whether lines are turned into text mode's. */
  get text(): boolean {
    return this.#text !== undefined;
  }

  /** Queues `line` for the next flush. */
  add(line: string): void {
    if (this.#text) {
      const text = this.#text.line(line);
      // A message with no line (an ack) is delivered, as far as the chat is concerned.
      if (text === undefined) return;
      line = text;
    }
    if (this.lines.length === 0) this.#flusher.mark(this.#owner);
    this.lines.push(line);
    this.chars += line.length;
  }

  /** Text mode from now on, for the lines still queued too. */
  useText(text: TextMode): void {
    this.#text = text;
    const q = this.lines;
    let kept = 0;
    this.chars = 0;
    for (let i = 0; i < q.length; i++) {
      const line = text.line(q[i]);
      if (line === undefined) continue;
      q[kept++] = line;
      this.chars += line.length;
    }
    q.length = kept;
  }

  /** Empties it: sent, or dropped at a close. */
  clear(): void {
    this.lines.length = 0;
    this.chars = 0;
  }
}

/** How a connection wants its server messages (see docs/protocol.md, "One message per frame", "Text mode"). */
export interface WireFormat {
  /** Human lines instead of JSON (text mode); each goes in a frame of its own. */
  text: boolean;
  /** One message per frame, for clients that `JSON.parse` each frame whole. */
  single: boolean;
  /**
   * The client chose the format (`?format=`, or the `chat` subprotocol): its first frame does not
   * change it. Otherwise a first frame in a tutorial form switches the connection to text mode.
   */
  chosen: boolean;
}

/** Options of {@link acceptSocket}. */
export interface SocketOptions {
  /** Unique connection id, from the app's counter. */
  id: number;
  chat: Chat;
  flusher: Flusher;
  metrics: Metrics;
  params: OpenParams;
  /** Bytes queued for the client (ours and the socket's) before it is closed as a slow consumer. */
  maxBufferedBytes: number;
  /** Called once when the socket has closed. */
  onClose: () => void;
  /** @default JSON lines, several to a frame, switched to text by a first form frame */
  format?: WireFormat;
}

/** One client connection. */
export class WsPeer implements Peer {
  readonly id: number;
  readonly #socket: WebSocket;
  readonly #flusher: Flusher;
  readonly #metrics: Metrics;
  readonly #maxBuffered: number;
  readonly #onClosing: () => void;
  readonly #out: OutQueue;
  /**
   * At least the socket's `bufferedAmount`: its value when last read plus the most bytes sent since
   * (3 UTF-8 bytes per UTF-16 code unit). Deno only lowers it between sends, as writes complete.
   */
  #bufferedBound = 0;
  #closing = false;
  /** Each line in a frame of its own: one message per frame, and text mode. */
  #single = false;

  /** `onClosing` runs once, soon after the server starts closing the connection. */
  constructor(
    id: number,
    socket: WebSocket,
    flusher: Flusher,
    metrics: Metrics,
    maxBuffered: number,
    onClosing: () => void,
  ) {
    this.id = id;
    this.#socket = socket;
    this.#flusher = flusher;
    this.#metrics = metrics;
    this.#maxBuffered = maxBuffered;
    this.#onClosing = onClosing;
    this.#out = new OutQueue(flusher, this);
  }

  /**
   * From now on each message goes out as a human line in a frame of its own, those still queued
   * included; what was sent already stays as it was. `where`: who the connection is and its rooms
   * (the current one last), when it got JSON lines before.
   */
  useText(where?: { name: string; rooms: readonly string[] }): void {
    if (this.#out.text) return;
    const text = new TextMode(this.#flusher.parse);
    if (where) text.seed(where.name, where.rooms);
    this.#single = true;
    this.#out.useText(text);
  }

  /** From now on each message goes out in a frame of its own. */
  useSingleFrames(): void {
    this.#single = true;
  }

  send(line: string): boolean {
    if (this.#closing) return false;
    this.#out.add(line);
    return true;
  }

  /** What is waiting for the client: our queue (characters) plus the socket's unsent bytes. */
  backlog(): number {
    if (this.#closing) return Infinity;
    return this.#out.chars + this.#socket.bufferedAmount;
  }

  #slow(): void {
    this.#out.clear();
    this.#metrics.slowConsumerCloses++;
    this.close(CloseCode.SLOW_CONSUMER, "slow consumer");
  }

  /** Sends the queued lines as one frame (newline-separated), or a few when they are many. */
  flush(): void {
    const q = this.#out.lines;
    const chars = this.#out.chars;
    if (q.length === 0) return;
    if (this.#closing || this.#socket.readyState !== WebSocket.OPEN) return this.#out.clear();
    // Deno's send() never blocks: without this check a client that stops reading grows server
    // memory. Lines queued here are mostly shared by a room's members; answers only one client gets
    // are budgeted before they are made (see Chat), so this check at the flush is enough.
    // Reading bufferedAmount is an op (about 45 ns, once per peer per flush in a fan-out); the bound
    // gives the same answer, so a client that keeps reading is asked once per cap/3 characters sent.
    if (this.#bufferedBound > this.#maxBuffered) {
      const buffered = this.#socket.bufferedAmount;
      if (buffered > this.#maxBuffered) return this.#slow();
      this.#bufferedBound = buffered;
    }
    if (q.length === 1) this.#write(q[0]);
    else if (this.#single) { for (let i = 0; i < q.length; i++) this.#write(q[i]); }
    else if (chars <= MAX_FRAME_CHARS) this.#write(this.#flusher.join(q));
    else {
      let start = 0, size = 0;
      for (let i = 0; i < q.length; i++) {
        size += q[i].length + 1;
        if (size >= MAX_FRAME_CHARS || i === q.length - 1) {
          this.#write(q.slice(start, i + 1).join("\n"));
          start = i + 1, size = 0;
        }
      }
    }
    this.#out.clear();
  }

  #write(frame: string): void {
    this.#socket.send(frame);
    this.#bufferedBound += frame.length * 3;
    this.#metrics.framesOut++;
  }

  /** The socket has closed: drop what is queued, send nothing more. */
  closed(): void {
    this.#closing = true;
    this.#out.clear();
  }

  close(code: number, reason: string): void {
    if (this.#closing) return;
    // What is queued (often the error that explains this close) goes out before the close frame.
    if (this.#out.lines.length && this.#socket.readyState === WebSocket.OPEN) this.flush();
    if (this.#closing) return; // the flush found a slow consumer and closed it
    this.#closing = true;
    this.#out.clear();
    try {
      this.#socket.close(code, reason);
    } catch { /* already closed */ }
    // A client that does not read never completes the close handshake, and Deno keeps its socket
    // until it does: the chat lets go of it now (rooms, presence, name), the app keeps counting the
    // socket against the connection limits until it is really gone.
    queueMicrotask(this.#onClosing);
  }
}

/**
 * Wires an upgraded socket to the chat. Everything here runs after `Deno.upgradeWebSocket`,
 * so nothing may throw: the handlers catch inside the chat.
 */
export function acceptSocket(socket: WebSocket, opts: SocketOptions): void {
  // The handlers below share one closure scope that lives as long as the connection: they capture
  // these locals, never `opts` (its format and the rest are not needed after this function), and
  // `params` (the token and the address among them) only until the socket opens.
  const { chat, onClose } = opts;
  let params: OpenParams | undefined = opts.params;
  const detach = () => chat.closed(peer.id); // idempotent
  const peer = new WsPeer(opts.id, socket, opts.flusher, opts.metrics, opts.maxBufferedBytes, detach);
  let closed = false;
  const format = opts.format;
  if (format?.text) peer.useText();
  else if (format?.single) peer.useSingleFrames();
  // The tutorial pages send a form first and print whatever arrives, so they get text mode from then on.
  let first = !format?.chosen && !format?.text;
  socket.onopen = () => {
    const p = params;
    params = undefined;
    if (p) chat.open(peer, p);
  };
  socket.onmessage = (e: MessageEvent) => {
    const d = e.data;
    if (first) {
      first = false;
      // Asked of the chat now rather than read from every line sent until a first frame: most
      // clients never send a form, and an idle one may send nothing for hours.
      if (typeof d === "string" && isFormFrame(d)) peer.useText(chat.whereIs(peer.id));
    }
    if (typeof d === "string") chat.message(peer.id, d);
    else chat.binary(peer.id, d instanceof Blob ? d.size : (d as ArrayBuffer).byteLength);
  };
  // Deno may fire close twice (idle timeout: 1001 then 1005): clean up once.
  socket.onclose = () => {
    if (closed) return;
    closed = true;
    peer.closed();
    detach();
    onClose();
  };
  // A failed receive: nothing more will come from this socket, so it leaves its rooms now.
  socket.onerror = (e) => {
    e.preventDefault();
    peer.closed();
    detach();
  };
}

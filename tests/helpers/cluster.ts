/**
 * Clients that outlive the server process they are on, as the browser client does: when the
 * connection drops they reconnect (with their token), resume the room with `join {since, epoch}` and
 * send again, with the same `cid`, every message that was not acked. Used by the deploy and crash tests.
 * @module
 */
import assert from "node:assert/strict";
import { type Msg, TestClient } from "./test_server.ts";

const DEPLOY_DOC = new URL("../../docs/deploy.md", import.meta.url);

/** The code block of docs/deploy.md right after `<!-- deploy_test: name -->`: what the tests run. */
export function docSnippet(name: string): string {
  const doc = Deno.readTextFileSync(DEPLOY_DOC);
  const m = new RegExp(`<!-- deploy_test: ${name} -->\\s*\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(doc);
  if (!m) throw new Error(`docs/deploy.md has no snippet marked "deploy_test: ${name}"`);
  return m[1];
}

/** redis-server flags from the page's redis.conf lines. */
export function redisFlags(): string[] {
  return docSnippet("redis").trim().split("\n").flatMap((line) => {
    const [k, ...v] = line.trim().split(/\s+/);
    return [`--${k}`, ...v];
  });
}

/** Options of a {@link Participant}. */
export interface ParticipantOptions {
  name: string;
  room: string;
  /** Where to connect now (`ws://host:port/ws`); asked again on each reconnect. */
  url: () => string;
  /** Publishes `<prefix>-<n>` with at most `window` unacked messages, from {@link Participant.publish}. */
  prefix?: string;
  window?: number;
}

/** A member of one room that reconnects, resumes and re-sends; it records everything it got. */
export class Participant {
  readonly opts: ParticipantOptions;
  token?: string;
  epoch?: string;
  /** Epochs other than the first one a `joined` brought (history lost: must stay 0 here). */
  epochChanges = 0;
  /** The newest seq received. */
  lastSeq = 0;
  /** Every room message seq received (joined and live), in the order received. */
  readonly seqs: number[] = [];
  /** The room messages themselves, in the same order. */
  readonly messages: Msg[] = [];
  /** Every cid sent, in order. */
  readonly sent: string[] = [];
  /** The seq each cid was acked with (first ack). */
  readonly acked = new Map<string, number>();
  /** The server's `ts` of each acked cid: when it was stored (a re-send of a stored one: the first time). */
  readonly ackedTs = new Map<string, number>();
  /** Acks of one cid with two different seqs (must stay empty). */
  readonly ackConflicts: string[] = [];
  /** Times the connection was lost and made again. */
  reconnects = 0;
  /** Errors with a cid (`unavailable`, `shutting_down`): each is sent again. */
  refusals = 0;
  /** Those errors by code. */
  readonly refusedWith = new Map<string, number>();
  /** The URL of the connection now (or last). */
  at = "";
  /** Close codes of the connections lost. */
  readonly closeCodes: number[] = [];
  #unacked = new Set<string>();
  #client?: TestClient;
  #joined = false;
  #publishing = false;
  #closing = false;
  #loop?: Promise<void>;
  #timers = new Set<ReturnType<typeof setTimeout>>();

  constructor(opts: ParticipantOptions) {
    this.opts = opts;
  }

  /** Connects and joins (from seq 0: it gets the whole history); resolves once joined. */
  async start(): Promise<void> {
    await this.#connectRetrying();
    this.#loop = this.#watch();
  }

  /** Starts publishing. */
  publish(): void {
    this.#publishing = true;
    this.#pump();
  }

  /** Stops publishing new messages (re-sends go on). */
  stopPublishing(): void {
    this.#publishing = false;
  }

  /** Sent but not acked yet. */
  get unacked(): number {
    return this.#unacked.size;
  }

  /** Waits until every message sent is acked. */
  async drained(ms = 20_000): Promise<void> {
    const end = Date.now() + ms;
    while (this.#unacked.size > 0) {
      if (Date.now() > end) throw new Error(`${this.opts.name}: ${this.#unacked.size} messages never acked`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Waits until seq `n` of the room arrived. */
  async reached(n: number, ms = 20_000): Promise<void> {
    const end = Date.now() + ms;
    while (this.lastSeq < n) {
      if (Date.now() > end) throw new Error(`${this.opts.name}: at seq ${this.lastSeq}, waited for ${n}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Closes for good. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#publishing = false;
    for (const t of this.#timers) clearTimeout(t);
    await this.#client?.close();
    await this.#loop;
  }

  /** One connection: welcome, join with since/epoch, then the unacked messages again. */
  async #connect(): Promise<void> {
    const q: Record<string, string> = { name: this.opts.name, room: "" };
    if (this.token) q.token = this.token;
    this.at = this.opts.url();
    const c = new TestClient(`${this.at}?${new URLSearchParams(q)}`);
    c.opened.catch(() => {}); // a refused handshake is seen as a close below
    this.#client = c;
    this.#joined = false;
    let onLine = (_: Msg) => {};
    c.ws.addEventListener("message", (e) => {
      for (const line of String(e.data).split("\n")) {
        const m = JSON.parse(line);
        this.#received(m);
        onLine(m);
      }
    });
    // The next line that matches, or a rejection when the connection closes first.
    const step = (pred: (m: Msg) => boolean) =>
      new Promise<Msg>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no answer within 10 s")), 10_000);
        onLine = (m) => pred(m) && (clearTimeout(timer), onLine = () => {}, resolve(m));
        c.closed.then((e) => (clearTimeout(timer), reject(new Error(`closed ${e.code} before joined`))));
      });
    try {
      const welcome = await step((m) => m.type === "welcome");
      this.token = welcome.token;
      const join: Msg = { type: "join", room: this.opts.room, since: this.lastSeq };
      if (this.epoch) join.epoch = this.epoch;
      const joined = step((m) => m.type === "joined" && m.room === this.opts.room);
      c.send(join);
      await joined;
    } catch (e) {
      await c.close();
      throw e;
    }
    this.#joined = true;
    for (const cid of this.sent) if (this.#unacked.has(cid)) this.#send(cid);
    this.#pump();
  }

  /** Connects, trying again (a proxy with no instance up yet answers 502) for up to 20 s. */
  async #connectRetrying(): Promise<void> {
    const end = Date.now() + 20_000;
    for (let delay = 20;; delay = Math.min(delay * 2, 500)) {
      if (this.#closing) return;
      try {
        return await this.#connect();
      } catch (e) {
        if (Date.now() > end) throw new Error(`${this.opts.name} could not connect: ${e}`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Reconnects whenever the connection is lost, until closed. */
  async #watch(): Promise<void> {
    for (;;) {
      const ev = await this.#client!.closed;
      if (this.#closing) return;
      this.closeCodes.push(ev.code);
      this.reconnects++;
      await this.#connectRetrying();
    }
  }

  #received(m: Msg): void {
    if (m.type === "joined" && m.room === this.opts.room) {
      if (this.epoch !== undefined && m.epoch !== this.epoch) this.epochChanges++;
      this.epoch = m.epoch;
      for (const x of m.messages) this.#message(x);
    } else if (m.type === "message" && m.room === this.opts.room) {
      this.#message(m);
    } else if (m.type === "ack" && m.cid) {
      const had = this.acked.get(m.cid);
      if (had !== undefined && had !== m.seq) this.ackConflicts.push(`${m.cid}: ${had} then ${m.seq}`);
      if (had === undefined) this.acked.set(m.cid, m.seq), this.ackedTs.set(m.cid, m.ts);
      this.#unacked.delete(m.cid);
      this.#pump();
    } else if (m.type === "error" && m.cid && this.#unacked.has(m.cid)) {
      // The server took nothing (Redis away, stopping): the same cid again a little later.
      this.refusals++;
      this.refusedWith.set(m.code, (this.refusedWith.get(m.code) ?? 0) + 1);
      const t = setTimeout(() => {
        this.#timers.delete(t);
        if (this.#joined && this.#unacked.has(m.cid)) this.#send(m.cid);
      }, 50);
      this.#timers.add(t);
    }
  }

  #message(m: Msg): void {
    this.seqs.push(m.seq);
    this.messages.push(m);
    this.lastSeq = Math.max(this.lastSeq, m.seq);
  }

  #pump(): void {
    const window = this.opts.window ?? 16;
    while (this.#publishing && this.#joined && this.#unacked.size < window) {
      const cid = `${this.opts.prefix ?? this.opts.name}-${this.sent.length}`;
      this.sent.push(cid);
      this.#unacked.add(cid);
      this.#send(cid);
    }
  }

  #send(cid: string): void {
    const ws = this.#client?.ws;
    if (ws?.readyState !== WebSocket.OPEN) return; // sent again after the reconnect
    ws.send(JSON.stringify({ type: "send", room: this.opts.room, text: `text of ${cid}`, cid }));
  }
}

/**
 * Checks the room against what the participants saw: `history` is the whole room read at the end
 * (oldest first). Every seq from 1 once, every sent cid stored exactly once, every ack's seq is the
 * stored one, and each participant got every seq once, in order, each as the room holds it (a seq
 * handed out twice, e.g. by a Redis replica that took over without the master's last writes, shows).
 */
export function checkRoom(history: Msg[], participants: Participant[]): void {
  const seqs = history.map((m) => m.seq);
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1), "the room's seqs are gap-free from 1");
  const byCid = new Map<string, number>();
  for (const m of history) {
    assert.ok(!byCid.has(m.cid), `${m.cid} is stored once, found at seqs ${byCid.get(m.cid)} and ${m.seq}`);
    byCid.set(m.cid, m.seq);
  }
  for (const p of participants) {
    assert.deepEqual(p.ackConflicts, [], `${p.opts.name}: a cid acked with two seqs`);
    assert.equal(p.epochChanges, 0, `${p.opts.name}: the room's history was never lost`);
    for (const cid of p.sent) assert.ok(byCid.has(cid), `${cid} (sent by ${p.opts.name}) is stored`);
    for (const [cid, seq] of p.acked) {
      assert.equal(byCid.get(cid), seq, `${cid} is stored with its acked seq`);
    }
    const cidAt = new Map(history.map((m) => [m.seq, m.cid]));
    for (const m of p.messages) {
      assert.equal(m.cid, cidAt.get(m.seq), `${p.opts.name} got seq ${m.seq} as the room holds it`);
    }
    const last: number = seqs.length;
    assert.deepEqual(
      p.seqs,
      Array.from({ length: last }, (_, i) => i + 1),
      `${p.opts.name} got every seq once, in order (across ${p.reconnects} reconnects)`,
    );
  }
}

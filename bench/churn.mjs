// Load generator for the two cases that follow clients over time against OUR server only (our protocol):
//
//   storm  S4 reconnect storm: N clients in R rooms connect cold and join, hold their seq position, miss
//          K messages per room, then the server restarts (the bench driver does that when this process
//          prints {"event":"ready"}) and every client reconnects with the browser client's backoff and
//          jitter and resumes with `join {room, since}`. Every message seq is checked per client.
//   soak   steady churn for --minutes: connects, joins, sends, leaves, clean and abrupt closes, and a few
//          slow consumers that stop reading. The driver samples the server's memory, fds and store.
//   fill   S5: one room filled with --n members at --rate joins a second while --talkers of its members
//          send a message every --talk-every ms: time to fill, bytes received per join, the talkers'
//          message latency (send to their own copy back) while filling.
//
//   crowd  S3-100k: this process's share (--n from --first) of a crowd of idle members in rooms of
//          --room-size, each from a loopback source address of its own per --per-ip members (127.1.x.y:
//          one address has about 28,000 ephemeral ports), at most --conc handshakes in flight. The bench
//          runs several of these (one process holds at most its descriptor limit) and steers them with
//          files: {"event":"connected"} when its share is in, then a message to its first room once
//          --go exists (--check 1), then it holds the connections until --stop exists.
//
//   bun churn.mjs --scenario storm|soak|fill|crowd --port P [--n 10000 --rooms 100 ...] (see DEFAULTS)
//
// Runs on the bench's generator runtime (Bun, else Node) with node:net only; 127.0.0.1 only; every phase is
// bounded and the process always exits by itself (hard deadline). Prints JSON lines on stdout: zero or more
// {"event":...} lines for the driver, then exactly one result line (the last line). Diagnostics: stderr.
// loadgen.mjs (a read-only copy of the shared harness) is not touched: this file has its own small client.
import net from "node:net";
import crypto from "node:crypto";
import fs from "node:fs";

const DEFAULTS = {
  scenario: "storm",
  port: 0,
  host: "127.0.0.1",
  deadline: 240,
  // storm
  n: 10000,
  rooms: 100,
  live: 3,
  unseen: 5,
  tail: 2,
  "cold-conc": 200,
  "cold-timeout": 60,
  "storm-timeout": 120,
  "cold-only": 0,
  // soak
  minutes: 10,
  arrivals: 20,
  "life-min": 5,
  "life-max": 25,
  "soak-rooms": 20,
  "send-every": 3,
  "hot-rate": 50,
  "hot-chars": 4000,
  "hot-readers": 3,
  "slow-every": 15,
  "slow-life": 60,
  // fill
  rate: 500,
  talkers: 10,
  "talk-every": 1000,
  "fill-timeout": 180,
  // crowd
  first: 0,
  "room-size": 100,
  "per-ip": 100,
  conc: 200,
  check: 0,
  go: "",
  stop: "",
  "connect-timeout": 600,
};
const args = { ...DEFAULTS };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (!a.startsWith("--")) continue;
  const k = a.slice(2), v = process.argv[i + 1];
  if (!(k in DEFAULTS)) {
    console.error("unknown option " + a);
    process.exit(2);
  }
  args[k] = typeof DEFAULTS[k] === "number" ? Number(v) : v;
  i++;
}
const RUNTIME = typeof Bun !== "undefined" ? "bun " + Bun.version : "node " + process.versions.node;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const emitLine = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const HARD = setTimeout(() => {
  emitLine({ error: "hard deadline reached" });
  process.exit(3);
}, args.deadline * 1000);

// ---------------------------------------------------------------- the browser client's backoff

// static/chat-client.js, backoffDelay() and ChatClient's defaults, mirrored line for line: exponential,
// capped, "equal jitter" (half fixed, half random); base 500 ms, cap 30 s; a connection that was live
// (welcomed) for at least stableMs (5 s) starts the backoff over, one that dropped at once does not.
const BACKOFF = { baseMs: 500, maxMs: 30_000 };
const STABLE_MS = 5000;
function backoffDelay(attempt, opts, random = Math.random) {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * ceiling / 2);
}

// ---------------------------------------------------------------- a minimal RFC 6455 client on node:net

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** Bytes every connection of this process received (HTTP answers and frames): what the server sent. */
let rxBytes = 0;

/**
 * One WebSocket connection: checks 101 and Sec-WebSocket-Accept, masks what it sends, splits server
 * frames (7/16/64-bit lengths, fragments) and their "\n"-separated JSON lines, answers ping and close.
 * Callbacks: onOpen(), onLine(obj), onEnd(why, closeCode|null) (exactly once).
 */
class Ws {
  /** `localAddress`: the source address to connect from (any of 127.0.0.0/8), else the kernel's choice. */
  constructor(path, h, localAddress) {
    this.h = h;
    this.state = 0;
    this.buf = null;
    this.frag = null;
    this.ended = false;
    this.frozen = false;
    this.key = crypto.randomBytes(16).toString("base64");
    const req = `GET ${path} HTTP/1.1\r\nHost: ${args.host}:${args.port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${this.key}\r\nSec-WebSocket-Version: 13\r\n` +
      `Sec-WebSocket-Protocol: chat\r\n\r\n`;
    const s = (this.sock = net.connect({ host: args.host, port: args.port, localAddress }));
    s.setNoDelay(true);
    s.on("connect", () => {
      s.write(req);
      this.state = 1;
    });
    s.on("data", (d) => {
      rxBytes += d.length;
      if (!this.frozen) this.data(d);
    });
    s.on("error", (e) => this.end(e.code || e.message, null));
    s.on("close", () => this.end(this.state < 2 ? "closed before 101" : "closed", null));
  }
  end(why, code) {
    if (this.ended) return;
    this.ended = true;
    this.state = 4;
    this.sock.destroy();
    this.h.onEnd(why, code);
  }
  /** Drops the connection without reading what is still on its way (a frozen tab whose socket died). */
  drop() {
    this.sock.destroy();
  }
  data(d) {
    if (this.buf) {
      d = Buffer.concat([this.buf, d]);
      this.buf = null;
    }
    let off = 0;
    const len = d.length;
    if (this.state === 1) {
      const i = d.indexOf("\r\n\r\n");
      if (i < 0) {
        this.buf = Buffer.from(d);
        return;
      }
      const head = d.toString("latin1", 0, i);
      if (!head.startsWith("HTTP/1.1 101")) {
        return this.end("status " + head.split("\r\n")[0].slice(9, 12), null);
      }
      const m = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head);
      if (!m || m[1] !== crypto.createHash("sha1").update(this.key + GUID).digest("base64")) {
        return this.end("bad accept", null);
      }
      off = i + 4;
      this.state = 2;
      this.h.onOpen();
    }
    while (len - off >= 2 && !this.ended) {
      const b0 = d[off], b1 = d[off + 1];
      if (b1 & 0x80) return this.end("masked server frame", null);
      let plen = b1 & 127, hl = 2;
      if (plen === 126) {
        if (len - off < 4) break;
        plen = d.readUInt16BE(off + 2);
        hl = 4;
      } else if (plen === 127) {
        if (len - off < 10) break;
        plen = Number(d.readBigUInt64BE(off + 2));
        hl = 10;
      }
      if (len - off < hl + plen) break;
      const ps = off + hl, pe = ps + plen, op = b0 & 15, fin = b0 & 0x80;
      off = pe;
      if (op === 1) {
        if (fin) this.text(d.toString("utf8", ps, pe));
        else this.frag = [Buffer.from(d.subarray(ps, pe))];
      } else if (op === 0) {
        if (!this.frag) return this.end("stray continuation", null);
        this.frag.push(Buffer.from(d.subarray(ps, pe)));
        if (fin) {
          const b = Buffer.concat(this.frag);
          this.frag = null;
          this.text(b.toString("utf8"));
        }
      } else if (op === 9) this.frame(10, Buffer.from(d.subarray(ps, pe)));
      else if (op === 8) {
        const code = pe - ps >= 2 ? d.readUInt16BE(ps) : 1005;
        this.frame(8, pe - ps >= 2 ? Buffer.from(d.subarray(ps, ps + 2)) : Buffer.alloc(0));
        return this.end("close " + code, code);
      }
    }
    if (off < len && !this.ended) this.buf = Buffer.from(d.subarray(off));
  }
  text(s) {
    for (const line of s.split("\n")) {
      if (!line) continue;
      let o;
      try {
        o = JSON.parse(line);
      } catch {
        o = null;
      }
      this.h.onLine(o, line);
      if (this.ended) return;
    }
  }
  frame(op, payload) {
    if (this.state >= 4 || this.sock.destroyed) return;
    const n = payload.length, hl = n < 126 ? 2 : n < 65536 ? 4 : 10;
    const f = Buffer.allocUnsafe(hl + 4 + n);
    f[0] = 0x80 | op;
    if (n < 126) f[1] = 0x80 | n;
    else if (n < 65536) {
      f[1] = 0x80 | 126;
      f.writeUInt16BE(n, 2);
    } else {
      f[1] = 0x80 | 127;
      f.writeBigUInt64BE(BigInt(n), 2);
    }
    const mask = crypto.randomBytes(4);
    mask.copy(f, hl);
    for (let i = 0; i < n; i++) f[hl + 4 + i] = payload[i] ^ mask[i & 3];
    this.sock.write(f);
  }
  send(obj) {
    this.frame(1, Buffer.from(JSON.stringify(obj)));
  }
  /** A clean close: close frame 1000, then the TCP end after the server's answer or 1 s. */
  close() {
    if (this.ended) return;
    this.closing = true;
    this.frame(8, Buffer.from([0x03, 0xe8]));
    setTimeout(() => this.end("closed by us", null), 1000).unref?.();
  }
}

/** Counters of everything that is not a clean run. */
const bad = { errorFrames: {}, firstError: null, closeCodes: {}, unparsable: 0 };
function countErrorFrame(o, line) {
  bad.errorFrames[o.code] = (bad.errorFrames[o.code] || 0) + 1;
  if (!bad.firstError) bad.firstError = line.slice(0, 200);
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}
const ms1 = (x) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);

// ---------------------------------------------------------------- S4: reconnect storm

/**
 * One browser-like client in one room: ChatClient's connect/welcome/join/close/backoff logic (not its
 * outbox, typing or pings), plus the seq check: every message it is given must be the next seq of its
 * room, whether it comes in `joined.messages` or live.
 */
class Client {
  constructor(i, room, name) {
    this.i = i;
    this.room = room;
    this.name = name;
    this.token = undefined;
    this.attempt = 0;
    this.liveSince = 0;
    this.welcomed = false;
    this.stopped = true;
    this.synced = false;
    this.lastSeq = 0;
    this.expect = 0;
    this.ws = null;
    this.frozen = false;
    this.diedFrozen = false;
    this.attemptStart = 0;
    this.joinedAt = 0;
    this.joinLatency = 0;
    this.attempts = 0;
    this.failed = 0;
    this.missed = 0;
    this.doubled = 0;
    this.truncated = 0;
    this.back = 0;
    this.got = []; // [seq, k, ...]
    this.onJoined = null;
    this.onFail = null;
    this.publisher = false;
    this.acks = new Map();
    this.sent = 0;
  }
  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.attempt = 0;
    this.connect();
  }
  stop() {
    this.stopped = true;
    clearTimeout(this.retry);
    if (this.ws) this.ws.drop();
  }
  connect() {
    this.attempts++;
    this.attemptStart = performance.now();
    const q = new URLSearchParams({ room: "" });
    q.set("name", this.name);
    if (this.token) q.set("token", this.token);
    const ws = new Ws(`/ws?${q}`, {
      onOpen: () => {},
      onLine: (o, line) => this.handle(o, line),
      onEnd: (why, code) => this.closed(ws, why, code),
    });
    this.ws = ws;
  }
  handle(o, line) {
    if (this.frozen) return;
    if (!o || typeof o !== "object") {
      bad.unparsable++;
      return;
    }
    switch (o.type) {
      case "welcome": {
        this.welcomed = true;
        this.liveSince = Date.now();
        this.token = o.token;
        const msg = { type: "join", room: this.room };
        if (this.synced) msg.since = this.lastSeq;
        this.ws.send(msg);
        return;
      }
      case "joined": {
        if (o.room !== this.room) return;
        const msgs = Array.isArray(o.messages) ? o.messages : [];
        if (this.synced) { // resume: the answer must hold exactly lastSeq+1 .. o.lastSeq
          if (o.truncated) this.truncated++;
          for (const m of msgs) this.take(m);
          if (o.lastSeq >= this.expect) {
            this.missed += o.lastSeq - this.expect + 1;
            this.expect = o.lastSeq + 1;
          }
          if (o.lastSeq < this.expect - 1) this.back++;
        } else this.expect = o.lastSeq + 1; // first join: the position starts here
        this.lastSeq = o.lastSeq;
        this.synced = true;
        this.joinedAt = Date.now();
        this.joinLatency = performance.now() - this.attemptStart;
        const f = this.onJoined;
        this.onJoined = null;
        if (f) f(this);
        return;
      }
      case "message":
        if (o.room === this.room && typeof o.seq === "number") {
          this.take(o);
          if (o.seq > this.lastSeq) this.lastSeq = o.seq;
        }
        return;
      case "ack":
        if (this.publisher && typeof o.cid === "string") {
          const f = this.acks.get(o.cid);
          this.acks.delete(o.cid);
          if (f) f(o.seq);
        }
        return;
      case "error":
        countErrorFrame(o, line);
        return;
      default:
        return; // presence, left, pong ...
    }
  }
  take(m) {
    const k = typeof m.cid === "string" ? Number(m.cid.split(":")[1]) : -1;
    this.got.push(m.seq, k);
    if (m.seq === this.expect) this.expect++;
    else if (m.seq < this.expect) this.doubled++;
    else {
      this.missed += m.seq - this.expect;
      this.expect = m.seq + 1;
    }
  }
  closed(ws, why, code) {
    if (this.ws !== ws) return;
    if (this.closeHook) {
      const h = this.closeHook;
      this.closeHook = null;
      h();
    }
    if (this.frozen) {
      this.diedFrozen = true;
      return;
    } // seen when unfrozen
    this.ws = null;
    if (code !== null) bad.closeCodes[code] = (bad.closeCodes[code] || 0) + 1;
    const wasLive = this.welcomed;
    this.welcomed = false;
    if (!wasLive) {
      this.failed++;
      failReasons[why] = (failReasons[why] || 0) + 1;
      if (this.onFail) this.onFail(this, why);
    }
    if (this.stopped) return;
    if (wasLive && Date.now() - this.liveSince >= STABLE_MS) this.attempt = 0;
    const delay = backoffDelay(this.attempt++, BACKOFF);
    delays.push(delay);
    this.retry = setTimeout(() => {
      if (!this.stopped) this.connect();
    }, delay);
  }
  /** Stops reading: what arrives from now on is never seen (a frozen tab). */
  freeze() {
    this.frozen = true;
    if (this.ws) this.ws.frozen = true;
  }
  /** The frozen tab wakes up to a dead connection: drops it unread and reconnects as after a close. */
  wake() {
    const ws = this.ws;
    this.frozen = false;
    if (!ws) return;
    ws.drop();
    ws.ended = true;
    this.closed(ws, "dropped", null);
  }
  /** Publishes `text` with a cid; resolves with the acked seq (or null after 10 s). */
  publish(k) {
    return new Promise((resolve) => {
      const cid = `${this.room}:${k}`;
      const timer = setTimeout(() => {
        this.acks.delete(cid);
        resolve(null);
      }, 10_000);
      this.acks.set(cid, (seq) => {
        clearTimeout(timer);
        resolve(seq);
      });
      this.ws.send({ type: "send", room: this.room, text: `message ${k} of ${this.room}`, cid });
    });
  }
}
let failReasons = {};
let delays = [];

async function storm() {
  const N = args.n, R = Math.min(args.rooms, N);
  const rooms = Array.from({ length: R }, (_, r) => "s" + r);
  const clients = Array.from({ length: N }, (_, i) => new Client(i, rooms[i % R], "st" + i));
  const pubs = rooms.map((room) => {
    const c = new Client(-1, room, "pub" + room.slice(1));
    c.publisher = true;
    return c;
  });
  const k = new Map(rooms.map((r) => [r, 0])); // next k per room
  const ackedSeq = new Map(rooms.map((r) => [r, new Map()])); // room -> seq -> k
  const lastPublished = new Map(rooms.map((r) => [r, 0]));
  const out = { n: N, rooms: R, live: args.live, unseen: args.unseen, tail: args.tail, lg_runtime: RUNTIME };
  const done = (extra) => {
    clearTimeout(HARD);
    const checks = verify(clients, ackedSeq, lastPublished);
    emitLine({
      ...out,
      ...extra,
      ...checks,
      error_frames: bad.errorFrames,
      first_error: bad.firstError,
      close_codes: bad.closeCodes,
      unparsable: bad.unparsable,
    });
    for (const c of [...clients, ...pubs]) c.stop();
    setTimeout(() => process.exit(0), 300);
  };
  const waitAll = async (list, pred, timeoutMs) => {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (list.every(pred)) return true;
      await sleep(20);
    }
    return list.every(pred);
  };
  const publishRound = async (count) => {
    await Promise.all(pubs.map(async (p) => {
      for (let j = 0; j < count; j++) {
        const kk = k.get(p.room);
        k.set(p.room, kk + 1);
        const seq = await p.publish(kk);
        if (seq === null) {
          out.unacked = (out.unacked || 0) + 1;
          continue;
        }
        ackedSeq.get(p.room).set(seq, kk);
        if (seq > lastPublished.get(p.room)) lastPublished.set(p.room, seq);
      }
    }));
  };
  const upToDate = (c) => c.expect - 1 === lastPublished.get(c.room);

  // 1. publishers, then the cold connect: a fresh server, no resume, at most cold-conc handshakes in flight
  for (const p of pubs) p.start();
  if (!(await waitAll(pubs, (p) => p.synced, 30_000))) return done({ error: "publishers did not join" });
  failReasons = {};
  delays = [];
  const coldT0 = Date.now();
  await new Promise((resolve) => {
    let next = 0, inflight = 0, settled = 0;
    const timer = setTimeout(resolve, args["cold-timeout"] * 1000);
    const launch = () => {
      while (inflight < args["cold-conc"] && next < N) {
        const c = clients[next++];
        inflight++;
        let freed = false;
        const free = () => {
          if (freed) return;
          freed = true;
          inflight--;
          launch();
        };
        c.onFail = free;
        c.onJoined = () => {
          free();
          if (++settled === N) {
            clearTimeout(timer);
            resolve();
          }
        };
        c.start();
      }
    };
    launch();
  });
  const coldJoined = clients.filter((c) => c.synced);
  const coldTimes = coldJoined.map((c) => c.joinedAt - coldT0).sort((a, b) => a - b);
  const coldLat = coldJoined.map((c) => c.joinLatency).sort((a, b) => a - b);
  out.cold = {
    joined: coldJoined.length,
    t99_ms: coldJoined.length >= Math.ceil(0.99 * N) ? coldTimes[Math.ceil(0.99 * N) - 1] : null,
    t100_ms: coldJoined.length === N ? coldTimes[N - 1] : null,
    conc: args["cold-conc"],
    join_ms_p50: ms1(pct(coldLat, 0.5)),
    join_ms_p99: ms1(pct(coldLat, 0.99)),
    failed_attempts: failReasons,
    started_at: coldT0,
  };
  out.cold.joins_s = out.cold.t100_ms ? Math.round(N / (out.cold.t100_ms / 1000)) : null;
  for (const c of clients) {
    c.onFail = null;
    c.onJoined = null;
  }
  if (coldJoined.length < N) return done({ error: `cold connect: only ${coldJoined.length}/${N} joined` });
  emitLine({ event: "cold_done", at: Date.now() });
  if (args["cold-only"]) return done({ cold_only: true });

  // 2. live messages (every client sees them), and every client live >= stableMs like a long-open tab
  await publishRound(args.live);
  if (!(await waitAll(clients, upToDate, 10_000))) {
    out.live_incomplete = clients.filter((c) => !upToDate(c)).length;
  }
  const youngest = Math.max(...clients.map((c) => c.liveSince));
  await sleep(Math.max(0, youngest + STABLE_MS + 100 - Date.now()));

  // 3. the storm clients stop reading; each room gets `unseen` messages none of them sees
  for (const c of clients) c.freeze();
  await publishRound(args.unseen);
  out.position = clients.reduce((a, c) => a + c.expect - 1, 0) / N;
  out.published_before_restart = [...lastPublished.values()].reduce((a, b) => a + b, 0);

  // 4. the driver restarts the server; the publishers (reading) see its 1001 first, and at that moment
  //    every storm client finds its connection dead and unread (what it held is lost), as after a close
  failReasons = {};
  delays = [];
  const closedOnce = new Promise((resolve) => {
    for (const p of pubs) p.closeHook = resolve;
  });
  emitLine({ event: "ready", at: Date.now() });
  const woke = await Promise.race([closedOnce.then(() => true), sleep(60_000).then(() => false)]);
  if (!woke) return done({ error: "the server did not close the connections within 60 s of ready" });
  const tClose = Date.now();
  for (const c of clients) {
    c.attemptsBefore = c.attempts;
    c.wake();
  }
  out.storm = { closed_at: tClose };

  // 5. the storm: until every client has resumed (joined with since) on the new server
  for (const c of clients) c.joinedAt = 0;
  const stormEnd = tClose + args["storm-timeout"] * 1000;
  while (Date.now() < stormEnd && !clients.every((c) => c.joinedAt > tClose)) await sleep(20);
  const resumed = clients.filter((c) => c.joinedAt > tClose);
  const at = resumed.map((c) => c.joinedAt).sort((a, b) => a - b);
  const lat = resumed.map((c) => c.joinLatency).sort((a, b) => a - b);
  const attempts = clients.map((c) => c.attempts - c.attemptsBefore).sort((a, b) => a - b);
  delays.sort((a, b) => a - b);
  Object.assign(out.storm, {
    resumed: resumed.length,
    at99: at.length >= Math.ceil(0.99 * N) ? at[Math.ceil(0.99 * N) - 1] : null,
    at100: at.length === N ? at[N - 1] : null,
    first_at: at[0] ?? null,
    join_ms_p50: ms1(pct(lat, 0.5)),
    join_ms_p99: ms1(pct(lat, 0.99)),
    failed_attempts: failReasons,
    delay_ms: { n: delays.length, min: delays[0] ?? null, p50: pct(delays, 0.5), max: delays.at(-1) ?? null },
    attempts: { p50: pct(attempts, 0.5), p99: pct(attempts, 0.99), max: attempts[N - 1] },
    frozen_closed_by_server: clients.filter((c) => c.diedFrozen).length,
  });
  if (resumed.length < N) {
    return done({ error: `storm: only ${resumed.length}/${N} resumed within ${args["storm-timeout"]} s` });
  }

  // 6. a tail of live messages after the resume; then every client must hold every seq up to the last
  await waitAll(pubs, (p) => p.welcomed && p.joinedAt > tClose, 30_000);
  await publishRound(args.tail);
  await waitAll(clients, upToDate, 10_000);
  done({});
}

/** Per client: no gap, no duplicate, every seq up to the room's last published, each the message acked. */
function verify(clients, ackedSeq, lastPublished) {
  let missed = 0, doubled = 0, behind = 0, wrong = 0, truncated = 0, back = 0, clientsBad = 0;
  for (const c of clients) {
    const b = c.missed + c.doubled + c.truncated + c.back;
    missed += c.missed;
    doubled += c.doubled;
    truncated += c.truncated;
    back += c.back;
    const last = lastPublished.get(c.room);
    const behindBy = c.synced ? Math.max(0, last - (c.expect - 1)) : 0;
    behind += behindBy;
    const map = ackedSeq.get(c.room);
    let w = 0;
    for (let j = 0; j < c.got.length; j += 2) {
      if (map.has(c.got[j]) && map.get(c.got[j]) !== c.got[j + 1]) w++;
    }
    wrong += w;
    if (b || behindBy || w) clientsBad++;
  }
  return {
    missed,
    doubled,
    behind,
    wrong_message: wrong,
    truncated,
    lastseq_back: back,
    clients_bad: clientsBad,
  };
}

// ---------------------------------------------------------------- soak: steady churn

async function soak() {
  const end = Date.now() + args.minutes * 60_000;
  const st = {
    connects: 0,
    opened: 0,
    failed: {},
    joins: 0,
    sends: 0,
    acks: 0,
    leaves: 0,
    clean: 0,
    abrupt: 0,
    slow: 0,
    slow_4001: 0,
    slow_other: {},
    hot_sent: 0,
    delivered: 0,
    unexpected_close: {},
  };
  let id = 0, live = 0, peakLive = 0;
  const rooms = Array.from({ length: args["soak-rooms"] }, (_, r) => "k" + r);
  const pick = (a) => a[Math.floor(Math.random() * a.length)];
  const timers = new Set();
  const later = (ms, f) => {
    const t = setTimeout(() => {
      timers.delete(t);
      f();
    }, ms);
    timers.add(t);
    return t;
  };

  /** One short-lived client: joins one or two rooms, sends now and then, maybe leaves one, closes. */
  function churner(opts = {}) {
    const n = id++, room = opts.room ?? pick(rooms);
    const joined = new Set();
    let open = false, finished = false, sendTimer = undefined;
    st.connects++;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearInterval(sendTimer);
      if (open) live--;
    };
    const ws = new Ws(`/ws?room=${room}&name=sk${n}`, {
      onOpen: () => {
        open = true;
        st.opened++;
        live++;
        if (live > peakLive) peakLive = live;
      },
      onLine: (o, line) => {
        if (!o) {
          bad.unparsable++;
          return;
        }
        if (o.type === "joined") {
          st.joins++;
          joined.add(o.room);
          if (opts.slow) { // stops reading; resumes at the end of its life
            ws.sock.pause();
            return;
          }
          if (joined.size === 1 && !opts.reader && Math.random() < 0.5) {
            ws.send({ type: "join", room: pick(rooms) });
          }
        } else if (o.type === "message") st.delivered++;
        else if (o.type === "ack") st.acks++;
        else if (o.type === "left") {
          st.leaves++;
          joined.delete(o.room);
        } else if (o.type === "error") countErrorFrame(o, line);
      },
      onEnd: (why, code) => {
        if (ws.closing) code = null; // the answer to our own close
        if (code === 4001) st.slow_4001++;
        else if (code !== null && !opts.slow) {
          st.unexpected_close[code] = (st.unexpected_close[code] || 0) + 1;
        } else if (code !== null && opts.slow) st.slow_other[code] = (st.slow_other[code] || 0) + 1;
        if (!open && !finished) st.failed[why] = (st.failed[why] || 0) + 1;
        finish();
      },
    });
    if (opts.slow || opts.reader) {
      later(opts.life, () => {
        if (opts.slow) ws.sock.resume(); // reads what was queued (a 4001 close if the server gave up on it)
        later(2000, () => {
          ws.close();
          finish();
        });
      });
      return;
    }
    const life = (args["life-min"] + Math.random() * (args["life-max"] - args["life-min"])) * 1000;
    const every = args["send-every"] * 1000 * (0.5 + Math.random());
    sendTimer = setInterval(() => {
      if (!open || !joined.size) return;
      ws.send({
        type: "send",
        room: pick([...joined]),
        text: "churn " + n + " " + "y".repeat(80),
        cid: `c${n}-${st.sends}`,
      });
      st.sends++;
    }, every);
    if (Math.random() < 0.3) {
      later(life / 2, () => {
        const r = [...joined][1];
        if (!open || !r) return;
        joined.delete(r); // no send to it from now on (else a send could cross the leave: not_member)
        ws.send({ type: "leave", room: r });
      });
    }
    later(life, () => {
      if (Math.random() < 0.5) {
        st.clean++;
        ws.close();
      } else {
        st.abrupt++;
        ws.drop();
        ws.end("dropped by us", null);
      }
      finish();
    });
  }

  // hot room: one publisher of long messages, a few reading members, and the slow consumers
  const hotPub = new Ws(`/ws?room=hot&name=hotpub`, {
    onOpen: () => {},
    onLine: (o, line) => {
      if (o?.type === "error") countErrorFrame(o, line);
    },
    onEnd: (_why, code) => {
      if (code !== null && !hotPub.closing) st.unexpected_close[code] = (st.unexpected_close[code] || 0) + 1;
    },
  });
  const hotText = "h".repeat(Math.max(1, args["hot-chars"] - 20));
  const hotTimer = setInterval(() => {
    if (hotPub.state === 2) {
      hotPub.send({ type: "send", room: "hot", text: `${st.hot_sent} ${hotText}` });
      st.hot_sent++;
    }
  }, 1000 / args["hot-rate"]);
  for (let i = 0; i < args["hot-readers"]; i++) {
    churner({ room: "hot", reader: true, life: end - Date.now() - 3000 });
  }
  const slowTimer = setInterval(() => {
    if (Date.now() + args["slow-life"] * 1000 > end) return;
    st.slow++;
    churner({ room: "hot", slow: true, life: args["slow-life"] * 1000 });
  }, args["slow-every"] * 1000);
  const arrTimer = setInterval(() => {
    if (Date.now() < end - 1000) churner();
  }, 1000 / args.arrivals);
  const t0 = Date.now();
  while (Date.now() < end) await sleep(200);
  clearInterval(arrTimer);
  clearInterval(slowTimer);
  clearInterval(hotTimer);
  await sleep(3500); // the last clients and readers close
  hotPub.close();
  await sleep(1200);
  clearTimeout(HARD);
  emitLine({
    minutes: args.minutes,
    secs: Math.round((Date.now() - t0) / 1000),
    peak_live: peakLive,
    ...st,
    error_frames: bad.errorFrames,
    first_error: bad.firstError,
    unparsable: bad.unparsable,
    lg_runtime: RUNTIME,
  });
  for (const t of timers) clearTimeout(t);
  setTimeout(() => process.exit(0), 200);
}

/** S5: see the header. Every connection joins room "big" through `?room=`. */
async function fill() {
  const N = args.n, room = "big";
  const conns = [];
  /** Characters of the lines received while filling, by type (the talkers' messages apart). */
  const byType = {};
  let counting = false;
  const open = (name, onLine) =>
    new Promise((resolve) => {
      let joined = false;
      const ws = new Ws(`/ws?room=${room}&name=${name}`, {
        onOpen() {},
        onLine(o, line) {
          if (!o) return void bad.unparsable++;
          if (counting) byType[o.type] = (byType[o.type] || 0) + line.length + 1;
          if (o.type === "error") countErrorFrame(o, line);
          if (o.type === "joined" && !joined) joined = true, resolve(ws);
          onLine?.(o);
        },
        onEnd(_why, code) {
          if (code !== null) bad.closeCodes[code] = (bad.closeCodes[code] || 0) + 1;
          if (!joined) joined = true, resolve(null);
        },
      });
      conns.push(ws);
    });
  // The talkers join first, then talk all through the fill.
  const sentAt = new Map();
  const lat = [];
  let talking = true;
  const talkers = await Promise.all(Array.from({ length: args.talkers }, (_, i) =>
    open(`talker${i}`, (o) => {
      if (o.type !== "message" || o.from !== `talker${i}` || !sentAt.has(o.cid)) return;
      if (talking) lat.push(performance.now() - sentAt.get(o.cid));
      sentAt.delete(o.cid);
    })));
  let k = 0;
  const talk = setInterval(() => {
    talkers.forEach((t, i) => {
      if (!t) return;
      const cid = `t${i}-${k}`;
      sentAt.set(cid, performance.now());
      t.send({ type: "send", room, text: `message ${k} from talker ${i}`, cid });
    });
    k++;
  }, args["talk-every"]);
  const rx0 = rxBytes;
  counting = true;
  const t0 = performance.now();
  let joined = 0, failed = 0;
  const arrivals = [];
  // Steady arrivals: every 10 ms the joins due by then.
  for (let i = 0; i < N; i++) {
    const due = t0 + (i * 1000) / args.rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    arrivals.push(open(`f${i}`).then((ws) => (ws ? joined++ : failed++)));
  }
  const deadline = sleep(args["fill-timeout"] * 1000).then(() => "timeout");
  const end = await Promise.race([Promise.all(arrivals).then(() => "done"), deadline]);
  const fillMs = performance.now() - t0;
  talking = false;
  clearInterval(talk);
  // What the fill still sends (grouped presence, counts) arrives within a second or two.
  await sleep(1500);
  counting = false;
  const rx = rxBytes - rx0;
  lat.sort((a, b) => a - b);
  clearTimeout(HARD);
  emitLine({
    n: N,
    rate: args.rate,
    talkers: args.talkers,
    joined,
    failed,
    end,
    fill_ms: Math.round(fillMs),
    rx_bytes: rx,
    bytes_per_join: Math.round(rx / Math.max(1, joined)),
    chars_by_type: byType,
    // Everything but the talkers' messages (which every member gets, big room or not), per join.
    chars_per_join_no_msgs: Math.round(
      Object.entries(byType).reduce((n, [t, c]) => (t === "message" ? n : n + c), 0) / Math.max(1, joined),
    ),
    messages_timed: lat.length,
    p50_ms: ms1(pct(lat, 0.5)),
    p99_ms: ms1(pct(lat, 0.99)),
    error_frames: bad.errorFrames,
    first_error: bad.firstError,
    close_codes: bad.closeCodes,
    unparsable: bad.unparsable,
    lg_runtime: RUNTIME,
  });
  for (const ws of conns) ws.drop();
  setTimeout(() => process.exit(0), 200);
}

// ---------------------------------------------------------------- S3-100k: a crowd of idle members

/** Loopback source address of crowd member `g`: `per` members share one, 127.1.0.1 upwards. */
function sourceAddress(g, per) {
  const j = Math.floor(g / per);
  return `127.${1 + Math.floor(j / 64000)}.${Math.floor((j % 64000) / 250)}.${1 + (j % 250)}`;
}

/** Resolves once `path` exists (polled every 100 ms) or after `ms`; true when it exists. */
async function waitFile(path, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (fs.existsSync(path)) return true;
    await sleep(100);
  }
  return false;
}

async function crowd() {
  const N = args.n, first = args["first"], size = args["room-size"];
  const conns = new Array(N).fill(null);
  const failures = {};
  const joinMs = [];
  /** The source addresses the kernel really used (what the server sees as the peers' addresses). */
  const sources = new Set();
  let ok = 0, failed = 0, lost = 0, tFirst = 0, tLast = 0;
  let onMessage = null;
  const open = (i) =>
    new Promise((resolve) => {
      const g = first + i, room = `k${Math.floor(g / size)}`, t = performance.now();
      let joined = false;
      const ws = new Ws(`/ws?room=${room}&name=c${g}`, {
        onOpen() {},
        onLine(o, line) {
          if (!o) return void bad.unparsable++;
          if (o.type === "error") countErrorFrame(o, line);
          else if (o.type === "joined" && !joined) {
            joined = true;
            joinMs.push(performance.now() - t);
            conns[i] = ws;
            sources.add(ws.sock.localAddress);
            tLast = Date.now();
            ok++;
            resolve();
          } else if (o.type === "message" && onMessage) onMessage(i, o);
        },
        onEnd(why, code) {
          if (code !== null) bad.closeCodes[code] = (bad.closeCodes[code] || 0) + 1;
          if (joined) {
            conns[i] = null;
            lost++;
            return;
          }
          joined = true;
          failed++;
          const k = String(why).slice(0, 60);
          failures[k] = (failures[k] || 0) + 1;
          resolve();
        },
      }, sourceAddress(g, args["per-ip"]));
    });
  // A pool of --conc workers: at most that many handshakes in flight, as S3.
  tFirst = Date.now();
  let next = 0;
  const worker = async () => {
    while (next < N) await open(next++);
  };
  const all = Promise.all(Array.from({ length: Math.min(args.conc, N) }, worker));
  const end = await Promise.race([
    all.then(() => "done"),
    sleep(args["connect-timeout"] * 1000).then(() => "timeout"),
  ]);
  joinMs.sort((a, b) => a - b);
  emitLine({
    event: "connected",
    end,
    n: N,
    ok,
    failed,
    failures,
    sources: sources.size,
    t_first: tFirst,
    t_last: tLast,
    join_p50_ms: ms1(pct(joinMs, 0.5)),
    join_p99_ms: ms1(pct(joinMs, 0.99)),
    join_max_ms: ms1(joinMs.at(-1) ?? null),
  });
  const deadlineMs = args.deadline * 1000 - 10_000;
  let check = null;
  if (args.go && await waitFile(args.go, deadlineMs) && args.check) {
    // One member of the first room speaks; every open member of that room (sender included) must get it.
    const members = conns.slice(0, Math.min(size, N)).map((ws, i) => ws ? i : -1).filter((i) => i >= 0);
    const text = `crowd check ${crypto.randomBytes(6).toString("hex")}`;
    const got = new Set();
    let lastAt = 0;
    onMessage = (i, o) => {
      if (o.text !== text || got.has(i)) return;
      got.add(i);
      lastAt = performance.now();
    };
    const t0 = performance.now();
    if (members.length) {
      const from = conns[members[0]];
      from.send({ type: "send", room: `k${Math.floor(first / size)}`, text, cid: "crowd-check" });
    }
    while (got.size < members.length && performance.now() - t0 < 10_000) await sleep(5);
    check = {
      room: `k${Math.floor(first / size)}`,
      members: members.length,
      got: got.size,
      all_ms: got.size === members.length && members.length ? ms1(lastAt - t0) : null,
    };
    emitLine({ event: "checked", ...check });
  }
  if (args.stop) await waitFile(args.stop, deadlineMs);
  const open_ = conns.filter((ws) => ws && !ws.ended).length;
  clearTimeout(HARD);
  emitLine({
    n: N,
    first,
    ok,
    failed,
    failures,
    lost,
    open_at_end: open_,
    check,
    error_frames: bad.errorFrames,
    first_error: bad.firstError,
    close_codes: bad.closeCodes,
    unparsable: bad.unparsable,
    lg_runtime: RUNTIME,
  });
  for (const ws of conns) ws?.drop();
  setTimeout(() => process.exit(0), 200);
}

const run = { storm, soak, fill, crowd }[args.scenario];
if (!run || !args.port) {
  console.error("usage: churn.mjs --scenario storm|soak|fill|crowd --port P [...]");
  process.exit(2);
}
run().catch((e) => {
  emitLine({ error: String(e && e.stack || e) });
  process.exit(1);
});

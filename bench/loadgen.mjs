// deno-lint-ignore-file
// deno-fmt-ignore-file
// Copied unchanged (only these 4 header lines added) from /work/shared/peers/loadgen.mjs
// (the shared side-by-side harness, read-only). Re-copy it from there rather than editing it here.
// Load generator for the chat peers. Runs under Node (default), Bun or Deno.
// With `--proto project` it speaks the chat service's wire protocol: connect to /ws?room=R&name=N, send
// {"type":"send","room":R,"text":T}, count `message` deliveries in frames that may hold several
// "\n"-separated JSON messages, ignore welcome/joined/ack/presence/typing, count `error` frames.
// The peers and the service are measured by the same code in the same run.
// One process, meant to be pinned to one core (taskset -c 1). All traffic goes to 127.0.0.1 only.
// Every phase is bounded in time; the process always exits by itself (hard deadline below).
//
//   node loadgen.mjs --scenario s1|s2|s3 --port P [--proto chat|socketio] [--client raw|ws|native]
//                    [--server-pid PID] [--label NAME] [...scenario knobs, see DEFAULTS]
//
// Prints exactly one JSON line (the result) on stdout; diagnostics go to stderr.
import net from "node:net";
import crypto from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";

const DEFAULTS = {
  scenario: "s1", port: 9001, host: "127.0.0.1", proto: "chat", client: "raw", label: "",
  "server-pid": 0, "path-template": "", // e.g. "/ws?room={room}&name={name}" (TODO for --extra servers)
  n: 100, w: 16, dur: 10, warm: 2, drain: 3, "msg-timeout": 5, // s1
  rooms: 100, "per-room": 10, rate: 2, // s2
  conns: 10000, conc: 200, "hs-timeout": 5, // s3
  "connect-conc": 100, "connect-timeout": 30, deadline: 120,
};
const args = { ...DEFAULTS };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (!a.startsWith("--")) continue;
  const k = a.slice(2), v = process.argv[i + 1];
  if (!(k in DEFAULTS)) { console.error("unknown option " + a); process.exit(2); }
  args[k] = typeof DEFAULTS[k] === "number" ? Number(v) : v;
  i++;
}
const RUNTIME = typeof Bun !== "undefined" ? "bun " + Bun.version
  : typeof Deno !== "undefined" ? "deno " + Deno.version.deno : "node " + process.versions.node;
const log = (...a) => console.error(`[loadgen ${args.label || args.scenario}]`, ...a);

// Hard deadline: whatever happens, the process ends.
const HARD = setTimeout(() => { emit({ error: "hard deadline reached" }); process.exit(3); }, args.deadline * 1000);

const now = () => performance.now() * 1000; // microseconds, monotonic, process-local clock
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------- /proc helpers ----------
function procCpuTicks(pid) { // utime+stime of all threads and of its child processes, in clock ticks (100 Hz)
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    let children = [];
    try { children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ").filter(Boolean); } catch { /* none */ }
    return Number(f[11]) + Number(f[12]) + children.reduce((n, c) => n + (procCpuTicks(Number(c)) || 0), 0);
  } catch { return NaN; }
}
function procRssKiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : NaN;
  } catch { return NaN; }
}
function coreTicks() { // per-core [busy, total, steal] from /proc/stat; busy includes softirq (loopback TCP work)
  const out = {};
  try {
    for (const line of fs.readFileSync("/proc/stat", "utf8").split("\n")) {
      const m = /^cpu(\d+) (.*)$/.exec(line);
      if (!m) continue;
      const v = m[2].trim().split(/\s+/).map(Number); // user nice system idle iowait irq softirq steal
      const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
      out[m[1]] = [total - v[3] - v[4], total, v[7]];
    }
  } catch {}
  return out;
}
const SPID = args["server-pid"] || 0;
function cpuSnap() { return { t: now(), srv: SPID ? procCpuTicks(SPID) : NaN, lg: procCpuTicks(process.pid), cores: coreTicks() }; }
function cpuPct(a, b) {
  const secs = (b.t - a.t) / 1e6;
  const core = (k) => { const x = a.cores[k], y = b.cores[k]; return x && y ? round1(((y[0] - x[0]) / (y[1] - x[1])) * 100) : null; };
  const steal = (k) => { const x = a.cores[k], y = b.cores[k]; return x && y ? round1(((y[2] - x[2]) / (y[1] - x[1])) * 100) : null; };
  return { srv_cpu: round1(((b.srv - a.srv) / 100 / secs) * 100), lg_cpu: round1(((b.lg - a.lg) / 100 / secs) * 100),
    lg_cpu_s: (b.lg - a.lg) / 100, core0_busy: core("0"), core1_busy: core("1"), steal0: steal("0"), steal1: steal("1") };
}
const round1 = (x) => Math.round(x * 10) / 10;

// ---------- latency histogram (µs, ~0.1% precision) ----------
class Hist {
  constructor() { this.c = new Uint32Array(2048 + 21 * 1024); this.n = 0; this.max = 0; }
  add(v) {
    v = v < 0 ? 0 : v > 2147483647 ? 2147483647 : v | 0;
    let idx;
    if (v < 2048) idx = v;
    else { const e = 31 - Math.clz32(v); idx = 2048 + (e - 11) * 1024 + ((v >>> (e - 10)) & 1023); }
    this.c[idx]++; this.n++; if (v > this.max) this.max = v;
  }
  static value(idx) {
    if (idx < 2048) return idx;
    const k = idx - 2048, e = 11 + (k >> 10), m = k & 1023;
    return (1024 + m) * 2 ** (e - 10);
  }
  pct(p) {
    if (!this.n) return NaN;
    const target = Math.max(1, Math.ceil(p * this.n));
    let acc = 0;
    for (let i = 0; i < this.c.length; i++) { acc += this.c[i]; if (acc >= target) return Hist.value(i); }
    return this.max;
  }
  summary() { // milliseconds
    const ms = (x) => Math.round(x / 10) / 100;
    return { lat_n: this.n, p50_ms: ms(this.pct(0.5)), p99_ms: ms(this.pct(0.99)), max_ms: ms(this.max) };
  }
}

// ---------- message format ----------
// Text is exactly 100 bytes: "<seq>:<sendMicros>:xxxx...". The receiver extracts seq and send time by a byte
// scan after the first `"text":"` (no full JSON.parse); 1 in 64 deliveries is fully JSON.parse'd and validated.
const PAD = "x".repeat(100);
function makeText(seq, t) { const h = seq + ":" + Math.floor(t) + ":"; return h + PAD.slice(h.length); }
// --proto project: {"type":"send","room":R,"text":T} (room names here need no JSON escaping).
const PROJECT = args.proto === "project";
function makeFrameText(seq, t, room) {
  const text = makeText(seq, t);
  if (PROJECT) return '{"type":"send","room":"' + room + '","text":"' + text + '"}';
  return args.proto === "socketio" ? '42["chat",{"text":"' + text + '"}]' : '{"text":"' + text + '"}';
}
// Project nicknames get a prefix (some name rules want 3+ characters); validation expects it.
const NAME_PREFIX = PROJECT ? "lg" : "";
const MARK_S = '"text":"';
const MSG_HEAD = Buffer.from('{"type":"message"');
const TYPE_MSG = Buffer.from('"type":"message"');
const TYPE_ANY = Buffer.from('"type":"');
const MARK_B = Buffer.from(MARK_S);

// ---------- stats shared by all scenarios ----------
const st = { recv: 0, bad: 0, order: 0, validated: 0, invalid: 0, chunks: 0, closedEarly: 0, firstInvalid: null,
  projErrors: 0, firstError: null, closeCodes: {} };
let onDelivery = (_c, _seq, _ts, _t) => {};
let expectFrom = (_seq) => null; // expected sender name for a seq (validation)
let sample = 0;

function validate(c, s, seq) {
  st.validated++;
  let o;
  try {
    if (args.proto === "socketio") { const a = JSON.parse(s.slice(2)); if (a[0] !== "message") throw 0; o = a[1]; }
    else o = JSON.parse(s);
  } catch { o = null; }
  const from = expectFrom(seq);
  const ok = o && o.type === "message" && o.room === c.room && typeof o.ts === "number" &&
    (PROJECT ? typeof o.seq === "number" : typeof o.id === "number") &&
    typeof o.text === "string" && o.text.length === 100 && o.text.startsWith(seq + ":") &&
    (from === null || o.from === NAME_PREFIX + from);
  if (!ok) { st.invalid++; if (!st.firstInvalid) st.firstInvalid = s.slice(0, 300); }
}

function onMsgBuf(c, d, ps, pe, t) {
  const i = d.indexOf(MARK_B, ps);
  if (i < 0 || i >= pe) { st.bad++; return; }
  let p = i + 8, seq = 0, ts = 0, ch;
  while (p < pe && (ch = d[p++]) !== 58) seq = seq * 10 + (ch - 48);
  while (p < pe && (ch = d[p++]) !== 58) ts = ts * 10 + (ch - 48);
  if (ch !== 58) { st.bad++; return; }
  st.recv++;
  onDelivery(c, seq, ts, t);
  if ((++sample & 63) === 0) validate(c, d.toString("utf8", ps, pe), seq);
}
function onMsgStr(c, s, t) {
  const i = s.indexOf(MARK_S);
  if (i < 0) { st.bad++; return; }
  let p = i + 8, seq = 0, ts = 0, ch = 0;
  const pe = s.length;
  while (p < pe && (ch = s.charCodeAt(p++)) !== 58) seq = seq * 10 + (ch - 48);
  while (p < pe && (ch = s.charCodeAt(p++)) !== 58) ts = ts * 10 + (ch - 48);
  if (ch !== 58) { st.bad++; return; }
  st.recv++;
  onDelivery(c, seq, ts, t);
  if ((++sample & 63) === 0) validate(c, s, seq);
}

// ---------- clients ----------
function pathFor(room, name) {
  const r = encodeURIComponent(room), n = encodeURIComponent(NAME_PREFIX + name);
  if (args["path-template"]) return args["path-template"].replace("{room}", r).replace("{name}", n);
  if (args.proto === "socketio") return `/socket.io/?EIO=4&transport=websocket&room=${r}&name=${n}`;
  return `/ws?room=${r}&name=${n}`;
}

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
let maskPool = Buffer.alloc(0), maskOff = 0;
function maskKey() {
  if (maskOff + 4 > maskPool.length) { maskPool = crypto.randomBytes(65536); maskOff = 0; }
  const k = maskOff; maskOff += 4; return k;
}

// Minimal RFC 6455 client on node:net: verifies 101 + Sec-WebSocket-Accept, masks what it sends,
// parses unmasked server frames (7/16/64-bit lengths, fragmentation), answers ping, handles close.
// With proto=socketio it also speaks engine.io v4 / socket.io v5 over that websocket (open "0",
// connect "40", ping "2"/pong "3", events "42[...]") -- no polling, no binary, main namespace only.
class RawWS {
  constructor(room, name, onOpen, onFail) {
    this.room = room; this.name = name; this.onOpen = onOpen; this.onFail = onFail;
    this.state = 0; this.buf = null; this.frag = null; this.lastSeq = -1; this.done = false;
    this.key = crypto.randomBytes(16).toString("base64");
    const path = pathFor(room, name);
    const req = `GET ${path} HTTP/1.1\r\nHost: ${args.host}:${args.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${this.key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
    if (args.client === "bunraw") { // Bun's own TCP API (Bun.connect), same framing code
      this.pend = null;
      Bun.connect({ hostname: args.host, port: args.port, socket: {
        open: (bs) => { this.bs = bs; if (this.done) { bs.end(); return; } if (bs.setNoDelay) bs.setNoDelay(true); this.write(Buffer.from(req)); this.state = 1; },
        data: (bs, d) => this.data(d),
        drain: (bs) => { if (this.pend) { const p = this.pend; this.pend = null; this.write(p); } },
        close: () => this.fail("closed"),
        error: (bs, e) => this.fail(e && (e.code || e.message) || "error"),
        connectError: (bs, e) => this.fail(e && (e.code || e.message) || "connect error"),
      } }).catch((e) => this.fail(e && (e.code || e.message) || "connect error"));
      return;
    }
    const s = (this.sock = net.connect({ host: args.host, port: args.port }));
    s.setNoDelay(true);
    s.on("connect", () => { s.write(req); this.state = 1; });
    s.on("data", (d) => this.data(d));
    s.on("error", (e) => this.fail(e.code || e.message));
    s.on("close", () => this.fail("closed"));
  }
  write(buf) {
    if (this.sock) { this.sock.write(buf); return; }
    if (!this.bs) return;
    if (this.pend) { this.pend = Buffer.concat([this.pend, buf]); return; }
    const n = this.bs.write(buf);
    if (n < buf.length) this.pend = Buffer.from(buf.subarray(n < 0 ? 0 : n));
  }
  destroy() { if (this.sock) this.sock.destroy(); else if (this.bs) this.bs.terminate ? this.bs.terminate() : this.bs.end(); }
  fail(why) {
    if (this.done) return;
    this.done = true;
    if (this.readyTimer) clearTimeout(this.readyTimer);
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    if (this.state === 3) st.closedEarly++;
    this.state = 4;
    this.destroy();
    if (this.onFail) this.onFail(this, why);
  }
  ready() {
    if (this.readyTimer) { clearTimeout(this.readyTimer); this.readyTimer = null; }
    if (this.state >= 3) return;
    this.state = 3; const f = this.onOpen; this.onOpen = null; if (f) f(this);
  }
  data(d) {
    const t = now();
    st.chunks++;
    if (this.buf) { d = Buffer.concat([this.buf, d]); this.buf = null; }
    let off = 0;
    const len = d.length;
    if (this.state === 1) {
      const i = d.indexOf("\r\n\r\n");
      if (i < 0) { this.buf = Buffer.from(d); return; }
      const head = d.toString("latin1", 0, i);
      if (!head.startsWith("HTTP/1.1 101")) return this.fail("status " + head.split("\r\n")[0]);
      const m = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head);
      if (!m || m[1] !== crypto.createHash("sha1").update(this.key + GUID).digest("base64")) return this.fail("bad accept");
      off = i + 4;
      this.state = 2;
      if (PROJECT && args.scenario !== "s3") {
        // ready when the server says the room is joined; fall back to welcome + 300 ms, then 2 s after 101
        this.readyTimer = setTimeout(() => this.ready(), 2000);
      } else if (args.proto !== "socketio") this.ready();
    }
    while (len - off >= 2) {
      const b0 = d[off], b1 = d[off + 1];
      if (b1 & 0x80) return this.fail("masked server frame");
      let plen = b1 & 127, hl = 2;
      if (plen === 126) { if (len - off < 4) break; plen = d.readUInt16BE(off + 2); hl = 4; }
      else if (plen === 127) { if (len - off < 10) break; plen = Number(d.readBigUInt64BE(off + 2)); hl = 10; }
      if (len - off < hl + plen) break;
      const ps = off + hl, pe = ps + plen, op = b0 & 15, fin = b0 & 0x80;
      off = pe;
      if (op === 1 || op === 2) {
        if (fin) this.text(d, ps, pe, t); else this.frag = [Buffer.from(d.subarray(ps, pe))];
      } else if (op === 0) {
        if (!this.frag) return this.fail("stray continuation");
        this.frag.push(Buffer.from(d.subarray(ps, pe)));
        if (fin) { const b = Buffer.concat(this.frag); this.frag = null; this.text(b, 0, b.length, t); }
      } else if (op === 9) this.frame(10, d.subarray(ps, pe));
      else if (op === 8) {
        const code = pe - ps >= 2 ? d.readUInt16BE(ps) : 1005;
        st.closeCodes[code] = (st.closeCodes[code] || 0) + 1;
        this.frame(8, Buffer.alloc(0)); return this.fail("close frame " + code);
      }
    }
    if (off < len) this.buf = Buffer.from(d.subarray(off)); // copy: the runtime may reuse d
  }
  text(d, ps, pe, t) {
    if (PROJECT) { // several JSON messages per frame, one per line
      let ls = ps;
      while (ls < pe) {
        let le = d.indexOf(10, ls);
        if (le < 0 || le > pe) le = pe;
        if (le > ls) this.projectLine(d, ls, le, t);
        ls = le + 1;
      }
      return;
    }
    if (args.proto === "socketio") {
      const c0 = d[ps], c1 = pe - ps > 1 ? d[ps + 1] : 0;
      if (c0 === 0x34 && c1 === 0x32) return onMsgBuf(this, d, ps, pe, t); // "42[...]" event
      if (c0 === 0x32) return this.frame(1, Buffer.from("3")); // engine.io ping -> pong
      if (c0 === 0x30) return this.frame(1, Buffer.from("40")); // engine.io open -> socket.io CONNECT
      if (c0 === 0x34 && c1 === 0x30) return this.ready(); // socket.io CONNECT ack
      if (c0 === 0x34 && c1 === 0x34) return this.fail("socket.io connect_error");
      return; // other control packets are ignored
    }
    onMsgBuf(this, d, ps, pe, t);
  }
  projectLine(d, ls, le, t) {
    // fast paths: a line that starts with {"type":"message", or whose only "type":"..." is "message" (a
    // `joined` or `history` line has its own type besides its embedded messages'); anything else is rare
    // (acks, presence) and JSON-parsed
    if (le - ls > MSG_HEAD.length && d[ls + 9] === 0x6d && d.compare(MSG_HEAD, 0, MSG_HEAD.length, ls, ls + MSG_HEAD.length) === 0) {
      return onMsgBuf(this, d, ls, le, t);
    }
    const i = d.indexOf(TYPE_ANY, ls);
    if (i >= 0 && i + TYPE_MSG.length <= le && d.compare(TYPE_MSG, 0, TYPE_MSG.length, i, i + TYPE_MSG.length) === 0) {
      const j = d.indexOf(TYPE_ANY, i + TYPE_ANY.length);
      if (j < 0 || j >= le) return onMsgBuf(this, d, ls, le, t);
    }
    let o;
    try { o = JSON.parse(d.toString("utf8", ls, le)); } catch { st.bad++; return; }
    if (!o || typeof o !== "object") { st.bad++; return; }
    switch (o.type) {
      case "message": return onMsgBuf(this, d, ls, le, t);
      case "joined": if (o.room === this.room) this.ready(); return;
      case "welcome":
        if (this.state < 3 && !this.welcomeTimer) this.welcomeTimer = setTimeout(() => this.ready(), 300);
        return;
      case "error":
        st.projErrors++;
        if (!st.firstError) st.firstError = d.toString("utf8", ls, Math.min(le, ls + 200));
        return;
      default: return; // ack, presence, typing, pong, nick ...
    }
  }
  frame(op, payload) {
    if (this.state >= 4) return;
    const n = payload.length, hl = n < 126 ? 2 : n < 65536 ? 4 : 10;
    const f = Buffer.allocUnsafe(hl + 4 + n);
    f[0] = 0x80 | op;
    if (n < 126) f[1] = 0x80 | n;
    else if (n < 65536) { f[1] = 0x80 | 126; f.writeUInt16BE(n, 2); }
    else { f[1] = 0x80 | 127; f.writeBigUInt64BE(BigInt(n), 2); }
    const k = maskKey(), mo = hl;
    f[mo] = maskPool[k]; f[mo + 1] = maskPool[k + 1]; f[mo + 2] = maskPool[k + 2]; f[mo + 3] = maskPool[k + 3];
    for (let i = 0; i < n; i++) f[mo + 4 + i] = payload[i] ^ f[mo + (i & 3)];
    this.write(f);
  }
  send(str) { this.frame(1, Buffer.from(str)); }
  close() { this.done = true; this.destroy(); }
}

// Library clients, only for the client-overhead comparison (chat protocol only).
let WSLib = null;
class LibWS {
  constructor(room, name, onOpen, onFail) {
    this.room = room; this.name = name; this.lastSeq = -1; this.done = false; this.opened = false; this.onFail = onFail;
    const url = `ws://${args.host}:${args.port}${pathFor(room, name)}`;
    if (args.client === "ws") {
      if (!WSLib) WSLib = createRequire(new URL("./.cache/package.json", import.meta.url))("ws");
      const ws = (this.ws = new WSLib(url, { perMessageDeflate: false }));
      ws.on("message", (data, isBinary) => { st.chunks++; onMsgBuf(this, data, 0, data.length, now()); });
      ws.on("open", () => { this.opened = true; onOpen(this); });
      ws.on("error", (e) => this.fail(e.message));
      ws.on("close", () => this.fail("closed"));
    } else { // native: the runtime's global WebSocket (Bun, Deno)
      const ws = (this.ws = new WebSocket(url));
      ws.onmessage = (e) => { st.chunks++; onMsgStr(this, e.data, now()); };
      ws.onopen = () => { this.opened = true; onOpen(this); };
      ws.onerror = () => this.fail("error");
      ws.onclose = () => this.fail("closed");
    }
  }
  fail(why) { if (this.done) return; this.done = true; if (this.opened) st.closedEarly++; try { this.ws.close(); } catch {} this.onFail(this, why); }
  send(str) { this.ws.send(str); }
  close() { this.done = true; try { this.ws.close(); } catch {} }
}
const Client = args.client === "raw" || args.client === "bunraw" ? RawWS : LibWS;

// Open n clients with at most `conc` handshakes in flight. Resolves when all settled or the time limit hits.
function connectMany(n, spec, conc, timeoutS, stopAfterFailures = Infinity) {
  return new Promise((resolve) => {
    const clients = new Array(n).fill(null);
    let next = 0, inflight = 0, ok = 0, failed = 0, finished = false, lastOk = 0;
    const errs = {};
    const t0 = now();
    const finish = () => {
      if (finished) return; finished = true; clearTimeout(timer);
      resolve({ clients, ok, failed, errs, secs: (now() - t0) / 1e6, okSecs: ((lastOk || now()) - t0) / 1e6, stopped: next < n });
    };
    const timer = setTimeout(() => { for (const c of clients) if (c && !c.opened3) c.close(); failed += n - ok - failed; errs.timeout = (errs.timeout || 0) + 1; finish(); }, timeoutS * 1000);
    const launch = () => {
      while (inflight < conc && next < n && failed < stopAfterFailures) {
        const i = next++; const { room, name } = spec(i);
        inflight++;
        let hsTimer = null;
        const c = new Client(room, name, (c) => {
          clearTimeout(hsTimer); c.opened3 = true; inflight--; ok++; clients[i] = c; lastOk = now();
          if (ok + failed === n) finish(); else launch();
        }, (c, why) => {
          if (c.opened3) return; // closed after open: counted by st.closedEarly
          clearTimeout(hsTimer); inflight--; failed++; errs[why] = (errs[why] || 0) + 1;
          if (ok + failed === n || (failed >= stopAfterFailures && inflight === 0)) finish(); else launch();
        });
        hsTimer = setTimeout(() => c.fail("handshake timeout"), args["hs-timeout"] * 1000);
      }
      if (failed >= stopAfterFailures && inflight === 0) finish();
    };
    launch();
  });
}

function emit(obj) {
  const out = { label: args.label, scenario: args.scenario, client: args.client, lg_runtime: RUNTIME, ...obj };
  if (PROJECT) Object.assign(out, { proj_errors: st.projErrors, first_error: st.firstError, close_codes: st.closeCodes });
  process.stdout.write(JSON.stringify(out) + "\n");
}
function closeAll(clients) { for (const c of clients) if (c) c.close(); }
function finishRun(obj, clients) {
  clearTimeout(HARD);
  emit(obj);
  closeAll(clients);
  setTimeout(() => process.exit(0), 200);
}

// ---------- S1: fan-out ----------
async function s1() {
  const N = args.n, W = args.w, expected = N + 1, room = "r1";
  const conn = await connectMany(N + 1, (i) => ({ room, name: i === N ? "pub" : "s" + i }), args["connect-conc"], args["connect-timeout"]);
  if (conn.failed) return finishRun({ N, error: `connect failed ${conn.failed}/${N + 1}`, errs: conn.errs }, conn.clients);
  const clients = conn.clients, pub = clients[N];
  expectFrom = () => "pub";
  const RING = 8192, seqAt = new Int32Array(RING).fill(-1), cnt = new Int32Array(RING), sentAt = new Float64Array(RING);
  const outstanding = new Set();
  let nextSeq = 0, inflight = 0, sending = true, measuring = false, winRecv = 0, completed = 0, abandoned = 0;
  const hist = new Hist();
  const sendOne = () => {
    const seq = nextSeq++, t = now(), idx = seq & (RING - 1);
    seqAt[idx] = seq; cnt[idx] = 0; sentAt[idx] = t; inflight++; outstanding.add(seq);
    pub.send(makeFrameText(seq, t, pub.room));
  };
  const pump = () => { while (sending && inflight < W) sendOne(); };
  onDelivery = (c, seq, ts, t) => {
    if (seq <= c.lastSeq) st.order++;
    c.lastSeq = seq;
    if (measuring) { winRecv++; hist.add(t - ts); }
    const idx = seq & (RING - 1);
    if (seqAt[idx] === seq && ++cnt[idx] === expected) {
      seqAt[idx] = -1; inflight--; completed++; outstanding.delete(seq); pump();
    }
  };
  const reaper = setInterval(() => { // a message not delivered to everyone within msg-timeout frees its slot
    const lim = now() - args["msg-timeout"] * 1e6;
    for (const seq of outstanding) {
      const idx = seq & (RING - 1);
      if (sentAt[idx] < lim) { seqAt[idx] = -1; outstanding.delete(seq); inflight--; abandoned++; }
    }
    pump();
  }, 250);
  pump();
  await sleep(args.warm * 1000);
  measuring = true; winRecv = 0;
  const c0 = cpuSnap(), sent0 = nextSeq;
  await sleep(args.dur * 1000);
  measuring = false;
  const c1 = cpuSnap(), sentWin = nextSeq - sent0, winRecvEnd = winRecv;
  sending = false;
  const tEnd = now() + args.drain * 1e6;
  while (inflight > 0 && now() < tEnd) await sleep(20);
  clearInterval(reaper);
  await sleep(100);
  const secs = (c1.t - c0.t) / 1e6;
  const drops = nextSeq * expected - st.recv;
  finishRun({
    N, W, dur: round1(secs), deliveries_s: Math.round(winRecvEnd / secs), msgs_s: Math.round(sentWin / secs),
    ...hist.summary(), ...cpuPct(c0, c1), us_per_delivery_lg: round1((cpuPct(c0, c1).lg_cpu_s * 1e6) / winRecvEnd),
    us_per_delivery_core1: Math.round(((cpuPct(c0, c1).core1_busy / 100) * secs * 1e6 / winRecvEnd) * 100) / 100,
    srv_us_per_delivery: Math.round(((c1.srv - c0.srv) / 100) * 1e6 / winRecvEnd * 100) / 100,
    sent: nextSeq, received: st.recv, drops, abandoned, order_err: st.order, bad: st.bad, validated: st.validated,
    invalid: st.invalid, first_invalid: st.firstInvalid, closed_early: st.closedEarly,
    deliveries_per_read: round1(st.recv / st.chunks), srv_rss_mib: SPID ? round1(procRssKiB(SPID) / 1024) : null,
  }, clients);
}

// ---------- S2: chatter ----------
async function s2() {
  const R = args.rooms, K = args["per-room"], n = R * K, rate = args.rate, totalRate = n * rate;
  const conn = await connectMany(n, (i) => ({ room: "r" + Math.floor(i / K), name: "c" + i }), args["connect-conc"], args["connect-timeout"]);
  if (conn.failed) return finishRun({ rooms: R, per_room: K, rate, error: `connect failed ${conn.failed}/${n}`, errs: conn.errs }, conn.clients);
  const clients = conn.clients;
  expectFrom = (seq) => "c" + (seq % n);
  const hist = new Hist();
  let measuring = false, winRecv = 0, sent = 0, maxLag = 0;
  onDelivery = (c, seq, ts, t) => { if (measuring) { winRecv++; hist.add(t - ts); } };
  const t0 = now(), stopAt = t0 + (args.warm + args.dur) * 1e6;
  const tick = setInterval(() => { // open loop: client (k mod n) sends message k at t0 + k/totalRate
    const t = now();
    const target = Math.floor(((Math.min(t, stopAt) - t0) / 1e6) * totalRate);
    const lag = target - sent; if (lag > maxLag) maxLag = lag;
    while (sent < target) { const seq = sent++; const c = clients[seq % n]; c.send(makeFrameText(seq, now(), c.room)); }
    if (t >= stopAt) clearInterval(tick);
  }, 2);
  await sleep(args.warm * 1000);
  measuring = true;
  const c0 = cpuSnap(), sent0 = sent;
  await sleep(args.dur * 1000);
  measuring = false;
  const c1 = cpuSnap(), sentWin = sent - sent0, recvWin = winRecv;
  const secs = (c1.t - c0.t) / 1e6;
  while (now() < stopAt) await sleep(10);
  clearInterval(tick);
  const tEnd = now() + args.drain * 1e6;
  while (st.recv < sent * K && now() < tEnd) await sleep(20);
  const expectedWin = sentWin * K, drops = sent * K - st.recv, h = hist.summary();
  finishRun({
    rooms: R, per_room: K, rate, dur: round1(secs), offered_deliveries_s: Math.round(expectedWin / secs),
    deliveries_s: Math.round(recvWin / secs), delivered_ratio: Math.round((recvWin / expectedWin) * 1000) / 1000, ...h,
    keeps_up: drops === 0 && recvWin >= 0.98 * expectedWin && h.p99_ms < 100 && maxLag < totalRate * 0.05,
    lg_max_lag_msgs: maxLag, ...cpuPct(c0, c1), srv_us_per_delivery: Math.round(((c1.srv - c0.srv) / 100) * 1e6 / recvWin * 100) / 100, sent, received: st.recv, drops, bad: st.bad, validated: st.validated,
    invalid: st.invalid, first_invalid: st.firstInvalid, closed_early: st.closedEarly,
    srv_rss_mib: SPID ? round1(procRssKiB(SPID) / 1024) : null,
  }, clients);
}

// ---------- S3: idle connections ----------
async function s3() {
  const n = args.conns;
  await sleep(1000);
  const rss0 = SPID ? procRssKiB(SPID) : NaN;
  const c0 = cpuSnap();
  // give up once a whole concurrency window has failed (e.g. a select()-based server past FD_SETSIZE)
  const conn = await connectMany(n, (i) => ({ room: "r" + (i % 100), name: "i" + i }), args.conc, args.deadline - 20, args.conc);
  const c1 = cpuSnap();
  await sleep(2000);
  const rss1 = SPID ? procRssKiB(SPID) : NaN;
  // liveness: one message in room r0 must reach every open member of r0
  let live = null;
  const r0 = conn.clients.filter((c, i) => c && i % 100 === 0);
  if (r0.length) {
    let got = 0;
    onDelivery = () => { got++; };
    expectFrom = () => r0[0].name;
    r0[0].send(makeFrameText(0, now(), r0[0].room));
    const lim = now() + 3e6;
    while (got < r0.length && now() < lim) await sleep(20);
    live = `${got}/${r0.length}`;
  }
  finishRun({
    conns: n, ok: conn.ok, failed: conn.failed, stopped_early: conn.stopped, errs: conn.errs, secs: round1(conn.secs),
    hs_s: Math.round(conn.ok / conn.okSecs), ok_secs: round1(conn.okSecs), rss_before_mib: round1(rss0 / 1024), rss_after_mib: round1(rss1 / 1024),
    kib_per_conn: conn.ok ? round1((rss1 - rss0) / conn.ok) : null, ...cpuPct(c0, c1), room0_live: live,
    closed_early: st.closedEarly,
  }, conn.clients);
}

const run = { s1, s2, s3 }[args.scenario];
if (!run) { console.error("unknown scenario " + args.scenario); process.exit(2); }
run().catch((e) => { emit({ error: String(e && e.stack || e) }); process.exit(1); });

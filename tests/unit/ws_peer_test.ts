/** The socket adapter's framing for one connection: coalesced, one message per frame, text mode. */
import assert from "node:assert/strict";
import { Flusher, WsPeer } from "../../lib/ws.ts";
import { Metrics } from "../../lib/metrics.ts";
import { encode, encodeMessage } from "../../lib/server_messages.ts";

/** What a peer needs of a Deno socket, keeping the frames it is given. */
function fakeSocket() {
  const frames: string[] = [];
  const socket = {
    readyState: WebSocket.OPEN,
    bufferedAmount: 0,
    send: (f: string) => void frames.push(f),
    close: () => {},
  };
  return { frames, socket: socket as unknown as WebSocket };
}

const turn = () => new Promise((r) => setTimeout(r, 0));
const limits = {
  textChars: 4000,
  frameBytes: 65536,
  roomsPerConnection: 20,
  messagesPerSecond: 10,
  burst: 30,
  historyPage: 200,
  editSeconds: 900,
  searchQueryChars: 256,
  searchPage: 20,
};
const welcome = encode({
  type: "welcome",
  id: 1,
  name: "dan",
  uid: "u",
  role: "member",
  rooms: [],
  limits,
  version: 1,
  release: "0",
});
const joined = encode({
  type: "joined",
  room: "lobby",
  members: ["dan"],
  messages: [],
  lastSeq: 0,
  truncated: false,
  epoch: "e",
});
const hi = encodeMessage({ room: "lobby", seq: 1, from: "dan", text: "hi", ts: 1 });
const ack = encode({ type: "ack", cid: "c", seq: 1, ts: 1, room: "lobby" });

function peer() {
  const { frames, socket } = fakeSocket();
  const p = new WsPeer(1, socket, new Flusher(), new Metrics(), 1 << 20, () => {});
  return { frames, p };
}

Deno.test("WsPeer sends what one turn queued in one frame, or one frame each after useSingleFrames()", async () => {
  const a = peer();
  for (const l of [welcome, joined, hi]) a.p.send(l);
  await turn();
  assert.deepEqual(a.frames, [[welcome, joined, hi].join("\n")]);
  const b = peer();
  b.p.useSingleFrames();
  for (const l of [welcome, joined, hi]) b.p.send(l);
  await turn();
  assert.deepEqual(b.frames, [welcome, joined, hi]);
});

Deno.test("WsPeer.useText() turns what is still queued into lines, one a frame, and drops acks", async () => {
  const { frames, p } = peer();
  for (const l of [welcome, joined]) p.send(l);
  p.useText();
  p.send(hi);
  p.send(ack);
  await turn();
  assert.deepEqual(frames, ["* Hello, welcome: you are dan", "* you joined lobby (1 here: dan)", "dan: hi"]);
});

Deno.test("WsPeer.useText(where) after JSON went out: its lines know the name and the current room", async () => {
  const { frames, p } = peer();
  for (const l of [welcome, joined]) p.send(l);
  await turn();
  p.useText({ name: "dan", rooms: ["lobby"] });
  p.send(encode({ type: "nick", old: "dan", name: "dana" }));
  p.send(encodeMessage({ room: "lobby", seq: 2, from: "dana", text: "hi", ts: 1 }));
  await turn();
  assert.deepEqual(frames, [[welcome, joined].join("\n"), "* you are now dana", "dana: hi"]);
});

/**
 * A socket whose bufferedAmount counts its reads and, once `stalled`, grows by what is sent, as Deno's
 * does for a client that stops reading.
 */
function countingSocket() {
  const s = { reads: 0, buffered: 0, stalled: false, sends: 0, closedWith: 0 };
  const socket = {
    readyState: WebSocket.OPEN,
    get bufferedAmount() {
      s.reads++;
      return s.buffered;
    },
    send: (f: string) => {
      s.sends++;
      if (s.stalled) s.buffered += new TextEncoder().encode(f).length;
    },
    close: (code: number) => void (s.closedWith = code),
  };
  return { s, socket: socket as unknown as WebSocket };
}

Deno.test("WsPeer.flush() reads bufferedAmount only when what it sent could pass the cap, and still closes at it", async () => {
  const cap = 64 * 1024;
  const { s, socket } = countingSocket();
  const metrics = new Metrics();
  const p = new WsPeer(1, socket, new Flusher(), metrics, cap, () => {});
  // A client that reads: 500 flushes of a 120-character line (3 x 120 bytes at most each) ask once.
  const line = encodeMessage({ room: "lobby", seq: 1, from: "dan", text: "é".repeat(60), ts: 1 });
  for (let i = 0; i < 500; i++) {
    p.send(line);
    p.flush();
  }
  assert.equal(s.sends, 500);
  assert.ok(s.reads <= Math.ceil((500 * 3 * line.length) / cap), `${s.reads} reads of bufferedAmount`);
  // It stops reading: every send while the socket held at most the cap, then a close at the first
  // flush that finds more, exactly as when every flush read it.
  s.stalled = true;
  let sentOver = 0, flushes = 0;
  while (s.closedWith === 0 && flushes < 10_000) {
    const before = s.buffered, sends = s.sends;
    p.send(line);
    p.flush();
    flushes++;
    if (s.sends > sends && before > cap) sentOver++;
    if (s.closedWith !== 0) assert.ok(before > cap, `closed with ${before} bytes queued, cap ${cap}`);
  }
  assert.equal(s.closedWith, 4001);
  assert.equal(sentOver, 0);
  assert.equal(metrics.slowConsumerCloses, 1);
  await new Promise((r) => setTimeout(r, 0)); // the flusher's own turn, now with nothing to send
});

Deno.test("Flusher waits busyDelayMs for busyWindowMs after a flush to busyPeers peers, and flushes in the turn otherwise", async () => {
  const f = new Flusher({ busyDelayMs: 40, busyPeers: 3, busyWindowMs: 150 });
  const flushed: number[] = [];
  const peers = [0, 1, 2].map((i) => ({ flush: () => void flushed.push(i) }));
  const until = async (n: number) => {
    for (let i = 0; i < 200 && flushed.length < n; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(flushed.length, n);
  };
  f.mark(peers[0]);
  f.mark(peers[1]);
  await turn();
  assert.deepEqual(flushed, [0, 1]);
  for (const p of peers) f.mark(p);
  await turn();
  assert.equal(flushed.length, 5);
  const busyAt = performance.now();
  // The flushes after it wait, small ones too, and a small one does not end the spell.
  for (const n of [6, 7]) {
    const start = performance.now();
    f.mark(peers[0]);
    await turn();
    assert.equal(flushed.length, n - 1, "a flush soon after a busy one waits");
    await until(n);
    assert.ok(performance.now() - start >= 35, `waited ${performance.now() - start} ms`);
  }
  // Once the window is over, a flush goes out in its turn again.
  await new Promise((r) => setTimeout(r, Math.max(0, busyAt + 160 - performance.now())));
  f.mark(peers[1]);
  await turn();
  assert.deepEqual(flushed, [0, 1, 0, 1, 2, 0, 0, 1]);
});

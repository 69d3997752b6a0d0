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

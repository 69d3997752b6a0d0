/** Nothing lost: SIGKILL mid-stream, restart, resume, exactly-once re-sends, bad data directories. */
import assert from "node:assert/strict";
import { faultyStore, type Msg, startServer, TestClient } from "../helpers/test_server.ts";
import { runMain, spawnServer } from "../helpers/process.ts";

const LIMITS = ["--messages-per-second", "100000", "--burst", "100000", "--resume-cap", "100000"];
/** How often the crash test repeats within one test run (the closing note reports a 20-run loop). */
const CRASH_ROUNDS = Number(Deno.env.get("CRASH_ROUNDS") ?? 2);

async function connect(port: number, q: Record<string, string>): Promise<TestClient> {
  const c = new TestClient(`ws://127.0.0.1:${port}/ws?${new URLSearchParams(q)}`);
  await c.next("welcome");
  return c;
}

/**
 * Publishes with up to `window` messages in flight until `stopAfterAcks` acks are in, then
 * returns what was sent and what was acked. The caller kills the server meanwhile.
 */
function publish(c: TestClient, room: string, prefix: string, window: number, to?: string) {
  const sent: string[] = [];
  const acked = new Map<string, number>();
  let inFlight = 0;
  let stopped = false;
  const pump = () => {
    while (!stopped && inFlight < window && c.ws.readyState === WebSocket.OPEN) {
      const cid = `${prefix}-${sent.length}`;
      sent.push(cid);
      inFlight++;
      c.send(
        to
          ? { type: "send", to, text: `text of ${cid}`, cid }
          : { type: "send", room, text: `text of ${cid}`, cid },
      );
    }
  };
  c.ws.addEventListener("message", (e) => {
    for (const line of String(e.data).split("\n")) {
      const m = JSON.parse(line);
      if (m.type === "ack") acked.set(m.cid, m.seq), inFlight--;
    }
    pump();
  });
  pump();
  return { sent, acked, stop: () => stopped = true };
}

Deno.test("SIGKILL mid-stream loses no acked message; seq resumes with no gap or reuse; re-sends are exactly once", async () => {
  const dataDir = await Deno.makeTempDir();
  const allAcked = new Map<string, number>();
  let token: string | undefined;
  for (let round = 0; round < CRASH_ROUNDS; round++) {
    const server = await spawnServer(dataDir, LIMITS);
    const c = await connect(
      server.port,
      token ? { token, name: "writer", room: "" } : { name: "writer", room: "" },
    );
    token ??= c.all("welcome")[0].token;
    c.send({ type: "join", room: "crash" });
    await c.next("joined");
    const run = publish(c, "crash", `r${round}`, 32);
    // Kill at a moment that varies from round to round, while messages are in flight.
    const target = 150 + Math.floor(Math.random() * 250);
    const deadline = Date.now() + 10_000;
    while (run.acked.size < target) {
      if (Date.now() > deadline) throw new Error(`only ${run.acked.size} acks in 10 s:\n${server.output()}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    const status = await server.stop("SIGKILL");
    run.stop();
    assert.equal(status.signal, "SIGKILL");
    await c.closed;
    assert.ok(run.sent.length > run.acked.size, "some messages were still in flight");

    const again = await spawnServer(dataDir, LIMITS);
    // A restarted server has no one online: the client's token and name give it back its identity.
    const r = await connect(again.port, { token: token!, name: "writer", room: "" });
    assert.equal(r.all("welcome")[0].name, "writer");
    assert.equal(r.all("welcome")[0].token, token);
    r.send({ type: "join", room: "crash", since: 0 });
    const joined = await r.next("joined");
    const history: Msg[] = joined.messages;
    assert.equal(joined.truncated, false);
    // Gap-free from 1, in order.
    assert.deepEqual(history.map((m) => m.seq), history.map((_, i) => i + 1));
    const bySid = new Map(history.map((m) => [m.cid, m.seq]));
    for (const [cid, seq] of run.acked) {
      assert.equal(bySid.get(cid), seq, `acked ${cid} is stored with seq ${seq}`);
    }
    for (const [cid, seq] of allAcked) {
      assert.equal(bySid.get(cid), seq, `${cid} from an earlier round is intact`);
    }

    // The client never saw acks for the rest: it re-sends them all with their cids.
    const unacked = run.sent.filter((cid) => !run.acked.has(cid));
    for (const cid of unacked) r.send({ type: "send", room: "crash", text: `text of ${cid}`, cid });
    // And one it did see acked, to check the dedup answers with the original ack.
    const [oneCid, oneSeq] = [...run.acked][0];
    r.send({ type: "send", room: "crash", text: `text of ${oneCid}`, cid: oneCid });
    const acks = new Map<string, number>();
    while (acks.size < unacked.length + 1) {
      const a = await r.next("ack", () => true, 10_000);
      acks.set(a.cid, a.seq);
    }
    assert.equal(acks.get(oneCid), oneSeq);
    for (const cid of unacked) {
      if (bySid.has(cid)) {
        assert.equal(acks.get(cid), bySid.get(cid), `${cid} was stored before the kill, acked again`);
      }
    }
    r.send({ type: "history", room: "crash", limit: 200 });
    await r.next("history");
    r.send({ type: "leave", room: "crash" });
    await r.next("left");
    r.send({ type: "join", room: "crash", since: 0 });
    const after: Msg[] = (await r.next("joined")).messages;
    assert.deepEqual(after.map((m) => m.seq), after.map((_, i) => i + 1), "still gap-free");
    const cids = after.map((m) => m.cid);
    assert.equal(new Set(cids).size, cids.length, "no message appears twice");
    for (const cid of run.sent) assert.ok(cids.includes(cid), `${cid} is stored exactly once`);
    for (const m of after) allAcked.set(m.cid, m.seq);
    await r.close();
    await again.stop("SIGTERM");
  }
  await Deno.remove(dataDir, { recursive: true });
});

/** Every message of conversation `conv`, oldest first, read forward page by page. */
async function readConversation(c: TestClient, conv: string): Promise<Msg[]> {
  const all: Msg[] = [];
  for (;;) {
    c.send({ type: "history", conv, after: all.at(-1)?.seq ?? 0 });
    const page = await c.next("history", (m) => m.conv === conv, 10_000);
    all.push(...page.messages);
    if (page.complete) return all;
  }
}

Deno.test("SIGKILL mid-stream of direct messages: every acked DM is stored once, gap-free, to a person offline", async () => {
  const dataDir = await Deno.makeTempDir();
  const allAcked = new Map<string, number>();
  let token: string | undefined;
  let conv = "";
  let readerToken = "";
  // Thousands of DMs to someone who never answers: past any first-contact allowance, which is not
  // what this test is about.
  const limits = [...LIMITS, "--first-contacts", "1000000", "--first-contacts-per-ip", "1000000"];
  for (let round = 0; round < CRASH_ROUNDS; round++) {
    const server = await spawnServer(dataDir, limits);
    if (round === 0) {
      // The reader is known (the people directory) and then offline for the whole test.
      const reader = await connect(server.port, { name: "reader", room: "" });
      readerToken = reader.all("welcome")[0].token;
      await reader.close();
    }
    const c = await connect(
      server.port,
      token ? { token, name: "dmwriter", room: "" } : { name: "dmwriter", room: "" },
    );
    token ??= c.all("welcome")[0].token;
    const run = publish(c, "", `d${round}`, 32, "reader");
    const target = 150 + Math.floor(Math.random() * 250);
    const deadline = Date.now() + 10_000;
    while (run.acked.size < target) {
      if (Date.now() > deadline) throw new Error(`only ${run.acked.size} acks in 10 s:\n${server.output()}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    conv ||= c.all("ack")[0].conv;
    const status = await server.stop("SIGKILL");
    run.stop();
    assert.equal(status.signal, "SIGKILL");
    await c.closed;
    assert.ok(run.sent.length > run.acked.size, "some messages were still in flight");

    const again = await spawnServer(dataDir, limits);
    const r = await connect(again.port, { token: token!, name: "dmwriter", room: "" });
    const stored = await readConversation(r, conv);
    assert.deepEqual(stored.map((m) => m.seq), stored.map((_, i) => i + 1), "gap-free from 1");
    const byCid = new Map(stored.map((m) => [m.cid, m.seq]));
    for (const [cid, seq] of [...run.acked, ...allAcked]) {
      assert.equal(byCid.get(cid), seq, `acked ${cid} is stored with seq ${seq}`);
    }
    // Re-send what was not acked (and one that was): each is stored once.
    const unacked = run.sent.filter((cid) => !run.acked.has(cid));
    for (const cid of unacked) r.send({ type: "send", to: "reader", text: `text of ${cid}`, cid });
    const [oneCid, oneSeq] = [...run.acked][0];
    r.send({ type: "send", to: "reader", text: `text of ${oneCid}`, cid: oneCid });
    const acks = new Map<string, number>();
    while (acks.size < unacked.length + 1) {
      const a = await r.next("ack", () => true, 10_000);
      acks.set(a.cid, a.seq);
    }
    assert.equal(acks.get(oneCid), oneSeq);
    const after = await readConversation(r, conv);
    assert.deepEqual(after.map((m) => m.seq), after.map((_, i) => i + 1), "still gap-free");
    const cids = after.map((m) => m.cid);
    assert.equal(new Set(cids).size, cids.length, "no DM appears twice");
    for (const cid of run.sent) assert.ok(cids.includes(cid), `${cid} is stored exactly once`);
    for (const m of after) allAcked.set(m.cid, m.seq);
    // The reader, offline all along, finds every one of them unread on connect.
    const reader = await connect(again.port, { token: readerToken, name: "reader", room: "" });
    const item = (await reader.next("conversations")).items[0];
    assert.deepEqual([item.conv, item.lastSeq, item.unread], [conv, after.length, after.length]);
    await reader.close();
    await r.close();
    await again.stop("SIGTERM");
  }
  await Deno.remove(dataDir, { recursive: true });
});

Deno.test("SIGTERM writes what is pending, tells clients 1001 and exits 0", async () => {
  const dataDir = await Deno.makeTempDir();
  const server = await spawnServer(dataDir, LIMITS);
  const c = await connect(server.port, { name: "alice", room: "r" });
  await c.next("joined");
  for (let i = 0; i < 50; i++) c.send({ type: "send", room: "r", text: `m${i}`, cid: `c${i}` });
  await c.next("ack", (a) => a.cid === "c0");
  const closed = c.closed;
  const status = await server.stop("SIGTERM");
  const ev = await closed;
  assert.equal(status.code, 0);
  assert.equal(ev.code, 1001);
  assert.equal(ev.reason, "server restarting");
  const again = await spawnServer(dataDir, LIMITS);
  const r = await connect(again.port, { name: "bob", room: "" });
  r.send({ type: "join", room: "r", since: 0 });
  const stored = (await r.next("joined")).messages.length;
  assert.ok(
    stored >= c.all("ack").length,
    `every acked message is stored (${stored} >= ${c.all("ack").length})`,
  );
  await r.close();
  await again.stop();
  await Deno.remove(dataDir, { recursive: true });
});

Deno.test("SIGTERM under load answers every frame that reached the server before its 1001", async () => {
  // #18: 100 clients talk flat out (every 10 ms, each in a room of its own so the test can read what
  // comes back) while 20 more each send 20 messages just before the stop signal. The server is behind, so those frames are still in its sockets when the stop begins;
  // before each connection was kept open until silent, about half of them went unanswered.
  const dataDir = await Deno.makeTempDir();
  const server = await spawnServer(dataDir, [...LIMITS, "--max-connections-per-ip", "1000"]);
  const talkers: TestClient[] = [];
  const senders: TestClient[] = [];
  try {
    for (let i = 0; i < 100; i++) talkers.push(await connect(server.port, { name: `t${i}`, room: `t${i}` }));
    for (let i = 0; i < 20; i++) senders.push(await connect(server.port, { name: `s${i}`, room: "r" }));
    await Promise.all([...talkers, ...senders].map((c) => c.next("joined")));
    let n = 0;
    const talk = setInterval(() => {
      for (const c of talkers) {
        if (c.ws.readyState === WebSocket.OPEN) {
          c.send({ type: "send", room: "r", text: "x", cid: `x${n++}` });
        }
      }
    }, 10);
    await new Promise((r) => setTimeout(r, 500));
    for (const s of senders) {
      for (let k = 0; k < 20; k++) s.send({ type: "send", room: "r", text: `m${k}`, cid: `c${k}` });
    }
    await new Promise((r) => setTimeout(r, 5));
    const stopped = server.stop("SIGTERM");
    const closes = await Promise.all(senders.map((s) => s.closed));
    clearInterval(talk);
    assert.equal((await stopped).code, 0);
    assert.deepEqual(new Set(closes.map((e) => e.code)), new Set([1001]));
    const answered = senders.map((s) =>
      [...s.all("ack"), ...s.all("error").filter((e) => e.code === "shutting_down")].map((m) => m.cid)
    );
    for (const cids of answered) {
      assert.deepEqual(cids.toSorted(), Array.from({ length: 20 }, (_, k) => `c${k}`).toSorted());
    }
    const acked = senders.reduce((n, s) => n + s.all("ack").length, 0);
    if (Deno.env.get("SHUTDOWN_VERBOSE")) console.log(`400 of 400 answered, ${acked} acked`);
  } finally {
    await Promise.all([...talkers, ...senders].map((c) => c.close()));
    await server.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("join with since resumes after a dropped connection with no gap and no duplicate at the seam", async () => {
  await using s = await startServer({ messagesPerSecond: 100_000, burst: 100_000 });
  await using writer = await TestClient.connect(s, { name: "writer", room: "r" });
  const reader = await TestClient.connect(s, { name: "reader", room: "r" });
  const { token } = reader.all("welcome")[0];
  let n = 0;
  const write = (k: number) => {
    for (let i = 0; i < k; i++) writer.send({ type: "send", room: "r", text: `m${++n}` });
  };
  write(20);
  await reader.next("message", (m) => m.seq === 20);
  const lastSeq = Math.max(...reader.all("message").map((m) => m.seq));
  await reader.close();
  write(30);
  await writer.next("message", (m) => m.seq === 50);
  // Reconnect and resume while the writer keeps writing: the seam must be exact.
  const back = new TestClient(`${s.wsUrl}?${new URLSearchParams({ token, room: "" })}`);
  await back.next("welcome");
  back.send({ type: "join", room: "r", since: lastSeq });
  write(30);
  const joined = await back.next("joined");
  await back.next("message", (m) => m.seq === 80);
  const seqs = [...joined.messages.map((m: Msg) => m.seq), ...back.all("message").map((m) => m.seq)];
  assert.deepEqual(seqs, Array.from({ length: 80 - lastSeq }, (_, i) => lastSeq + 1 + i));
  await back.close();
});

Deno.test("a bad data directory or a corrupt store stops start-up with a clear error", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/file`, "");
  const notDir = await runMain(dir, ["--data-dir", `${dir}/file/data`]);
  assert.equal(notDir.code, 1);
  assert.match(notDir.output, /chat: Cannot create the data directory ".*\/file\/data"/);
  await Deno.mkdir(`${dir}/corrupt`);
  await Deno.writeTextFile(`${dir}/corrupt/chat.db`, "garbage".repeat(1000));
  const corrupt = await runMain(`${dir}/corrupt`, ["--data-dir", `${dir}/corrupt`]);
  assert.equal(corrupt.code, 1);
  assert.match(corrupt.output, /chat: Cannot open the history database ".*corrupt\/chat.db"/);
  assert.equal(
    await Deno.readTextFile(`${dir}/corrupt/chat.db`),
    "garbage".repeat(1000),
    "the file is left as it was",
  );
  const badFlag = await runMain(dir, ["--max-text-chars", "lots"]);
  assert.equal(badFlag.code, 1);
  assert.match(
    badFlag.output,
    /--max-text-chars \(CHAT_MAX_TEXT_CHARS\) must be an integer at least 1, got "lots"/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a slow store write delays the ack and the message, never joins, presence, typing or history", async () => {
  const held = faultyStore();
  held.hold("before");
  const { store } = held;
  const release = () => held.release();
  await using s = await startServer({}, { store });
  using _ = { [Symbol.dispose]: () => release() }; // a failed assertion must not leave the write held
  await using a = await TestClient.connect(s, { name: "alice", room: "a" });
  await using b = await TestClient.connect(s, { name: "bob", room: "b" });
  a.send({ type: "send", room: "a", text: "held by the disk", cid: "h1" });
  await new Promise((r) => setTimeout(r, 50));
  // Everything that is not a message still flows while the write is held.
  b.send({ type: "ping" });
  await b.next("pong");
  await using c = await TestClient.connect(s, { name: "carol", room: "b" });
  assert.deepEqual((await c.next("joined")).members, ["bob", "carol"]);
  assert.equal((await b.next("presence")).name, "carol");
  c.send({ type: "typing", room: "b" });
  assert.equal((await b.next("typing")).name, "carol");
  b.send({ type: "history", room: "b" });
  await b.next("history");
  assert.equal(a.all("message").length, 0, "not delivered before it is stored");
  assert.equal(a.all("ack").length, 0, "not acked before it is stored");
  assert.equal(s.app.chat.pendingCount, 1);
  release();
  assert.equal((await a.next("message")).text, "held by the disk");
  assert.equal((await a.next("ack")).seq, 1);
});

Deno.test("a join while a write is on disk but not yet delivered sees the message once, live", async () => {
  // The write lands at once, but the answer is late: the window between a commit and its delivery.
  const held = faultyStore();
  held.hold("after");
  const { store, inner } = held;
  const release = () => held.release();
  await using s = await startServer({}, { store });
  using _ = { [Symbol.dispose]: () => release() }; // a failed assertion must not leave the write held
  await using a = await TestClient.connect(s, { name: "alice", room: "r" });
  a.send({ type: "send", room: "r", text: "first" });
  while (inner.lastSeq("r") === 0) await new Promise((r) => setTimeout(r, 5));
  await using b = await TestClient.connect(s, { name: "bob", room: "" });
  b.send({ type: "join", room: "r", since: 0 });
  const resumed = await b.next("joined");
  await using c = await TestClient.connect(s, { name: "carol", room: "r" });
  const fresh = await c.next("joined");
  c.send({ type: "history", room: "r" });
  const history = await c.next("history");
  release();
  for (const [who, joined] of [[b, resumed], [c, fresh]] as const) {
    await who.next("message", (m) => m.seq === 1);
    const seen = [...joined.messages, ...(who === c ? history.messages : []), ...who.all("message")];
    assert.deepEqual(seen.map((m: Msg) => m.seq), [1], "seq 1 arrives once, not in joined and again live");
    assert.equal(joined.lastSeq, 0, "lastSeq names what was delivered");
  }
});

/** Every result of `q` in `room`, newest first, page by page. */
async function searchAll(c: TestClient, room: string, q: string): Promise<Msg[]> {
  const all: Msg[] = [];
  let before: string | undefined;
  for (;;) {
    c.send({ type: "search", q, room, limit: 200, ...(before ? { before } : {}) });
    const page = await c.next("search", (m) => m.q === q, 10_000);
    assert.equal(page.partial, undefined, "the search finished in its time");
    all.push(...page.results);
    if (page.next === undefined) return all;
    before = page.next;
  }
}

Deno.test("SIGKILL mid-stream: every acked message is found by search after the restart, no deleted one is", async () => {
  const dataDir = await Deno.makeTempDir();
  const limits = [...LIMITS, "--searches-per-minute", "1000000", "--search-page", "200"];
  const deletedSeqs = new Set<number>();
  let token: string | undefined;
  for (let round = 0; round < CRASH_ROUNDS; round++) {
    const server = await spawnServer(dataDir, limits);
    const c = await connect(
      server.port,
      token ? { token, name: "finder", room: "" } : { name: "finder", room: "" },
    );
    token ??= c.all("welcome")[0].token;
    c.send({ type: "join", room: "found" });
    await c.next("joined");
    // Each text has the common word "haystack" and a word of its own (its cid without the dash).
    const sent: string[] = [];
    const acked = new Map<string, number>();
    const deletesAsked = new Set<number>();
    let inFlight = 0, stopped = false;
    const pump = () => {
      while (!stopped && inFlight < 32 && c.ws.readyState === WebSocket.OPEN) {
        const cid = `s${round}x${sent.length}`;
        sent.push(cid);
        inFlight++;
        c.send({ type: "send", room: "found", text: `haystack ${cid} needle`, cid });
      }
    };
    c.ws.addEventListener("message", (e) => {
      for (const line of String(e.data).split("\n")) {
        const m = JSON.parse(line);
        if (m.type !== "ack") continue;
        acked.set(m.cid, m.seq), inFlight--;
        // Every tenth acked message is deleted while the stream goes on.
        if (acked.size % 10 === 0 && !stopped) {
          deletesAsked.add(m.seq);
          c.send({ type: "delete", room: "found", seq: m.seq });
        }
      }
      pump();
    });
    pump();
    const target = 150 + Math.floor(Math.random() * 250);
    const deadline = Date.now() + 10_000;
    while (acked.size < target) {
      if (Date.now() > deadline) throw new Error(`only ${acked.size} acks in 10 s:\n${server.output()}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    // The deletes the room was told of before the kill are stored (told after the write).
    const status = await server.stop("SIGKILL");
    stopped = true;
    assert.equal(status.signal, "SIGKILL");
    await c.closed;
    const confirmed = new Set(c.all("deleted").map((d) => d.seq as number));
    for (const seq of confirmed) deletedSeqs.add(seq);
    assert.ok(confirmed.size > 0, "some deletes were stored before the kill");

    const again = await spawnServer(dataDir, limits);
    const r = await connect(again.port, { token: token!, name: "finder", room: "" });
    r.send({ type: "join", room: "found" });
    await r.next("joined");
    const found = await searchAll(r, "found", "haystack");
    const foundSeqs = new Set(found.map((m) => m.seq));
    assert.equal(foundSeqs.size, found.length, "no result twice");
    for (const [cid, seq] of acked) {
      if (deletesAsked.has(seq)) continue; // a delete in flight at the kill may or may not be stored
      assert.ok(foundSeqs.has(seq), `acked ${cid} (seq ${seq}) is found by a word it contains`);
    }
    for (const seq of deletedSeqs) assert.ok(!foundSeqs.has(seq), `deleted seq ${seq} is not found`);
    // By its own word too, and a deleted one not by its own.
    const [oneCid, oneSeq] = [...acked].find(([, seq]) => !deletesAsked.has(seq))!;
    assert.deepEqual((await searchAll(r, "found", `${oneCid} `)).map((m) => m.seq), [oneSeq]);
    const gone = [...acked].find(([, seq]) => confirmed.has(seq))!;
    assert.deepEqual(await searchAll(r, "found", `${gone[0]} `), []);
    await r.close();
    await again.stop("SIGTERM");
  }
  await Deno.remove(dataDir, { recursive: true });
});

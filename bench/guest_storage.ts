/**
 * What one address of anonymous guests can make the server keep (issue #18, item 11): connects of fresh
 * guests (people directory), direct messages to people who never answered (first contacts), reactions
 * of fresh guests on one message. Runs the app in this process on 127.0.0.1, SQLite in a temp dir, or
 * Redis with `--redis redis://127.0.0.1:PORT` (a Redis it may fill; its memory is read with INFO).
 *
 *   deno run --allow-net --allow-read --allow-write --allow-env --allow-run bench/guest_storage.ts [--seconds 10]
 *
 * Prints one line per figure; the README's _Security and limits_ quotes them.
 * @module
 */
import { parseArgs } from "node:util";
import { DatabaseSync } from "node:sqlite";
import { createApp, openEngine } from "../lib/app.ts";
import { resolveConfig } from "../lib/config.ts";
import { createLogger } from "../lib/log.ts";

const { values } = parseArgs({
  options: { seconds: { type: "string", default: "10" }, redis: { type: "string", default: "" } },
});
const seconds = Number(values.seconds);
const dir = await Deno.makeTempDir({ prefix: "guest-storage-" });
// A short forget time (and name hold: Redis keeps a name claim that long), so the run can show
// entries going; the figures scale to the defaults'.
const FORGET_S = 5;
const config = resolveConfig({
  dataDir: dir,
  durability: "normal",
  ...values.redis ? { redisUrl: values.redis } : {},
  guestForgetSeconds: FORGET_S,
  nameHoldSeconds: FORGET_S,
  logLevel: "error",
});
const log = createLogger("error");
const engine = await openEngine(config, undefined, log);
const app = await createApp(config, { engine, log });
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.handler);
const url = `ws://127.0.0.1:${server.addr.port}/ws`;

/** Bytes the storage holds now: SQLite's pages in use, or Redis's used_memory. */
async function stored(): Promise<number> {
  if (values.redis) {
    const port = new URL(values.redis).port;
    const out = await new Deno.Command("redis-cli", { args: ["-p", port, "info", "memory"] }).output();
    return Number(/used_memory:(\d+)/.exec(new TextDecoder().decode(out.stdout))![1]);
  }
  const db = new DatabaseSync(`${dir}/chat.db`);
  try {
    db.exec("PRAGMA wal_checkpoint(PASSIVE)");
    const n = (q: string) => (db.prepare(q).get() as Record<string, number>).v;
    return (n("SELECT page_count AS v FROM pragma_page_count") -
      n("SELECT freelist_count AS v FROM pragma_freelist_count")) *
      n("SELECT page_size AS v FROM pragma_page_size");
  } finally {
    db.close();
  }
}

type Line = Record<string, unknown>;
/** A guest connection: its socket and the next line of a type (that `pick` accepts). */
interface Guest {
  ws: WebSocket;
  next(type: string, pick?: (m: Line) => boolean): Promise<Line>;
}

/** Opens a guest connection and resolves once it is welcomed. */
function guest(name: string): Promise<Guest> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}?name=${name}`, "chat");
    const lines: Line[] = [];
    const waiting: { match: (m: Line) => boolean; done: (m: Line) => void }[] = [];
    const next = (type: string, pick: (m: Line) => boolean = () => true) =>
      new Promise<Line>((done) => {
        const match = (m: Line) => m.type === type && pick(m);
        const i = lines.findIndex(match);
        if (i >= 0) return done(lines.splice(i, 1)[0]);
        waiting.push({ match, done });
      });
    ws.onmessage = (e) => {
      for (const line of String(e.data).split("\n")) {
        const m = JSON.parse(line);
        const w = waiting.findIndex((x) => x.match(m));
        if (w >= 0) waiting.splice(w, 1)[0].done(m);
        else lines.push(m);
      }
    };
    ws.onerror = () => reject(new Error("connect failed"));
    next("welcome").then(() => resolve({ ws, next }));
  });
}

const close = (ws: WebSocket) =>
  new Promise<void>((r) => {
    ws.onclose = () => r();
    ws.close();
  });

const prune = () => engine.prune(Date.now());
const report = (what: string, v: number | string) => console.log(`${what}: ${v}`);

// 1. Fresh guests connecting and leaving, 40 at a time (the per-address cap is 50).
const before = await stored();
let connects = 0;
const until = performance.now() + seconds * 1000;
await Promise.all(Array.from({ length: 40 }, async (_, w) => {
  for (let i = 0; performance.now() < until; i++) {
    const g = await guest(`g${w}x${i}`);
    await close(g.ws);
    connects++;
  }
}));
await new Promise((r) => setTimeout(r, 100));
const afterConnects = await stored();
const perConnect = (afterConnects - before) / connects;
report("connects/s", (connects / seconds).toFixed(0));
report("bytes kept per connect", perConnect.toFixed(0));
await new Promise((r) => setTimeout(r, FORGET_S * 1000 + 500));
await prune();
report("bytes still kept after --guest-forget (and --name-hold) and prune", (await stored()) - before);

// 2. First contacts: fresh guests from this address write to people who never answer.
const victims = await Promise.all(Array.from({ length: 5 }, (_, i) => guest(`victim${i}`)));
const beforeDms = await stored();
let acked = 0, refused = 0, tried = 0;
for (let i = 0; i < 100; i++) {
  const g = await guest(`spam${i}`);
  g.ws.send(JSON.stringify({ type: "send", to: `victim${i % 5}`, text: "x".repeat(100), cid: "c" }));
  const [ack, err] = [g.next("ack"), g.next("error")];
  const got = await Promise.race([ack.then(() => "ack"), err.then((e) => String(e.code))]);
  tried++;
  if (got === "ack") acked++;
  else if (got === "too_many_contacts") refused++;
  await close(g.ws);
}
await new Promise((r) => setTimeout(r, 100));
report("first contacts tried / stored / too_many_contacts", `${tried} / ${acked} / ${refused}`);
report(
  "bytes kept per stored first contact (100-char text)",
  ((await stored() - beforeDms) / acked).toFixed(0),
);
for (const v of victims) await close(v.ws);

// 3. Fresh guests reacting to one message.
const author = await guest("author");
author.ws.send(JSON.stringify({ type: "join", room: "r" }));
await author.next("joined");
author.ws.send(JSON.stringify({ type: "send", room: "r", text: "react to me", cid: "m" }));
const { seq } = await author.next("ack") as { seq: number };
const beforeReacts = await stored();
let reacted = 0;
for (let i = 0; i < 250; i += 25) {
  await Promise.all(Array.from({ length: 25 }, async (_, j) => {
    const g = await guest(`fan${i + j}`);
    g.ws.send(JSON.stringify({ type: "join", room: "r" }));
    await g.next("joined");
    g.ws.send(JSON.stringify({ type: "react", room: "r", seq, emoji: "👍" }));
    const mine = (m: Line) => m.by === `fan${i + j}`;
    const got = await Promise.race([g.next("reactions", mine).then(() => 1), g.next("error").then(() => 0)]);
    reacted += got;
    await close(g.ws);
  }));
}
report("reactions tried / stored", `250 / ${reacted}`);
report("bytes kept per reaction", ((await stored() - beforeReacts) / reacted).toFixed(0));
await close(author.ws);

await app.shutdown();
await server.shutdown();
await Deno.remove(dir, { recursive: true });

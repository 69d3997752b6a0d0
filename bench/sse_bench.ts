/**
 * S1 fan-out (1 room x N subscribers + 1 publisher, W messages in flight) over the fallback transport
 * (SSE down, POST up) against the same over WebSockets, on the same server build in the same run,
 * alternated: deliveries/s and server CPU per delivery for each. The server is `main-memory` (core 0),
 * the clients a Deno process (core 1); every client of a row uses one transport, the publisher too (its
 * sends are POSTs on the fallback).
 *
 *     deno run --allow-net --allow-read --allow-write --allow-env --allow-run bench/sse_bench.ts [--runs 2]
 *         both transports in turn, --runs times; prints the table
 *     deno run --allow-net --allow-read --allow-run=cat bench/sse_bench.ts --client --transport sse --port P
 *         the clients alone against a running server; prints one JSON line
 *
 * Options: --dur S (10) --warm S (2) --subs N (100) --w W (16) --runs R (1).
 * @module
 */
import { parseArgs } from "node:util";
import {
  freePort,
  HOST,
  LOADGEN_CPU,
  machineBusy,
  PINNING,
  procCpuTicks,
  RESULTS,
  SERVER_CPU,
  SERVERS,
  sleep,
  spawnPinned,
  stopAll,
  stopProc,
  waitListening,
} from "./lib.ts";

type Transport = "ws" | "sse";

interface ClientOptions {
  transport: Transport;
  port: number;
  serverPid: number;
  dur: number;
  warm: number;
  subs: number;
  w: number;
}

/** One member of the room: it counts the message lines it gets, by their text (the message's number). */
interface Member {
  send(frame: string): void;
  close(): Promise<void>;
}

const ROOM = "s1";

/** Runs the room against the server and returns the result. */
async function s1Client(o: ClientOptions): Promise<Record<string, unknown>> {
  const base = `${HOST}:${o.port}`;
  const got = new Map<number, number>(); // message number -> members that have it
  let deliveries = 0, measuring = false, windowDeliveries = 0, next = 0, inflight = 0, sending = false;
  let joined = 0, errors = 0;
  const everyone = o.subs + 1;
  /** Set once every subscriber is in: the one that sends. */
  const pub: { member?: Member } = {};

  const sendNext = () => {
    while (sending && inflight < o.w && pub.member) {
      inflight++;
      pub.member.send(JSON.stringify({ type: "send", room: ROOM, text: String(next++) }));
    }
  };
  const line = (l: string) => {
    if (l.startsWith('{"type":"message"')) {
      const m = /"text":"(\d+)"/.exec(l);
      if (!m) return;
      deliveries++;
      if (measuring) windowDeliveries++;
      const n = Number(m[1]);
      const c = (got.get(n) ?? 0) + 1;
      if (c < everyone) return void got.set(n, c);
      got.delete(n);
      inflight--;
      sendNext();
    } else if (l.startsWith('{"type":"joined"')) joined++;
    else if (l.startsWith('{"type":"error"')) errors++;
  };

  const connect = async (name: string): Promise<Member> => {
    const q = `name=${name}&room=${ROOM}`;
    if (o.transport === "ws") {
      const ws = new WebSocket(`ws://${base}/ws?${q}`, ["chat"]);
      await new Promise<void>((resolve, reject) => {
        ws.onopen = () => resolve();
        ws.onerror = () => reject(new Error(`${name}: cannot connect`));
      });
      ws.onmessage = (e) => {
        for (const l of String(e.data).split("\n")) line(l);
      };
      const closed = new Promise<void>((r) => ws.onclose = () => r());
      return {
        send: (f) => ws.send(f),
        close: () => (ws.close(), closed),
      };
    }
    const abort = new AbortController();
    const res = await fetch(`http://${base}/ws/sse?${q}`, { signal: abort.signal });
    if (res.status !== 200 || !res.body) throw new Error(`${name}: GET /ws/sse answered ${res.status}`);
    let session = "";
    let ready!: () => void;
    const named = new Promise<void>((r) => ready = r);
    const reading = (async () => {
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buf += value;
          let end;
          while ((end = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            for (const l of block.split("\n")) {
              if (l.startsWith("data: ")) {
                const d = l.slice(6);
                if (!session && d.startsWith('{"session"')) {
                  session = JSON.parse(d).session;
                  ready();
                } else line(d);
              }
            }
          }
        }
      } catch { /* aborted at the end */ }
    })();
    await named;
    // Frames sent while a POST is on its way go in the next one, in order, as the page's client does.
    const out: string[] = [];
    let posting = false;
    const post = async () => {
      posting = true;
      while (out.length) {
        const body = out.splice(0, out.length).join("\n");
        const r = await fetch(`http://${base}/ws/sse/${session}`, { method: "POST", body });
        await r.body?.cancel();
        if (r.status !== 202) errors++;
      }
      posting = false;
    };
    return {
      send: (f) => {
        out.push(f);
        if (!posting) post();
      },
      close: async () => {
        const r = await fetch(`http://${base}/ws/sse/${session}`, { method: "DELETE" });
        await r.body?.cancel();
        abort.abort();
        await reading;
      },
    };
  };

  const members: Member[] = [];
  for (let i = 0; i < o.subs; i++) members.push(await connect(`sub${i}`));
  pub.member = await connect("pub");
  members.push(pub.member);
  const end = Date.now() + 15_000;
  while (joined < everyone && Date.now() < end) await sleep(20);
  if (joined < everyone) throw new Error(`only ${joined} of ${everyone} joined`);

  sending = true;
  sendNext();
  await sleep(o.warm * 1000);
  const srv0 = procCpuTicks(o.serverPid), me0 = procCpuTicks(Deno.pid), t0 = performance.now();
  measuring = true;
  await sleep(o.dur * 1000);
  measuring = false;
  const srv1 = procCpuTicks(o.serverPid), me1 = procCpuTicks(Deno.pid), t1 = performance.now();
  sending = false;
  const drain = Date.now() + 3000;
  while (inflight > 0 && Date.now() < drain) await sleep(20);
  await Promise.all(members.map((m) => m.close()));

  const secs = (t1 - t0) / 1000;
  const srvS = (srv1 - srv0) / 100, meS = (me1 - me0) / 100;
  return {
    scenario: `s1-${o.subs}`,
    transport: o.transport,
    dur: Math.round(secs * 10) / 10,
    deliveries_s: Math.round(windowDeliveries / secs),
    srv_cpu: Math.round((srvS / secs) * 1000) / 10,
    srv_us_per_delivery: windowDeliveries ? Math.round((srvS * 1e6 / windowDeliveries) * 100) / 100 : null,
    client_cpu: Math.round((meS / secs) * 1000) / 10,
    deliveries,
    sent: next,
    errors,
  };
}

async function standalone(o: Omit<ClientOptions, "transport" | "port" | "serverPid">, runs: number) {
  const dir = `${RESULTS}/sse-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  await Deno.mkdir(dir, { recursive: true });
  const spec = SERVERS["main-memory"];
  const rows: Record<string, unknown>[] = [];
  console.log(
    `S1 ${o.subs} subscribers, W ${o.w}, ${o.dur} s after ${o.warm} s warm-up; ` +
      `server main-memory ${
        PINNING ? `on core ${SERVER_CPU}, clients on core ${LOADGEN_CPU}` : "(not pinned)"
      }`,
  );
  for (let run = 1; run <= runs; run++) {
    // Alternated, so a neighbour's load that comes and goes does not favour one transport.
    const order: Transport[] = run % 2 ? ["ws", "sse"] : ["sse", "ws"];
    for (const transport of order) {
      const busy = await machineBusy();
      const port = freePort();
      const dataDir = await Deno.makeTempDir({ prefix: "sse-bench-" });
      const server = spawnPinned("server", spec.cmd(port, dataDir), {
        cpu: SERVER_CPU,
        out: `${dir}/server-${transport}-run${run}.log`,
        err: null,
      });
      try {
        const fail = await waitListening(server, port);
        if (fail) throw new Error(`server ${fail}`);
        const out = `${dir}/client-${transport}-run${run}.json`;
        const client = spawnPinned("client", [
          Deno.execPath(),
          "run",
          "--allow-net",
          "--allow-read",
          "--allow-run=cat",
          new URL(import.meta.url).pathname,
          "--client",
          "--transport",
          transport,
          "--port",
          String(port),
          "--server-pid",
          String(server.pid),
          "--dur",
          String(o.dur),
          "--warm",
          String(o.warm),
          "--subs",
          String(o.subs),
          "--w",
          String(o.w),
        ], { cpu: LOADGEN_CPU, out, err: `${dir}/client.log` });
        await client.status;
        const row = { run, busy_before: busy, ...JSON.parse(await Deno.readTextFile(out)) };
        rows.push(row);
        console.log(JSON.stringify(row));
      } finally {
        await stopProc(server);
        await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      }
    }
  }
  await Deno.writeTextFile(`${dir}/results.jsonl`, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const table = [
    "| run | transport | deliveries/s | srv CPU % | srv us/deliv | errors | machine busy before % |",
  ];
  table.push("| --- | --- | --- | --- | --- | --- | --- |");
  for (const r of rows) {
    table.push(
      `| ${r.run} | ${r.transport} | ${r.deliveries_s} | ${r.srv_cpu} | ${r.srv_us_per_delivery} | ${r.errors} | ${r.busy_before} |`,
    );
  }
  console.log(table.join("\n"));
  console.log(`results: ${dir}`);
}

if (import.meta.main) {
  const { values: v } = parseArgs({
    args: Deno.args,
    options: {
      client: { type: "boolean", default: false },
      transport: { type: "string", default: "ws" },
      port: { type: "string" },
      "server-pid": { type: "string", default: "0" },
      dur: { type: "string", default: "10" },
      warm: { type: "string", default: "2" },
      subs: { type: "string", default: "100" },
      w: { type: "string", default: "16" },
      runs: { type: "string", default: "1" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (v.help) {
    console.log("usage: see the comment at the top of bench/sse_bench.ts");
    Deno.exit(0);
  }
  const o = { dur: Number(v.dur), warm: Number(v.warm), subs: Number(v.subs), w: Number(v.w) };
  if (v.client) {
    const hard = setTimeout(() => {
      console.log(JSON.stringify({ error: "client hard deadline reached" }));
      Deno.exit(3);
    }, (o.dur + o.warm + 40) * 1000);
    try {
      const res = await s1Client({
        ...o,
        transport: v.transport === "sse" ? "sse" : "ws",
        port: Number(v.port),
        serverPid: Number(v["server-pid"]),
      });
      console.log(JSON.stringify(res));
    } catch (e) {
      console.log(JSON.stringify({ error: String(e) }));
    } finally {
      clearTimeout(hard);
    }
  } else {
    Deno.addSignalListener("SIGINT", () => stopAll().then(() => Deno.exit(130)));
    await standalone(o, Number(v.runs));
  }
}

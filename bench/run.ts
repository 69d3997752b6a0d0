/**
 * Benchmark driver: our server (sqlite store, and `--store memory`) against the naive Deno baseline,
 * side by side in the same run, with the shared peers' load generator (see README.md here).
 *
 *     deno task bench [--quick] [--cases s1-100,s2-10,...] [--runs N] [--peers bun,node-ws] ...
 *
 * Each (run, case, server) starts the server fresh pinned to core 0, runs ONE load generator pinned to
 * core 1, and stops the server by its process group. Raw rows go to bench/results/<timestamp>/.
 * @module
 */
import { parseArgs } from "node:util";
import { chartSvg } from "./chart.ts";
import { churnReport, isChurnCase, measureSoak, measureStorm } from "./churn.ts";
import { crowdPlan, crowdReport, measureCrowd } from "./crowd.ts";
import { fillReport, measureFill } from "./fill.ts";
import {
  BUSY_LIMIT,
  caseKind,
  cpuCount,
  installPeer,
  type Knobs,
  machineBusy,
  measure,
  PINNING,
  report,
  RESULTS,
  ROOT,
  type Row,
  runToEnd,
  serverFlags,
  serverRead,
  SERVERS,
  setupGenerator,
  sleep,
  stopAll,
} from "./lib.ts";

const HELP = `Usage: deno task bench [options]

  --quick             short run: 3 s windows, cases s1-100,s2-10,s3,store,s4 (3000 conns),
                      soak (2 min)                                               (~5 min)
  --cases LIST        comma-separated: s1-100 s1-1000 s2-2 s2-10 s3 store s4 soak s5 s3-100k, or s1 s2
                      all (any s1-<N> and s2-<rate> work; s5, s3-100k are not in all)  [default: all]
                      search: the search bench (search_bench.ts; not in all)
  --search-messages N messages the search bench generates         [1000000]
  --search-rooms N    rooms they go in                            [1000]
  --servers LIST      main,main-normal,main-nosearch,main-memory,naive,naive-hello
                                                   [default: main,main-memory,naive]
  --peers LIST        also run shared peers: bun,node-ws (deps installed into bench/.cache)
  --runs N            repeat everything N times                   [1]
  --dur S             measured seconds of s1/s2                   [10; quick 3]
  --warm S            warm-up seconds                             [2; quick 1]
  --conns N           s3 connections and s4 clients               [10000; quick 3000]
  --soak-min N        soak minutes (run once, on main)            [10; quick 2]
  --fill-sizes LIST   s5 room sizes, each filled with big rooms off and on
                                                                  [1000,5000,10000,20000; quick 500,1000,2000]
  --fill-rate N       s5 joins a second                           [500]
  --fill-talk-every MS  s5: ms between two messages of one of the 10 talkers  [1000]
  --s3k-conns N       s3-100k connections, rooms of 100 (cut to what one process's hard
                      open-files limit holds)                     [100000]
  --s3k-per-proc N    s3-100k connections per generator process  [what its open-files limit holds]
  --s3k-hold S        s3-100k: seconds the crowd is held idle after the room check  [10]
  --fill-modes LIST   s5: off,on (off is quadratic: "on" alone for sizes off cannot reach)  [off,on]
  --w N               s1 messages in flight                       [16]
  --store-dur S       measured seconds of the store case          [10; quick 3]
  --pubs N            store publishers                            [10]
  --window N          store messages in flight per publisher      [32]
  --server-read LIST  extra paths for our server's --allow-read (e.g. lib); default: exactly
                      the permissions of deno.json's start task, data/ -> a temp dir
  --lg auto|bun|node  load generator runtime                      [auto: Bun, else Node]
  --no-install        do not npm-install Bun / peer deps into bench/.cache
  --chart-out PATH    also write the chart (bench.svg in the results folder) to PATH
  --update-docs       also write the chart to docs/bench.svg (the README shows it)
  -h, --help
`;

const { values: v } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    cases: { type: "string" },
    servers: { type: "string", default: "main,main-memory,naive" },
    peers: { type: "string", default: "" },
    runs: { type: "string", default: "1" },
    dur: { type: "string" },
    warm: { type: "string" },
    conns: { type: "string" },
    w: { type: "string", default: "16" },
    "store-dur": { type: "string" },
    pubs: { type: "string", default: "10" },
    window: { type: "string", default: "32" },
    lg: { type: "string", default: "auto" },
    "server-read": { type: "string", default: "" },
    "no-install": { type: "boolean", default: false },
    "soak-min": { type: "string" },
    "search-messages": { type: "string", default: "1000000" },
    "search-rooms": { type: "string", default: "1000" },
    "fill-sizes": { type: "string" },
    "fill-rate": { type: "string" },
    "fill-talk-every": { type: "string" },
    "fill-modes": { type: "string", default: "off,on" },
    "s3k-conns": { type: "string" },
    "s3k-hold": { type: "string" },
    "s3k-per-proc": { type: "string" },
    "chart-out": { type: "string" },
    "update-docs": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (v.help) {
  console.log(HELP);
  Deno.exit(0);
}

const fail = (msg: string): never => {
  console.error(`bench: ${msg}`);
  Deno.exit(2);
};
const int = (s: string | undefined, dflt: number, name: string): number => {
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0) fail(`--${name} must be a positive number, got ${JSON.stringify(s)}`);
  return n;
};
const q = v.quick;
const knobs: Knobs = {
  dur: int(v.dur, q ? 3 : 10, "dur"),
  warm: int(v.warm, q ? 1 : 2, "warm"),
  conns: int(v.conns, q ? 3000 : 10000, "conns"),
  w: int(v.w, 16, "w"),
  storeDur: int(v["store-dur"], q ? 3 : 10, "store-dur"),
  pubs: int(v.pubs, 10, "pubs"),
  window: int(v.window, 32, "window"),
  soakMin: int(v["soak-min"], q ? 2 : 10, "soak-min"),
};
const runs = int(v.runs, 1, "runs");
const fillKnobs = {
  sizes: (v["fill-sizes"] ?? (q ? "500,1000,2000" : "1000,5000,10000,20000")).split(",").map((x) =>
    int(x.trim(), 0, "fill-sizes")
  ),
  rate: int(v["fill-rate"], 500, "fill-rate"),
  modes: v["fill-modes"].split(",").map((x) => x.trim()).filter((x): x is "off" | "on" =>
    x === "off" || x === "on" || fail(`--fill-modes takes off and on, got ${JSON.stringify(x)}`)
  ),
  talkers: 10,
  talkEveryMs: int(v["fill-talk-every"], 1000, "fill-talk-every"),
};

const ALL = ["s1-100", "s1-1000", "s2-2", "s2-10", "s3", "store", "s4", "soak"];
const wanted = v.cases ?? (q ? "s1-100,s2-10,s3,store,s4,soak" : "all");
const cases: string[] = [];
let searchCase = false;
for (const c of wanted.split(",").map((x) => x.trim()).filter(Boolean)) {
  if (c === "search") searchCase = true;
  else if (c === "all") cases.push(...ALL);
  else if (c === "s1") cases.push("s1-100", "s1-1000");
  else if (c === "s2") cases.push("s2-2", "s2-10");
  else if (
    /^s1-\d+$/.test(c) || /^s2-\d+$/.test(c) || ["s3", "store", "s4", "soak", "s5", "s3-100k"].includes(c)
  ) {
    cases.push(c);
  } else fail(`unknown case ${JSON.stringify(c)} (see --help)`);
}
const servers = v.servers.split(",").map((x) => x.trim()).filter(Boolean);
const peers = v.peers.split(",").map((x) => x.trim()).filter(Boolean);
for (const s of [...servers, ...peers]) if (!SERVERS[s]) fail(`unknown server ${JSON.stringify(s)}`);
if (!["auto", "bun", "node"].includes(v.lg)) fail(`--lg must be auto, bun or node`);

serverRead.push(...v["server-read"].split(",").map((x) => x.trim()).filter(Boolean));

Deno.addSignalListener("SIGINT", async () => {
  console.error("\ninterrupted: stopping the processes this run started");
  await stopAll();
  Deno.exit(130);
});

// ---- set-up
const gen = await setupGenerator(v.lg as "auto" | "bun" | "node", !v["no-install"]);
const lineup = [...servers];
for (const p of peers) {
  const why = v["no-install"] ? SERVERS[p].missing() : await installPeer(p);
  if (why) console.error(`peer ${p} skipped: ${why}`);
  else if (!lineup.includes(p)) lineup.push(p);
}
const nofile = await new Deno.Command("bash", { args: ["-c", "ulimit -Hn"], stdout: "piped" }).output();
const hardNofile = new TextDecoder().decode(nofile.stdout).trim();
if ((cases.includes("s3") || cases.includes("s4")) && Number(hardNofile) < knobs.conns + 200) {
  console.error(
    `warning: the hard limit of open files is ${hardNofile}; s3/s4 need more than ${knobs.conns + 100}`,
  );
}
const crowdKnobs = {
  conns: int(v["s3k-conns"], 100_000, "s3k-conns"),
  roomSize: 100,
  perIp: 100,
  holdS: int(v["s3k-hold"], 10, "s3k-hold"),
  perProc: v["s3k-per-proc"] === undefined ? undefined : int(v["s3k-per-proc"], 0, "s3k-per-proc"),
  healthzEveryMs: 100,
  hardNofile: Number(hardNofile) || 1024,
};
const plan = crowdPlan(crowdKnobs);
if (cases.includes("s3-100k") && plan.cut) {
  console.error(
    `warning: s3-100k asks for ${crowdKnobs.conns} connections on one server process, but the hard limit of ` +
      `open files is ${hardNofile}: the crowd is cut to ${plan.conns}. Raise it (as root with the ` +
      "CAP_SYS_RESOURCE capability: ulimit -Hn, prlimit --nofile, or LimitNOFILE= of a systemd unit) to run all.",
  );
}
const busy = await machineBusy(1000);
if (busy !== null && busy > BUSY_LIMIT) {
  console.error(
    `warning: the machine is ${busy}% busy before the bench starts (other processes); the figures will be ` +
      "unreliable. Rows that start on a busy machine are flagged under 'problems seen'.",
  );
}
const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
const outDir = `${RESULTS}/${stamp}`;
Deno.mkdirSync(outDir, { recursive: true });

const header = [
  `bench: ${new Date().toISOString()}  deno ${Deno.version.deno}  ${cpuCount()} CPUs  ` +
  (PINNING
    ? "servers pinned to core 0, generator to core 1 (taskset)"
    : "NOT pinned (BENCH_PIN=0, no taskset or 1 CPU)"),
  `machine busy before start: ${
    busy ?? "?"
  }% of all cores; generator: ${gen.label} (store case: deno store_bench.ts client); ulimit -n hard ${hardNofile}`,
  `our server's permissions (from ${serverFlags("DATA").from}): ${
    serverFlags("DATA", serverRead).flags.join(" ")
  }`,
  `servers: ${lineup.map((s) => `${s} = ${SERVERS[s].what}`).join("; ")}`,
  `cases: ${
    cases.join(" ")
  }; runs ${runs}; s1/s2 ${knobs.dur} s (+${knobs.warm} s warm-up), s1 W=${knobs.w}, ` +
  `s3 ${knobs.conns} conns, store ${knobs.pubs} publishers x ${knobs.window} in flight for ${knobs.storeDur} s, ` +
  `s4 ${knobs.conns} clients, soak ${knobs.soakMin} min` +
  (cases.includes("s3-100k")
    ? `, s3-100k ${plan.conns} conns (asked ${crowdKnobs.conns}) from ${plan.procs} generator process(es)`
    : ""),
];
console.log(header.join("\n"));
console.error(`results: ${outDir}/`);

// ---- the search bench: the engine alone, in a process of its own (pinned like our server)
let searchText = "";
if (searchCase) {
  const t = Date.now();
  const args = [
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    `${ROOT}bench/search_bench.ts`,
    "--messages",
    String(int(v["search-messages"], 1_000_000, "search-messages")),
    "--rooms",
    String(int(v["search-rooms"], 1000, "search-rooms")),
  ];
  const { code, out } = PINNING
    ? await runToEnd("taskset", ["-c", "0", Deno.execPath(), ...args], { timeoutMs: 3 * 3600_000 })
    : await runToEnd(Deno.execPath(), args, { timeoutMs: 3 * 3600_000 });
  searchText = `\n${out.trim()}\n`;
  if (code !== 0) searchText += `search bench exited ${code}\n`;
  Deno.writeTextFileSync(`${outDir}/search.txt`, searchText);
  console.error(`search bench ${((Date.now() - t) / 1000).toFixed(0)} s`);
}

// ---- the runs
const rows: Row[] = [];
const t0 = Date.now();
// The soak runs once (in the last run), on `main` if it is in the line-up, else on our first server.
const soakServer = lineup.includes("main") ? "main" : lineup.find((s) => SERVERS[s].ours);
for (let run = 1; run <= runs; run++) {
  for (const c of cases) {
    for (const s of lineup) {
      if ((caseKind(c) === "store" || c === "s4") && !SERVERS[s].ours) continue; // our protocol only
      if (c === "soak" && (s !== soakServer || run !== runs)) continue;
      if (c === "s3-100k") {
        const t = Date.now();
        const row = await measureCrowd(run, SERVERS[s], gen, crowdKnobs, outDir);
        rows.push(row);
        Deno.writeTextFileSync(`${outDir}/results.jsonl`, JSON.stringify(row) + "\n", { append: true });
        console.error(
          `run ${run}  s3-100k ${s.padEnd(12)} ${((Date.now() - t) / 1000).toFixed(0)} s` +
            (row.res.error ? `  ERROR: ${row.res.error}` : ""),
        );
        await sleep(500);
        continue;
      }
      if (c === "s5") {
        if (!SERVERS[s].ours) continue; // big rooms are ours to turn off and on
        const t = Date.now();
        for (const row of await measureFill(run, SERVERS[s], gen, knobs, fillKnobs, outDir)) {
          rows.push(row);
          Deno.writeTextFileSync(`${outDir}/results.jsonl`, JSON.stringify(row) + "\n", { append: true });
        }
        console.error(`run ${run}  s5      ${s.padEnd(12)} ${((Date.now() - t) / 1000).toFixed(0)} s`);
        continue;
      }
      const t = Date.now();
      const row = c === "s4"
        ? await measureStorm(run, SERVERS[s], gen, knobs, outDir)
        : c === "soak"
        ? await measureSoak(run, SERVERS[s], gen, knobs, outDir)
        : await measure(run, c, SERVERS[s], gen, knobs, outDir);
      rows.push(row);
      Deno.writeTextFileSync(`${outDir}/results.jsonl`, JSON.stringify(row) + "\n", { append: true });
      console.error(
        `run ${run}  ${c.padEnd(7)} ${s.padEnd(12)} ${((Date.now() - t) / 1000).toFixed(0)} s` +
          (row.res.error ? `  ERROR: ${row.res.error}` : ""),
      );
      await sleep(500);
    }
  }
}

const isFill = (r: Row) => r.case.startsWith("s5-");
const isCrowd = (r: Row) => r.case === "s3-100k";
const classic = rows.filter((r) => !isChurnCase(r.case) && !isFill(r) && !isCrowd(r));
const text = (classic.length ? report(classic) : "") + churnReport(rows.filter((r) => isChurnCase(r.case))) +
  fillReport(rows.filter(isFill)) + crowdReport(rows.filter(isCrowd)) + searchText;
const footer = `\ntotal ${((Date.now() - t0) / 1000).toFixed(0)} s; raw results: ${outDir}/results.jsonl`;
Deno.writeTextFileSync(`${outDir}/tables.txt`, header.join("\n") + "\n" + text + "\n" + footer + "\n");
const svg = chartSvg(rows.filter((r) => !isCrowd(r)), [
  `deno task bench ${Deno.args.join(" ")}`.trim(),
  `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ${cpuCount()} CPUs, ` +
  (PINNING ? "server pinned to core 0, generator to core 1" : "not pinned") + `, generator ${gen.label}, ` +
  `runs ${runs}`,
]);
const chartPaths = [`${outDir}/bench.svg`];
if (v["chart-out"]) chartPaths.push(v["chart-out"]);
if (v["update-docs"]) chartPaths.push(`${ROOT}docs/bench.svg`);
for (const p of chartPaths) Deno.writeTextFileSync(p, svg);
// deno fmt also formats SVG: the committed copy is kept in its shape so `deno fmt --check` passes.
if (v["update-docs"]) await runToEnd(Deno.execPath(), ["fmt", `${ROOT}docs/bench.svg`]);
console.log(text);
console.log(footer + `\nchart: ${chartPaths.join(", ")}`);

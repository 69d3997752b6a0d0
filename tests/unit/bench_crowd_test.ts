/**
 * The S3-100k bench's plan: how big a crowd one server process can hold under its open-files limit, how
 * the generators share it, and the server's connection cap raised past it (a cap under the crowd would
 * refuse the last members and the run would measure the refusal).
 */
import assert from "node:assert/strict";
import { crowdPlan, withRoom } from "../../bench/crowd.ts";

const knobs = { conns: 100_000, roomSize: 100, perIp: 100, holdS: 10, healthzEveryMs: 100 };

Deno.test("crowdPlan() keeps the whole crowd when the limit holds it, 20,000 a generator", () => {
  assert.deepEqual(crowdPlan({ ...knobs, hardNofile: 1_048_576 }), {
    conns: 100_000,
    perProc: 20_000,
    procs: 5,
    cut: false,
  });
});

Deno.test("crowdPlan() cuts the crowd to whole rooms one process can hold, and says so", () => {
  assert.deepEqual(crowdPlan({ ...knobs, hardNofile: 20_000 }), {
    conns: 19_800,
    perProc: 19_800,
    procs: 1,
    cut: true,
  });
});

Deno.test("crowdPlan() shares a small crowd among generators of --s3k-per-proc, in whole rooms", () => {
  assert.deepEqual(crowdPlan({ ...knobs, conns: 6_050, perProc: 2_050, hardNofile: 20_000 }), {
    conns: 6_000,
    perProc: 2_000,
    procs: 3,
    cut: false,
  });
});

Deno.test("withRoom() raises --max-connections past the crowd, in argv and in a Redis server's script", () => {
  assert.deepEqual(
    withRoom(
      ["deno", "run", "main.ts", "--max-connections-per-ip", "20000", "--max-connections", "20000"],
      5000,
    ),
    ["deno", "run", "main.ts", "--max-connections-per-ip", "20000", "--max-connections", "6000"],
  );
  assert.deepEqual(
    withRoom(["bash", "-c", "'main.ts' '--max-connections' '20000' '--burst' '100000' &"], 100_000),
    ["bash", "-c", "'main.ts' '--max-connections' '101000' '--burst' '100000' &"],
  );
});

import assert from "node:assert/strict";
import { chartSvg } from "../../bench/chart.ts";
import type { Row } from "../../bench/lib.ts";

/** An S5 row as bench/fill.ts writes it (only what the chart reads). */
function fillRow(size: number, mode: "off" | "on", cpu: number, bytes: number): Row {
  return {
    run: 1,
    case: `s5-${size}-${mode}`,
    server: "main-memory",
    started: "",
    generator: "node",
    pinned: false,
    machine_busy_before: null,
    machine_busy_after: null,
    port: 0,
    server_pid: 0,
    res: { bytes_per_join: bytes },
    server_alive: true,
    server_exit: null,
    metrics: null,
    log_lines: 0,
    log_head: [],
    extra: { size, mode, cpu_ms_per_join: cpu },
  } as Row;
}

Deno.test("chartSvg() draws S5's CPU and bytes per join for each room size, off and on", () => {
  const rows = [
    fillRow(1000, "off", 0.9, 40_000),
    fillRow(1000, "on", 0.3, 2_000),
    fillRow(5000, "off", 4.2, 200_000),
    fillRow(5000, "on", 0.31, 2_100),
  ];
  const svg = chartSvg(rows, ["deno task bench --cases s5"]);
  assert.match(svg, /S5 big room fill, main-memory: server CPU ms per join by room size/);
  assert.match(svg, /S5 big room fill, main-memory: bytes sent to clients per join by room size/);
  for (const label of ["1.0k off", "1.0k on", "5.0k off", "5.0k on", ">4.20<", ">0.31<"]) {
    assert.ok(svg.includes(label), `the chart shows ${label}`);
  }
  assert.doesNotMatch(svg, /s5-1000-on: /, "no ratio-to-baseline bars for S5 rows");
});

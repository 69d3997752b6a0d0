/**
 * The bench's chart: one self-contained SVG (no scripts, no fonts or files from elsewhere) with the
 * ratio of each server to the baseline per case, S4's storm/cold ratios against the goal, and the
 * soak's memory over time. Written next to the tables by `run.ts`.
 * @module
 */
import { caseKind, type Json, type Row, si } from "./lib.ts";
import type { SoakSample } from "./churn.ts";

const W = 960;
const LEFT = 200;
const RIGHT = 180;
const BAR = 16;
const COLORS: Record<string, string> = {
  main: "#2563eb",
  "main-normal": "#0891b2",
  "main-memory": "#7c3aed",
  naive: "#9ca3af",
  bun: "#d97706",
  "node-ws": "#16a34a",
};
const color = (s: string) => COLORS[s] ?? "#64748b";

/** Escapes text for SVG. */
function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function median(v: number[]): number | null {
  if (!v.length) return null;
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The headline metric of a case (the one the README's table and the spread table use). */
function headline(c: string): { key: (r: Json) => unknown; what: string; higher: boolean } {
  switch (caseKind(c)) {
    case "s1":
      return { key: (r) => r.deliveries_s, what: "deliveries/s", higher: true };
    case "s2":
      return { key: (r) => r.srv_us_per_delivery, what: "server CPU us per delivery", higher: false };
    case "s3":
      return { key: (r) => r.hs_s, what: "handshakes/s", higher: true };
    default:
      return { key: (r) => r.acks_s, what: "acked msgs/s", higher: true };
  }
}

const text = (x: number, y: number, s: string, attrs = "") =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`;

/**
 * The SVG for `rows` (all rows of one bench run). `title` goes on top (date, machine, what ran).
 */
export function chartSvg(rows: Row[], title: string[]): string {
  const parts: string[] = [];
  let y = 24;
  for (const t of title) {
    parts.push(
      text(12, y, t, y === 24 ? 'font-size="15" font-weight="bold"' : 'font-size="11" fill="#475569"'),
    );
    y += 18;
  }
  const plotW = W - LEFT - RIGHT;

  // ---- ratio bars per case
  const cases = [...new Set(rows.map((r) => r.case))].filter((c) =>
    c !== "s4" && c !== "soak" && !c.startsWith("s5-")
  );
  if (cases.length) {
    y += 10;
    parts.push(text(12, y, "Ratio to the baseline in the same run (median over runs)", 'font-weight="bold"'));
    y += 8;
    for (const c of cases) {
      const h = headline(c);
      const base = caseKind(c) === "store" ? "main-memory" : "naive";
      const servers = [...new Set(rows.filter((r) => r.case === c).map((r) => r.server))];
      const med = (s: string) =>
        median(
          rows.filter((r) => r.case === c && r.server === s && !r.res.error).map((r) => h.key(r.res))
            .filter((x): x is number => typeof x === "number" && Number.isFinite(x)),
        );
      const b = med(base);
      const bars = servers.map((s) => ({ s, v: med(s) })).map((x) => ({
        ...x,
        ratio: x.v !== null && b ? x.v / b : null,
      }));
      const max = Math.max(1, ...bars.map((x) => x.ratio ?? 0));
      y += 22;
      parts.push(text(
        12,
        y,
        `${c}: ${h.what}, ${h.higher ? "higher" : "lower"} is better; 1.0 = ${base}`,
        'font-size="12" fill="#0f172a"',
      ));
      y += 6;
      const x1 = LEFT + plotW / max;
      const top = y;
      for (const bar of bars) {
        y += 4;
        parts.push(text(LEFT - 8, y + BAR - 4, bar.s, 'font-size="11" text-anchor="end"'));
        const w = bar.ratio === null ? 0 : (bar.ratio / max) * plotW;
        parts.push(
          `<rect x="${LEFT}" y="${y}" width="${w.toFixed(1)}" height="${BAR}" fill="${color(bar.s)}"/>`,
        );
        parts.push(text(
          LEFT + w + 6,
          y + BAR - 4,
          bar.ratio === null
            ? "no result"
            : `${bar.ratio.toFixed(2)}x  (${h.higher ? si(bar.v) : bar.v!.toFixed(2)})`,
          'font-size="11"',
        ));
        y += BAR;
      }
      parts.push(
        `<line x1="${x1.toFixed(1)}" y1="${top}" x2="${x1.toFixed(1)}" y2="${
          y + 2
        }" stroke="#0f172a" stroke-dasharray="3,3"/>`,
      );
    }
  }

  // ---- S4: storm / cold
  const storms = rows.filter((r) => r.case === "s4" && typeof r.extra?.ratio99 === "number");
  if (storms.length) {
    y += 30;
    const n = storms[0].res.n;
    parts.push(text(
      12,
      y,
      `S4 reconnect storm, ${n} clients: time to resume after a restart / time to connect cold (goal <= 1.5)`,
      'font-weight="bold"',
    ));
    const max = Math.max(2, ...storms.flatMap((r) => [r.extra!.ratio99, r.extra!.ratio100 ?? 0]));
    y += 8;
    const top = y;
    for (const r of storms) {
      for (
        const [label, v, t, cold] of [
          ["99 %", r.extra!.ratio99, r.extra!.storm99_listen, r.extra!.cold99],
          ["100 %", r.extra!.ratio100, r.extra!.storm100_listen, r.extra!.cold100],
        ] as [string, number | null, number | null, number | null][]
      ) {
        y += 4;
        parts.push(
          text(
            LEFT - 8,
            y + BAR - 4,
            `${r.server} run ${r.run}, ${label}`,
            'font-size="11" text-anchor="end"',
          ),
        );
        const w = v === null ? 0 : (v / max) * plotW;
        parts.push(
          `<rect x="${LEFT}" y="${y}" width="${w.toFixed(1)}" height="${BAR}" fill="${color(r.server)}"/>`,
        );
        parts.push(text(
          LEFT + w + 6,
          y + BAR - 4,
          v === null ? "no result" : `${v.toFixed(2)}x  (${t} ms vs ${cold} ms)`,
          'font-size="11"',
        ));
        y += BAR;
      }
    }
    for (const [v, dash] of [[1, "3,3"], [1.5, "6,3"]] as [number, string][]) {
      const x = LEFT + (v / max) * plotW;
      parts.push(
        `<line x1="${x.toFixed(1)}" y1="${top}" x2="${x.toFixed(1)}" y2="${y + 2}" stroke="${
          v === 1 ? "#0f172a" : "#dc2626"
        }" stroke-dasharray="${dash}"/>`,
      );
      parts.push(text(x - 4, y + 14, v === 1 ? "1.0" : "goal 1.5", 'font-size="10" fill="#475569"'));
    }
    y += 14;
  }

  // ---- soak: memory over time
  for (const r of rows.filter((x) => x.case === "soak" && x.extra?.samples?.length)) {
    const samples: SoakSample[] = r.extra!.samples;
    y += 30;
    parts.push(text(
      12,
      y,
      `Soak, ${r.server}: ${r.extra!.minutes} min of churn; server memory and store (MiB) over time`,
      'font-weight="bold"',
    ));
    y += 14;
    const h = 180, top = y, x0 = 70, pw = W - x0 - RIGHT;
    const tMax = Math.max(60, ...samples.map((s) => s.t_s));
    const series: [string, keyof SoakSample, string][] = [
      ["RSS", "rss_mib", "#2563eb"],
      ["JS heap", "heap_mib", "#16a34a"],
      ["store (db + wal)", "store_mib", "#d97706"],
    ];
    const vMax = Math.max(
      1,
      ...samples.flatMap((s) => series.map(([, k]) => (typeof s[k] === "number" ? s[k] as number : 0))),
    ) * 1.1;
    const px = (t: number) => x0 + (t / tMax) * pw;
    const py = (v: number) => top + h - (v / vMax) * h;
    parts.push(`<rect x="${x0}" y="${top}" width="${pw}" height="${h}" fill="none" stroke="#cbd5e1"/>`);
    for (let i = 0; i <= 4; i++) {
      const v = (vMax * i) / 4;
      parts.push(`<line x1="${x0}" y1="${py(v)}" x2="${x0 + pw}" y2="${py(v)}" stroke="#e2e8f0"/>`);
      parts.push(text(x0 - 6, py(v) + 4, v.toFixed(0), 'font-size="10" text-anchor="end" fill="#475569"'));
    }
    for (let m = 0; m * 60 <= tMax; m += Math.max(1, Math.ceil(tMax / 60 / 10))) {
      parts.push(
        text(px(m * 60), top + h + 14, `${m} min`, 'font-size="10" text-anchor="middle" fill="#475569"'),
      );
    }
    series.forEach(([label, k, col], i) => {
      const pts = samples.filter((s) => typeof s[k] === "number").map((s) =>
        `${px(s.t_s).toFixed(1)},${py(s[k] as number).toFixed(1)}`
      );
      if (pts.length) {
        parts.push(`<polyline points="${pts.join(" ")}" fill="none" stroke="${col}" stroke-width="2"/>`);
      }
      const last = samples.filter((s) => typeof s[k] === "number").at(-1);
      parts.push(`<rect x="${x0 + pw + 12}" y="${top + 8 + i * 18}" width="10" height="10" fill="${col}"/>`);
      parts.push(text(
        x0 + pw + 26,
        top + 17 + i * 18,
        `${label}${last ? ` ${(last[k] as number).toFixed(1)}` : ""}`,
        'font-size="10"',
      ));
    });
    const fds = samples.map((s) => s.fds).filter((x): x is number => typeof x === "number");
    const t = r.extra!.trend ?? {};
    const note = [
      fds.length ? `fds ${fds[0]} -> max ${Math.max(...fds)} -> ${fds.at(-1)}` : "",
      ...["rss_mib", "heap_mib", "fds_over_sockets"].map((k) =>
        t[k]?.slope_per_min === null || t[k]?.slope_per_min === undefined
          ? ""
          : `${k.replace("_mib", "").replace("_over_", " - ")} ${t[k].slope_per_min}/min${
            t[k].up ? " UP" : ""
          }`
      ),
    ].filter(Boolean);
    note.forEach((s, i) =>
      parts.push(text(x0 + pw + 12, top + 80 + i * 14, s, 'font-size="10" fill="#475569"'))
    );
    if (r.extra!.after_s) { // the churn's planned end; the last sample is from after it
      const x = px(r.extra!.minutes * 60);
      parts.push(
        `<line x1="${x}" y1="${top}" x2="${x}" y2="${top + h}" stroke="#94a3b8" stroke-dasharray="2,3"/>`,
      );
      parts.push(text(x - 4, top + 12, "churn stops", 'font-size="10" text-anchor="end" fill="#475569"'));
    }
    y += h + 20;
  }

  y = fillBars(rows, parts, y);

  y += 16;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" ` +
    `font-family="Helvetica, Arial, sans-serif" font-size="12">\n` +
    `<rect width="100%" height="100%" fill="#ffffff"/>\n${parts.join("\n")}\n</svg>\n`;
}

/** S5's figures per join beside each other, big rooms off and on, one group of bars per room size. */
const FILL_METRICS: { key: (r: Row) => unknown; what: string; fmt: (v: number) => string }[] = [
  { key: (r) => r.extra?.cpu_ms_per_join, what: "server CPU ms per join", fmt: (v) => v.toFixed(2) },
  { key: (r) => r.res.bytes_per_join, what: "bytes sent to clients per join", fmt: (v) => si(v) },
];

/**
 * S5 (the big room fill): per server and metric, the median per room size of big rooms off and on, on
 * one scale, so a cost that grows with the room's size shows as bars that grow down the group. Returns
 * the new `y`.
 */
function fillBars(rows: Row[], parts: string[], y: number): number {
  const fills = rows.filter((r) => r.case.startsWith("s5-") && !r.res.error);
  const plotW = W - LEFT - RIGHT;
  for (const server of new Set(fills.map((r) => r.server))) {
    const mine = fills.filter((r) => r.server === server);
    const sizes = [...new Set(mine.map((r) => Number(r.extra?.size)))].sort((a, b) => a - b);
    for (const m of FILL_METRICS) {
      const med = (size: number, mode: string) =>
        median(
          mine.filter((r) => Number(r.extra?.size) === size && r.extra?.mode === mode).map(m.key)
            .filter((x): x is number => typeof x === "number" && Number.isFinite(x)),
        );
      const bars = sizes.flatMap((size) =>
        ["off", "on"].map((mode) => ({ size, mode, v: med(size, mode) })).filter((b) => b.v !== null)
      );
      if (bars.length === 0) continue;
      const max = Math.max(...bars.map((b) => b.v!), 1e-9);
      y += 30;
      parts.push(text(
        12,
        y,
        `S5 big room fill, ${server}: ${m.what} by room size, big rooms off and on (lower is better)`,
        'font-weight="bold"',
      ));
      y += 6;
      for (const b of bars) {
        y += 4;
        parts.push(
          text(LEFT - 8, y + BAR - 4, `${si(b.size)} ${b.mode}`, 'font-size="11" text-anchor="end"'),
        );
        const w = (b.v! / max) * plotW;
        const fill = b.mode === "on" ? color("main") : color("naive");
        parts.push(`<rect x="${LEFT}" y="${y}" width="${w.toFixed(1)}" height="${BAR}" fill="${fill}"/>`);
        parts.push(text(LEFT + w + 6, y + BAR - 4, m.fmt(b.v!), 'font-size="11"'));
        y += BAR;
      }
    }
  }
  return y;
}

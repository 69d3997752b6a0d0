/**
 * The settings table as text for people: `--help` and the README's tables. The README's tables sit
 * between `<!-- settings:<section>:begin -->` and `<!-- settings:<section>:end -->` comments; run
 * `deno task settings-doc` to rewrite them after changing the table (a test fails until then).
 * @module
 */
import { type Setting, SETTINGS } from "./config.ts";
import type { Section } from "./settings.ts";

/** Each section's title in `--help`, in the order they are printed. */
const SECTIONS: Readonly<Record<Section, string>> = {
  server: "Server",
  identity: "Signed identities",
  limits: "Limits",
};

/** A default as shown: with its unit, `on`/`off` for a switch, `(none)` for an empty value. */
function shownDefault(s: Setting, markdown: boolean): string {
  const d = s.default;
  if (typeof d === "boolean") return d ? "on" : "off";
  if (typeof d === "number") {
    const unit = s.kind === "int" ? s.unit : undefined;
    return unit === undefined ? String(d) : unit === "/s" ? `${d}/s` : `${d} ${unit}`;
  }
  const text = typeof d === "string" ? d : d.join(",");
  if (text !== "") return text;
  const none = s.kind === "string" || s.kind === "origins" ? s.none : undefined;
  return markdown && none !== undefined ? `(none: ${none})` : "(none)";
}

/** The `--help` text: every setting by section, with its environment variable and default with unit. */
export function helpText(): string {
  const groups = Object.entries(SECTIONS).map(([section, title]) => {
    const rows = SETTINGS.filter((s) => s.section === section).map((s) =>
      `  --${s.flag.padEnd(26)} ${s.env.padEnd(31)} ${s.help.replaceAll("`", "")} [${shownDefault(s, false)}]`
    );
    return `${title}:\n${rows.join("\n")}`;
  });
  return `Usage: chat [options]\n\nOptions (flag, environment variable, meaning [default]); a flag wins over ` +
    `its variable:\n\n${
      groups.join("\n\n")
    }\n\n  --help\n  --version                    print the release and exit\n`;
}

/** One section's settings as a Markdown table, aligned the way `deno fmt` aligns it. */
export function settingsMarkdown(section: Section): string {
  const cell = (text: string) => text.replaceAll("|", "\\|");
  const rows = [
    ["flag", "environment", "default", "meaning"],
    ...SETTINGS.filter((s) => s.section === section).map((s) =>
      [`\`--${s.flag}\``, `\`${s.env}\``, shownDefault(s, true), s.help].map(cell)
    ),
  ];
  const widths = rows[0].map((_, i) => Math.max(3, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(rows[0]), line(widths.map((w) => "-".repeat(w))), ...rows.slice(1).map(line)].join("\n");
}

/**
 * `readme` with every settings table rewritten from the table.
 * @throws {Error} when a section's begin or end marker is missing.
 */
export function withSettingsTables(readme: string): string {
  let out = readme;
  for (const section of Object.keys(SECTIONS) as Section[]) {
    const begin = `<!-- settings:${section}:begin -->`, end = `<!-- settings:${section}:end -->`;
    const from = out.indexOf(begin), to = out.indexOf(end);
    if (from < 0 || to < from) throw new Error(`README has no ${begin} ... ${end} block`);
    out = `${out.slice(0, from + begin.length)}\n\n${settingsMarkdown(section)}\n\n${out.slice(to)}`;
  }
  return out;
}

if (import.meta.main) {
  const path = new URL("../README.md", import.meta.url);
  const before = await Deno.readTextFile(path);
  const after = withSettingsTables(before);
  if (after !== before) await Deno.writeTextFile(path, after);
  console.log(
    after === before ? "README.md: settings tables up to date" : "README.md: settings tables rewritten",
  );
}

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

/** `--help` fits an 100-column terminal. */
const HELP_WIDTH = 100;

/** `text` in lines of at most `width` characters (a longer word stays whole), each after `indent`. */
function wrapped(text: string, indent: string, width: number): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && indent.length + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  lines.push(line);
  return lines.map((l) => indent + l).join("\n");
}

/** What a setting's flag takes, as `--help` shows it after the flag. */
function valueOf(s: Setting): string {
  switch (s.kind) {
    case "bool":
      return "[=on|off]";
    case "choice":
      return ` ${s.choices.join("|")}`;
    case "origins":
      return " <origins>";
    case "string":
      return ` <${s.value ?? (s.path !== undefined ? "path" : "text")}>`;
    case "int": {
      const unit = s.unit === undefined ? "n" : {
        ms: "ms",
        s: "seconds",
        days: "days",
        bytes: "bytes",
        chars: "chars",
        "/s": "n per second",
      }[s.unit];
      return ` <${unit}>`;
    }
  }
}

/** What `deno task start` grants or adds for a setting, for `--help`. */
function grantOf(s: Setting): string {
  if (s.kind === "string" && s.path !== undefined) {
    return ` Granted by deno task start: ${s.path === "read" ? "read" : "read and write"} access to it.`;
  }
  if (s.kind === "bool" && s.denoFlag !== undefined) return ` When on, deno task start adds ${s.denoFlag}.`;
  return "";
}

/**
 * The `--help` text: every setting by section (the README's), each with what its flag takes, its
 * environment variable, its meaning, its default and the permission `deno task start` grants for it.
 */
export function helpText(): string {
  const groups = Object.entries(SECTIONS).map(([section, title]) => {
    const rows = SETTINGS.filter((s) => s.section === section).map((s) => {
      const flag = `--${s.flag}${valueOf(s)}`;
      const text = `${s.help}. Default: ${shownDefault(s, true)}.${grantOf(s)}`.replaceAll("`", "");
      return `  ${flag.padEnd(36)} ${s.env}\n${wrapped(text, "      ", HELP_WIDTH)}`;
    });
    return `${title}:\n${rows.join("\n")}`;
  });
  return [
    "Usage: deno task start [options]",
    "       (or a binary from deno task compile: ./dist/chat [options])",
    "",
    "Each option is also the environment variable after it; a flag wins over its variable.",
    "deno task start runs the server with only the permissions its settings need: the network, the",
    "settings' variables (PORT, HOST, REDIS_*, CHAT_*), reading the page and its own scripts (static,",
    "lib/store_writer.ts, lib/redis/lua), and what is said below for a setting that names a path",
    "or needs a flag of Deno.",
    "",
    groups.join("\n\n"),
    "",
    `  ${"-h, --help".padEnd(36)} this text`,
    `  ${"-V, --version".padEnd(36)} print the release and exit`,
    "",
  ].join("\n");
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

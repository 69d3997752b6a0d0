/**
 * Structured one-line logs in logfmt, on standard error. Quiet by default (`warn`).
 * @module
 */
import type { LogLevel } from "./config.ts";

/** Fields of a log line; values are printed as logfmt. */
export type LogFields = Record<string, string | number | boolean | undefined>;

/** A logger bound to a level. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** A logger writing lines at `level` and above to `write` (standard error by default). */
export function createLogger(
  level: LogLevel,
  write: (line: string) => void = (l) => console.error(l),
): Logger {
  const at = (lvl: LogLevel) => (msg: string, fields?: LogFields) => {
    if (RANK[lvl] < RANK[level]) return;
    let line = `ts=${new Date().toISOString()} level=${lvl} msg=${value(msg)}`;
    for (const [k, v] of Object.entries(fields ?? {})) if (v !== undefined) line += ` ${k}=${value(v)}`;
    write(line);
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

function value(v: string | number | boolean): string {
  const s = String(v);
  return /^[\w.:/@+-]+$/.test(s) ? s : JSON.stringify(s);
}

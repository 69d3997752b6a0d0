/**
 * How the terminal client writes a line: time, who, what; colours only when asked (a terminal), and
 * never a control character of someone else's text, so no message can move the cursor, retitle the
 * window or hide what follows.
 * @module
 */

/**
 * `text` with every control character shown, not obeyed: C0 as `^X` (`^[` for ESC), DEL as `^?`, C1
 * and the bidirectional overrides and isolates (which reorder what follows them) as `<U+XXXX>`. Tabs
 * stay; line breaks are the caller's to split.
 */
export function safe(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => {
      const code = c.charCodeAt(0);
      if (code < 0x20) return `^${String.fromCharCode(code + 64)}`;
      if (code === 0x7f) return "^?";
      return `<U+${code.toString(16).toUpperCase().padStart(4, "0")}>`;
    },
  );
}

/** `HH:MM` for today, `YYYY-MM-DD HH:MM` before (local time). */
export function timeOf(ts: number, now = Date.now()): string {
  const d = new Date(ts);
  const two = (n: number) => String(n).padStart(2, "0");
  const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
  if (new Date(now).toDateString() === d.toDateString()) return hm;
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${hm}`;
}

const RESET = "\x1b[0m";
const DIM = "\x1b[2m";
const BOLD = "\x1b[1m";
const RED = "\x1b[31m";
const YELLOW = "\x1b[33m";
/** Colours a name can get (not red: errors; not dim: status). */
const NAME_COLOURS = [32, 34, 35, 36, 92, 94, 95, 96];

/** How a person (by handle) is named in a line. */
export type NameOf = (handle: string) => string;

/** Writes lines readably, with colours or without. */
export class Formatter {
  /**
   * @param colour ANSI colours (only on a terminal that did not ask for none)
   * @param nameOf how a person is named (the session's one choice); the handle as it is by default
   */
  constructor(readonly colour: boolean, readonly nameOf: NameOf = (handle) => handle) {}

  /** A person as a line names them, never a control character of it. */
  person(handle: string): string {
    return safe(this.nameOf(handle));
  }

  /**
   * A message line: `12:03 alice: hello`; `where` (a room tag) when it is not from the room shown.
   * Further lines of the text are indented under the first.
   */
  message(m: { ts: number; from: string; text: string }, opts: { where?: string; me?: boolean } = {}) {
    const who = this.#paint(this.person(m.from), opts.me ? BOLD : this.#nameColour(m.from));
    const where = opts.where ? `${this.#paint(safe(opts.where), DIM)} ` : "";
    return this.#lines(`${this.#time(m.ts)} ${where}${who}: `, m.text);
  }

  /** A direct message: `12:03 *alice* hi` received, `12:03 -> *bob* hi` sent. */
  direct(m: { ts: number; from: string; to: string; text: string }, sent: boolean) {
    const peer = sent ? m.to : m.from;
    const who = this.#paint(`*${this.person(peer)}*`, this.#nameColour(peer));
    return this.#lines(`${this.#time(m.ts)} ${sent ? "-> " : ""}${who} `, m.text);
  }

  /** What happened (joins, names, the connection): `-- text`. */
  status(text: string): string {
    return this.#paint(`-- ${text}`, DIM);
  }

  /** Something refused or failed. */
  error(text: string): string {
    return this.#paint(`!! ${text}`, RED);
  }

  /** A hint about another room: `-- #dev: 2 unread`. */
  hint(text: string): string {
    return this.#paint(`-- ${text}`, YELLOW);
  }

  #time(ts: number): string {
    return this.#paint(timeOf(ts), DIM);
  }

  #lines(head: string, text: string): string {
    const [first, ...more] = text.split(/\r\n|\r|\n/).map(safe);
    return [head + first, ...more.map((l) => `      ${l}`)].join("\n");
  }

  #nameColour(name: string): string {
    let h = 0;
    for (const c of name.toLowerCase()) h = (h * 31 + c.codePointAt(0)!) >>> 0;
    return `\x1b[${NAME_COLOURS[h % NAME_COLOURS.length]}m`;
  }

  #paint(text: string, code: string): string {
    return this.colour ? `${code}${text}${RESET}` : text;
  }
}

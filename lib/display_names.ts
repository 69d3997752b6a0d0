/**
 * Display names: the free name a person is shown under (`Ada Lovelace`, `O'Brien`, `Zoë Smith-Jones`,
 * `山田 太郎`), beside the handle (`lib/names.ts`) that mentions, direct messages and uniqueness use.
 * A display name is not an identity: it need not be unique and may look like anyone's, so it is never
 * looked up, only shown (with the handle beside it, which is unique). What it may not hold is anything
 * that breaks the page around it: control characters, line breaks, bidi overrides and isolates (which
 * would reorder the text after it), invisible format characters, unassigned or private-use code points,
 * and stacks of combining marks.
 * @module
 */
import { canonicalName, NAME_MAX_CHARS, nameProblem } from "./names.ts";

/** Most characters (code points, after NFKC and trimming) in a display name. */
export const DISPLAY_MAX_CHARS = 64;
/** Combining marks allowed in a row on one base character (Vietnamese needs two; "Zalgo" text stacks dozens). */
export const DISPLAY_MAX_MARKS = 3;

/**
 * Input longer than this many UTF-16 units is refused before it is normalised: NFKC can at most
 * multiply a code point by 18 (U+FDFA), and a valid name has {@link DISPLAY_MAX_CHARS} of them.
 */
const RAW_MAX_UNITS = DISPLAY_MAX_CHARS * 8;
/**
 * What a display name may not hold: control characters (Cc), line and paragraph separators (Zl, Zp),
 * format characters (Cf: bidi marks, overrides and isolates, zero-width space, tags) except the zero
 * width joiner and non-joiner (Persian, Indic scripts and emoji sequences need them), unassigned (Cn),
 * private-use (Co) and surrogate (Cs) code points.
 */
const FORBIDDEN_RE = /[\p{Cc}\p{Zl}\p{Zp}\p{Co}\p{Cn}\p{Cs}]|(?![\u200c\u200d])\p{Cf}/u;
const MARKS_RE = new RegExp(`\\p{M}{${DISPLAY_MAX_MARKS + 1}}`, "u");
const SPACES_RE = /\s+/gu;

/**
 * The display name as the server keeps and shows it: NFKC, spaces at either end trimmed and runs of
 * white space inside made one space. Overlong input is returned trimmed only, for {@link displayProblem}.
 */
export function canonicalDisplay(raw: string): string {
  if (raw.length > RAW_MAX_UNITS) return raw;
  return raw.normalize("NFKC").replace(SPACES_RE, " ").trim();
}

/**
 * Why `display` (already {@link canonicalDisplay}) is not a display name, or `undefined` when it is:
 * 1-{@link DISPLAY_MAX_CHARS} characters, none of them forbidden, at most {@link DISPLAY_MAX_MARKS}
 * combining marks in a row.
 */
export function displayProblem(display: string): string | undefined {
  if (display === "") return "a display name cannot be empty";
  if (display.length > RAW_MAX_UNITS || [...display].length > DISPLAY_MAX_CHARS) {
    return `display names are at most ${DISPLAY_MAX_CHARS} characters`;
  }
  if (!display.isWellFormed()) return "a display name cannot hold a lone surrogate";
  const bad = FORBIDDEN_RE.exec(display);
  if (bad) {
    const cp = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
    return `a display name cannot hold U+${cp} (control, invisible, direction-changing or unassigned characters)`;
  }
  if (MARKS_RE.test(display)) {
    return `a display name holds at most ${DISPLAY_MAX_MARKS} combining marks on one character`;
  }
  return undefined;
}

/**
 * A handle made from display name `display` (already canonical), or `undefined` when none can be:
 * runs of spaces become `_`, characters a handle cannot hold are dropped (`O'Brien` is `OBrien`), the
 * rest is cut to the handle's length; the result must pass the handle rules (`Ivan Иванов` mixes
 * scripts: none).
 */
export function handleFromDisplay(display: string): string | undefined {
  const base = canonicalName(display.replace(SPACES_RE, "_"))
    .replace(/[^\p{L}\p{N}_.-]/gu, "")
    .replace(/__+/g, "_");
  const handle = [...base].slice(0, NAME_MAX_CHARS).join("").replace(/^[_.-]+|[_.-]+$/g, "");
  return handle !== "" && nameProblem(handle) === undefined ? handle : undefined;
}

/**
 * The display names among `shown` of the people `names` (shared presence can still hold one of someone
 * who just left), or undefined when none of them has one.
 */
export function displaysOf(
  names: readonly string[],
  shown: Readonly<Record<string, string>> | undefined,
): Record<string, string> | undefined {
  if (shown === undefined) return undefined;
  let out: Record<string, string> | undefined;
  for (const name of names) if (Object.hasOwn(shown, name)) (out ??= {})[name] = shown[name];
  return out;
}

/**
 * What a display name may be, one definition for the server and the page: the free name a person is
 * shown under (`Ada Lovelace`, `O'Brien`, `Zoë Smith-Jones`, `山田 太郎`) beside their handle. It is not
 * an identity (never unique, never looked up), so lookalikes are allowed; what it may not hold is what
 * breaks the page around it: control characters, line breaks, bidi overrides and isolates (they
 * reorder the text after them), invisible format characters, unassigned or private-use code points,
 * and stacks of combining marks.
 * @module
 */

/** Most characters (code points, after NFKC and trimming) in a display name. */
export const DISPLAY_MAX_CHARS = 64;
/** Combining marks allowed in a row (Vietnamese needs two; "Zalgo" text stacks dozens). */
export const DISPLAY_MAX_MARKS = 3;

/**
 * Input longer than this many UTF-16 units is refused before it is normalised, so normalising never
 * costs more than a name's worth (a code point is at most 2 units; NFKC rarely grows a name).
 */
const RAW_MAX_UNITS = DISPLAY_MAX_CHARS * 8;
/**
 * Control (Cc), line and paragraph separators (Zl, Zp), private-use (Co), unassigned (Cn) and surrogate
 * (Cs) code points, and format characters (Cf: bidi marks, overrides and isolates, zero-width space,
 * tags) but the zero width joiner and non-joiner (Persian, Indic scripts and emoji sequences need them).
 */
const FORBIDDEN_RE = /[\p{Cc}\p{Zl}\p{Zp}\p{Co}\p{Cn}\p{Cs}]|(?![\u200c\u200d])\p{Cf}/u;
const MARKS_RE = new RegExp(`\\p{M}{${DISPLAY_MAX_MARKS + 1}}`, "u");
const SPACES_RE = /\s+/gu;

/**
 * The display name as the server keeps and shows it: NFKC, white space at either end trimmed and runs
 * of it inside made one space. Overlong input is returned as it is, for {@link displayProblem}.
 * @param {string} raw
 */
export function canonicalDisplay(raw) {
  if (raw.length > RAW_MAX_UNITS) return raw;
  return raw.normalize("NFKC").replace(SPACES_RE, " ").trim();
}

/**
 * Why `display` (already {@link canonicalDisplay}) is not a display name, or `undefined` when it is:
 * 1-{@link DISPLAY_MAX_CHARS} characters, none of them forbidden, at most {@link DISPLAY_MAX_MARKS}
 * combining marks in a row.
 * @param {string} display
 * @returns {string | undefined}
 */
export function displayProblem(display) {
  if (display === "") return "a display name cannot be empty";
  if (display.length > RAW_MAX_UNITS || [...display].length > DISPLAY_MAX_CHARS) {
    return `display names are at most ${DISPLAY_MAX_CHARS} characters`;
  }
  if (!display.isWellFormed()) return "a display name cannot hold a lone surrogate";
  const bad = FORBIDDEN_RE.exec(display);
  if (bad) {
    const cp = /** @type {number} */ (bad[0].codePointAt(0)).toString(16).toUpperCase().padStart(4, "0");
    return `a display name cannot hold U+${cp} (control, invisible, direction-changing or unassigned characters)`;
  }
  if (MARKS_RE.test(display)) {
    return `a display name holds at most ${DISPLAY_MAX_MARKS} combining marks on one character`;
  }
  return undefined;
}

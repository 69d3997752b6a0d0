/**
 * Display names: the free name a person is shown under (`Ada Lovelace`, `O'Brien`, `Zoë Smith-Jones`,
 * `山田 太郎`), beside the handle (`lib/names.ts`) that mentions, direct messages and uniqueness use.
 * A display name is not an identity: it need not be unique and may look like anyone's, so it is never
 * looked up, only shown (with the handle beside it, which is unique). What one may hold is
 * `static/shared/display.js`'s rule; this module adds what only the server does with one.
 * @module
 */
import {
  canonicalDisplay,
  DISPLAY_MAX_CHARS,
  DISPLAY_MAX_MARKS,
  displayProblem,
} from "../static/shared/display.js";
import { canonicalName, NAME_MAX_CHARS, nameProblem } from "./names.ts";

// The rules are the page's too: one definition, in static/shared/ (plain JS, served to browsers).
export { canonicalDisplay, DISPLAY_MAX_CHARS, DISPLAY_MAX_MARKS, displayProblem };

const SPACES_RE = /\s+/gu;

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

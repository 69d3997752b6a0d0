/**
 * Nicknames: their length limit and how a taken name gets its number.
 * Pure functions of strings; the hub calls them when a name is given, never per message.
 * @module
 */

/** Most characters (Unicode code points, as `NAME_RE`'s `u` flag counts them) in a nickname. */
export const NAME_MAX_CHARS = 32;

/**
 * `name` with `suffix` appended, `name` cut first so the result has at most {@link NAME_MAX_CHARS}
 * code points. Cut by code point, not UTF-16 unit, so an astral letter is never split into a lone
 * surrogate. Names hold no combining marks (the name rules refuse them), so a code point boundary is
 * a character boundary.
 */
export function withSuffix(name: string, suffix: string): string {
  const room = NAME_MAX_CHARS - [...suffix].length;
  if (name.length <= room) return name + suffix; // at most `room` units: at most `room` code points
  const chars = [...name];
  return (chars.length <= room ? name : chars.slice(0, room).join("")) + suffix;
}

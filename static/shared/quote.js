/**
 * The quote a reply carries of the message it answers, one rule for the server (made when a reply is
 * read, from that message as it is then) and the page (which rewrites the quotes it holds on an edit line).
 * @module
 */

/** Code points of the original a reply quotes (of its first line). */
export const QUOTE_MAX_CHARS = 100;

/**
 * The quote of `text` a reply keeps: its first line (up to the first `\n` or `\r`), cut to
 * {@link QUOTE_MAX_CHARS} code points, never inside a surrogate pair; no ellipsis is added.
 * @param {string} text
 * @returns {string}
 */
export function quoteOf(text) {
  const nl = text.search(/[\r\n]/);
  const line = nl < 0 ? text : text.slice(0, nl);
  // Code points, not UTF-16 units: an astral character is never split (the Redis script counts alike).
  if (line.length <= QUOTE_MAX_CHARS) return line;
  let n = 0, i = 0;
  while (i < line.length && n < QUOTE_MAX_CHARS) {
    const c = line.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < line.length ? 2 : 1;
    n++;
  }
  return line.slice(0, i);
}

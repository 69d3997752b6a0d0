/**
 * The mention rule, one for the server and the page: which `@name`s a text holds. The server looks the
 * names up and records whom a message mentions; the page highlights a message that mentions you by the
 * same rule, so a message is highlighted exactly when it can be counted.
 * @module
 */

/**
 * An `@name`: `@` not inside a word (so `a@b.example` mentions nobody), then name characters (letters,
 * digits, `_`, `.`, `-`, and marks too, as NFKC may compose them). Global: read it with `matchAll`.
 */
export const MENTION_RE = /(?<![\p{L}\p{N}\p{M}_.@-])@([\p{L}\p{N}\p{M}_.-]{1,128})/gu;

/** What ends a sentence after a name rather than belonging to it ("thanks @bob."). */
const TRAILING_RE = /[.\-_]+$/;

/**
 * The names `text` mentions, in the order of the text, each as the tries the server makes: the name as
 * written (after `canonical`), then without trailing `.`, `-` and `_` when that differs and is not empty.
 * The server takes the first try that is a valid name someone holds. Nothing here is validated or
 * de-duplicated: the caller checks the names (the server with its name rules) and caps how many count.
 * @param {string} text
 * @param {(raw: string) => string} [canonical] the form a name is compared in (the server's canonical
 *   name, NFKC); default: as written
 * @returns {string[][]}
 */
export function mentionCandidates(text, canonical = (raw) => raw) {
  /** @type {string[][]} */
  const out = [];
  for (const match of text.matchAll(MENTION_RE)) {
    const name = canonical(match[1]);
    const cut = name.replace(TRAILING_RE, "");
    out.push(cut !== name && cut !== "" ? [name, cut] : [name]);
  }
  return out;
}

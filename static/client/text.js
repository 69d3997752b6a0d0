/**
 * Text for the page: links in a message, and a time in a sentence.
 * @module
 */

/**
 * Splits `text` into plain parts and http(s) links. Only `http:` and `https:` URLs become links;
 * trailing punctuation stays text.
 * @param {string} text
 * @returns {{ text: string, href?: string }[]}
 */
export function linkify(text) {
  /** @type {{ text: string, href?: string }[]} */
  const parts = [];
  const re = /\bhttps?:\/\/[^\s<>"'`]+/gi;
  let last = 0;
  for (const m of text.matchAll(re)) {
    let url = m[0];
    // Trailing punctuation belongs to the sentence; a ")" only when unbalanced.
    while (/[.,;:!?'")\]}]$/.test(url)) {
      if (url.endsWith(")") && count(url, "(") >= count(url, ")")) break;
      url = url.slice(0, -1);
    }
    const start = m.index ?? 0;
    let href;
    try {
      const u = new URL(url);
      if ((u.protocol === "http:" || u.protocol === "https:") && u.hostname) href = u.href;
    } catch { /* not a URL after all */ }
    if (!href) continue;
    if (start > last) parts.push({ text: text.slice(last, start) });
    parts.push({ text: url, href });
    last = start + url.length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

/**
 * @param {string} s
 * @param {string} ch
 */
function count(s, ch) {
  return s.split(ch).length - 1;
}

/**
 * A time for a sentence: "14:05" today, else with the date.
 * @param {number} ms
 */
export function formatUntil(ms) {
  const d = new Date(ms);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay
    ? d.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" })
    : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

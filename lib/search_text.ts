/**
 * Search text, one definition for every store: how a message's text becomes index terms, how a query
 * (`cafe "exact phrase" -word from:ada in:lobby before:2026-12-01 after:… has:link`) is parsed, how a
 * parsed query matches terms (the memory store) or becomes an FTS5 expression (SQLite), and which
 * ranges of a text it matched (for highlighting). Pure: no I/O, no state.
 *
 * Words: `Intl.Segmenter` where only its dictionaries find them (Thai, Lao, Khmer, Burmese), else
 * runs of letters, digits and marks (measured: the segmenter costs 60-120 us a message, the runs about
 * 5, on the write path). Then folded: case, compatibility forms (NFKD) and the accents of the
 * alphabets where they are optional to a searcher (Latin, Greek, Cyrillic, Arabic, Hebrew; Thai and
 * Indic marks are letters and stay). Chinese, Japanese and Korean are indexed as their characters and
 * character pairs, and CJK in a query is looked for as its pairs: any two-character word is found
 * wherever it stands (`会議` in `明日の会議は`, `世界` in `全世界`, which the segmenter's dictionary
 * keeps whole), where words alone would depend on how a dictionary cut the text.
 * @module
 */

/** A word segmenter for any language (ICU's dictionaries for Thai and its neighbours). */
const WORDS = new Intl.Segmenter(undefined, { granularity: "word" });
/**
 * Scripts written without spaces whose words only the segmenter's dictionaries find (Thai, Lao, Khmer,
 * Burmese). Chinese, Japanese and Korean need none: their runs are indexed as characters and pairs
 * (see {@link indexTerms}), which find any word in them, so their text is cut like the rest: at what
 * is not a letter, digit or mark, and where CJK meets other letters. The segmenter costs 60-120 us a
 * message; the cut, about 5.
 */
const SEGMENTED = /[\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}]/u;
/** What separates terms inside one segment (the `-` of `e-mail`, the `.` of `3.14`, an apostrophe). */
const SEPARATORS = /[^\p{L}\p{N}\p{M}]+/u;
/**
 * Accents a searcher leaves out: marks on letters of these alphabets (every mark after one, at once:
 * half the time of looking behind each mark for the letter).
 */
const OPTIONAL_MARKS =
  /(?<=[\p{Script=Latin}\p{Script=Greek}\p{Script=Cyrillic}\p{Script=Arabic}\p{Script=Hebrew}])\p{M}+/gu;
/** Scripts written without spaces, indexed as characters and pairs too. */
const CJK_CHARS = "\\p{Script=Han}\\p{Script=Hiragana}\\p{Script=Katakana}\\p{Script=Hangul}ー";
const CJK_RUNS = new RegExp(`[${CJK_CHARS}]+`, "gu");
const CJK = new RegExp(`[${CJK_CHARS}]`, "u");
/** Runs of CJK, and runs of other letters, digits and marks: the words of text that needs no segmenter. */
const RUNS = new RegExp(`[${CJK_CHARS}]+|(?:(?![${CJK_CHARS}])[\\p{L}\\p{N}\\p{M}])+`, "gu");
/** A query chunk's CJK parts and the rest. */
const CJK_PARTS = new RegExp(`([${CJK_CHARS}]+)|([^${CJK_CHARS}]+)`, "gu");
/** What counts as a link for `has:link`. */
const LINK = /\bhttps?:\/\/\S|\bwww\.\S/i;
// deno-lint-ignore no-control-regex -- every ASCII character is what the fast path takes
const ASCII = /^[\u0000-\u007f]*$/;
/** ASCII's letters and digits: what {@link RUNS} and {@link SEPARATORS} leave of an ASCII text. */
const ASCII_RUNS = /[a-z0-9]+/g;
/** `before:` and `after:` dates. */
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DAY_MS = 86_400_000;

/** A message's text as the index holds it. */
export interface IndexTerms {
  /** Its words, folded, in order (phrases match runs of them). */
  words: string[];
  /** The characters and character pairs of its runs of CJK text. */
  extra: string[];
  /** Whether it holds a link (`has:link`). */
  link: boolean;
}

/**
 * One thing to find: a word (one token), a run of words (a phrase, or a word the segmenter cut), or
 * CJK text (`cjk`: its character pairs, in `tokens`, all in one message's pairs).
 */
export interface Term {
  tokens: string[];
  /** The last token is a prefix: the word still being typed. */
  prefix: boolean;
  /** CJK text, folded: `tokens` are its pairs (its one character when it has one). */
  cjk?: string;
}

/** A parsed query. */
export interface SearchQuery {
  /** Every one must match. */
  terms: Term[];
  /** None may match (`-word`, `-"a phrase"`). */
  without: Term[];
  /** `from:name`: the sender's name, folded. */
  from?: string;
  /** `in:room`: as written. */
  in?: string;
  /** `before:date`: only messages older than this (ms, the date's 00:00 UTC). */
  before?: number;
  /** `after:date`: only messages from the day after it on (ms). */
  after?: number;
  /** `has:link`. */
  hasLink: boolean;
}

/** A query that cannot be run: the message says why, for the person who typed it. */
export class QueryError extends Error {
  override name = "QueryError";
}

/** `s` folded as the index folds words: lower case, compatibility forms, optional accents dropped. */
export function fold(s: string): string {
  // ASCII has no compatibility forms and no marks (about 1 us a name saved on the write path).
  if (ASCII.test(s)) return s.toLowerCase();
  return s.normalize("NFKD").replace(OPTIONAL_MARKS, "").normalize("NFC").toLowerCase();
}

/** A word of a text with where it is (UTF-16 offsets into the text). */
interface Located {
  token: string;
  start: number;
  end: number;
}

/** The folded words of `text`, in order, with their places. */
function locate(text: string): Located[] {
  const out: Located[] = [];
  if (!SEGMENTED.test(text)) {
    for (const m of text.matchAll(RUNS)) {
      for (const token of fold(m[0]).split(SEPARATORS)) {
        if (token !== "") out.push({ token, start: m.index, end: m.index + m[0].length });
      }
    }
    return out;
  }
  for (const s of WORDS.segment(text)) {
    if (!s.isWordLike) continue;
    let at = 0;
    for (const piece of s.segment.split(SEPARATORS)) {
      const start = s.segment.indexOf(piece, at);
      at = start + piece.length;
      if (piece === "") continue;
      for (const token of fold(piece).split(SEPARATORS)) {
        if (token !== "") out.push({ token, start: s.index + start, end: s.index + at });
      }
    }
  }
  return out;
}

/** The folded words of `text`, in order. */
export function tokensOf(text: string): string[] {
  return locate(text).map((l) => l.token);
}

/** What the index keeps of a message's text (see {@link IndexTerms}). */
export function indexTerms(text: string): IndexTerms {
  // Most messages are ASCII: their fold is their lower case (NFKD changes no ASCII character and they
  // carry no marks) and they hold no CJK, so one pass finds their words. A message is indexed in the
  // durable write's path, where the slow path's normalising of each word cost about 12 us.
  if (ASCII.test(text)) {
    const words: string[] = [];
    for (const [run] of text.toLowerCase().matchAll(ASCII_RUNS)) words.push(run);
    return { words, extra: [], link: LINK.test(text) };
  }
  const extra = new Set<string>();
  // Folding keeps CJK, and makes it only of compatibility forms (`㊀`), which NFKD shows: text without
  // any (most) skips the second fold.
  if (CJK.test(text.normalize("NFKD"))) {
    for (const [run] of fold(text).matchAll(CJK_RUNS)) {
      const chars = [...run];
      chars.forEach((c, i) => {
        extra.add(c);
        if (i + 1 < chars.length) extra.add(c + chars[i + 1]);
      });
    }
  }
  return {
    words: SEGMENTED.test(text) ? tokensOf(text) : runWords(text),
    extra: [...extra],
    link: LINK.test(text),
  };
}

/**
 * What {@link tokensOf} finds in text that needs no segmenter, without the places: the runs folded
 * in one call, joined by a line break, which no fold makes, moves or joins to a neighbour (it is no
 * letter, mark or case-ignorable character), so it cuts them where they were. One fold instead of one
 * a word: 5 us less for a Russian message of ten words.
 */
function runWords(text: string): string[] {
  const runs = text.match(RUNS);
  if (runs === null) return [];
  return fold(runs.join("\n")).split(SEPARATORS).filter((w) => w !== "");
}

/** The pairs of CJK text (its one character when it has one), as {@link indexTerms} indexes them. */
function pairs(cjk: string): string[] {
  const chars = [...cjk];
  if (chars.length === 1) return chars;
  return [...new Set(chars.slice(1).map((c, i) => chars[i] + c))];
}

/**
 * Parses a query. Anything that is not an operator is taken literally as words: FTS syntax
 * (`NEAR(`, `*`, `^`, `col:`) means nothing here. An unclosed quote runs to the end.
 * @throws {QueryError} when it is longer than `maxChars`, has nothing to look for (only operators,
 * only excluded words, only punctuation) or an operator's value is not understood.
 */
export function parseQuery(q: string, maxChars: number): SearchQuery {
  if (q.length > maxChars) {
    throw new QueryError(`A search is at most ${maxChars} characters, got ${q.length}`);
  }
  const out: SearchQuery = { terms: [], without: [], hasLink: false };
  let i = 0;
  while (i < q.length) {
    if (/\s/.test(q[i])) {
      i++;
      continue;
    }
    const negative = q[i] === "-" && i + 1 < q.length && !/\s/.test(q[i + 1]);
    if (negative) i++;
    let chunk: string, quoted: boolean, atEnd: boolean;
    if (q[i] === '"') {
      const close = q.indexOf('"', i + 1);
      chunk = q.slice(i + 1, close < 0 ? q.length : close);
      i = close < 0 ? q.length : close + 1;
      quoted = true;
      atEnd = false;
    } else {
      let j = i;
      while (j < q.length && !/\s/.test(q[j]) && q[j] !== '"') j++;
      chunk = q.slice(i, j);
      i = j;
      quoted = false;
      atEnd = j === q.length;
    }
    if (!quoted && !negative && operator(chunk, out)) continue;
    const into = negative ? out.without : out.terms;
    // CJK text is looked for by its pairs (wherever it stands), the words around it as words.
    const parts = [...fold(chunk).matchAll(CJK_PARTS)];
    parts.forEach((p, k) => {
      if (p[1] !== undefined) return void into.push({ tokens: pairs(p[1]), prefix: false, cjk: p[1] });
      const tokens = tokensOf(p[2]);
      if (tokens.length > 0) into.push({ tokens, prefix: atEnd && !negative && k === parts.length - 1 });
    });
  }
  // Only the word at the very end is still being typed.
  out.terms.forEach((t, k) => t.prefix &&= k === out.terms.length - 1);
  if (out.terms.length === 0 && !out.hasLink) {
    throw new QueryError(
      out.without.length > 0 || out.from || out.in || out.before || out.after
        ? "A search needs at least one word to look for besides its filters and excluded words"
        : "A search needs at least one word to look for",
    );
  }
  return out;
}

/** Reads `from:`, `in:`, `before:`, `after:`, `has:` into `out`; false when `chunk` is none of them. */
function operator(chunk: string, out: SearchQuery): boolean {
  const m = /^(from|in|before|after|has):(.+)$/i.exec(chunk);
  if (!m) return false;
  const [, op, value] = m;
  switch (op.toLowerCase()) {
    case "from":
      out.from = fold(value.replace(/^@/, ""));
      return true;
    case "in":
      out.in = value.replace(/^#/, "");
      return true;
    case "before":
      out.before = day(value, "before");
      return true;
    case "after":
      out.after = day(value, "after") + DAY_MS;
      return true;
    default:
      if (value.toLowerCase() !== "link") {
        throw new QueryError(`"has:" knows only "has:link", got ${JSON.stringify(chunk)}`);
      }
      out.hasLink = true;
      return true;
  }
}

/** A `YYYY-MM-DD` date's 00:00 UTC (ms). */
function day(value: string, op: string): number {
  const m = DATE.exec(value);
  const ms = m ? Date.UTC(+m[1], +m[2] - 1, +m[3]) : NaN;
  // Date.UTC rolls 2026-02-30 over into March: a date that is not itself is refused.
  if (!m || Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== value) {
    throw new QueryError(`"${op}:" needs a date like 2026-12-01, got ${JSON.stringify(value)}`);
  }
  return ms;
}

const UTF8 = new TextEncoder();
/** Each byte's two hex digits. */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/**
 * `s` as a token of hex digits of its UTF-8: any room or name, one token to the index's tokenizer.
 * Two of them go with every message written; an ASCII name's bytes are its char codes, read without
 * encoding (the encoding and joining cost 1.5 us a token, most of what indexing an ASCII text costs).
 */
function hexToken(prefix: string, s: string): string {
  let out = prefix;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return prefix + Array.from(UTF8.encode(s), (b) => HEX[b]).join("");
    out += HEX[c];
  }
  return out;
}

/**
 * The `tags` column of a message: `link` when it has one, its room and its sender (folded) as tokens,
 * so that the index itself narrows a search to a person's rooms or to `from:` (measured: filtering
 * each match after the index found it was the slow part, 100-200 ms at p95 on 200,000 messages).
 */
export function tagsOf(room: string, from: string, link: boolean): string {
  return `${link ? "link " : ""}${hexToken("r", room)} ${hexToken("w", fold(from))}`;
}

/**
 * A message's row of the SQLite index: its words, CJK extras and tags (each space-separated), for the
 * columns `words`, `extra` and `tags`. The writer thread computes it (lib/store_writer.ts), off the
 * event loop.
 */
export function indexRow(room: string, from: string, text: string): [string, string, string] {
  const t = indexTerms(text);
  return [t.words.join(" "), t.extra.join(" "), tagsOf(room, from, t.link)];
}

/**
 * The FTS5 expression of `q` over the columns `words`, `extra` and `tags` (see the SQLite schema), in
 * `rooms` when given (not empty). Every token is a quoted string (a `"` in it doubled), so nothing a
 * person types is FTS syntax.
 */
export function ftsMatch(q: SearchQuery, rooms?: readonly string[]): string {
  const quoted = (s: string) => `"${s.replaceAll('"', '""')}"`;
  const term = (t: Term) => {
    if (t.cjk !== undefined) return `extra : (${t.tokens.map(quoted).join(" AND ")})`;
    const phrase = `${quoted(t.tokens.join(" "))}${t.prefix ? "*" : ""}`;
    return t.tokens.length === 1 ? `{words extra} : ${phrase}` : `words : ${phrase}`;
  };
  const parts = q.terms.map(term);
  if (q.hasLink) parts.push(`tags : "link"`);
  if (q.from !== undefined) parts.push(`tags : ${quoted(hexToken("w", q.from))}`);
  if (rooms !== undefined) parts.push(`tags : (${rooms.map((r) => quoted(hexToken("r", r))).join(" OR ")})`);
  let expr = parts.join(" AND ");
  for (const t of q.without) expr = `(${expr}) NOT ${term(t)}`;
  return expr;
}

/** Whether a message indexed as `m` matches `q`'s terms and `has:link` (not its other filters). */
export function matches(m: IndexTerms, q: SearchQuery): boolean {
  if (q.hasLink && !m.link) return false;
  return q.terms.every((t) => has(m, t)) && !q.without.some((t) => has(m, t));
}

function has(m: IndexTerms, t: Term): boolean {
  if (t.cjk !== undefined) return t.tokens.every((p) => m.extra.includes(p));
  const is = (w: string, k: number) =>
    t.prefix && k === t.tokens.length - 1 ? w.startsWith(t.tokens[k]) : w === t.tokens[k];
  if (t.tokens.length === 1) return m.words.some((w) => is(w, 0)) || m.extra.some((w) => is(w, 0));
  for (let i = 0; i + t.tokens.length <= m.words.length; i++) {
    if (t.tokens.every((_, k) => is(m.words[i + k], k))) return true;
  }
  return false;
}

/** How well a message indexed as `m` matches `q`: its matching words, for "best match first". */
export function score(m: IndexTerms, q: SearchQuery): number {
  let n = 0;
  for (const t of q.terms) {
    for (const w of m.words) {
      if (t.prefix ? w.startsWith(t.tokens[0]) : t.tokens.includes(w)) n++;
    }
  }
  return n / Math.sqrt(m.words.length + 1);
}

/**
 * The ranges of `text` that `q`'s terms match, as `[start, end)` UTF-16 offsets, sorted and merged:
 * what a page highlights. A CJK term found inside a longer word is its own range there.
 */
export function matchRanges(text: string, q: SearchQuery): [number, number][] {
  const words = locate(text);
  const found: [number, number][] = [];
  for (const t of q.terms) {
    if (t.cjk !== undefined) {
      // Folding leaves CJK text as it is (but for compatibility forms, which are then not marked).
      for (let at = text.indexOf(t.cjk); at >= 0; at = text.indexOf(t.cjk, at + t.cjk.length)) {
        found.push([at, at + t.cjk.length]);
      }
      continue;
    }
    const last = t.tokens.length - 1;
    const is = (w: string, k: number) =>
      t.prefix && k === last ? w.startsWith(t.tokens[k]) : w === t.tokens[k];
    for (let i = 0; i + last < words.length; i++) {
      if (t.tokens.every((_, k) => is(words[i + k].token, k))) {
        found.push([words[i].start, words[i + last].end]);
      }
    }
  }
  found.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const merged: [number, number][] = [];
  for (const r of found) {
    const prev = merged.at(-1);
    if (prev && r[0] <= prev[1]) prev[1] = Math.max(prev[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}

/**
 * A message's place in the newest-first order of search results (and the cursor of a page): its ts
 * in ms times 1000, plus one for each message stored before it in the same ms. Both stores number
 * alike, so they page alike.
 */
export function searchId(ts: number, lastId: number): number {
  return Math.max(ts * 1000, lastId + 1);
}

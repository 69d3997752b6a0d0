/**
 * The Markdown subset the page shows a message's text in: `**bold**`, `*italic*` and `_italic_`,
 * `~~strike~~`, `` `code` ``, fenced code blocks, `[text](url)` links and bare http(s) URLs, `> quote`
 * lines, and backslash escapes. Never HTML: `<b>` is the four characters `<b>`. The text on the wire is
 * the raw text; this is only how the page shows it.
 *
 * `parseMarkdown` is DOM-free (it runs in Deno's tests as it is) and returns a small tree;
 * `renderMarkdown` builds that tree with `createElement` and `textContent` only.
 *
 * Linear time by construction, because a message is anyone's input: no regular expression runs over the
 * whole text (the few here match one line or one character, anchored, with nothing to backtrack over),
 * and every scan that looks ahead either consumes what it scanned or leaves a mark that stops the same
 * stretch being scanned again:
 * - a code span's closing backtick run is found in a table of runs made in one pass, read with a cursor
 *   per run length that only moves forward;
 * - a link's `(url)` is read from two tables made in one pass from the right (next `)`, next character
 *   that cannot be in a URL), in constant time per `]`;
 * - a bare URL that turns out not to be one marks where its scan stopped, and no URL starts before that;
 * - an emphasis closer looks only at the top of its marker's stack, and the openers it makes literal are
 *   popped, each at most once;
 * - a code fence that finds no closing fence means there is none further down either.
 * @module
 */

/**
 * @typedef {{ type: "text", text: string }
 *   | { type: "code", text: string }
 *   | { type: "strong" | "em" | "del", children: MarkdownNode[] }
 *   | { type: "link", href: string, children: MarkdownNode[] }
 *   | { type: "pre", text: string, lang: string }
 *   | { type: "quote", children: MarkdownNode[] }} MarkdownNode
 */

/**
 * How deep bold, italic and strike may nest; markers deeper than this stay literal text, so that a
 * text of thousands of `**` pairs does not become a DOM thousands of elements deep.
 */
export const MAX_NESTING = 8;

/** The schemes a link may have; anything else (`javascript:`, `data:`, a relative URL) stays text. */
const SCHEMES = new Set(["http:", "https:", "mailto:"]);

/** What a backslash makes literal (CommonMark's ASCII punctuation). */
const ESCAPABLE = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

const FENCE_OPEN = /^ {0,3}(`{3,})([^`]*)$/;
const FENCE_CLOSE = /^ {0,3}`{3,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?/;
const SPACE = /^\s$/u;
const PUNCT = /^[\p{P}\p{S}]$/u;
const WORD = /^[\p{L}\p{N}_]$/u;
/** What a character is to a marker next to it: a space (or the start or end), punctuation, or other. */
const IS_SPACE = 0, IS_PUNCT = 1, IS_OTHER = 2;

/** The characters the inline pass stops at; a run of others is plain text. */
const SPECIAL = new Set([..."\\`*_~[]hH"]);

/** Characters that end a bare URL (as `linkify` in the protocol client has them). */
const URL_STOP = new Set([..." \t\n\r\f\v<>\"'`"]);
/** What a bare URL does not end with: it belongs to the sentence (a `)` only when unbalanced). */
const URL_TRAIL = new Set([...".,;:!?)]}*_~"]);

/**
 * The tree of `text` in the subset above. Text outside any construct, and every marker that is not
 * closed, comes back as `text` nodes with the characters as written (escapes resolved); newlines stay
 * in the text (the page shows them as line breaks), except the one between a paragraph and a block.
 * @param {string} text
 * @param {{ maxNesting?: number }} [opts] `maxNesting`: @default {@link MAX_NESTING}
 * @returns {MarkdownNode[]}
 */
export function parseMarkdown(text, opts = {}) {
  const maxNesting = opts.maxNesting ?? MAX_NESTING;
  const lines = text.split(/\r\n?|\n/);
  /** @type {MarkdownNode[]} */
  const out = [];
  /** @type {string[]} */
  let para = [];
  const flush = () => {
    // A loop, not push(...nodes): a long text has more nodes than a call may take arguments.
    if (para.length > 0) { for (const node of parseInline(para.join("\n"), maxNesting)) out.push(node); }
    para = [];
  };
  let fenceBelow = true;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = fenceBelow ? FENCE_OPEN.exec(line) : null;
    if (fence) {
      let close = i + 1;
      while (close < lines.length && !FENCE_CLOSE.test(lines[close])) close++;
      if (close < lines.length) {
        flush();
        out.push({ type: "pre", text: lines.slice(i + 1, close).join("\n"), lang: fence[2].trim() });
        i = close;
        continue;
      }
      // No closing fence below this line, so none below any later one: they all stay text.
      fenceBelow = false;
    }
    if (QUOTE.test(line)) {
      flush();
      /** @type {string[]} */
      const quoted = [];
      for (; i < lines.length; i++) {
        const m = QUOTE.exec(lines[i]);
        if (!m) break;
        quoted.push(lines[i].slice(m[0].length));
      }
      i--;
      out.push({ type: "quote", children: parseInline(quoted.join("\n"), maxNesting) });
      continue;
    }
    para.push(line);
  }
  flush();
  return out;
}

/**
 * @typedef {{ t: "text", text: string }
 *   | { t: "node", node: MarkdownNode }
 *   | { t: "open", href?: string }
 *   | { t: "close" }
 *   | Delim} Token
 * @typedef {{ t: "delim", ch: string, n: number, left: number, usedClose: number, usedOpen: number,
 *   closes: string[], opens: string[], at: number }} Delim a run of `*`, `_` or `~~`; `left`: characters
 *   not used yet; `closes` innermost first; `opens` innermost first (found in that order)
 */

/**
 * Inline constructs of one paragraph or quote. One pass makes a flat list of tokens, matching each
 * emphasis closer and each `](url)` as it is met; a second builds the tree.
 * @param {string} s
 * @param {number} maxNesting
 * @returns {MarkdownNode[]}
 */
function parseInline(s, maxNesting) {
  /** @type {Token[]} */
  const toks = [];
  /** @type {Record<string, Delim[]>} */
  const openers = { "*": [], "_": [], "~": [] };
  const stacks = Object.values(openers);
  /** Indexes in `toks` of the `[` not closed yet. */
  const brackets = /** @type {number[]} */ ([]);
  /** Index of the `[` of the last link: a `[` before it cannot make a link (no links in links). */
  let lastLink = -1;
  /** A bare URL may not start before this (an earlier scan found nothing there). */
  let urlFrom = 0;
  const ticks = backtickRuns(s);
  /** @type {{ close: Int32Array, stop: Int32Array, paren: Int32Array } | undefined} */
  let dest;
  let text = "";
  const flushText = () => {
    if (text) toks.push({ t: "text", text });
    text = "";
  };
  /** Openers after token `at` become literal: nothing after a link or a closed pair may close them. */
  const dropOpenersAfter = (/** @type {number} */ at) => {
    for (const stack of stacks) {
      while (stack.length > 0 && stack[stack.length - 1].at > at) stack.pop();
    }
  };

  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === "\\" && i + 1 < s.length && ESCAPABLE.includes(s[i + 1])) {
      text += s[i + 1];
      i += 2;
    } else if (c === "`") {
      let j = i;
      while (s[j] === "`") j++;
      const close = ticks.next(j - i, j);
      if (close < 0) {
        text += s.slice(i, j);
      } else {
        flushText();
        toks.push({ t: "node", node: { type: "code", text: codeText(s.slice(j, close)) } });
        j = close + (j - i);
      }
      i = j;
    } else if (c === "*" || c === "_" || c === "~") {
      let j = i;
      while (s[j] === c) j++;
      const n = j - i;
      if (c === "~" && n !== 2) {
        text += s.slice(i, j);
        i = j;
        continue;
      }
      const before = classBefore(s, i), after = classAt(s, j);
      const sb = before === IS_SPACE, sa = after === IS_SPACE;
      const pb = before === IS_PUNCT, pa = after === IS_PUNCT;
      const leftFlanking = !sa && (!pa || sb || pb);
      const rightFlanking = !sb && (!pb || sa || pa);
      // `_` inside a word (snake_case_names) neither opens nor closes; `*` may (CommonMark's rule).
      const canOpen = c === "_" ? leftFlanking && (!rightFlanking || pb) : leftFlanking;
      const canClose = c === "_" ? rightFlanking && (!leftFlanking || pa) : rightFlanking;
      flushText();
      /** @type {Delim} */
      const tok = {
        t: "delim",
        ch: c,
        n,
        left: n,
        usedClose: 0,
        usedOpen: 0,
        closes: [],
        opens: [],
        at: toks.length,
      };
      toks.push(tok);
      const stack = openers[c];
      const floor = brackets.length > 0 ? brackets[brackets.length - 1] : -1;
      while (canClose && tok.left > 0 && stack.length > 0 && stack[stack.length - 1].at > floor) {
        const o = stack[stack.length - 1];
        const use = o.left >= 2 && tok.left >= 2 ? 2 : 1;
        const kind = c === "~" ? "del" : use === 2 ? "strong" : "em";
        o.left -= use;
        o.usedOpen += use;
        o.opens.push(kind);
        tok.left -= use;
        tok.usedClose += use;
        tok.closes.push(kind);
        if (o.left === 0) stack.pop();
        dropOpenersAfter(o.at);
      }
      if (canOpen && tok.left > 0) stack.push(tok);
      i = j;
    } else if (c === "[") {
      flushText();
      brackets.push(toks.length);
      toks.push({ t: "open" });
      i++;
    } else if (c === "]" && brackets.length > 0) {
      const b = /** @type {number} */ (brackets.pop());
      dest ??= destinationTables(s);
      const link = b > lastLink && s[i + 1] === "(" ? destination(s, i + 2, dest) : undefined;
      if (!link) {
        text += "]";
        i++;
        continue;
      }
      flushText();
      /** @type {{ t: "open", href?: string }} */ (toks[b]).href = link.href;
      toks.push({ t: "close" });
      lastLink = b;
      dropOpenersAfter(b);
      i = link.end;
    } else if ((c === "h" || c === "H") && i >= urlFrom && !wordBefore(s, i)) {
      const url = bareUrl(s, i);
      if (url.href) {
        flushText();
        const node = {
          type: "link",
          href: url.href,
          children: [{ type: "text", text: s.slice(i, url.end) }],
        };
        toks.push({ t: "node", node: /** @type {MarkdownNode} */ (node) });
        i = url.end;
      } else {
        urlFrom = url.end;
        text += c;
        i++;
      }
    } else {
      // Up to the next character that may start something, in one slice.
      let j = i + 1;
      while (j < s.length && !SPECIAL.has(s[j])) j++;
      text += s.slice(i, j);
      i = j;
    }
  }
  flushText();
  return build(toks, maxNesting);
}

/**
 * The tree of the tokens: each delimiter run is, in order, what it closes, its unused characters as
 * text, and what it opens (outermost first). Pairs never cross (the first pass made sure), so a close
 * always ends the innermost open node.
 * @param {Token[]} toks
 * @param {number} maxNesting
 * @returns {MarkdownNode[]}
 */
function build(toks, maxNesting) {
  /** @type {MarkdownNode[]} */
  const root = [];
  /**
   * Open nodes, innermost last. A `marker` frame is a pair deeper than `maxNesting`: its content goes
   * to the node around it and its markers are written out as text.
   * @type {{ children: MarkdownNode[], marker?: string, link?: { type: "link", href: string, children: MarkdownNode[] } }[]}
   */
  const frames = [{ children: root }];
  let depth = 0, inLink = 0;
  const children = () => frames[frames.length - 1].children;
  const emit = (/** @type {string} */ t) => {
    const list = children();
    const last = list[list.length - 1];
    if (last?.type === "text") last.text += t;
    else list.push({ type: "text", text: t });
  };
  for (const tok of toks) {
    if (tok.t === "text") {
      emit(tok.text);
    } else if (tok.t === "node") {
      // A bare URL inside a link's text is that text, not a second link.
      if (tok.node.type === "link" && inLink > 0) emit(plain(tok.node.children));
      else children().push(tok.node);
    } else if (tok.t === "open") {
      if (tok.href === undefined) {
        emit("[");
        continue;
      }
      /** @type {{ type: "link", href: string, children: MarkdownNode[] }} */
      const link = { type: "link", href: tok.href, children: [] };
      children().push(link);
      frames.push({ children: link.children, link });
      inLink++;
    } else if (tok.t === "close") {
      const frame = frames.pop();
      if (frame?.link && frame.link.children.length === 0) {
        frame.link.children.push({ type: "text", text: frame.link.href });
      }
      inLink--;
    } else {
      for (let k = 0; k < tok.closes.length; k++) {
        const frame = frames.pop();
        if (frame?.marker !== undefined) emit(frame.marker);
        else depth--;
      }
      const unused = tok.n - tok.usedClose - tok.usedOpen;
      if (unused > 0) emit(tok.ch.repeat(unused));
      for (let k = tok.opens.length - 1; k >= 0; k--) {
        const kind = /** @type {"strong" | "em" | "del"} */ (tok.opens[k]);
        if (depth >= maxNesting) {
          const marker = tok.ch.repeat(kind === "em" ? 1 : 2);
          emit(marker);
          frames.push({ children: children(), marker });
        } else {
          /** @type {MarkdownNode} */
          const node = { type: kind, children: [] };
          children().push(node);
          frames.push({ children: node.children });
          depth++;
        }
      }
    }
  }
  return root;
}

/**
 * The text of nodes, without their formatting.
 * @param {MarkdownNode[]} nodes
 * @returns {string}
 */
function plain(nodes) {
  return nodes.map((n) => "children" in n ? plain(n.children) : n.text).join("");
}

/**
 * A code span's content: newlines read as spaces, and one space each side dropped when both are
 * there (so `` ` `x` ` `` can show a backtick), as CommonMark does.
 * @param {string} raw
 */
function codeText(raw) {
  const t = raw.replace(/\r\n?|\n/g, " ");
  return t.length >= 2 && t[0] === " " && t[t.length - 1] === " " && t.trim() !== "" ? t.slice(1, -1) : t;
}

/**
 * Every maximal run of backticks by its length, and `next(n, from)`: where the first run of exactly
 * `n` backticks at or after `from` starts, or -1. Calls come with `from` increasing, so each length's
 * list is read with a cursor that only moves forward.
 * @param {string} s
 */
function backtickRuns(s) {
  /** @type {Map<number, { at: number[], cursor: number }>} */
  const runs = new Map();
  for (let i = s.indexOf("`"); i >= 0; i = s.indexOf("`", i)) {
    let j = i;
    while (s[j] === "`") j++;
    const list = runs.get(j - i) ?? { at: [], cursor: 0 };
    list.at.push(i);
    runs.set(j - i, list);
    i = j;
  }
  return {
    next(/** @type {number} */ n, /** @type {number} */ from) {
      const list = runs.get(n);
      if (!list) return -1;
      while (list.cursor < list.at.length && list.at[list.cursor] < from) list.cursor++;
      return list.cursor < list.at.length ? list.at[list.cursor] : -1;
    },
  };
}

/**
 * For each position of `s`: the next `)`, the next character no link URL may hold (space, control,
 * `<`, `>`), and how many `(` come before it. Made once, from the right.
 * @param {string} s
 */
function destinationTables(s) {
  const close = new Int32Array(s.length + 1), stop = new Int32Array(s.length + 1);
  const paren = new Int32Array(s.length + 1);
  close[s.length] = stop[s.length] = s.length;
  for (let k = s.length - 1; k >= 0; k--) {
    const code = s.charCodeAt(k);
    close[k] = code === 0x29 ? k : close[k + 1];
    stop[k] = code <= 0x20 || code === 0x7f || code === 0x3c || code === 0x3e || SPACE.test(s[k])
      ? k
      : stop[k + 1];
  }
  for (let k = 0; k < s.length; k++) paren[k + 1] = paren[k] + (s.charCodeAt(k) === 0x28 ? 1 : 0);
  return { close, stop, paren };
}

/**
 * The link URL starting at `from` (just after `](`), up to its `)`; one level of parentheses may be
 * inside (`https://en.wikipedia.org/wiki/Tea_(meal)`). Undefined when there is none or its scheme is
 * not allowed. `end`: just after the `)`.
 * @param {string} s
 * @param {number} from
 * @param {{ close: Int32Array, stop: Int32Array, paren: Int32Array }} t
 */
function destination(s, from, t) {
  if (from > s.length) return undefined;
  let end = t.close[from];
  const limit = t.stop[from];
  if (end >= limit) return undefined;
  const opened = t.paren[end] - t.paren[from];
  if (opened === 1 && end + 1 <= s.length) {
    end = t.close[end + 1];
    if (end >= limit || t.paren[end] - t.paren[from] !== 1) return undefined;
  } else if (opened > 1) {
    return undefined;
  }
  const href = safeHref(s.slice(from, end));
  return href ? { href, end: end + 1 } : undefined;
}

/**
 * A bare `http://` or `https://` URL at `i`: its href and where it ends, trailing punctuation left to
 * the sentence. Without `href`, `end` is where the scan stopped.
 * @param {string} s
 * @param {number} i
 * @returns {{ href?: string, end: number }}
 */
function bareUrl(s, i) {
  const head = s.slice(i, i + 8).toLowerCase();
  if (!head.startsWith("http://") && head !== "https://") return { end: i + 1 };
  let end = i, opened = 0, closed = 0;
  while (end < s.length && !URL_STOP.has(s[end]) && !SPACE.test(s[end])) {
    if (s[end] === "(") opened++;
    else if (s[end] === ")") closed++;
    end++;
  }
  const scanned = end;
  while (end > i && URL_TRAIL.has(s[end - 1])) {
    if (s[end - 1] === ")") {
      if (opened >= closed) break;
      closed--;
    }
    end--;
  }
  const href = safeHref(s.slice(i, end));
  return href ? { href, end } : { end: scanned };
}

/**
 * `raw` as a link's href when it is an absolute URL of an allowed scheme (with a host, for http and
 * https), else undefined. The URL parser drops tabs and newlines inside a scheme, so `java\tscript:` is
 * read as the browser would read it.
 * @param {string} raw
 */
function safeHref(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (!SCHEMES.has(url.protocol)) return undefined;
  if (url.protocol !== "mailto:" && !url.hostname) return undefined;
  if (url.protocol === "mailto:" && url.pathname === "") return undefined;
  return url.href;
}

/**
 * What the character (code point) ending just before `i` is, a space at the start. ASCII is told
 * without a regular expression: a run of markers asks this twice.
 * @param {string} s
 * @param {number} i
 */
function classBefore(s, i) {
  if (i === 0) return IS_SPACE;
  const low = s.charCodeAt(i - 1);
  return classOf(low >= 0xdc00 && low <= 0xdfff && i >= 2 ? s.codePointAt(i - 2) ?? low : low);
}

/**
 * What the character (code point) at `i` is, a space at the end.
 * @param {string} s
 * @param {number} i
 */
function classAt(s, i) {
  return i >= s.length ? IS_SPACE : classOf(s.codePointAt(i) ?? 0x20);
}

/** @param {number} cp */
function classOf(cp) {
  if (cp < 0x80) {
    if (cp === 0x20 || (cp >= 0x09 && cp <= 0x0d)) return IS_SPACE;
    const punct = (cp >= 0x21 && cp <= 0x2f) || (cp >= 0x3a && cp <= 0x40) || (cp >= 0x5b && cp <= 0x60) ||
      (cp >= 0x7b && cp <= 0x7e);
    return punct ? IS_PUNCT : IS_OTHER;
  }
  const ch = String.fromCodePoint(cp);
  return SPACE.test(ch) ? IS_SPACE : PUNCT.test(ch) ? IS_PUNCT : IS_OTHER;
}

/**
 * Whether a letter, digit or `_` ends just before `i` (a bare URL does not start inside a word).
 * @param {string} s
 * @param {number} i
 */
function wordBefore(s, i) {
  if (i === 0) return false;
  const low = s.charCodeAt(i - 1);
  const cp = low >= 0xdc00 && low <= 0xdfff && i >= 2 ? s.codePointAt(i - 2) ?? low : low;
  if (cp < 0x80) {
    return cp === 0x5f || (cp >= 0x30 && cp <= 0x39) || ((cp | 0x20) >= 0x61 && (cp | 0x20) <= 0x7a);
  }
  return WORD.test(String.fromCodePoint(cp));
}

/**
 * The nodes of `text` for the page: `createElement` and `textContent` only, so nothing in the text
 * can become markup; links open in a new tab without telling the target where they came from.
 * @param {string} text
 * @returns {DocumentFragment}
 */
export function renderMarkdown(text) {
  const frag = document.createDocumentFragment();
  appendNodes(frag, parseMarkdown(text));
  return frag;
}

/**
 * @param {Node} parent
 * @param {MarkdownNode[]} nodes
 */
function appendNodes(parent, nodes) {
  for (const n of nodes) {
    if (n.type === "text") {
      parent.appendChild(document.createTextNode(n.text));
    } else if (n.type === "code") {
      const code = document.createElement("code");
      code.textContent = n.text;
      parent.appendChild(code);
    } else if (n.type === "pre") {
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      code.textContent = n.text;
      pre.appendChild(code);
      parent.appendChild(pre);
    } else if (n.type === "link") {
      const a = document.createElement("a");
      a.href = n.href;
      a.target = "_blank";
      a.rel = "noopener noreferrer nofollow";
      appendNodes(a, n.children);
      parent.appendChild(a);
    } else {
      const e = document.createElement(n.type === "quote" ? "blockquote" : n.type);
      appendNodes(e, n.children);
      parent.appendChild(e);
    }
  }
}

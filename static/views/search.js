/**
 * The search box and its results (docs/protocol.md, "Search"): Ctrl-K or `/` focuses the box, results
 * come as you type (the last word a prefix), grouped by room with the matched words marked (the
 * server says where: nothing is matched again here), and a result opens its room at that message.
 * Keyboard only: arrows move through the results, Enter opens one, Escape closes them. Hidden on a
 * server without search (`limits.searchQueryChars` 0, e.g. Redis).
 * @module
 */
import { byId, el } from "./dom.js";

/** @typedef {import("./state.js").AppState} AppState */
/** @typedef {import("../client/types.js").SearchHit} SearchHit */

/** Milliseconds typing must pause before the box searches. */
const TYPING_PAUSE_MS = 350;

/**
 * @param {AppState} state
 * @param {{ open(hit: SearchHit): void }} actions `open`: show the result's conversation at its message
 */
export function createSearch(state, { open }) {
  const { client } = state;
  const form = byId("search-form", HTMLFormElement);
  const input = byId("search-input", HTMLInputElement);
  const panel = byId("search-results", HTMLElement);
  const status = byId("search-status", HTMLElement);
  const groups = byId("search-groups", HTMLElement);
  const more = byId("search-more", HTMLButtonElement);
  /** The query of the results shown, and the cursor of their next page. */
  let shown = { q: "", next: /** @type {string | undefined} */ (undefined) };
  /** The query asked and not answered yet. */
  let asked = "";
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;

  function render() {
    form.hidden = client.limits.searchQueryChars === 0;
    input.maxLength = client.limits.searchQueryChars || 256;
    if (form.hidden) close();
  }

  /** @param {string} [before] the next page's cursor */
  function ask(before) {
    const q = input.value;
    if (q.trim() === "") return close();
    asked = q;
    panel.hidden = false;
    status.textContent = "Searching…";
    if (!client.search(q, before === undefined ? {} : { before })) {
      status.textContent = client.live
        ? "Too many searches: wait a moment"
        : "Not connected: search when back online";
    }
  }

  function close() {
    clearTimeout(timer);
    panel.hidden = true;
    groups.replaceChildren();
    shown = { q: "", next: undefined };
    asked = "";
  }

  /**
   * The text of a result with its matched ranges in `<mark>`.
   * @param {SearchHit} hit
   */
  function marked(hit) {
    const p = el("span", "search-text");
    let at = 0;
    for (const [start, end] of Array.isArray(hit.matches) ? hit.matches : []) {
      if (typeof start !== "number" || typeof end !== "number" || start < at || end > hit.text.length) {
        continue;
      }
      if (start > at) p.append(hit.text.slice(at, start));
      p.append(el("mark", "", hit.text.slice(start, end)));
      at = end;
    }
    if (at < hit.text.length) p.append(hit.text.slice(at));
    return p;
  }

  /**
   * The group of `where` (a room `#name` or a conversation), made when it is the first of its kind.
   * @param {SearchHit} hit
   */
  function groupOf(hit) {
    const key = hit.room ?? hit.conv ?? "";
    for (const g of groups.children) if (g instanceof HTMLElement && g.dataset.key === key) return g;
    const g = el("section", "search-group");
    g.dataset.key = key;
    const title = hit.room !== undefined ? `#${hit.room}` : "Direct messages";
    const h = el("h3", "search-where", title);
    const list = el("ul", "search-list");
    list.setAttribute("aria-label", `Results in ${title}`);
    g.append(h, list);
    groups.append(g);
    return g;
  }

  /** @param {SearchHit[]} hits */
  function add(hits) {
    for (const hit of hits) {
      if (typeof hit.seq !== "number" || typeof hit.text !== "string") continue;
      const b = el("button", "search-hit");
      b.type = "button";
      const who = el("span", "search-from", hit.display ?? hit.from);
      const when = el("time", "search-when", new Date(hit.ts).toLocaleString());
      when.dateTime = new Date(hit.ts).toISOString();
      b.append(who, when, marked(hit));
      b.addEventListener("click", () => open(hit));
      const li = el("li");
      li.append(b);
      groupOf(hit).querySelector("ul")?.append(li);
    }
  }

  /** The result buttons in order. */
  function hits() {
    return /** @type {HTMLButtonElement[]} */ ([...panel.querySelectorAll("button.search-hit")]);
  }

  client.addEventListener("search", (e) => {
    const m =
      /** @type {CustomEvent<{ q: string, results: SearchHit[], next?: string, partial?: boolean }>} */ (e)
        .detail;
    if (m.q !== asked) return; // an answer to a query typed over since
    const page = m.q === shown.q;
    if (!page) groups.replaceChildren();
    shown = { q: m.q, next: m.next };
    add(m.results);
    const n = hits().length;
    status.textContent = n === 0
      ? `Nothing found for “${m.q}”`
      : `${n} message${n === 1 ? "" : "s"} found${m.partial ? " (the search stopped early)" : ""}`;
    more.hidden = m.next === undefined;
  });
  client.addEventListener("servererror", (e) => {
    const { code, message } = /** @type {CustomEvent<{ code: string, message: string }>} */ (e).detail;
    if (!asked || !["bad_query", "rate_limited", "unsupported"].includes(code)) return;
    status.textContent = message;
    groups.replaceChildren();
    more.hidden = true;
  });
  client.addEventListener("welcome", render);

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => ask(), TYPING_PAUSE_MS);
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearTimeout(timer);
    ask();
  });
  more.addEventListener("click", () => {
    if (shown.next !== undefined) ask(shown.next);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown") {
      e.preventDefault();
      hits()[0]?.focus();
    } else if (e.key === "Escape") {
      input.value = "";
      close();
    }
  });
  panel.addEventListener("keydown", (e) => {
    const list = hits();
    const i = list.indexOf(/** @type {HTMLButtonElement} */ (document.activeElement));
    if (e.key === "ArrowDown" && i >= 0) {
      e.preventDefault();
      (list[i + 1] ?? list[i]).focus();
    } else if (e.key === "ArrowUp" && i >= 0) {
      e.preventDefault();
      (i === 0 ? input : list[i - 1]).focus();
    } else if (e.key === "Escape") {
      close();
      input.focus();
    }
  });
  // Ctrl-K (Cmd-K) anywhere, `/` where it would not be typed into something.
  document.addEventListener("keydown", (e) => {
    if (form.hidden) return;
    const typing = e.target instanceof HTMLElement &&
      (e.target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName));
    const ctrlK = (e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "k";
    if (!ctrlK && !(e.key === "/" && !typing && !e.ctrlKey && !e.metaKey && !e.altKey)) return;
    e.preventDefault();
    // On a narrow screen the box is in the closed drawer: open it first.
    if (input.getClientRects().length === 0) byId("open-sidebar", HTMLButtonElement).click();
    input.focus();
    input.select();
  });

  render();
  return { render, close };
}

/**
 * "Browse rooms": a dialog (the page's `<dialog>`, so focus stays in it and Escape closes it) listing
 * the public rooms the server's directory finds, with a search box that asks the server as you type
 * (once you pause), each room's topic and how many people are in it, and a Join button that joins and
 * opens the room in one click (Open for a room you are in). Everything shown is set with `textContent`.
 * @module
 */
import { el } from "./dom.js";

/** @typedef {import("./state.js").AppState} AppState */
/** @typedef {import("../client/types.js").DirectoryPage} DirectoryPage */

/** Ms of quiet in the search box before the server is asked: one request per pause, not per key. */
const SEARCH_DELAY_MS = 250;

/**
 * Opens the dialog. Resolves when it closes; the focus goes back where it was.
 * @param {AppState} state
 * @param {{ open: (room: string) => void }} hooks `open`: join (when needed) and show a room
 * @returns {Promise<void>}
 */
export function browseRooms(state, { open }) {
  const { client } = state;
  const back = document.activeElement instanceof HTMLElement ? document.activeElement : undefined;
  const dialog = el("dialog", "ask directory");
  const title = el("h2", "ask-title", "Browse rooms");
  title.id = `directory-title-${Math.random().toString(36).slice(2)}`;
  dialog.setAttribute("aria-labelledby", title.id);
  const label = el("label", "ask-label", "Search rooms by name");
  const input = el("input", "ask-input directory-search");
  input.type = "search";
  input.autocomplete = "off";
  input.spellcheck = false;
  input.maxLength = 64;
  input.placeholder = "Room name starts with…";
  label.append(input);
  const status = el("p", "ask-message directory-status");
  status.setAttribute("role", "status");
  const list = el("ul", "directory-list");
  list.setAttribute("aria-labelledby", title.id);
  const more = el("button", "secondary-button directory-more", "More rooms");
  more.type = "button";
  more.hidden = true;
  const close = el("button", "secondary-button", "Close");
  close.type = "button";
  const buttons = el("div", "ask-buttons");
  buttons.append(close);
  dialog.append(title, label, status, list, more, buttons);
  document.body.append(dialog);

  /** @type {() => void} */
  let resolveClosed = () => {};
  /** @type {Promise<void>} */
  const closed = new Promise((resolve) => resolveClosed = resolve);
  let finished = false;
  function done() {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    if (dialog.open) dialog.close();
    dialog.remove();
    if (back?.isConnected) back.focus();
    resolveClosed();
  }

  /** The search shown: answers to another are dropped (a slower one may come after a newer one). */
  let shown = "";
  /** @type {string | undefined} */
  let next;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;

  /**
   * @param {string} q
   * @param {string} [after]
   */
  async function load(q, after) {
    shown = q;
    status.textContent = "Looking…";
    more.hidden = true;
    /** @type {DirectoryPage} */
    let page;
    try {
      page = await client.findRooms(after === undefined ? { q } : { q, after });
    } catch (e) {
      if (shown === q) status.textContent = /** @type {Error} */ (e).message;
      return;
    }
    if (shown !== page.q || !dialog.open) return;
    if (after === undefined) list.replaceChildren();
    list.append(...page.items.map(row));
    next = page.next;
    more.hidden = next === undefined;
    const count = list.children.length;
    status.textContent = count === 0
      ? (q ? `No public room starts with "${q}"` : "No public rooms yet")
      : `${count} ${count === 1 ? "room" : "rooms"}${next === undefined ? "" : " so far"}`;
  }

  /** @param {{ room: string, topic: string, members: number }} r */
  function row(r) {
    const li = el("li", "directory-room");
    const text = el("div", "directory-text");
    text.append(el("span", "directory-name", `#${r.room}`));
    if (r.topic) text.append(el("span", "directory-topic", r.topic));
    const people = r.members === 0 ? "nobody here" : `${r.members} ${r.members === 1 ? "person" : "people"}`;
    text.append(el("span", "directory-members", people));
    const joined = client.rooms.has(r.room);
    const join = el("button", joined ? "secondary-button" : "small-button", joined ? "Open" : "Join");
    join.type = "button";
    join.setAttribute("aria-label", `${joined ? "Open" : "Join"} #${r.room}`);
    if (joined) text.append(el("span", "directory-joined", "You are in this room"));
    join.addEventListener("click", () => {
      done();
      open(r.room);
    });
    li.append(text, join);
    return li;
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    const q = input.value.trim().replace(/^#/, "").toLowerCase();
    timer = setTimeout(() => load(q), SEARCH_DELAY_MS);
  });
  // Enter searches at once rather than waiting for the pause.
  input.addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    e.preventDefault();
    clearTimeout(timer);
    load(input.value.trim().replace(/^#/, "").toLowerCase());
  });
  more.addEventListener("click", () => {
    if (next === undefined) return;
    // The first new room gets the focus, so a keyboard user goes on from where the list grew.
    const first = list.children.length;
    load(shown, next).then(() => list.children[first]?.querySelector("button")?.focus());
  });

  close.addEventListener("click", done);
  dialog.addEventListener("cancel", done); // Escape
  dialog.addEventListener("close", done);
  dialog.showModal();
  input.focus();
  load("");
  return closed;
}

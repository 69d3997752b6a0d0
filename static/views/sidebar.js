/**
 * The sidebar: who you are (and renaming), joining a room, browsing the room directory, your rooms (each with ×) and direct
 * conversations (newest first, as the server lists them, with the ones opened here), with unread
 * and mention counts (the server's, so the same on every device and after a reload); and the total
 * unread on the button that opens it on a phone.
 * @module
 */
import { canonicalDisplay, displayProblem, isValidName, normalizeRoom } from "../chat-client.js";
import { browseRooms } from "./directory.js";
import { avatar, byId, el, hue } from "./dom.js";
import { isDirect, onlineNames, totalUnread, unreadOf } from "./state.js";
import { toast } from "./toasts.js";

/** @typedef {import("./state.js").AppState} AppState */

/** @typedef {ReturnType<typeof createSidebar>} Sidebar */

/**
 * @param {AppState} state
 * @param {object} hooks
 * @param {(room: string, opts: { focusUndo: boolean }) => void} hooks.leaveRoom
 * @param {() => void} hooks.focusComposer
 */
export function createSidebar(state, { leaveRoom, focusComposer }) {
  const meAvatar = byId("me-avatar", HTMLElement);
  const meName = byId("me-name", HTMLElement);
  const renameButton = byId("rename-button", HTMLButtonElement);
  const renameForm = byId("rename-form", HTMLFormElement);
  const renameInput = byId("rename-input", HTMLInputElement);
  const joinForm = byId("join-form", HTMLFormElement);
  const joinInput = byId("join-input", HTMLInputElement);
  const roomList = byId("room-list", HTMLUListElement);
  const dmList = byId("dm-list", HTMLUListElement);
  const dmEmpty = byId("dm-empty", HTMLElement);
  const totalBadge = byId("total-badge", HTMLElement);

  /**
   * @param {string} key
   * @param {string} label
   * @param {...HTMLElement} decorations
   */
  function navLink(key, label, ...decorations) {
    const a = el("a", "nav-item");
    a.href = `#${key}`;
    if (key === state.active) a.setAttribute("aria-current", "page");
    const [first, ...rest] = decorations;
    if (first) a.append(first);
    a.append(el("span", "nav-label", label.replace(/^#/, "")));
    a.append(...rest);
    const { unread, mentions } = unreadOf(state, key);
    if (unread > 0) a.classList.add("unread");
    if (unread > 0) {
      const badge = el("span", "badge", unread > 99 ? "99+" : String(unread));
      badge.setAttribute("aria-label", `${unread} unread`);
      a.append(badge);
    }
    if (mentions > 0 && !isDirect(key)) {
      const at = el("span", "badge mention-badge", `@${mentions > 99 ? "99+" : mentions}`);
      at.setAttribute("aria-label", `${mentions} ${mentions === 1 ? "mention" : "mentions"}`);
      a.append(at);
    }
    return a;
  }

  joinForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const room = normalizeRoom(joinInput.value);
    if (!room) {
      toast(`Room names are 1–64 letters, digits, "_", "-" or "."`);
      return;
    }
    joinInput.value = "";
    state.go(room);
    focusComposer();
  });

  byId("browse-rooms", HTMLButtonElement).addEventListener("click", () => {
    browseRooms(state, {
      open(room) {
        state.go(room);
        focusComposer();
      },
    });
  });

  renameButton.addEventListener("click", () => {
    const show = renameForm.hidden;
    renameForm.hidden = !show;
    renameButton.setAttribute("aria-expanded", String(show));
    if (show) {
      renameInput.value = state.client.display ?? state.client.me;
      renameInput.focus();
      renameInput.select();
    }
  });
  renameForm.addEventListener("submit", (e) => {
    e.preventDefault();
    try {
      // A handle is a new name (and the display name goes); any other name is a new display name.
      const typed = renameInput.value.trim();
      if (isValidName(typed)) {
        state.client.nick(typed);
        if (state.client.display !== undefined) state.client.setDisplay("");
      } else {
        const problem = displayProblem(canonicalDisplay(typed));
        if (problem) throw new RangeError(`That name cannot be used: ${problem}`);
        state.client.setDisplay(typed);
      }
      renameForm.hidden = true;
      renameButton.setAttribute("aria-expanded", "false");
      renameButton.focus();
    } catch (err) {
      toast(/** @type {Error} */ (err).message);
    }
  });

  return {
    render() {
      const { client } = state;
      meName.textContent = client.display ?? client.me;
      meName.title = client.display === undefined ? "" : `@${client.me}`;
      // A signed person's name is the host application's: the server refuses a rename (not_allowed).
      renameButton.hidden = !client.guest;
      if (!client.guest && !renameForm.hidden) {
        renameForm.hidden = true;
        renameButton.setAttribute("aria-expanded", "false");
      }
      meAvatar.textContent = [...(client.display ?? client.me)][0]?.toUpperCase() ?? "?";
      meAvatar.className = `avatar ${hue(client.me)}`;

      roomList.replaceChildren(...[...client.rooms.keys()].map((room) => {
        const li = el("li", "nav-row");
        const a = navLink(room, `#${room}`, el("span", "nav-icon", "#"));
        li.append(a);
        const leave = el("button", "leave-button", "×");
        leave.type = "button";
        leave.setAttribute("aria-label", `Leave #${room}`);
        leave.title = `Leave #${room}`;
        leave.addEventListener("click", () => leaveRoom(room, { focusUndo: true }));
        li.append(leave);
        return li;
      }));

      const online = onlineNames(client);
      // Newest first; one opened here and not written to yet goes on top, where it was started.
      const when = (/** @type {import("../chat-client.js").DirectConversation} */ c) =>
        c.lastTs || Number.MAX_SAFE_INTEGER;
      const dms = [...client.directs.values()].sort((x, y) => when(y) - when(x));
      dmList.replaceChildren(...dms.map((c) => {
        const li = el("li", "nav-row");
        const dot = el("span", `presence ${online.has(c.peer.toLowerCase()) ? "online" : "away"}`);
        dot.setAttribute("aria-hidden", "true");
        const display = client.displayOf(c.peer);
        const link = navLink(`@${c.peer}`, display ?? c.peer, avatar(c.peer, "small", display), dot);
        if (display !== undefined) link.title = `@${c.peer}`;
        li.append(link);
        return li;
      }));
      dmEmpty.hidden = dms.length > 0;

      const total = totalUnread(state);
      totalBadge.hidden = total === 0;
      totalBadge.textContent = total > 99 ? "99+" : String(total);
    },
  };
}

/**
 * The bar above the conversation: its title, the connection status (with the reconnect countdown and
 * the transport when it is the fallback),
 * the buttons that open the sidebar and member drawers on narrow screens, and the document title
 * (unread count first, for the browser tab).
 * @module
 */
import { byId } from "./dom.js";
import { totalUnread, viewTitle } from "./state.js";

/** @typedef {import("./state.js").AppState} AppState */

/** @typedef {ReturnType<typeof createTopbar>} Topbar */

/** @param {AppState} state */
export function createTopbar(state) {
  const app = byId("app", HTMLElement);
  const openSidebar = byId("open-sidebar", HTMLButtonElement);
  const openMembers = byId("open-members", HTMLButtonElement);
  const sidebar = byId("sidebar", HTMLElement);
  const members = byId("members", HTMLElement);
  const scrim = byId("scrim", HTMLElement);
  const title = byId("view-title", HTMLElement);
  const connStatus = byId("conn-status", HTMLElement);
  const connText = byId("conn-text", HTMLElement);
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let countdown;

  /** @param {"sidebar" | "members"} which */
  function toggleDrawer(which) {
    const cls = `show-${which}`;
    const opening = !app.classList.contains(cls);
    closeDrawers();
    if (!opening) return;
    app.classList.add(cls);
    scrim.hidden = false;
    const button = which === "sidebar" ? openSidebar : openMembers;
    button.setAttribute("aria-expanded", "true");
    const panel = which === "sidebar" ? sidebar : members;
    const first = panel.querySelector("a, button:not([hidden]), input");
    if (first instanceof HTMLElement) first.focus();
  }

  /** Closes the drawer that is open, if any; returns whether one was. */
  function closeDrawers() {
    const wasOpen = app.classList.contains("show-sidebar") || app.classList.contains("show-members");
    app.classList.remove("show-sidebar", "show-members");
    scrim.hidden = true;
    openSidebar.setAttribute("aria-expanded", "false");
    openMembers.setAttribute("aria-expanded", "false");
    return wasOpen;
  }

  function renderStatus() {
    const { client } = state;
    const s = !navigator.onLine && client.state !== "live" ? "offline" : client.state;
    connStatus.dataset.state = s;
    connStatus.dataset.transport = client.transport;
    let text;
    // The fallback is said: it is slower, and tells the person their network blocks WebSockets.
    if (s === "live") text = client.transport === "sse" ? "Live (fallback: SSE)" : "Live";
    else if (s === "connecting") text = "Connecting…";
    else if (s === "offline") text = navigator.onLine ? "Offline" : "Offline: no network";
    else {
      const secs = Math.ceil((client.retryAt - Date.now()) / 1000);
      text = client.retryAt && secs > 0 ? `Reconnecting in ${secs} s` : "Reconnecting…";
    }
    if (connText.textContent !== text) connText.textContent = text;
    const counting = s === "reconnecting" && client.retryAt > Date.now();
    if (counting && countdown === undefined) countdown = setInterval(renderStatus, 500);
    if (!counting && countdown !== undefined) {
      clearInterval(countdown);
      countdown = undefined;
    }
  }

  openSidebar.addEventListener("click", () => toggleDrawer("sidebar"));
  openMembers.addEventListener("click", () => toggleDrawer("members"));
  scrim.addEventListener("click", () => closeDrawers());
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    const which = app.classList.contains("show-sidebar") ? openSidebar : openMembers;
    if (closeDrawers()) which.focus();
  });

  return {
    closeDrawers,
    renderStatus,

    /** The open conversation's name above it. */
    renderHeading() {
      title.textContent = state.active ? viewTitle(state.active) : "Chat";
    },

    /** The document title: unread count, then the open conversation. */
    renderTitle() {
      const total = totalUnread(state);
      const name = state.active ? viewTitle(state.active) : "Chat";
      document.title = `${total ? `(${total}) ` : ""}${name} · Chat`;
    },
  };
}

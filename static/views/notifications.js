/**
 * Notifications of mentions and direct messages: the sidebar button that turns them on (remembered
 * on this device; the browser asks for permission only when it is pressed, never on load) and the
 * notification itself, which opens its conversation when clicked.
 * @module
 */
import { byId } from "./dom.js";
import { isDirect, STORAGE_PREFIX } from "./state.js";
import { toast } from "./toasts.js";

/** @typedef {import("./state.js").AppState} AppState */
/** @typedef {import("./messages.js").AnyMessage} AnyMessage */

/** @typedef {ReturnType<typeof createNotifications>} Notifications */

/**
 * Shows the button where the browser can notify.
 * @param {AppState} state
 */
export function createNotifications(state) {
  const button = byId("notify-button", HTMLButtonElement);
  let on = false;

  if ("Notification" in globalThis) {
    on = localStorage.getItem(`${STORAGE_PREFIX}notify`) === "1" && Notification.permission === "granted";
    button.hidden = false;
    const label = () => {
      button.textContent = on ? "Notifications: on" : "Notify me of mentions and direct messages";
      button.setAttribute("aria-pressed", String(on));
    };
    label();
    button.addEventListener("click", async () => {
      if (on) on = false;
      else {
        const p = Notification.permission === "default"
          ? await Notification.requestPermission()
          : Notification.permission;
        on = p === "granted";
        if (p === "denied") toast("Notifications are blocked for this site in the browser settings");
      }
      localStorage.setItem(`${STORAGE_PREFIX}notify`, on ? "1" : "0");
      label();
    });
  }

  return {
    /**
     * Notifies of message `m` in conversation `key`, when turned on.
     * @param {string} key
     * @param {AnyMessage} m
     */
    notify(key, m) {
      if (!on || Notification.permission !== "granted") return;
      try {
        const who = m.display ?? m.from;
        const n = new Notification(isDirect(key) ? `${who} (direct)` : `${who} in #${key}`, {
          body: m.text.slice(0, 200),
          tag: key,
        });
        n.addEventListener("click", () => {
          globalThis.focus();
          state.go(key);
          n.close();
        });
      } catch { /* some browsers only notify from a service worker */ }
    },
  };
}

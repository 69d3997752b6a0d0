/**
 * Toasts: short messages at the top of the page (errors, notices, "You left #room" with Undo).
 * @module
 */
import { byId, el } from "./dom.js";

const toasts = byId("toasts", HTMLElement);

/** How long a toast shows, once nobody is on it. */
const SHOW_MS = 6000;

/**
 * @typedef {object} ToastAction
 * @property {string} label the button's text, such as "Undo"
 * @property {() => void} run what the button does; the toast closes first
 * @property {() => void} [returnFocus] given when the control the user was on went away (the × of a
 *   room left): the button takes the keyboard focus at once, and when the toast goes with the focus
 *   in it, this puts the focus somewhere useful instead of on the page's body
 */

/**
 * Shows a message for a few seconds, with an optional action (such as "Undo") that also closes it.
 * A toast stays while the pointer or the keyboard focus is on it, so its action cannot vanish under
 * the hand about to use it. At most three show at once; the oldest goes first.
 * @param {string} message
 * @param {"error" | "info"} [kind]
 * @param {ToastAction} [action]
 */
export function toast(message, kind = "error", action) {
  const t = el("div", `toast toast-${kind}`);
  t.setAttribute("role", kind === "error" ? "alert" : "status");
  t.append(el("span", "toast-text", message));
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const arm = () => {
    clearTimeout(timer);
    if (t.isConnected) timer = setTimeout(() => close(), SHOW_MS);
  };
  /**
   * Removes the toast. When it had the focus, `returnFocus` places it, unless `then` (the action)
   * already did.
   * @param {() => void} [then]
   */
  const close = (then) => {
    clearTimeout(timer);
    const hadFocus = t.contains(document.activeElement);
    t.remove();
    then?.();
    const lost = !document.activeElement || document.activeElement === document.body;
    if (hadFocus && lost) action?.returnFocus?.();
  };
  /** @type {HTMLButtonElement | undefined} */
  let button;
  if (action) {
    button = el("button", "text-button toast-action", action.label);
    button.type = "button";
    button.addEventListener("click", () => close(action.run));
    t.append(button);
  }
  const dismiss = el("button", "toast-close", "×");
  dismiss.type = "button";
  dismiss.setAttribute("aria-label", "Dismiss");
  dismiss.addEventListener("click", () => close());
  t.append(dismiss);
  t.addEventListener("mouseenter", () => clearTimeout(timer));
  t.addEventListener("focusin", () => clearTimeout(timer));
  t.addEventListener("mouseleave", () => {
    if (!t.contains(document.activeElement)) arm();
  });
  t.addEventListener("focusout", (e) => {
    if (!t.contains(/** @type {Node | null} */ (e.relatedTarget)) && !t.matches(":hover")) arm();
  });
  toasts.append(t);
  while (toasts.children.length > 3) toasts.firstElementChild?.remove();
  arm();
  if (button && action?.returnFocus) button.focus();
}

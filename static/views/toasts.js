/**
 * Toasts: short messages at the top of the page (errors, notices, "You left #room" with Undo).
 * @module
 */
import { byId, el } from "./dom.js";

const toasts = byId("toasts", HTMLElement);

/**
 * Shows a message for a few seconds, with an optional action (such as "Undo") that also closes it.
 * At most three show at once; the oldest goes first.
 * @param {string} message
 * @param {"error" | "info"} [kind]
 * @param {{ label: string, run: () => void }} [action]
 */
export function toast(message, kind = "error", action) {
  const t = el("div", `toast toast-${kind}`);
  t.setAttribute("role", kind === "error" ? "alert" : "status");
  t.append(el("span", "toast-text", message));
  if (action) {
    const button = el("button", "text-button toast-action", action.label);
    button.type = "button";
    button.addEventListener("click", () => {
      t.remove();
      action.run();
    });
    t.append(button);
  }
  const close = el("button", "toast-close", "×");
  close.type = "button";
  close.setAttribute("aria-label", "Dismiss");
  close.addEventListener("click", () => t.remove());
  t.append(close);
  toasts.append(t);
  while (toasts.children.length > 3) toasts.firstElementChild?.remove();
  setTimeout(() => t.remove(), 6000);
}

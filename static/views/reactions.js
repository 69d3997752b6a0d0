/**
 * Reactions under a room message: one button per emoji with its count (yours pressed), and an
 * "Add reaction" button that opens a small fixed palette. The buttons carry `data-action`; the
 * message actions (message-actions.js) send them. Emoji come from the server's counts (which it
 * checked to be one emoji each) or from the palette, and reach the page as text only.
 * @module
 */
import { el } from "./dom.js";

/** @typedef {import("../chat-client.js").RoomMessage} RoomMessage */

/** The palette of "Add reaction". */
export const PALETTE = Object.freeze(["👍", "❤️", "😂", "🎉", "😮", "😢"]);

/**
 * The reaction bar of message `m`: its counts, and the button that opens the palette.
 * @param {RoomMessage} m
 * @returns {HTMLElement}
 */
export function reactionBar(m) {
  const bar = el("div", "reactions");
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", "Reactions");
  const mine = new Set(m.mine ?? []);
  for (const [emoji, n] of Object.entries(m.reactions ?? {})) {
    if (typeof n !== "number" || n < 1) continue;
    const b = el("button", "reaction");
    b.type = "button";
    b.dataset.action = "react";
    b.dataset.emoji = emoji;
    const on = mine.has(emoji);
    b.setAttribute("aria-pressed", String(on));
    b.setAttribute("aria-label", `${emoji} ${n} ${n === 1 ? "reaction" : "reactions"}${on ? ", yours" : ""}`);
    b.append(el("span", "reaction-emoji", emoji), el("span", "reaction-count", String(n)));
    bar.append(b);
  }
  const add = el("button", "reaction add-reaction", "+");
  add.type = "button";
  add.dataset.action = "add-reaction";
  add.title = "Add reaction";
  add.setAttribute("aria-label", "Add reaction");
  add.setAttribute("aria-haspopup", "true");
  add.setAttribute("aria-expanded", "false");
  bar.append(add);
  return bar;
}

/**
 * Opens the palette next to `button` (an "Add reaction" button); `pick` gets the emoji chosen.
 * Arrow keys move along it, Escape (or a click elsewhere) closes it and gives the focus back.
 * @param {HTMLElement} button
 * @param {(emoji: string) => void} pick
 */
export function openPalette(button, pick) {
  closePalettes();
  const palette = el("div", "reaction-palette");
  palette.setAttribute("role", "group");
  palette.setAttribute("aria-label", "Pick a reaction");
  for (const emoji of PALETTE) {
    const b = el("button", "palette-emoji", emoji);
    b.type = "button";
    b.setAttribute("aria-label", `React with ${emoji}`);
    b.addEventListener("click", () => {
      close();
      pick(emoji);
    });
    palette.append(b);
  }
  let open = true;
  const close = (/** @type {boolean} */ refocus = false) => {
    // Removing the palette takes the focus out of it, which closes it again (focusout): once only.
    if (!open) return;
    open = false;
    palette.remove();
    button.setAttribute("aria-expanded", "false");
    document.removeEventListener("pointerdown", outside, true);
    if (refocus && button.isConnected) button.focus();
  };
  const outside = (/** @type {Event} */ e) => {
    if (!(e.target instanceof Node) || (!palette.contains(e.target) && e.target !== button)) close();
  };
  palette.addEventListener("keydown", (e) => {
    const items = [...palette.querySelectorAll("button")];
    const i = items.indexOf(/** @type {HTMLButtonElement} */ (document.activeElement));
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation(); // not the page's Escape (it closes drawers)
      close(true);
    } else if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      e.preventDefault();
      const next = (i + (e.key === "ArrowRight" ? 1 : items.length - 1)) % items.length;
      items[next].focus();
    }
  });
  palette.addEventListener("focusout", (e) => {
    if (!(e.relatedTarget instanceof Node) || !palette.contains(e.relatedTarget)) {
      if (e.relatedTarget !== button) close();
    }
  });
  document.addEventListener("pointerdown", outside, true);
  button.setAttribute("aria-expanded", "true");
  button.after(palette);
  /** @type {HTMLElement | null} */ (palette.querySelector("button"))?.focus();
}

/** Closes any open palette. */
export function closePalettes() {
  for (const p of document.querySelectorAll(".reaction-palette")) {
    p.previousElementSibling?.setAttribute("aria-expanded", "false");
    p.remove();
  }
}

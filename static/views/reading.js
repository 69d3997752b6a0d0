/**
 * Read state: tells the server (`read`, for the person on every device) how far the open
 * conversation was read, but only when its messages are really seen: the page is visible and
 * focused, and the reader is at the end of the conversation. Not a part of the screen; the thread,
 * the sidebar and the title show what follows from it.
 * @module
 */
import { isDirect } from "./state.js";

/** @typedef {import("./state.js").AppState} AppState */

/** @typedef {ReturnType<typeof createReading>} Reading */

/**
 * @param {AppState} state
 * @param {object} hooks
 * @param {() => boolean} hooks.atBottom whether the end of the open conversation is on screen
 * @param {() => void} hooks.onRead something was marked read here (redraw the counts)
 */
export function createReading(state, { atBottom, onRead }) {
  /** Whether the person can see the page now (not a hidden tab, not another window in front). */
  function pageSeen() {
    return document.visibilityState === "visible" && document.hasFocus();
  }

  /** Marks the open conversation read to its end, when it is seen; returns whether it did. */
  function check() {
    const { active, client } = state;
    if (!active || !pageSeen() || !atBottom()) return false;
    const sent = isDirect(active)
      ? client.markRead({ peer: active.slice(1) })
      : client.markRead({ room: active });
    if (sent) onRead();
    return sent;
  }

  // Coming back to the page (another tab, another window) is when what came meanwhile is seen.
  document.addEventListener("visibilitychange", () => check());
  addEventListener("focus", () => check());

  return { check, pageSeen };
}

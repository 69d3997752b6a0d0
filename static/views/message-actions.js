/**
 * What the buttons under a message do (messages.js and reactions.js draw them): Reply puts the
 * message in the reply bar above the message box; a reaction toggles yours, Add reaction opens the
 * palette; Delete asks first, then deletes; Edit swaps the text for a box in place (Enter saves,
 * Shift+Enter makes a new line, Escape cancels). The room is told, and its `edited` / `deleted` /
 * `reactions` line redraws the message.
 * @module
 */
import { byId, el } from "./dom.js";
import { ask } from "./dialog.js";
import { openPalette } from "./reactions.js";
import { toast } from "./toasts.js";

/** @typedef {import("./state.js").AppState} AppState */

/**
 * @param {AppState} state
 * @param {object} hooks
 * @param {() => void} hooks.focusComposer
 * @param {(room: string, seq: number) => void} hooks.reply starts a reply to message `seq` of `room`
 */
export function createMessageActions(state, { focusComposer, reply }) {
  const scroller = byId("scroller", HTMLElement);

  /**
   * The room and message a control belongs to.
   * @param {Element} control
   */
  function target(control) {
    const li = control.closest("li.msg[data-seq]");
    const room = control.closest("section.view")?.getAttribute("data-view") ?? "";
    const seq = Number(li instanceof HTMLElement ? li.dataset.seq : NaN);
    const message = state.client.rooms.get(room)?.find(seq);
    return li instanceof HTMLElement && message ? { li, room, seq, message } : undefined;
  }

  /**
   * Puts the focus back on the message's control after it was redrawn, or in the message box.
   * @param {string} room
   * @param {number} seq
   * @param {string} action
   */
  function refocus(room, seq, action) {
    const view = [...scroller.querySelectorAll("section.view")].find((v) =>
      v.getAttribute("data-view") === room
    );
    const button = view?.querySelector(`li.msg[data-seq="${seq}"] [data-action="${action}"]`);
    if (button instanceof HTMLElement) button.focus();
    else focusComposer();
  }

  /**
   * Swaps the message's text for an edit box.
   * @param {NonNullable<ReturnType<typeof target>>} t
   */
  function startEdit(t) {
    const { li, room, seq, message } = t;
    const text = li.querySelector(".msg-text");
    if (!(text instanceof HTMLElement) || li.querySelector(".msg-edit")) return;
    const form = el("form", "msg-edit");
    const label = el("label", "visually-hidden", "Edit your message");
    const box = el("textarea", "msg-edit-input");
    box.value = message.text;
    box.rows = Math.min(8, message.text.split("\n").length);
    box.id = `edit-${room}-${seq}`;
    label.htmlFor = box.id;
    const save = el("button", "small-button", "Save");
    save.type = "submit";
    const cancel = el("button", "text-button", "Cancel");
    cancel.type = "button";
    const hint = el("span", "msg-edit-hint", "Enter saves · Escape cancels");
    form.append(label, box, save, cancel, hint);
    text.hidden = true;
    li.classList.add("editing");
    text.after(form);
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);

    const close = () => {
      form.remove();
      text.hidden = false;
      li.classList.remove("editing");
      refocus(room, seq, "edit");
    };
    cancel.addEventListener("click", close);
    box.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        e.stopPropagation(); // not the page's Escape (it closes drawers)
        close();
      } else if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const value = box.value.replace(/\s+$/, "");
      if (value === message.text) return close();
      try {
        state.client.editMessage(room, seq, value);
        close();
      } catch (err) {
        toast(/** @type {Error} */ (err).message);
      }
    });
  }

  /** @param {NonNullable<ReturnType<typeof target>>} t */
  async function confirmDelete(t) {
    const { room, seq, message } = t;
    const own = state.client.isMe(message.from);
    const answer = await ask({
      title: own ? "Delete your message?" : `Delete the message from ${message.from}?`,
      message: "Everyone in the room will see “message deleted” instead. This cannot be undone.",
      confirm: "Delete",
      danger: true,
    });
    if (!answer) return;
    try {
      state.client.deleteMessage(room, seq);
    } catch (err) {
      toast(/** @type {Error} */ (err).message);
    }
  }

  scroller.addEventListener("click", (e) => {
    const button = e.target instanceof Element ? e.target.closest("button[data-action]") : null;
    if (!button) return;
    const t = target(button);
    if (!t) return;
    const action = button.getAttribute("data-action");
    if (action === "edit") startEdit(t);
    else if (action === "delete") void confirmDelete(t);
    else if (action === "reply") reply(t.room, t.seq);
    else if (action === "react") react(t, button.getAttribute("data-emoji") ?? "");
    else if (action === "add-reaction" && button instanceof HTMLElement) {
      openPalette(button, (emoji) => react(t, emoji, true));
    }
  });

  /**
   * Toggles your reaction `emoji` (or with `on`, puts it); a refusal comes back as the server's
   * sentence (a toast), the new counts as a `reactions` line.
   * @param {NonNullable<ReturnType<typeof target>>} t
   * @param {string} emoji
   * @param {boolean} [on]
   */
  function react(t, emoji, on) {
    if (!emoji) return;
    if (!state.client.react(t.room, t.seq, emoji, on)) {
      toast(
        state.client.live
          ? "Too many actions at once: try again in a moment"
          : "Not connected: try again when live",
      );
    }
  }
}

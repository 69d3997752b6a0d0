/**
 * The message box under the conversation: what it is labelled, who is typing above it, and what
 * Enter does with its text (send it, or run a slash command: /join, /leave, /nick, /msg).
 * @module
 */
import { normalizeRoom } from "../chat-client.js";
import { byId } from "./dom.js";
import { isDirect, viewTitle } from "./state.js";
import { toast } from "./toasts.js";

/** @typedef {import("./state.js").AppState} AppState */

/** @typedef {ReturnType<typeof createComposer>} Composer */

// The skip link must not change the hash, which names the conversation, even on the sign-in card
// (so this is bound when the page loads, not when the chat starts).
document.querySelector(".skip-link")?.addEventListener("click", (e) => {
  e.preventDefault();
  byId("composer-input", HTMLTextAreaElement).focus();
});

/**
 * @param {AppState} state
 * @param {object} hooks
 * @param {(room: string) => void} hooks.leaveRoom
 * @param {() => void} hooks.scrollToBottom shows the end of the open conversation
 */
export function createComposer(state, { leaveRoom, scrollToBottom }) {
  const form = byId("composer", HTMLFormElement);
  const input = byId("composer-input", HTMLTextAreaElement);
  const label = byId("composer-label", HTMLElement);
  const typing = byId("typing", HTMLElement);

  function autosize() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
  }

  /**
   * Sends what is in the box, or runs its slash command. Returns whether to clear the box.
   * @param {string} raw
   * @returns {boolean}
   */
  function submit(raw) {
    const { active, client, go } = state;
    const text = raw.replace(/\s+$/, "");
    if (!text.trim()) return false;
    const command = /^\/(\w+)(?:\s+([\s\S]*))?$/.exec(text.trim());
    try {
      if (command) {
        const [, cmd, arg = ""] = command;
        switch (cmd.toLowerCase()) {
          case "join": {
            const room = normalizeRoom(arg);
            if (!room) throw new RangeError("Usage: /join room-name");
            go(room);
            return true;
          }
          case "leave":
            if (!active || isDirect(active)) throw new RangeError("Open a room to leave it");
            leaveRoom(active);
            return true;
          case "nick":
            client.nick(arg.trim());
            return true;
          case "msg": {
            const m = /^(\S+)\s+([\s\S]+)$/.exec(arg);
            if (!m) throw new RangeError("Usage: /msg name text");
            client.send({ to: m[1], text: m[2] });
            go(`@${m[1]}`);
            return true;
          }
          case "me":
            break;
          default:
            if (!text.startsWith("//")) {
              throw new RangeError(`Unknown command /${cmd}; start with // to send it`);
            }
        }
      }
      if (!active) throw new RangeError("Join a room first");
      const body = text.startsWith("//") ? text.slice(1) : text;
      if (isDirect(active)) client.send({ to: active.slice(1), text: body });
      else client.send({ room: active, text: body });
      scrollToBottom();
      return true;
    } catch (e) {
      toast(/** @type {Error} */ (e).message);
      return false;
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (submit(input.value)) {
      input.value = "";
      autosize();
    }
    input.focus();
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener("input", () => {
    autosize();
    const { active, client } = state;
    if (active && !isDirect(active) && input.value.trim() && !input.value.startsWith("/")) {
      client.typing(active);
    }
  });

  return {
    focus() {
      input.focus();
    },

    /** Labels the box for the open conversation, or disables it when none is open. */
    renderTarget() {
      const { active } = state;
      input.disabled = !active;
      label.textContent = active ? `Message ${viewTitle(active)}` : "Message";
      input.placeholder = active ? `Message ${viewTitle(active)}` : "Join a room to write";
    },

    /** Who is typing in the open room, above the box. */
    renderTyping() {
      const { active, client } = state;
      const r = active && !isDirect(active) ? client.rooms.get(active) : undefined;
      const names = r ? r.typers() : [];
      const text = names.length === 0
        ? ""
        : names.length === 1
        ? `${names[0]} is typing…`
        : names.length === 2
        ? `${names[0]} and ${names[1]} are typing…`
        : "Several people are typing…";
      if (typing.textContent !== text) typing.textContent = text;
    },
  };
}

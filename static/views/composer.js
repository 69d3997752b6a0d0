/**
 * The message box under the conversation: what it is labelled, who is typing above it, what Enter
 * does with its text (send it, as a reply when the reply bar is up, or run a slash command: /join,
 * /leave, /nick, /msg, /me, /help), and why you cannot post in the open room when you cannot (muted, read-only,
 * slow mode, removed, refused).
 * @module
 */
import { normalizeRoom, postBlock } from "../chat-client.js";
import { byId, el } from "./dom.js";
import { isDirect, viewTitle } from "./state.js";
import { toast } from "./toasts.js";

/** @typedef {import("./state.js").AppState} AppState */
/** @typedef {import("./reply.js").ReplyBar} ReplyBar */

/** @typedef {ReturnType<typeof createComposer>} Composer */

/** What `/help` lists: every command the message box runs. */
const COMMANDS = [
  "/join room: join or open a room",
  "/leave: leave the open room",
  "/nick name: change your name",
  "/msg name text: write to someone directly",
  "/me text: sent as it is",
  "//text: send a text that starts with /",
];

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
 * @param {ReplyBar} hooks.replyBar the message being answered, if any
 */
export function createComposer(state, { leaveRoom, scrollToBottom, replyBar }) {
  const form = byId("composer", HTMLFormElement);
  const input = byId("composer-input", HTMLTextAreaElement);
  const label = byId("composer-label", HTMLElement);
  const typing = byId("typing", HTMLElement);
  const notice = byId("composer-notice", HTMLElement);
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let noticeTimer;

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
          case "help":
            toast(COMMANDS.join(" · "), "info");
            return true;
          case "me":
            break;
          default:
            if (!text.startsWith("//")) {
              throw new RangeError(`Unknown command /${cmd} (/help lists them); start with // to send it`);
            }
        }
      }
      if (!active) throw new RangeError("Join a room first");
      const body = text.startsWith("//") ? text.slice(1) : text;
      if (isDirect(active)) client.send({ to: active.slice(1), text: body });
      else {
        const replyTo = replyBar.replyTo(active);
        client.send(
          replyTo === undefined ? { room: active, text: body } : { room: active, text: body, replyTo },
        );
        replyBar.clear();
      }
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
    } else if (e.key === "Escape" && state.active && replyBar.replyTo(state.active) !== undefined) {
      e.preventDefault();
      e.stopPropagation(); // not the page's Escape (it closes drawers)
      replyBar.clear();
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
      replyBar.render(); // a reply belongs to its room: it goes when another conversation opens
    },

    /**
     * Why you cannot post in the open room (or must wait), above the box; nothing when you can.
     * It is drawn again when a mute or a slow-mode wait runs out.
     */
    renderNotice() {
      const { active, client } = state;
      clearTimeout(noticeTimer);
      noticeTimer = undefined;
      const r = active && !isDirect(active) ? client.rooms.get(active) : undefined;
      const now = Date.now();
      const block = r ? postBlock(r, client.moderates(r.name), now) : undefined;
      /** @type {string} */
      let text = "";
      let kind = "";
      /** @type {number | undefined} */
      let redrawAt;
      if (r && block) {
        text = block.text;
        kind = block.code;
        if (block.code === "muted" && r.mutedUntil) redrawAt = r.mutedUntil;
      } else if (r && r.rules.slowModeSeconds > 0 && !client.moderates(r.name)) {
        kind = "slow_mode";
        if (r.slowUntil > now) {
          text = r.slowText ||
            `#${r.name} is in slow mode: wait ${
              Math.ceil((r.slowUntil - now) / 1000)
            } s before posting again`;
          redrawAt = r.slowUntil;
        } else text = `#${r.name} is in slow mode: one message every ${r.rules.slowModeSeconds} s`;
      }
      if (redrawAt !== undefined) {
        noticeTimer = setTimeout(() => this.renderNotice(), Math.min(2 ** 31 - 1, redrawAt - now + 50));
      }
      if (notice.dataset.kind === kind && notice.firstChild?.textContent === text) return;
      notice.dataset.kind = kind;
      notice.hidden = text === "";
      notice.replaceChildren();
      if (!text) return;
      notice.append(el("span", "composer-notice-text", text));
      if (r && (kind === "kicked" || kind === "forbidden")) {
        const again = el("button", "text-button", kind === "kicked" ? "Join again" : "Try again");
        again.type = "button";
        again.setAttribute("aria-label", `${again.textContent} #${r.name}`);
        again.addEventListener("click", () => {
          client.rejoin(r.name);
          input.focus();
        });
        notice.append(again);
      }
    },

    /** Who is typing in the open room, above the box. */
    renderTyping() {
      const { active, client } = state;
      const r = active && !isDirect(active) ? client.rooms.get(active) : undefined;
      const names = r ? r.typers().map((n) => client.shownName(n)) : [];
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

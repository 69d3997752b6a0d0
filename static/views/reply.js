/**
 * The "Replying to <who>: <first line>" bar above the message box, with its cancel button, and
 * the quote a reply shows above its text ("original message deleted" once the original is gone).
 * @module
 */
import { quoteOf } from "../shared/quote.js";
import { byId, el } from "./dom.js";

/** @typedef {import("./state.js").AppState} AppState */
/** @typedef {import("../chat-client.js").RoomMessage} RoomMessage */
/** @typedef {import("../chat-client.js").ChatClient} ChatClient */

/** @typedef {ReturnType<typeof createReplyBar>} ReplyBar */

/**
 * The first line of `text`, cut as the server cuts a reply's quote (`static/shared/quote.js`), with
 * "…" when something was cut.
 * @param {string} text
 */
export function firstLine(text) {
  const line = text.split(/[\r\n]/, 1)[0] ?? "";
  const quote = quoteOf(line);
  return quote.length < line.length ? `${quote}…` : line;
}

/**
 * What a reply shows above its text: who it answers and the start of what they said, or that the
 * original was deleted (when this page holds the original and it is a tombstone).
 * @param {{ seq: number, from: string, text: string }} quote
 * @param {RoomMessage | undefined} original the original, when held
 * @param {ChatClient} client
 */
export function quoteNode(quote, original, client) {
  const q = el("div", "msg-quote");
  q.dataset.replyTo = String(quote.seq);
  if (original?.deleted) {
    q.classList.add("gone");
    q.append(el("span", "quote-text", "original message deleted"));
    return q;
  }
  q.append(
    el("span", "quote-from", client.isMe(quote.from) ? "You" : quote.from),
    el("span", "quote-text", firstLine(quote.text)),
  );
  return q;
}

/**
 * @param {AppState} state
 * @param {object} hooks
 * @param {() => void} hooks.focusComposer
 */
export function createReplyBar(state, { focusComposer }) {
  const bar = byId("reply-bar", HTMLElement);
  /** @type {{ room: string, seq: number } | undefined} */
  let target;

  function render() {
    const m = target ? state.client.rooms.get(target.room)?.find(target.seq) : undefined;
    if (!target || !m || m.deleted || state.active !== target.room) {
      target = undefined;
      bar.hidden = true;
      bar.replaceChildren();
      return;
    }
    const text = el("span", "reply-bar-text");
    text.append(
      "Replying to ",
      el("strong", "", state.client.isMe(m.from) ? "yourself" : m.from),
      ": ",
      el("span", "reply-bar-quote", firstLine(m.text)),
    );
    const cancel = el("button", "text-button", "Cancel");
    cancel.type = "button";
    cancel.setAttribute("aria-label", "Cancel the reply");
    cancel.addEventListener("click", () => {
      clear();
      focusComposer();
    });
    bar.replaceChildren(text, cancel);
    bar.hidden = false;
  }

  function clear() {
    target = undefined;
    render();
  }

  return {
    render,
    clear,

    /**
     * Starts a reply to message `seq` of `room` (the open room).
     * @param {string} room
     * @param {number} seq
     */
    set(room, seq) {
      target = { room, seq };
      render();
    },

    /** The seq the next message in `room` answers, if a reply is being written there. */
    replyTo(/** @type {string} */ room) {
      return target?.room === room ? target.seq : undefined;
    },
  };
}

/**
 * The conversation in the middle of the screen: one view (a list of messages, the outbox below it,
 * the history line above it) per room or direct conversation opened, kept while hidden so each
 * keeps its place; the reader's scroll position, the "New messages" button and loading older
 * history when the reader nears the top.
 * @module
 */
import { byId, el } from "./dom.js";
import { messageNodes, moderationNode, pendingNode } from "./messages.js";
import { isDirect, viewTitle } from "./state.js";

/** @typedef {import("./state.js").AppState} AppState */
/** @typedef {import("./messages.js").AnyMessage} AnyMessage */

/**
 * The DOM of one conversation (a room, or `@name` for a direct one).
 * @typedef {object} View
 * @property {string} key
 * @property {HTMLElement} root
 * @property {HTMLElement} status
 * @property {HTMLOListElement} list
 * @property {HTMLOListElement} pending
 * @property {AnyMessage | undefined} last the last message rendered
 * @property {boolean} lineLast a moderation line was rendered after it
 * @property {number} scrollTop where the reader was when they left the view
 * @property {boolean} pinned whether the reader was at the bottom
 */

/** @typedef {ReturnType<typeof createThread>} Thread */

/**
 * @param {AppState} state
 * @param {object} hooks
 * @param {() => void} hooks.onRead the reader reached the bottom of the open conversation
 * @param {() => void} hooks.focusComposer
 */
export function createThread(state, { onRead, focusComposer }) {
  const scroller = byId("scroller", HTMLElement);
  const emptyView = byId("empty-view", HTMLElement);
  const jump = byId("jump", HTMLButtonElement);
  /** @type {Map<string, View>} */
  const views = new Map();

  /**
   * @param {string} key
   * @returns {AnyMessage[]}
   */
  function messagesOf(key) {
    const { client } = state;
    if (isDirect(key)) return client.directs.get(key.slice(1).toLowerCase())?.messages ?? [];
    return client.rooms.get(key)?.messages ?? [];
  }

  /**
   * The view of `key`, made (and filled) the first time.
   * @param {string} key
   * @returns {View}
   */
  function viewFor(key) {
    let v = views.get(key);
    if (v) return v;
    const root = el("section", "view");
    root.hidden = true;
    const status = el("p", "history-status");
    const list = el("ol", "messages");
    list.setAttribute("role", "log");
    list.setAttribute("aria-live", "polite");
    list.setAttribute("aria-relevant", "additions");
    const pending = el("ol", "messages pending-list");
    pending.setAttribute("aria-label", "Not sent yet");
    root.append(status, list, pending);
    scroller.append(root);
    v = { key, root, status, list, pending, last: undefined, lineLast: false, scrollTop: 0, pinned: true };
    labelView(v);
    views.set(key, v);
    renderAll(v);
    renderPending(v);
    return v;
  }

  /**
   * Names the view after its key.
   * @param {View} v
   */
  function labelView(v) {
    v.root.dataset.view = v.key;
    v.root.setAttribute("aria-label", `Conversation ${viewTitle(v.key)}`);
    v.list.setAttribute("aria-label", `Messages in ${viewTitle(v.key)}`);
  }

  /**
   * Rebuilds a view's list (first render, older history, a resume that replaced the list).
   * @param {View} v
   */
  function renderAll(v) {
    const msgs = messagesOf(v.key);
    const lines = isDirect(v.key) ? [] : state.client.rooms.get(v.key)?.moderation ?? [];
    v.list.setAttribute("aria-busy", "true");
    /** @type {HTMLElement[]} */
    const nodes = [];
    /** @type {AnyMessage | undefined} */
    let prev;
    // Each moderation line goes after the message that was the newest when it came.
    let j = 0;
    let afterLine = false;
    for (const m of msgs) {
      while (j < lines.length && "seq" in m && lines[j].afterSeq < m.seq) {
        nodes.push(moderationNode(lines[j++], state.client));
        afterLine = true;
      }
      nodes.push(...messageNodes(m, prev, state.client, { afterLine }));
      afterLine = false;
      prev = m;
    }
    while (j < lines.length) {
      nodes.push(moderationNode(lines[j++], state.client));
      afterLine = true;
    }
    v.list.replaceChildren(...nodes);
    v.last = prev;
    v.lineLast = afterLine;
    v.list.removeAttribute("aria-busy");
    renderHistoryStatus(v);
  }

  /**
   * Shows a message that arrived live: appended when it is the newest, else the list is rebuilt.
   * @param {View} v
   * @param {AnyMessage} m
   */
  function renderMessage(v, m) {
    const last = v.last;
    const after = !last || ("seq" in m && "seq" in last ? m.seq > last.seq : m.ts >= last.ts);
    if (!after) return renderAll(v);
    v.list.append(...messageNodes(m, last, state.client, { afterLine: v.lineLast }));
    v.last = m;
    v.lineLast = false;
  }

  /**
   * Redraws one message in place (edited, deleted), keeping the focus on its control if it had it.
   * @param {View} v
   * @param {import("./messages.js").RoomMessage} m
   */
  function renderChanged(v, m) {
    const old = v.list.querySelector(`li.msg[data-seq="${m.seq}"]`);
    if (!(old instanceof HTMLElement)) return;
    const msgs = messagesOf(v.key);
    const i = msgs.indexOf(m);
    const prev = i > 0 ? msgs[i - 1] : undefined;
    const fresh = messageNodes(m, prev, state.client).at(-1);
    if (!fresh) return;
    // Its place in a group is the old node's (a moderation line may sit before it).
    fresh.classList.toggle("grouped", old.classList.contains("grouped"));
    const focused = document.activeElement instanceof HTMLElement && old.contains(document.activeElement)
      ? document.activeElement.dataset.action
      : undefined;
    old.replaceWith(fresh);
    if (focused) {
      const again = fresh.querySelector(`[data-action="${focused}"]`);
      if (again instanceof HTMLElement) again.focus();
      else focusComposer();
    }
  }

  /** @param {View} v */
  function renderHistoryStatus(v) {
    if (isDirect(v.key)) {
      v.status.textContent = `Direct messages with ${
        v.key.slice(1)
      } are not stored: they last as long as this tab.`;
      return;
    }
    const r = state.client.rooms.get(v.key);
    v.status.classList.toggle("loading", !!r?.loadingOlder);
    if (!r) v.status.textContent = "";
    else if (r.complete) v.status.textContent = `This is the very beginning of #${v.key}.`;
    else if (r.loadingOlder) v.status.textContent = "Loading older messages…";
    else v.status.textContent = "Scroll up for older messages";
  }

  /**
   * The messages of this view still in the outbox, below the delivered ones.
   * @param {View} v
   */
  function renderPending(v) {
    const { client } = state;
    const items = client.outbox.filter((i) => (isDirect(v.key) ? `@${i.to}` === v.key : i.room === v.key));
    v.pending.replaceChildren(...items.map((item) => pendingNode(item, client)));
  }

  function atBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
  }

  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
    jump.hidden = true;
  }

  /**
   * Runs `change` on the open view keeping the reader's place: at the bottom if they were there,
   * else where they were (with the "new messages" button when something arrived below).
   * @param {() => void} change
   * @param {{ prepend?: boolean, newBelow?: boolean }} [opts]
   */
  function keepScroll(change, opts = {}) {
    const pinned = atBottom();
    const height = scroller.scrollHeight;
    const top = scroller.scrollTop;
    change();
    if (pinned) scrollToBottom();
    else if (opts.prepend) scroller.scrollTop = top + (scroller.scrollHeight - height);
    else if (opts.newBelow) jump.hidden = false;
  }

  /** Loads older messages when the reader is near the top (or the page is not full yet). */
  function maybeLoadOlder() {
    const { active, client } = state;
    if (!active || isDirect(active)) return;
    if (scroller.scrollTop < 120 || scroller.scrollHeight <= scroller.clientHeight) {
      if (client.loadOlder(active)) renderHistoryStatus(viewFor(active));
    }
  }

  scroller.addEventListener("scroll", () => {
    if (atBottom()) {
      jump.hidden = true;
      onRead();
    }
    maybeLoadOlder();
  }, { passive: true });
  jump.addEventListener("click", () => {
    scrollToBottom();
    focusComposer();
  });

  return {
    atBottom,
    scrollToBottom,
    maybeLoadOlder,

    /** Keys of the views made so far. */
    keys() {
      return views.keys();
    },

    /**
     * Hides the view of `key`, remembering where the reader was.
     * @param {string} key
     */
    hide(key) {
      const v = views.get(key);
      if (!v) return;
      v.scrollTop = scroller.scrollTop;
      v.pinned = atBottom();
      v.root.hidden = true;
    },

    /**
     * Shows the view of `key` where the reader left it (at the bottom the first time), or the
     * "not in any room" note for "".
     * @param {string} key
     */
    show(key) {
      emptyView.hidden = !!key;
      if (!key) return;
      const v = viewFor(key);
      v.root.hidden = false;
      if (v.pinned) scrollToBottom();
      else scroller.scrollTop = v.scrollTop;
      jump.hidden = true;
    },

    /**
     * Takes the view of `key` off the page, remembering where the reader was if it is shown.
     * @param {string} key
     * @returns {View | undefined} for {@link attach}
     */
    detach(key) {
      const v = views.get(key);
      if (!v) return undefined;
      if (!v.root.hidden) {
        v.scrollTop = scroller.scrollTop;
        v.pinned = atBottom();
      }
      v.root.remove();
      views.delete(key);
      return v;
    },

    /**
     * Puts back (hidden) a view {@link detach} took off, unless its key has a view again.
     * @param {View} v
     */
    attach(v) {
      if (views.has(v.key)) return;
      v.root.hidden = true;
      scroller.append(v.root);
      views.set(v.key, v);
      renderPending(v); // leaving dropped what it had in the outbox
    },

    /**
     * The view of `from` is now the view of `to` (a person renamed), unless `to` has one.
     * @param {string} from
     * @param {string} to
     */
    rekey(from, to) {
      const v = views.get(from);
      if (!v || views.has(to)) return;
      views.delete(from);
      v.key = to;
      views.set(to, v);
      labelView(v);
      renderHistoryStatus(v);
      renderPending(v);
    },

    /**
     * A room was (re)joined: its list is rebuilt with what came.
     * @param {string} room
     * @param {AnyMessage[]} added
     */
    joined(room, added) {
      const v = views.get(room);
      if (v) {
        if (room === state.active) keepScroll(() => renderAll(v), { newBelow: added.length > 0 });
        else renderAll(v);
      }
      if (room === state.active) maybeLoadOlder();
    },

    /**
     * A new message in conversation `key`.
     * @param {string} key
     * @param {AnyMessage} message
     */
    message(key, message) {
      const v = views.get(key);
      if (!v) return;
      if (key === state.active) {
        keepScroll(() => renderMessage(v, message), { newBelow: !state.client.isMe(message.from) });
      } else renderMessage(v, message);
    },

    /**
     * A message of `room` was edited or deleted.
     * @param {string} room
     * @param {import("./messages.js").RoomMessage} message
     */
    changed(room, message) {
      const v = views.get(room);
      if (!v) return;
      if (room === state.active) keepScroll(() => renderChanged(v, message));
      else renderChanged(v, message);
    },

    /**
     * A moderation line in `room`: shown at the end, as a small line.
     * @param {string} room
     * @param {import("./messages.js").ModerationLine} line
     */
    moderation(room, line) {
      const v = views.get(room);
      if (!v) return;
      const add = () => {
        v.list.append(moderationNode(line, state.client));
        v.lineLast = true;
      };
      if (room === state.active) keepScroll(add, { newBelow: true });
      else add();
    },

    /** Redraws every view's messages (what you may do to them changed: your role). */
    redraw() {
      for (const v of views.values()) {
        if (v.key === state.active) keepScroll(() => renderAll(v));
        else renderAll(v);
      }
    },

    /**
     * Older messages of `room` arrived: they go on top, the reader stays on what they read.
     * @param {string} room
     */
    history(room) {
      const v = views.get(room);
      if (!v) return;
      if (room === state.active) keepScroll(() => renderAll(v), { prepend: true });
      else renderAll(v);
      if (room === state.active) requestAnimationFrame(maybeLoadOlder);
    },

    /**
     * Redraws the outbox of every view (its entries, or only their state when the connection changed).
     * @param {{ keepPlace: boolean }} opts keep the reader's place in the open view
     */
    pendingChanged({ keepPlace }) {
      for (const v of views.values()) {
        if (keepPlace && v.key === state.active) keepScroll(() => renderPending(v));
        else renderPending(v);
      }
    },
  };
}

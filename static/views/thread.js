/**
 * The conversation in the middle of the screen: one view (a list of messages, the outbox below it,
 * the history line above it) per room or direct conversation opened, kept while hidden so each
 * keeps its place; the reader's scroll position, the "New messages" button, the "New messages"
 * divider at the read position the conversation had when it was opened, and loading older history
 * (a room's or a direct conversation's: both are stored) when the reader nears the top.
 * @module
 */
import { byId, el } from "./dom.js";
import { messageNodes, moderationNode, pendingNode } from "./messages.js";
import { isDirect, unreadOf, viewTitle } from "./state.js";

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
 * @property {number | null | undefined} readMark the read position when the view was opened: the
 *   "New messages" divider goes after it (null: nothing was unread; undefined: not known yet)
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
    v = {
      key,
      root,
      status,
      list,
      pending,
      last: undefined,
      lineLast: false,
      scrollTop: 0,
      pinned: true,
      readMark: undefined,
    };
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
    let divided = false;
    for (const m of msgs) {
      while (j < lines.length && "seq" in m && lines[j].afterSeq < m.seq) {
        nodes.push(moderationNode(lines[j++], state.client));
        afterLine = true;
      }
      const seq = "seq" in m ? m.seq : m.convSeq;
      if (!divided && typeof v.readMark === "number" && seq !== undefined && seq > v.readMark) {
        divided = true;
        if (!state.client.isMe(m.from)) {
          nodes.push(unreadDivider());
          afterLine = true;
        }
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
    const active = document.activeElement instanceof HTMLElement && old.contains(document.activeElement)
      ? document.activeElement
      : undefined;
    const focused = active?.dataset.action;
    old.replaceWith(fresh);
    if (active && focused) {
      // The same control again (a reaction is told apart by its emoji), else the first of its kind.
      const same = [...fresh.querySelectorAll("[data-action]")].filter((e) =>
        e instanceof HTMLElement && e.dataset.action === focused
      );
      const again = same.find((e) => e instanceof HTMLElement && e.dataset.emoji === active.dataset.emoji) ??
        same[0] ?? fresh.querySelector('[data-action="add-reaction"]');
      if (again instanceof HTMLElement) again.focus();
      else focusComposer();
    }
  }

  /** The "New messages" line at the read position. */
  function unreadDivider() {
    const li = el("li", "unread-sep");
    li.setAttribute("role", "separator");
    li.append(el("span", "", "New messages"));
    return li;
  }

  /**
   * Sets where the view's "New messages" divider goes: after the read position the conversation
   * has now, if anything is unread. Returns whether it moved (the list must be drawn again).
   * Not known until the server told the read position (`joined`, the conversation list).
   * @param {View} v
   */
  function placeReadMark(v) {
    const { client } = state;
    let known;
    let lastRead = 0;
    if (isDirect(v.key)) {
      const c = client.directs.get(v.key.slice(1).toLowerCase());
      known = !!c && (client.conversationsLoaded || c.conv !== "");
      lastRead = c?.lastRead ?? 0;
    } else {
      const r = client.rooms.get(v.key);
      // The server's word (`joined`), not what this device kept: kept history is shown before the
      // join, and its read position may be older than the one another page of the person moved.
      known = !!r?.synced && r.joined;
      lastRead = r?.lastRead ?? 0;
    }
    if (!known) return false;
    // Never read (a room joined for the first time): all of it is new, and no line says so.
    const mark = unreadOf(state, v.key).unread > 0 && lastRead > 0 ? lastRead : null;
    if (mark === v.readMark) return false;
    v.readMark = mark;
    return true;
  }

  /**
   * Brings the "New messages" divider of the open view into sight when the end of the conversation
   * is too far below it to show both (the reader then reads down from there).
   * @param {View} v
   */
  function showReadMark(v) {
    const divider = v.list.querySelector(".unread-sep");
    if (!(divider instanceof HTMLElement)) return;
    const above = divider.getBoundingClientRect().top - scroller.getBoundingClientRect().top;
    if (above < 0 || above > scroller.clientHeight - 80) {
      scroller.scrollTop += above - 40;
      if (!atBottom()) jump.hidden = false;
    }
  }

  /** @param {View} v */
  function renderHistoryStatus(v) {
    const { client } = state;
    const c = isDirect(v.key) ? client.directs.get(v.key.slice(1).toLowerCase()) : undefined;
    const r = isDirect(v.key) ? undefined : client.rooms.get(v.key);
    const loading = !!(c?.loadingOlder || r?.loadingOlder);
    v.status.classList.toggle("loading", loading);
    if (!r && !c) v.status.textContent = "";
    else if (c?.complete) {
      v.status.textContent = `This is the very beginning of your direct messages with ${c.peer}.`;
    } else if (r?.complete) v.status.textContent = `This is the very beginning of #${v.key}.`;
    else if (loading) v.status.textContent = "Loading older messages…";
    // A room not joined yet (still connecting, or refused) holds nothing to scroll back to.
    else if (r && !r.synced && r.messages.length === 0) v.status.textContent = "";
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
    if (!active) return;
    if (scroller.scrollTop < 120 || scroller.scrollHeight <= scroller.clientHeight) {
      const asked = isDirect(active) ? client.loadOlderDirect(active.slice(1)) : client.loadOlder(active);
      // A direct conversation the server has no messages of is complete without asking.
      renderHistoryStatus(viewFor(active));
      return asked;
    }
    return false;
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

    /**
     * Scrolls the view of `key` to message `seq` (a search result), marks it for a moment and, with
     * `focus`, takes the focus there so a screen reader reads it. False when it is not drawn.
     * @param {string} key
     * @param {number} seq
     * @param {{ focus?: boolean }} [opts]
     */
    reveal(key, seq, { focus = true } = {}) {
      const v = views.get(key);
      const li = v?.list.querySelector(`li.msg[data-seq="${seq}"], li.msg[data-conv-seq="${seq}"]`);
      if (!(li instanceof HTMLElement)) return false;
      li.scrollIntoView({ block: "center" });
      li.classList.add("found");
      setTimeout(() => li.classList.remove("found"), 3000);
      if (focus) {
        li.tabIndex = -1;
        li.focus({ preventScroll: true });
      }
      if (!atBottom()) jump.hidden = false;
      return true;
    },

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
      if (placeReadMark(v)) renderAll(v);
      jump.hidden = true;
      // A reader who had scrolled up finds their place again; else the end, or the divider.
      if (!v.pinned) return void (scroller.scrollTop = v.scrollTop);
      scrollToBottom();
      showReadMark(v);
    },

    /**
     * The read positions are known now (the conversation list came): views that waited for them
     * place their "New messages" divider.
     */
    readPositions() {
      for (const v of views.values()) {
        if (v.readMark !== undefined || !placeReadMark(v)) continue;
        if (v.key === state.active) {
          keepScroll(() => renderAll(v));
          showReadMark(v);
        } else renderAll(v);
      }
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
        const first = v.readMark === undefined && placeReadMark(v);
        if (room === state.active) {
          keepScroll(() => renderAll(v), { newBelow: added.length > 0 });
          if (first) showReadMark(v);
        } else renderAll(v);
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
      const redraw = () => {
        renderChanged(v, message);
        if (!message.deleted) return;
        // Replies to it now say "original message deleted".
        const r = state.client.rooms.get(room);
        for (const li of v.list.querySelectorAll(`li.msg[data-reply-to="${message.seq}"]`)) {
          const reply = r?.find(Number(/** @type {HTMLElement} */ (li).dataset.seq));
          if (reply) renderChanged(v, reply);
        }
      };
      if (room === state.active) keepScroll(redraw);
      else redraw();
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
     * Older messages of conversation `key` arrived (a room, or `@name`: then maybe also newer ones
     * missed while away): they go in their place, the reader stays on what they read.
     * @param {string} key
     */
    history(key) {
      const v = views.get(key);
      if (!v) return;
      const first = v.readMark === undefined && placeReadMark(v);
      if (key === state.active) keepScroll(() => renderAll(v), { prepend: true });
      else renderAll(v);
      if (key === state.active && first) showReadMark(v);
      if (key === state.active) requestAnimationFrame(maybeLoadOlder);
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

/**
 * The chat page: renders what {@link ChatClient} knows and turns what the user does into calls on it.
 * Everything a user typed reaches the page through `textContent` and `createElement` only.
 * @module
 */
import { ChatClient, isValidName, linkify, mentions, normalizeRoom } from "./chat-client.js";

/** @typedef {import("./chat-client.js").RoomMessage} RoomMessage */
/** @typedef {import("./chat-client.js").DirectMessage} DirectMessage */
/** @typedef {import("./chat-client.js").OutboxItem} OutboxItem */
/** @typedef {RoomMessage | DirectMessage} AnyMessage */

/**
 * The DOM of one conversation (a room, or `@name` for a direct one).
 * @typedef {object} View
 * @property {string} key
 * @property {HTMLElement} root
 * @property {HTMLElement} status
 * @property {HTMLOListElement} list
 * @property {HTMLOListElement} pending
 * @property {AnyMessage | undefined} last the last message rendered
 * @property {number} scrollTop where the reader was when they left the view
 * @property {boolean} pinned whether the reader was at the bottom
 */

const STORAGE_PREFIX = "chat:";
const GROUP_MS = 5 * 60_000;

/**
 * @template {Element} T
 * @param {string} id
 * @param {{ new (): T, prototype: T }} type
 * @returns {T}
 */
function byId(id, type) {
  const e = document.getElementById(id);
  if (!(e instanceof type)) throw new Error(`The page lacks #${id}`);
  return e;
}

const ui = {
  login: byId("login", HTMLElement),
  nameForm: byId("name-form", HTMLFormElement),
  nameInput: byId("name-input", HTMLInputElement),
  app: byId("app", HTMLElement),
  openSidebar: byId("open-sidebar", HTMLButtonElement),
  openMembers: byId("open-members", HTMLButtonElement),
  totalBadge: byId("total-badge", HTMLElement),
  sidebar: byId("sidebar", HTMLElement),
  members: byId("members", HTMLElement),
  scrim: byId("scrim", HTMLElement),
  viewTitle: byId("view-title", HTMLElement),
  viewSub: byId("view-sub", HTMLElement),
  connStatus: byId("conn-status", HTMLElement),
  connText: byId("conn-text", HTMLElement),
  meAvatar: byId("me-avatar", HTMLElement),
  meName: byId("me-name", HTMLElement),
  renameButton: byId("rename-button", HTMLButtonElement),
  renameForm: byId("rename-form", HTMLFormElement),
  renameInput: byId("rename-input", HTMLInputElement),
  joinForm: byId("join-form", HTMLFormElement),
  joinInput: byId("join-input", HTMLInputElement),
  roomList: byId("room-list", HTMLUListElement),
  dmList: byId("dm-list", HTMLUListElement),
  dmEmpty: byId("dm-empty", HTMLElement),
  notifyButton: byId("notify-button", HTMLButtonElement),
  scroller: byId("scroller", HTMLElement),
  emptyView: byId("empty-view", HTMLElement),
  jump: byId("jump", HTMLButtonElement),
  typing: byId("typing", HTMLElement),
  composer: byId("composer", HTMLFormElement),
  composerLabel: byId("composer-label", HTMLElement),
  input: byId("composer-input", HTMLTextAreaElement),
  membersTitle: byId("members-title", HTMLElement),
  memberList: byId("member-list", HTMLUListElement),
  toasts: byId("toasts", HTMLElement),
};

/** @type {ChatClient} */
let client;
/** The open conversation: a room name, `@name`, or "" for none. */
let active = "";
/** @type {Map<string, View>} */
const views = new Map();
/** @type {Map<string, number>} unread messages per view */
const unread = new Map();
/** @type {ReturnType<typeof setInterval> | undefined} */
let countdown;
let notifyOn = false;

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const dayYearFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "long",
  month: "long",
  day: "numeric",
  year: "numeric",
});

// ---------------------------------------------------------------------------------------------
// Small DOM helpers

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * A colour (one of eight) for a name, stable across sessions.
 * @param {string} name
 */
function hue(name) {
  let h = 0x811c9dc5; // FNV-1a
  for (const ch of name.toLowerCase()) h = Math.imul(h ^ (ch.codePointAt(0) ?? 0), 0x01000193) >>> 0;
  return `hue-${h % 8}`;
}

/**
 * @param {string} name
 * @param {string} [extra]
 */
function avatar(name, extra = "") {
  const a = el("span", `avatar ${hue(name)} ${extra}`.trim(), [...name][0]?.toUpperCase() ?? "?");
  a.setAttribute("aria-hidden", "true");
  return a;
}

/**
 * Message text as nodes: plain text, and http(s) links that open in a new tab.
 * @param {string} text
 */
function textNodes(text) {
  const frag = document.createDocumentFragment();
  for (const part of linkify(text)) {
    if (part.href) {
      const a = el("a", "", part.text);
      a.href = part.href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      frag.append(a);
    } else {
      frag.append(document.createTextNode(part.text));
    }
  }
  return frag;
}

/** @param {number} ts */
function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

/** @param {number} ts */
function dayLabel(ts) {
  const now = new Date();
  const today = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
  if (ts >= today && ts < today + 86_400_000) return "Today";
  if (ts >= today - 86_400_000 && ts < today) return "Yesterday";
  return new Date(ts).getFullYear() === now.getFullYear() ? dayFormat.format(ts) : dayYearFormat.format(ts);
}

/**
 * Shows a message for a few seconds, with an optional action (such as "Undo") that also closes it.
 * @param {string} message
 * @param {"error" | "info"} [kind]
 * @param {{ label: string, run: () => void }} [action]
 */
function toast(message, kind = "error", action) {
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
  ui.toasts.append(t);
  while (ui.toasts.children.length > 3) ui.toasts.firstElementChild?.remove();
  setTimeout(() => t.remove(), 6000);
}

// ---------------------------------------------------------------------------------------------
// Views and messages

/** @param {string} key */
function isDirect(key) {
  return key.startsWith("@");
}

/** @param {string} key */
function viewTitle(key) {
  return isDirect(key) ? key : `#${key}`;
}

/**
 * @param {string} key
 * @returns {AnyMessage[]}
 */
function messagesOf(key) {
  if (isDirect(key)) return client.directs.get(key.slice(1).toLowerCase())?.messages ?? [];
  return client.rooms.get(key)?.messages ?? [];
}

/**
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
  ui.scroller.append(root);
  v = { key, root, status, list, pending, last: undefined, scrollTop: 0, pinned: true };
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
 * One message, given the one before it (for day separators and grouping).
 * @param {AnyMessage} m
 * @param {AnyMessage | undefined} prev
 * @returns {HTMLElement[]}
 */
function messageNodes(m, prev) {
  /** @type {HTMLElement[]} */
  const out = [];
  const newDay = !prev || dayKey(prev.ts) !== dayKey(m.ts);
  if (newDay) {
    const sep = el("li", "day-sep");
    sep.setAttribute("role", "separator");
    sep.append(el("span", "", dayLabel(m.ts)));
    out.push(sep);
  }
  const own = client.isMe(m.from);
  const grouped = !newDay && prev?.from === m.from && m.ts - prev.ts < GROUP_MS;
  const li = el("li", "msg");
  if (own) li.classList.add("own");
  if (grouped) li.classList.add("grouped");
  if (!own && mentions(m.text, client.me)) li.classList.add("mention");
  if ("seq" in m) li.dataset.seq = String(m.seq);
  if (m.cid) li.dataset.cid = m.cid;
  li.append(avatar(m.from));
  const body = el("div", "msg-body");
  const meta = el("div", "msg-meta");
  meta.append(el("span", `msg-from ${own ? "" : hue(m.from)}`.trim(), own ? "You" : m.from));
  const time = el("time", "msg-time", timeFormat.format(m.ts));
  time.dateTime = new Date(m.ts).toISOString();
  time.title = fullFormat.format(m.ts);
  meta.append(time);
  body.append(meta);
  const text = el("div", "msg-text");
  text.append(textNodes(m.text));
  body.append(text);
  li.append(body);
  out.push(li);
  return out;
}

/**
 * Rebuilds a view's list (first render, older history, a resume that replaced the list).
 * @param {View} v
 */
function renderAll(v) {
  const msgs = messagesOf(v.key);
  v.list.setAttribute("aria-busy", "true");
  /** @type {HTMLElement[]} */
  const nodes = [];
  /** @type {AnyMessage | undefined} */
  let prev;
  for (const m of msgs) {
    nodes.push(...messageNodes(m, prev));
    prev = m;
  }
  v.list.replaceChildren(...nodes);
  v.last = prev;
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
  v.list.append(...messageNodes(m, last));
  v.last = m;
}

/** @param {View} v */
function renderHistoryStatus(v) {
  if (isDirect(v.key)) {
    v.status.textContent = `Direct messages with ${
      v.key.slice(1)
    } are not stored: they last as long as this tab.`;
    return;
  }
  const r = client.rooms.get(v.key);
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
  const items = client.outbox.filter((i) => (isDirect(v.key) ? `@${i.to}` === v.key : i.room === v.key));
  v.pending.replaceChildren(...items.map(pendingNode));
}

/** @param {OutboxItem} item */
function pendingNode(item) {
  const li = el("li", `msg own pending ${item.state}`);
  li.dataset.cid = item.cid;
  li.append(avatar(client.me));
  const body = el("div", "msg-body");
  const meta = el("div", "msg-meta");
  meta.append(el("span", "msg-from", "You"));
  const state = item.state === "failed"
    ? `Not sent: ${item.error ?? "refused"}`
    : client.live
    ? "Sending…"
    : "Waiting for the connection";
  meta.append(el("span", "msg-state", state));
  body.append(meta);
  const text = el("div", "msg-text");
  text.append(textNodes(item.text));
  body.append(text);
  if (item.state === "failed") {
    const actions = el("div", "msg-actions");
    const retry = el("button", "text-button", "Retry");
    retry.type = "button";
    retry.addEventListener("click", () => client.retry(item.cid));
    const discard = el("button", "text-button", "Discard");
    discard.type = "button";
    discard.addEventListener("click", () => client.discard(item.cid));
    actions.append(retry, discard);
    body.append(actions);
  }
  li.append(body);
  return li;
}

function atBottom() {
  const s = ui.scroller;
  return s.scrollHeight - s.scrollTop - s.clientHeight < 48;
}

function scrollToBottom() {
  ui.scroller.scrollTop = ui.scroller.scrollHeight;
  ui.jump.hidden = true;
}

/**
 * Runs `change` on the open view keeping the reader's place: at the bottom if they were there,
 * else where they were (with the "new messages" button when something arrived below).
 * @param {() => void} change
 * @param {{ prepend?: boolean, newBelow?: boolean }} [opts]
 */
function keepScroll(change, opts = {}) {
  const s = ui.scroller;
  const pinned = atBottom();
  const height = s.scrollHeight;
  const top = s.scrollTop;
  change();
  if (pinned) scrollToBottom();
  else if (opts.prepend) s.scrollTop = top + (s.scrollHeight - height);
  else if (opts.newBelow) ui.jump.hidden = false;
}

/** Loads older messages when the reader is near the top (or the page is not full yet). */
function maybeLoadOlder() {
  if (!active || isDirect(active)) return;
  const s = ui.scroller;
  if (s.scrollTop < 120 || s.scrollHeight <= s.clientHeight) {
    if (client.loadOlder(active)) renderHistoryStatus(viewFor(active));
  }
}

// ---------------------------------------------------------------------------------------------
// Navigation

/**
 * Opens a conversation (called on every hash change).
 * @param {string} key
 */
function open(key) {
  if (active && views.has(active)) {
    const old = viewFor(active);
    old.scrollTop = ui.scroller.scrollTop;
    old.pinned = atBottom();
    old.root.hidden = true;
  }
  active = key;
  ui.emptyView.hidden = !!key;
  ui.input.disabled = !key;
  if (key) {
    if (isDirect(key)) client.direct(key.slice(1));
    const v = viewFor(key);
    v.root.hidden = false;
    if (v.pinned) scrollToBottom();
    else ui.scroller.scrollTop = v.scrollTop;
    ui.jump.hidden = true;
    unread.delete(key);
  }
  renderHeading();
  closeDrawers();
  renderSidebar();
  renderMembers();
  renderTyping();
  renderTitle();
  maybeLoadOlder();
}

/** The names of the open conversation: its title, and the message box's label and placeholder. */
function renderHeading() {
  const title = active ? viewTitle(active) : "Chat";
  ui.viewTitle.textContent = title;
  ui.composerLabel.textContent = active ? `Message ${title}` : "Message";
  ui.input.placeholder = active ? `Message ${title}` : "Join a room to write";
}

/**
 * Someone renamed: the client moved their direct conversation to the new name (unless one with
 * that name was there already), so its view, unread count and, when open, address follow.
 * @param {string} old
 * @param {string} name
 */
function followRename(old, name) {
  const from = old.toLowerCase();
  if (from === name.toLowerCase() || client.directs.has(from) || !client.directs.has(name.toLowerCase())) {
    return;
  }
  const to = `@${client.direct(name).peer}`;
  /** @param {string} key */
  const wasTheirs = (key) => isDirect(key) && key.slice(1).toLowerCase() === from;
  const v = [...views.values()].find((v) => wasTheirs(v.key));
  if (v && !views.has(to)) {
    views.delete(v.key);
    v.key = to;
    views.set(to, v);
    labelView(v);
    renderHistoryStatus(v);
    renderPending(v);
  }
  const counted = [...unread.keys()].find(wasTheirs);
  if (counted !== undefined) {
    const n = unread.get(counted) ?? 0;
    unread.delete(counted);
    unread.set(to, (unread.get(to) ?? 0) + n);
  }
  if (wasTheirs(active)) {
    active = to;
    history.replaceState(null, "", `#${to}`);
    renderHeading();
    renderTitle();
  }
}

/** Follows the URL hash: `#room` joins and opens a room, `#@name` a direct conversation. */
function route() {
  const hash = decodeURIComponent(location.hash.slice(1));
  if (hash.startsWith("@")) {
    const name = hash.slice(1);
    if (isValidName(name) && !client.isMe(name)) return open(`@${client.direct(name).peer}`);
  } else if (hash) {
    const room = client.join(hash);
    if (room) {
      if (room !== hash) return void history.replaceState(null, "", `#${room}`), open(room);
      return open(room);
    }
    toast(`"${hash}" is not a room name: use letters, digits, "_", "-" or "."`);
  }
  const first = client.rooms.keys().next().value ?? "";
  if (first) history.replaceState(null, "", `#${first}`);
  open(first);
}

/** @param {string} key */
function go(key) {
  const hash = `#${key}`;
  if (location.hash === hash) open(key);
  else location.hash = hash;
}

// ---------------------------------------------------------------------------------------------
// Side panels

function renderSidebar() {
  ui.meName.textContent = client.me;
  ui.meAvatar.textContent = [...client.me][0]?.toUpperCase() ?? "?";
  ui.meAvatar.className = `avatar ${hue(client.me)}`;

  ui.roomList.replaceChildren(...[...client.rooms.keys()].map((room) => {
    const li = el("li", "nav-row");
    const a = navLink(room, `#${room}`, el("span", "nav-icon", "#"));
    li.append(a);
    const leave = el("button", "leave-button", "×");
    leave.type = "button";
    leave.setAttribute("aria-label", `Leave #${room}`);
    leave.title = `Leave #${room}`;
    leave.addEventListener("click", () => leaveRoom(room));
    li.append(leave);
    return li;
  }));

  const online = onlineNames();
  const dms = [...client.directs.values()];
  ui.dmList.replaceChildren(...dms.map((c) => {
    const li = el("li", "nav-row");
    const dot = el("span", `presence ${online.has(c.peer.toLowerCase()) ? "online" : "away"}`);
    dot.setAttribute("aria-hidden", "true");
    li.append(navLink(`@${c.peer}`, c.peer, avatar(c.peer, "small"), dot));
    return li;
  }));
  ui.dmEmpty.hidden = dms.length > 0;

  let total = 0;
  for (const n of unread.values()) total += n;
  ui.totalBadge.hidden = total === 0;
  ui.totalBadge.textContent = total > 99 ? "99+" : String(total);
}

/**
 * @param {string} key
 * @param {string} label
 * @param {...HTMLElement} decorations
 */
function navLink(key, label, ...decorations) {
  const a = el("a", "nav-item");
  a.href = `#${key}`;
  if (key === active) a.setAttribute("aria-current", "page");
  const [first, ...rest] = decorations;
  if (first) a.append(first);
  a.append(el("span", "nav-label", label.replace(/^#/, "")));
  a.append(...rest);
  const n = unread.get(key) ?? 0;
  if (n > 0) {
    const badge = el("span", "badge", n > 99 ? "99+" : String(n));
    badge.setAttribute("aria-label", `${n} unread`);
    a.append(badge);
  }
  return a;
}

/** Lower-case names of everyone seen in any room. */
function onlineNames() {
  const s = new Set();
  for (const r of client.rooms.values()) for (const m of r.members) s.add(m.toLowerCase());
  return s;
}

function renderMembers() {
  /** @type {string[]} */
  let names;
  if (active && !isDirect(active)) {
    names = [...(client.rooms.get(active)?.members ?? [])];
    ui.membersTitle.textContent = `Members · ${names.length}`;
    ui.viewSub.textContent = names.length === 1 ? "1 member" : `${names.length} members`;
  } else {
    const seen = new Map();
    for (const r of client.rooms.values()) for (const m of r.members) seen.set(m.toLowerCase(), m);
    names = [...seen.values()];
    ui.membersTitle.textContent = `Online in your rooms · ${names.length}`;
    ui.viewSub.textContent = active
      ? (onlineNames().has(active.slice(1).toLowerCase()) ? "Online" : "Not in your rooms right now")
      : "";
  }
  names.sort((a, b) => (client.isMe(b) ? 1 : 0) - (client.isMe(a) ? 1 : 0) || a.localeCompare(b));
  ui.memberList.replaceChildren(...names.map((name) => {
    const li = el("li", "member");
    li.dataset.name = name;
    const me = client.isMe(name);
    const inner = me ? el("div", "member-item") : el("button", "member-item");
    if (inner instanceof HTMLButtonElement) {
      inner.type = "button";
      inner.setAttribute("aria-label", `${name}: send a direct message`);
      inner.addEventListener("click", () => go(`@${name}`));
    }
    const dot = el("span", "presence online");
    dot.setAttribute("aria-hidden", "true");
    const face = el("span", "avatar-wrap");
    face.append(avatar(name, "small"), dot);
    inner.append(face, el("span", "member-name", name));
    if (me) inner.append(el("span", "member-you", "you"));
    li.append(inner);
    return li;
  }));
}

function renderTyping() {
  const r = active && !isDirect(active) ? client.rooms.get(active) : undefined;
  const names = r ? r.typers() : [];
  const text = names.length === 0
    ? ""
    : names.length === 1
    ? `${names[0]} is typing…`
    : names.length === 2
    ? `${names[0]} and ${names[1]} are typing…`
    : "Several people are typing…";
  if (ui.typing.textContent !== text) ui.typing.textContent = text;
}

function renderTitle() {
  let total = 0;
  for (const n of unread.values()) total += n;
  const title = active ? viewTitle(active) : "Chat";
  document.title = `${total ? `(${total}) ` : ""}${title} · Chat`;
}

function renderStatus() {
  const state = !navigator.onLine && client.state !== "live" ? "offline" : client.state;
  ui.connStatus.dataset.state = state;
  let text;
  if (state === "live") text = "Live";
  else if (state === "connecting") text = "Connecting…";
  else if (state === "offline") text = navigator.onLine ? "Offline" : "Offline: no network";
  else {
    const s = Math.ceil((client.retryAt - Date.now()) / 1000);
    text = client.retryAt && s > 0 ? `Reconnecting in ${s} s` : "Reconnecting…";
  }
  if (ui.connText.textContent !== text) ui.connText.textContent = text;
  const counting = state === "reconnecting" && client.retryAt > Date.now();
  if (counting && countdown === undefined) countdown = setInterval(renderStatus, 500);
  if (!counting && countdown !== undefined) {
    clearInterval(countdown);
    countdown = undefined;
  }
}

/**
 * Leaves a room at once and offers, while the toast shows, to undo it: a stray click on × must not
 * cost the room. Undo joins again from where it was left (its messages, then what came meanwhile),
 * with its view, unread count and place.
 * @param {string} room
 */
function leaveRoom(room) {
  const wasActive = active === room;
  const v = views.get(room);
  if (v && wasActive) {
    v.scrollTop = ui.scroller.scrollTop;
    v.pinned = atBottom();
  }
  const wasUnread = unread.get(room) ?? 0;
  const kept = client.leave(room);
  if (kept) {
    toast(`You left #${room}`, "info", {
      label: "Undo",
      run: () => {
        if (client.rooms.has(room)) return; // joined again meanwhile
        if (v && !views.has(room)) {
          v.root.hidden = true;
          ui.scroller.append(v.root);
          views.set(room, v);
        }
        if (wasUnread) unread.set(room, (unread.get(room) ?? 0) + wasUnread);
        client.join(room, { resume: kept });
        if (wasActive) {
          go(room);
          ui.input.focus();
        } else {
          renderSidebar();
          renderTitle();
        }
      },
    });
  }
  v?.root.remove();
  views.delete(room);
  unread.delete(room);
  if (active === room) {
    active = "";
    const next = client.rooms.keys().next().value;
    if (next) go(next);
    else {
      history.replaceState(null, "", location.pathname);
      open("");
    }
  } else renderSidebar();
  renderTitle();
}

// ---------------------------------------------------------------------------------------------
// Drawers (narrow screens)

/** @param {"sidebar" | "members"} which */
function toggleDrawer(which) {
  const cls = `show-${which}`;
  const opening = !ui.app.classList.contains(cls);
  closeDrawers();
  if (!opening) return;
  ui.app.classList.add(cls);
  ui.scrim.hidden = false;
  const button = which === "sidebar" ? ui.openSidebar : ui.openMembers;
  button.setAttribute("aria-expanded", "true");
  const panel = which === "sidebar" ? ui.sidebar : ui.members;
  const first = panel.querySelector("a, button:not([hidden]), input");
  if (first instanceof HTMLElement) first.focus();
}

function closeDrawers() {
  const wasOpen = ui.app.classList.contains("show-sidebar") || ui.app.classList.contains("show-members");
  ui.app.classList.remove("show-sidebar", "show-members");
  ui.scrim.hidden = true;
  ui.openSidebar.setAttribute("aria-expanded", "false");
  ui.openMembers.setAttribute("aria-expanded", "false");
  return wasOpen;
}

// ---------------------------------------------------------------------------------------------
// Composer

function autosize() {
  const t = ui.input;
  t.style.height = "auto";
  t.style.height = `${Math.min(t.scrollHeight, 200)}px`;
}

/**
 * Sends what is in the composer, or runs its slash command. Returns whether to clear the box.
 * @param {string} raw
 * @returns {boolean}
 */
function submit(raw) {
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

// ---------------------------------------------------------------------------------------------
// Notifications

function setupNotifications() {
  if (!("Notification" in globalThis)) return;
  notifyOn = localStorage.getItem(`${STORAGE_PREFIX}notify`) === "1" && Notification.permission === "granted";
  ui.notifyButton.hidden = false;
  const label = () => {
    ui.notifyButton.textContent = notifyOn ? "Mention notifications: on" : "Notify me when mentioned";
    ui.notifyButton.setAttribute("aria-pressed", String(notifyOn));
  };
  label();
  ui.notifyButton.addEventListener("click", async () => {
    if (notifyOn) notifyOn = false;
    else {
      const p = Notification.permission === "default"
        ? await Notification.requestPermission()
        : Notification.permission;
      notifyOn = p === "granted";
      if (p === "denied") toast("Notifications are blocked for this site in the browser settings");
    }
    localStorage.setItem(`${STORAGE_PREFIX}notify`, notifyOn ? "1" : "0");
    label();
  });
}

/**
 * @param {string} key
 * @param {AnyMessage} m
 */
function notify(key, m) {
  if (!notifyOn || Notification.permission !== "granted") return;
  try {
    const n = new Notification(isDirect(key) ? `${m.from} (direct)` : `${m.from} in #${key}`, {
      body: m.text.slice(0, 200),
      tag: key,
    });
    n.addEventListener("click", () => {
      globalThis.focus();
      go(key);
      n.close();
    });
  } catch { /* some browsers only notify from a service worker */ }
}

// ---------------------------------------------------------------------------------------------
// Client events

/**
 * @param {string} key
 * @param {AnyMessage[]} msgs
 */
function countUnread(key, msgs) {
  const visible = key === active && !document.hidden;
  for (const m of msgs) {
    if (client.isMe(m.from)) continue;
    const mentioned = isDirect(key) || mentions(m.text, client.me);
    if (!visible) unread.set(key, (unread.get(key) ?? 0) + 1);
    if (mentioned && (document.hidden || key !== active)) notify(key, m);
  }
}

/** @param {Event} e */
function detail(e) {
  return /** @type {CustomEvent<Record<string, any>>} */ (e).detail;
}

function wire() {
  client.addEventListener("state", () => {
    renderStatus();
    for (const v of views.values()) renderPending(v);
  });
  client.addEventListener("welcome", () => {
    renderSidebar();
    renderMembers();
  });
  client.addEventListener("notice", (e) => toast(detail(e).message, "info"));
  client.addEventListener("servererror", (e) => toast(detail(e).message));
  client.addEventListener("rooms", () => renderSidebar());
  client.addEventListener("joined", (e) => {
    const { room, added, reset } = detail(e);
    const v = views.get(room);
    if (!reset) countUnread(room, added);
    if (v) {
      if (room === active) keepScroll(() => renderAll(v), { newBelow: added.length > 0 });
      else renderAll(v);
    }
    if (room === active) maybeLoadOlder();
    renderSidebar();
    renderTitle();
  });
  client.addEventListener("message", (e) => {
    const { room, peer, message } = detail(e);
    const key = room ?? `@${peer}`;
    const v = views.get(key);
    if (v) {
      if (key === active) {
        keepScroll(() => renderMessage(v, message), { newBelow: !client.isMe(message.from) });
      } else renderMessage(v, message);
    }
    countUnread(key, [message]);
    renderSidebar();
    renderTitle();
  });
  client.addEventListener("history", (e) => {
    const { room } = detail(e);
    const v = views.get(room);
    if (!v) return;
    if (room === active) keepScroll(() => renderAll(v), { prepend: true });
    else renderAll(v);
    if (room === active) requestAnimationFrame(maybeLoadOlder);
  });
  client.addEventListener("members", (e) => {
    const { room } = detail(e);
    if (room === active || isDirect(active)) renderMembers();
    renderSidebar();
  });
  client.addEventListener("typing", (e) => {
    if (detail(e).room === active) renderTyping();
  });
  client.addEventListener("nick", (e) => {
    const { old, name } = detail(e);
    if (client.isMe(name)) toast(`You are now ${name}`, "info");
    followRename(old, name);
    renderSidebar();
    renderMembers();
  });
  client.addEventListener("outbox", () => {
    for (const v of views.values()) {
      if (v.key === active) keepScroll(() => renderPending(v));
      else renderPending(v);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Start

function wsUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

/** @param {string} [name] */
function start(name) {
  client = new ChatClient({ url: wsUrl(), name, storagePrefix: STORAGE_PREFIX });
  wire();
  ui.login.hidden = true;
  ui.app.hidden = false;
  setupNotifications();
  client.start();
  renderStatus();
  route();
  ui.input.focus();
}

function bindUi() {
  // The skip link must not change the hash: that names the conversation.
  document.querySelector(".skip-link")?.addEventListener("click", (e) => {
    e.preventDefault();
    ui.input.focus();
  });
  ui.nameForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = ui.nameInput.value.trim();
    if (!isValidName(name)) {
      ui.nameInput.setAttribute("aria-invalid", "true");
      ui.nameInput.focus();
      toast(`Names are 1–32 letters, digits, "_", "-" or "."`);
      return;
    }
    start(name);
  });

  ui.composer.addEventListener("submit", (e) => {
    e.preventDefault();
    if (submit(ui.input.value)) {
      ui.input.value = "";
      autosize();
    }
    ui.input.focus();
  });
  ui.input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      ui.composer.requestSubmit();
    }
  });
  ui.input.addEventListener("input", () => {
    autosize();
    if (active && !isDirect(active) && ui.input.value.trim() && !ui.input.value.startsWith("/")) {
      client.typing(active);
    }
  });

  ui.scroller.addEventListener("scroll", () => {
    if (atBottom()) {
      ui.jump.hidden = true;
      if (active && unread.has(active) && !document.hidden) {
        unread.delete(active);
        renderSidebar();
        renderTitle();
      }
    }
    maybeLoadOlder();
  }, { passive: true });
  ui.jump.addEventListener("click", () => {
    scrollToBottom();
    ui.input.focus();
  });

  ui.joinForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const room = normalizeRoom(ui.joinInput.value);
    if (!room) {
      toast(`Room names are 1–64 letters, digits, "_", "-" or "."`);
      return;
    }
    ui.joinInput.value = "";
    go(room);
    ui.input.focus();
  });

  ui.renameButton.addEventListener("click", () => {
    const show = ui.renameForm.hidden;
    ui.renameForm.hidden = !show;
    ui.renameButton.setAttribute("aria-expanded", String(show));
    if (show) {
      ui.renameInput.value = client.me;
      ui.renameInput.focus();
      ui.renameInput.select();
    }
  });
  ui.renameForm.addEventListener("submit", (e) => {
    e.preventDefault();
    try {
      client.nick(ui.renameInput.value.trim());
      ui.renameForm.hidden = true;
      ui.renameButton.setAttribute("aria-expanded", "false");
      ui.renameButton.focus();
    } catch (err) {
      toast(/** @type {Error} */ (err).message);
    }
  });

  ui.openSidebar.addEventListener("click", () => toggleDrawer("sidebar"));
  ui.openMembers.addEventListener("click", () => toggleDrawer("members"));
  ui.scrim.addEventListener("click", () => closeDrawers());
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    const which = ui.app.classList.contains("show-sidebar") ? ui.openSidebar : ui.openMembers;
    if (closeDrawers()) which.focus();
  });

  addEventListener("hashchange", () => client && route());
  addEventListener("online", () => {
    client?.reconnectNow();
    if (client) renderStatus();
  });
  addEventListener("offline", () => client && renderStatus());
  document.addEventListener("visibilitychange", () => {
    if (!client || document.hidden) return;
    if (client.state === "reconnecting") client.reconnectNow();
    if (active && unread.has(active) && atBottom()) {
      unread.delete(active);
      renderSidebar();
      renderTitle();
    }
  });
}

bindUi();
let storedName = "";
try {
  const identity = JSON.parse(localStorage.getItem(`${STORAGE_PREFIX}identity`) ?? "null");
  if (identity && typeof identity.name === "string" && isValidName(identity.name)) storedName = identity.name;
} catch { /* no usable identity: ask for a name */ }
if (storedName) start();
else {
  ui.login.hidden = false;
  ui.nameInput.focus();
}

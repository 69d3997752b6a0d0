/**
 * The chat page: wires the views (static/views/, one part of the screen each) to a
 * {@link ChatClient}. It owns what they share (the open conversation), follows the address
 * (`#room`, `#@name`), and turns the client's events into renders. Unread and mention counts are
 * the server's (kept by the client), read state goes out when the open conversation is seen
 * (reading.js). Everything a user typed reaches the page through `textContent` and `createElement`
 * only.
 * @module
 */
import { ChatClient, isValidName } from "./chat-client.js";
import { forgetDevice, registerWorker } from "./offline/device.js";
import { keepRooms, KeptHistory, settingsFrom } from "./offline/history.js";
import { createComposer } from "./views/composer.js";
import { byId } from "./views/dom.js";
import { createForget } from "./views/forget.js";
import { askName, showSignedOnly } from "./views/login.js";
import { createMembers } from "./views/members.js";
import { createMessageActions } from "./views/message-actions.js";
import { createNotifications } from "./views/notifications.js";
import { createReading } from "./views/reading.js";
import { createReplyBar } from "./views/reply.js";
import { createRoomInfo } from "./views/roominfo.js";
import { createSearch } from "./views/search.js";
import { createSidebar } from "./views/sidebar.js";
import { isDirect, STORAGE_PREFIX } from "./views/state.js";
import { createThread } from "./views/thread.js";
import { toast } from "./views/toasts.js";
import { createTopbar } from "./views/topbar.js";

/** @typedef {import("./views/state.js").AppState} AppState */
/** @typedef {import("./views/messages.js").AnyMessage} AnyMessage */

/** @param {Event} e */
function detail(e) {
  return /** @type {CustomEvent<Record<string, any>>} */ (e).detail;
}

function wsUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

/**
 * @typedef {object} ServerInfo What the server tells the page before it connects (`GET /ws/info`).
 * @property {boolean} guests whether a name typed here can connect
 * @property {string | null} signInUrl the host site's sign-in page
 * @property {{ allowed: boolean, message?: string, fix?: string } | null} origin whether this page's
 *   origin may open the WebSocket, and if not why and what to do
 */

/**
 * Asks the server what it allows, for this page's origin (a same-origin GET carries no Origin
 * header). A browser tells a page nothing about a refused WebSocket, so this is how the page learns.
 * @returns {Promise<ServerInfo | null | undefined>} undefined when the server answered without it (an
 *   older one), null when it could not be reached
 */
async function serverInfo() {
  try {
    const res = await fetch(`/ws/info?${new URLSearchParams({ origin: location.origin })}`, {
      cache: "no-store",
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) return undefined;
    const body = await res.json();
    return body && typeof body.guests === "boolean" ? body : undefined;
  } catch {
    return null;
  }
}

/**
 * Signed identities: the page was opened with `?tokenUrl=` (see docs/embedding.md). Its tokens come
 * from that URL, a POST with the host application's cookies; it answers `{"token": "..."}`. The page's
 * Content-Security-Policy lets it reach only its own origin and the server's --allowed-origins.
 * @returns {(() => Promise<string>) | undefined}
 */
function tokenHook() {
  const raw = new URLSearchParams(location.search).get("tokenUrl");
  if (!raw) return undefined;
  const url = new URL(raw, location.href);
  if (url.protocol !== "https:" && url.protocol !== "http:") return undefined;
  return async () => {
    const res = await fetch(url, {
      method: "POST",
      credentials: "include",
      headers: { accept: "application/json" },
    });
    if (!res.ok) throw new Error(`the sign-in service answered ${res.status}`);
    const body = await res.json();
    if (typeof body?.token !== "string") throw new Error("the sign-in service sent no token");
    return body.token;
  };
}

/**
 * The subject (`sub`) of a signed token, read without checking it (the server does): it only picks which
 * person's rooms, outbox and kept history this device uses.
 * @param {string} token
 * @returns {string | undefined}
 */
function tokenSubject(token) {
  try {
    const payload = token.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    const claims = JSON.parse(
      new TextDecoder().decode(Uint8Array.from(atob(payload), (c) => c.charCodeAt(0))),
    );
    return typeof claims?.sub === "string" && claims.sub !== "" ? claims.sub : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Connects as `who` (a handle, or a display name the server makes the handle from), or as the identity
 * this device keeps, or as the signed user of `getToken`, and shows the chat.
 * @param {{ name?: string, display?: string }} [who]
 * @param {() => Promise<string>} [getToken]
 */
async function start(who = {}, getToken) {
  // Offline use, where the browser has it: the page's files (a service worker) and the rooms' history
  // (IndexedDB). Not before a name is chosen: a device that was forgotten keeps nothing until then.
  void registerWorker();
  // What this device kept of the rooms is shown at once, and the joins ask only for what is newer.
  const store = await KeptHistory.open(settingsFrom(document));
  // A signed person's rooms, outbox and kept history are theirs alone: another person may sign in to the
  // host site on this browser next, and must neither see them nor send the outbox under their own name.
  // So they are kept under the token's subject, which waits for a first token (it also connects); when no
  // subject can be read, nothing is kept for this session rather than kept under no one's name.
  let storagePrefix = STORAGE_PREFIX;
  /** @type {null | undefined} */
  let storage;
  /** @type {string | undefined} */
  let firstToken;
  if (getToken) {
    firstToken = await getToken().catch(() => undefined);
    const sub = firstToken === undefined ? undefined : tokenSubject(firstToken);
    storagePrefix = `${STORAGE_PREFIX}signed:${sub ?? ""}:`;
    if (sub === undefined) storage = null;
  }
  const keptPrefix = storage === null ? "" : storagePrefix;
  const tokens = getToken && (() => {
    const t = firstToken;
    firstToken = undefined;
    return t === undefined ? getToken() : Promise.resolve(t);
  });
  const kept = store && keptPrefix ? await store.load(keptPrefix) : [];
  const client = new ChatClient({ url: wsUrl(), ...who, storagePrefix, storage, getToken: tokens, kept });
  const keeping = store && keptPrefix ? keepRooms(client, store, keptPrefix) : undefined;
  /** @type {AppState} */
  const state = { client, active: "", go };
  const focusComposer = () => composer.focus();
  const topbar = createTopbar(state);
  const thread = createThread(state, { onRead: markRead, focusComposer });
  const replyBar = createReplyBar(state, { focusComposer });
  const composer = createComposer(state, { leaveRoom, scrollToBottom: thread.scrollToBottom, replyBar });
  const sidebar = createSidebar(state, { leaveRoom, focusComposer });
  const members = createMembers(state);
  const roomInfo = createRoomInfo(state);
  const reading = createReading(state, { atBottom: thread.atBottom, onRead: renderCounts });
  createMessageActions(state, {
    focusComposer,
    reply(room, seq) {
      replyBar.set(room, seq);
      composer.focus();
    },
  });

  // -------------------------------------------------------------------------------------------
  // Search: a result opens its room at the message

  /**
   * The search result being opened: its room is being joined, or the page around it was asked for.
   * Kept a few seconds after it is shown: the pages that fill up to the held messages move the thread,
   * and it is shown again after each.
   * @type {{ key: string, seq: number, conv?: string, shown: boolean, until: number } | undefined}
   */
  let jumping;
  const JUMP_MS = 5000;
  createSearch(state, {
    open(hit) {
      if (hit.room !== undefined) {
        jumping = { key: hit.room, seq: hit.seq, shown: false, until: Date.now() + JUMP_MS };
        go(hit.room);
        tryJump();
        return;
      }
      // A direct message: its conversation opens at the message. One the list does not hold (an
      // older one) is found by the sender, unless that is you.
      const peer = [...client.directs.values()].find((c) => c.conv === hit.conv)?.peer ??
        (client.isMe(hit.from) ? undefined : hit.from);
      if (peer === undefined) return toast("Open that conversation from the list to see the message");
      jumping = { key: `@${peer}`, seq: hit.seq, conv: hit.conv, shown: false, until: Date.now() + JUMP_MS };
      go(`@${peer}`);
      tryJump();
    },
  });

  /** Shows the message a search result points at, once its room is joined and the message held. */
  function tryJump() {
    if (jumping && Date.now() > jumping.until) jumping = undefined;
    if (!jumping || jumping.key !== state.active) return;
    const { key, seq } = jumping;
    if (isDirect(key)) {
      if (!client.live) return;
      if (client.jumpToDirect(key.slice(1), seq, jumping.conv)) {
        // A conversation's pages redraw its list: the focus goes with the old node, so it is taken
        // again then (not when the reader has moved it elsewhere).
        thread.reveal(key, seq, { focus: !jumping.shown || document.activeElement === document.body });
        jumping.shown = true;
      }
      return;
    }
    if (!client.rooms.get(key)?.joined) return; // the joined event tries again
    if (client.jumpTo(key, seq)) {
      thread.reveal(key, seq, { focus: !jumping.shown });
      jumping.shown = true;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Navigation

  /**
   * Opens a conversation (called on every hash change).
   * @param {string} key
   */
  function open(key) {
    if (state.active) thread.hide(state.active);
    state.active = key;
    if (key && isDirect(key)) client.direct(key.slice(1));
    thread.show(key);
    reading.check();
    renderHeading();
    topbar.closeDrawers();
    sidebar.render();
    members.render();
    composer.renderTyping();
    topbar.renderTitle();
    thread.maybeLoadOlder();
    if (jumping?.key === key) tryJump();
  }

  /** The names of the open conversation: its title, and the message box's label and placeholder. */
  function renderHeading() {
    topbar.renderHeading();
    roomInfo.render();
    composer.renderTarget();
    composer.renderNotice();
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

  /** The reader reached the end of the open conversation. */
  function markRead() {
    reading.check();
  }

  /** The unread counts changed: the sidebar's and the title's. */
  function renderCounts() {
    sidebar.render();
    topbar.renderTitle();
  }

  /**
   * Someone renamed: the client moved their direct conversation to the new name (unless one with
   * that name was there already), so its view and, when open, address follow.
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
    const viewed = [...thread.keys()].find(wasTheirs);
    if (viewed !== undefined) thread.rekey(viewed, to);
    if (wasTheirs(state.active)) {
      state.active = to;
      history.replaceState(null, "", `#${to}`);
      renderHeading();
      topbar.renderTitle();
    }
  }

  /**
   * Leaves a room at once and offers, while the toast shows, to undo it: a stray click on × must
   * not cost the room. Undo joins again from where it was left (its messages, then what came
   * meanwhile), with its view and place; its unread count is the server's again.
   * @param {string} room
   * @param {{ focusUndo?: boolean }} [opts] `focusUndo`: the control used (the room's ×) goes with
   *   the room, so the focus moves to Undo rather than to nowhere, and to the message box after
   */
  function leaveRoom(room, { focusUndo = false } = {}) {
    const wasActive = state.active === room;
    const v = thread.detach(room);
    const kept = client.leave(room);
    if (kept) {
      toast(`You left #${room}`, "info", {
        label: "Undo",
        run: () => {
          if (client.rooms.has(room)) return; // joined again meanwhile
          if (v) thread.attach(v);
          client.join(room, { resume: kept });
          if (wasActive) {
            // Opened now rather than on the hash change a moment later: the message box is enabled
            // only once a room is open (not so when this was the only room), and the focus goes there.
            if (location.hash !== `#${room}`) history.pushState(null, "", `#${room}`);
            open(room);
            composer.focus();
          } else {
            sidebar.render();
            topbar.renderTitle();
          }
        },
        returnFocus: focusUndo ? () => composer.focus() : undefined,
      });
    }
    if (wasActive) {
      state.active = "";
      const next = client.rooms.keys().next().value;
      if (next) go(next);
      else {
        history.replaceState(null, "", location.pathname);
        open("");
      }
    } else sidebar.render();
    topbar.renderTitle();
  }

  // -------------------------------------------------------------------------------------------
  // Client events

  const notifications = createNotifications(state);

  /**
   * Notifies of the direct messages and mentions of you among `msgs` while the page is hidden.
   * @param {string} key
   * @param {AnyMessage[]} msgs
   */
  function notifyOf(key, msgs) {
    if (document.visibilityState !== "hidden") return;
    for (const m of msgs) {
      if (client.isMe(m.from)) continue;
      if (isDirect(key) || client.mentionsMe(m)) notifications.notify(key, m);
    }
  }

  const problem = byId("conn-problem", HTMLElement);
  let askedAt = 0;
  client.addEventListener("state", () => {
    topbar.renderStatus();
    thread.pendingChanged({ keepPlace: false });
    if (client.state === "live") problem.hidden = true;
    // A failed connect: ask the server whether it refuses this page, once per retry.
    if (client.state !== "reconnecting" || client.retryAt === askedAt) return;
    askedAt = client.retryAt;
    void serverInfo().then((info) => {
      const refused = info?.origin && !info.origin.allowed ? info.origin : undefined;
      if (client.state === "live") return;
      problem.hidden = !refused && info !== null;
      if (info === null) {
        // Opened from this device's copy, maybe: say why nothing moves, and that nothing typed is lost.
        byId("conn-problem-why", HTMLElement).textContent = "The server cannot be reached.";
        byId("conn-problem-fix", HTMLElement).textContent =
          "You see what this device kept; what you write is sent when the server is back.";
      }
      if (!refused) return;
      byId("conn-problem-why", HTMLElement).textContent = `The server refuses this page: ${refused.message}.`;
      byId("conn-problem-fix", HTMLElement).textContent = `What to do: ${refused.fix}`;
    });
  });
  client.addEventListener("welcome", () => {
    sidebar.render();
    members.render();
  });
  client.addEventListener("notice", (e) => toast(detail(e).message, "info"));
  client.addEventListener("servererror", (e) => toast(detail(e).message));
  client.addEventListener("rooms", () => sidebar.render());
  client.addEventListener("joined", (e) => {
    const { room, added, reset } = detail(e);
    if (!reset) notifyOf(room, added);
    thread.joined(room, added);
    reading.check();
    renderCounts();
    if (jumping?.key === room) tryJump();
  });
  client.addEventListener("message", (e) => {
    const { room, peer, message } = detail(e);
    const key = room ?? `@${peer}`;
    thread.message(key, message);
    reading.check();
    notifyOf(key, [message]);
    renderCounts();
  });
  client.addEventListener("history", (e) => {
    const { room, peer, around } = detail(e);
    thread.history(room ?? `@${peer}`);
    if (jumping && jumping.key === (room ?? `@${peer}`)) {
      // The page around it came (or a page filling up to the held messages): show it there again.
      const seq = jumping.seq;
      const held = room !== undefined
        ? client.rooms.get(room)?.find(seq)
        : client.directs.get(peer.toLowerCase())?.messages.some((m) => m.convSeq === seq);
      if (held) tryJump();
      else if (around === seq) {
        toast("That message is no longer there");
        jumping = undefined;
      }
    }
    if (peer !== undefined) reading.check();
    renderCounts();
  });
  client.addEventListener("conversations", () => {
    // The read positions of direct conversations are known now, and which ones have a history.
    thread.readPositions();
    if (isDirect(state.active)) thread.maybeLoadOlder();
    reading.check();
    renderCounts();
  });
  client.addEventListener("read", () => renderCounts());
  client.addEventListener("reactions", (e) => {
    const { room, message } = detail(e);
    thread.changed(room, message);
  });
  client.addEventListener("members", (e) => {
    const { room } = detail(e);
    if (room === state.active || isDirect(state.active)) members.render();
    sidebar.render();
  });
  client.addEventListener("typing", (e) => {
    if (detail(e).room === state.active) composer.renderTyping();
  });
  client.addEventListener("nick", (e) => {
    const { old, name } = detail(e);
    if (client.isMe(name)) toast(`You are now ${name}`, "info");
    followRename(old, name);
    sidebar.render();
    members.render();
  });
  client.addEventListener("outbox", () => thread.pendingChanged({ keepPlace: true }));
  client.addEventListener("changed", (e) => {
    const { room, message } = detail(e);
    thread.changed(room, message);
    if (message.deleted) replyBar.render(); // a reply to it cannot be sent any more
  });
  client.addEventListener("moderation", (e) => {
    const { room, line } = detail(e);
    thread.moderation(room, line);
    if (room === state.active) members.render(); // muted or not changes a member's actions
  });
  client.addEventListener("rules", (e) => {
    if (detail(e).room === state.active) roomInfo.render();
  });
  /** @type {Map<string, string>} room → the role its messages were drawn for */
  const drawnRole = new Map();
  client.addEventListener("standing", (e) => {
    const { room } = detail(e);
    // Moderators get Delete on every message: a role that changed redraws them.
    const role = client.moderates(room) ? "moderator" : "member";
    if ((drawnRole.get(room) ?? role) !== role) thread.redraw();
    drawnRole.set(room, role);
    if (room !== state.active) return;
    composer.renderNotice();
    roomInfo.render();
    members.render();
    thread.pendingChanged({ keepPlace: true });
  });

  // -------------------------------------------------------------------------------------------
  // The browser

  addEventListener("hashchange", () => route());
  addEventListener("online", () => {
    client.reconnectNow();
    topbar.renderStatus();
  });
  addEventListener("offline", () => topbar.renderStatus());
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return;
    if (client.state === "reconnecting") client.reconnectNow();
  });

  createForget({
    async forget() {
      keeping?.stop();
      await client.stop();
      await forgetDevice({ prefix: STORAGE_PREFIX, close: () => store?.close() });
    },
  });

  byId("app", HTMLElement).hidden = false;
  client.start();
  topbar.renderStatus();
  route();
  composer.focus();
}

let storedName = "";
try {
  const identity = JSON.parse(localStorage.getItem(`${STORAGE_PREFIX}identity`) ?? "null");
  if (identity && typeof identity.name === "string" && isValidName(identity.name)) storedName = identity.name;
  // A display name chosen before the server answered: the handle comes with the welcome.
  else if (identity && typeof identity.display === "string") storedName = identity.display;
} catch { /* no usable identity: ask for a name */ }
const getToken = tokenHook();
// Asked before the name: on a server without guests a typed name could never connect.
const info = getToken ? undefined : await serverInfo();
if (getToken) void start({}, getToken);
else if (info && !info.guests) showSignedOnly(info.signInUrl);
else if (storedName) void start();
else askName((who) => void start(who));

/**
 * One message as list items: delivered ones (with day separators and grouping; the text in the
 * Markdown subset of markdown.js, while edits start from the raw text; the quote of the message a
 * reply answers, as plain text; "(edited)", or "message deleted" for a tombstone; its reactions;
 * Reply and Add reaction on room messages, Edit and Delete for yours, Delete for a moderator), those
 * still in the outbox (with their state, and Retry / Discard when refused), and moderation lines.
 * @module
 */
import { formatUntil, mentions } from "../chat-client.js";
import { avatar, el, hue, personName } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { reactionBar } from "./reactions.js";
import { quoteNode } from "./reply.js";

/** @typedef {import("../chat-client.js").ChatClient} ChatClient */
/** @typedef {import("../chat-client.js").RoomMessage} RoomMessage */
/** @typedef {import("../chat-client.js").DirectMessage} DirectMessage */
/** @typedef {import("../chat-client.js").OutboxItem} OutboxItem */
/** @typedef {import("../chat-client.js").ModerationLine} ModerationLine */
/** @typedef {RoomMessage | DirectMessage} AnyMessage */

/** Messages of one person this close together share one header. */
const GROUP_MS = 5 * 60_000;

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const dayYearFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "long",
  month: "long",
  day: "numeric",
  year: "numeric",
});

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
 * One message, given the one before it (for day separators and grouping).
 * @param {AnyMessage} m
 * @param {AnyMessage | undefined} prev
 * @param {ChatClient} client who "you" are
 * @param {{ afterLine?: boolean }} [opts] `afterLine`: a moderation line sits between `prev` and this
 *   one, so this one starts a group of its own
 * @returns {HTMLElement[]}
 */
export function messageNodes(m, prev, client, opts = {}) {
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
  const grouped = !newDay && !opts.afterLine && prev?.from === m.from && m.ts - prev.ts < GROUP_MS;
  const deleted = "deleted" in m && m.deleted === true;
  const li = el("li", "msg");
  if (own) li.classList.add("own");
  if (grouped) li.classList.add("grouped");
  if (deleted) li.classList.add("deleted");
  if (!own && !deleted && (client.mentionsMe(m) || mentions(m.text, client.me))) li.classList.add("mention");
  if ("seq" in m) {
    li.dataset.seq = String(m.seq);
    li.tabIndex = -1; // a tap focuses it, which shows its actions (see .msg-tools)
  } else if (m.convSeq !== undefined) {
    // Not data-seq: a room message's actions (react, edit, delete) look for that one.
    li.dataset.convSeq = String(m.convSeq);
  }
  if ("replyTo" in m && m.replyTo) li.dataset.replyTo = String(m.replyTo.seq);
  if (m.cid) li.dataset.cid = m.cid;
  const display = "display" in m && typeof m.display === "string" ? m.display : undefined;
  li.append(avatar(m.from, "", display));
  const body = el("div", "msg-body");
  const meta = el("div", "msg-meta");
  meta.append(
    personName(`msg-from ${own ? "" : hue(m.from)}`.trim(), m.from, display, own ? "You" : undefined),
  );
  const time = el("time", "msg-time", timeFormat.format(m.ts));
  time.dateTime = new Date(m.ts).toISOString();
  time.title = fullFormat.format(m.ts);
  meta.append(time);
  if ("editedTs" in m && typeof m.editedTs === "number" && !deleted) {
    const edited = el("span", "msg-edited", "(edited)");
    edited.title = `Edited ${fullFormat.format(m.editedTs)}`;
    meta.append(edited);
  }
  body.append(meta);
  if (deleted) {
    body.append(el("div", "msg-text msg-tombstone", "message deleted"));
  } else {
    if ("replyTo" in m && m.replyTo && typeof m.replyTo.from === "string") {
      body.append(quoteNode(m.replyTo, client.rooms.get(m.room)?.find(m.replyTo.seq), client));
    }
    const text = el("div", "msg-text");
    text.append(renderMarkdown(m.text));
    body.append(text);
    if ("seq" in m) {
      if (m.reactions && Object.keys(m.reactions).length > 0) body.append(reactionBar(m));
      body.append(messageActions(m, own, client));
    }
  }
  li.append(body);
  out.push(li);
  return out;
}

/**
 * Reply and (while it has no reactions yet) Add reaction under a room message; Edit and Delete
 * under your own; Delete under anyone's when you moderate the room. The buttons carry
 * `data-action`; the thread's message actions (message-actions.js) handle them.
 * @param {RoomMessage} m
 * @param {boolean} own
 * @param {ChatClient} client
 */
function messageActions(m, own, client) {
  const whose = own ? "your message" : `the message from ${m.display ?? m.from}`;
  const actions = el("div", "msg-tools");
  const reply = el("button", "msg-tool", "Reply");
  reply.type = "button";
  reply.dataset.action = "reply";
  reply.setAttribute("aria-label", `Reply to ${whose}`);
  actions.append(reply);
  if (!m.reactions || Object.keys(m.reactions).length === 0) {
    const react = el("button", "msg-tool", "React");
    react.type = "button";
    react.dataset.action = "add-reaction";
    react.setAttribute("aria-label", `Add a reaction to ${whose}`);
    react.setAttribute("aria-haspopup", "true");
    react.setAttribute("aria-expanded", "false");
    actions.append(react);
  }
  const canDelete = own || client.moderates(m.room);
  if (!canDelete) return actions;
  // Offered while the server's edit window is open (at render time; a late click gets its refusal).
  const editable = own && Date.now() - m.ts < client.limits.editSeconds * 1000;
  if (editable) {
    const edit = el("button", "msg-tool", "Edit");
    edit.type = "button";
    edit.dataset.action = "edit";
    edit.setAttribute("aria-label", `Edit ${whose}`);
    actions.append(edit);
  }
  const del = el("button", "msg-tool", "Delete");
  del.type = "button";
  del.dataset.action = "delete";
  del.setAttribute("aria-label", `Delete ${whose}`);
  actions.append(del);
  return actions;
}

const VERBS = { kick: "kicked", ban: "banned", unban: "unbanned", mute: "muted", unmute: "unmuted" };

/**
 * A moderation action as a short line in the thread: "mo banned bob: spam".
 * @param {ModerationLine} line
 * @param {ChatClient} client
 */
export function moderationNode(line, client) {
  const who = (/** @type {string} */ name) => client.isMe(name) ? "you" : name;
  let text = `${client.isMe(line.by) ? "You" : line.by} ${VERBS[line.action]} ${who(line.name)}`;
  if ((line.action === "mute" || line.action === "ban") && line.until) {
    text += ` until ${formatUntil(line.until)}`;
  }
  if (line.reason) text += `: ${line.reason}`;
  const li = el("li", "system-line");
  li.dataset.action = line.action;
  li.append(el("span", "system-text", text));
  const time = el("time", "msg-time", timeFormat.format(line.ts));
  time.dateTime = new Date(line.ts).toISOString();
  li.append(time);
  return li;
}

/**
 * A message of yours the server has not taken yet.
 * @param {OutboxItem} item
 * @param {ChatClient} client
 */
export function pendingNode(item, client) {
  const li = el("li", `msg own pending ${item.state}`);
  li.dataset.cid = item.cid;
  li.append(avatar(client.me));
  const body = el("div", "msg-body");
  const meta = el("div", "msg-meta");
  meta.append(el("span", "msg-from", "You"));
  const slowUntil = item.room ? client.rooms.get(item.room)?.slowUntil ?? 0 : 0;
  const state = item.state === "failed"
    ? `Not sent: ${item.error ?? "refused"}`
    : !client.live
    ? "Waiting for the connection"
    : slowUntil > Date.now()
    ? "Waiting for slow mode"
    : "Sending…";
  meta.append(el("span", "msg-state", state));
  body.append(meta);
  const original = item.room && item.replyTo ? client.rooms.get(item.room)?.find(item.replyTo) : undefined;
  if (original) body.append(quoteNode(original, original, client));
  const text = el("div", "msg-text");
  text.append(renderMarkdown(item.text));
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

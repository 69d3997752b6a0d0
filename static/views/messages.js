/**
 * One message as list items: delivered ones (with day separators and grouping) and those still in
 * the outbox (with their state, and Retry / Discard when refused).
 * @module
 */
import { mentions } from "../chat-client.js";
import { avatar, el, hue, textNodes } from "./dom.js";

/** @typedef {import("../chat-client.js").ChatClient} ChatClient */
/** @typedef {import("../chat-client.js").RoomMessage} RoomMessage */
/** @typedef {import("../chat-client.js").DirectMessage} DirectMessage */
/** @typedef {import("../chat-client.js").OutboxItem} OutboxItem */
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
 * @returns {HTMLElement[]}
 */
export function messageNodes(m, prev, client) {
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

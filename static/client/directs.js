/**
 * Direct conversations: one per person, from the server's list (`conversations`), live messages,
 * their stored history (older pages, and what was missed while away) and your read position in each.
 * @module
 */
import { recount } from "./unread.js";

/** @typedef {import("./types.js").Context} Context */
/** @typedef {import("./types.js").DirectMessage} DirectMessage */
/** @typedef {import("./types.js").OutboxItem} OutboxItem */

/** A direct conversation with one person. */
export class DirectConversation {
  /** @param {string} peer */
  constructor(peer) {
    /** The other person's name. */
    this.peer = peer;
    /** @type {DirectMessage[]} */
    this.messages = [];
    /** The server's id of the conversation ("" until known), its newest seq, your read position, unread. */
    this.conv = "";
    this.lastSeq = 0;
    this.lastRead = 0;
    this.unread = 0;
    /** Nothing older than the oldest message held exists on the server. */
    this.complete = false;
    /** A `history {conv, before}` request is out. */
    this.loadingOlder = false;
    /** A `history {conv, after}` request (catching up after a reconnect) is out. */
    this.catchingUp = false;
    /**
     * Catching up waits for an older page that is out (the answers do not say which they answer):
     * then it asks after this seq (0: no wait).
     */
    this.catchUpAfter = 0;
  }

  /** The newest seq held (0: none). */
  heldSeq() {
    let max = 0;
    for (const m of this.messages) if (m.convSeq !== undefined && m.convSeq > max) max = m.convSeq;
    return max;
  }

  /** When the newest message held was sent (0: none). */
  get lastTs() {
    return this.messages.at(-1)?.ts ?? 0;
  }

  /**
   * Adds a message unless it is here already (same cid, or same sender, time and text).
   * @param {DirectMessage} m
   * @returns {boolean} whether it was new
   */
  add(m) {
    const dup = this.messages.some((x) =>
      m.convSeq !== undefined && x.convSeq !== undefined
        ? x.convSeq === m.convSeq
        : m.cid
        ? x.cid === m.cid && x.from === m.from
        : x.ts === m.ts && x.from === m.from && x.text === m.text
    );
    if (dup) {
      // The same message known before without its seq (from an ack): now it has one.
      const x = this.messages.find((x) => x.cid !== undefined && x.cid === m.cid && x.from === m.from);
      if (x && m.convSeq !== undefined) x.convSeq = m.convSeq, x.conv = m.conv;
      return false;
    }
    if (m.convSeq !== undefined && m.convSeq > this.lastSeq) this.lastSeq = m.convSeq;
    let i = this.messages.length;
    while (i > 0 && after(this.messages[i - 1], m)) i--;
    this.messages.splice(i, 0, m);
    return true;
  }
}

/** The direct conversations of one client: `client.directs`, by lower-case name. */
export class Directs {
  /** @param {Context} ctx */
  constructor(ctx) {
    this.#ctx = ctx;
  }

  /** @type {Map<string, DirectConversation>} */
  map = new Map();
  /** The server's list of direct conversations came on this connection. */
  loaded = false;
  #ctx;

  /**
   * The direct conversation with `name`, created if needed.
   * @param {string} name
   */
  get(name) {
    const key = name.toLowerCase();
    let c = this.map.get(key);
    if (!c) {
      c = new DirectConversation(name);
      this.map.set(key, c);
    }
    return c;
  }

  /**
   * Asks for the page of the conversation with `peer` older than what is held.
   * @param {string} peer
   * @returns {boolean} whether a request went out
   */
  loadOlder(peer) {
    const c = this.map.get(peer.toLowerCase());
    if (!c || c.complete || c.loadingOlder || c.catchingUp || !this.#ctx.client.live) return false;
    if (!c.conv) {
      // Not in the server's list: no message was ever stored between you.
      if (this.loaded) c.complete = true;
      return false;
    }
    c.loadingOlder = true;
    /** @type {Record<string, unknown>} */
    const msg = { type: "history", conv: c.conv };
    const oldest = c.messages.find((m) => m.convSeq !== undefined)?.convSeq;
    if (oldest !== undefined) msg.before = oldest;
    this.#ctx.takeToken();
    this.#ctx.send(msg);
    return true;
  }

  /**
   * Marks the conversation with `peer` read up to its newest message (or `seq`).
   * @param {string} peer
   * @param {number} [seq]
   */
  markRead(peer, seq) {
    const c = this.map.get(peer.toLowerCase());
    const upTo = Math.min(seq ?? c?.lastSeq ?? 0, c?.lastSeq ?? 0);
    if (!c?.conv || upTo <= c.lastRead) return false;
    this.#ctx.send({ type: "read", conv: c.conv, seq: upTo });
    c.lastRead = upTo;
    recount(c);
    this.#ctx.emit("read", { peer: c.peer });
    return true;
  }

  /** The connection closed: the list and the requests out were its. */
  closed() {
    this.loaded = false;
    for (const c of this.map.values()) {
      c.loadingOlder = c.catchingUp = false;
      c.catchUpAfter = 0;
    }
  }

  /**
   * A direct message, live (to or from you).
   * @param {Record<string, any>} m
   */
  message(m) {
    const { client } = this.#ctx;
    if (typeof m.to !== "string" || typeof m.from !== "string") return;
    const peer = client.isMe(m.from) ? m.to : m.from;
    /** @type {DirectMessage} */
    const msg = { to: m.to, from: m.from, text: m.text, ts: m.ts };
    if (m.cid !== undefined) msg.cid = m.cid;
    if (typeof m.display === "string") msg.display = m.display;
    if (typeof m.conv === "string") msg.conv = m.conv;
    if (typeof m.seq === "number") msg.convSeq = m.seq;
    const c = this.get(peer);
    if (msg.conv) c.conv = msg.conv;
    const added = c.add(msg);
    if (msg.convSeq !== undefined && client.isMe(msg.from) && msg.convSeq > c.lastRead) {
      c.lastRead = msg.convSeq;
    }
    recount(c);
    if (added) this.#ctx.emit("message", { peer: c.peer, message: msg });
    if (msg.cid && client.isMe(msg.from)) this.#ctx.outbox.settle(msg.cid);
  }

  /**
   * Shows our direct message `item` from its ack (its line may not come: a de-duplicated re-send).
   * @param {string} to
   * @param {OutboxItem} item
   * @param {Record<string, any>} m the ack
   */
  showAcked(to, item, m) {
    const me = this.#ctx.client.me;
    /** @type {DirectMessage} */
    const msg = { to: m.to ?? to, from: me, text: item.text, ts: m.ts, cid: item.cid };
    if (typeof m.conv === "string" && typeof m.seq === "number") msg.conv = m.conv, msg.convSeq = m.seq;
    const c = this.get(msg.to);
    if (msg.conv) c.conv = msg.conv;
    if (c.add(msg)) this.#ctx.emit("message", { peer: c.peer, message: msg });
  }

  /**
   * The list of direct conversations: each one's id, newest seq, read position and last message.
   * @param {Record<string, any>} m
   */
  list(m) {
    const { client } = this.#ctx;
    if (!Array.isArray(m.items)) return;
    for (const item of m.items) {
      if (typeof item?.with !== "string" || typeof item.conv !== "string") continue;
      const c = this.get(item.with);
      c.conv = item.conv;
      // Held messages, then some missed while away: ask for those (after the newest held) first.
      const held = c.heldSeq();
      if (held > 0 && typeof item.lastSeq === "number" && item.lastSeq > held) this.#catchUp(c, held);
      if (typeof item.lastSeq === "number" && item.lastSeq > c.lastSeq) c.lastSeq = item.lastSeq;
      if (typeof item.lastRead === "number" && item.lastRead > c.lastRead) c.lastRead = item.lastRead;
      recount(c);
      const last = item.last;
      if (last && typeof last.from === "string") {
        c.add(stored(item.conv, last, client.isMe(last.from) ? c.peer : client.me));
      }
    }
    this.loaded = true;
    this.#ctx.emit("conversations", {});
  }

  /**
   * Makes message `seq` of the conversation with `peer` held: true when it is already; else asks for
   * the page around it (answered `history {conv, around}`; see {@link history}).
   * @param {string} peer
   * @param {number} seq
   * @param {string} [conv] the conversation's id, when the list has not named it (an older one)
   */
  around(peer, seq, conv) {
    const c = this.get(peer);
    if (!c.conv && conv) c.conv = conv;
    if (c.messages.some((m) => m.convSeq === seq)) return true;
    if (c.conv && this.#ctx.client.live && this.#ctx.takeToken()) {
      this.#ctx.send({ type: "history", conv: c.conv, around: seq });
    }
    return false;
  }

  /**
   * A page of a conversation's history: older messages, those missed while away, or the page around
   * a search result.
   * @param {Record<string, any>} m
   */
  history(m) {
    const { client } = this.#ctx;
    const c = [...this.map.values()].find((x) => x.conv === m.conv);
    if (!c || !Array.isArray(m.messages)) return;
    for (const x of m.messages) {
      c.add(stored(m.conv, x, client.isMe(x.from) ? c.peer : client.me));
    }
    if (typeof m.lastSeq === "number" && m.lastSeq > c.lastSeq) c.lastSeq = m.lastSeq;
    recount(c);
    const last = m.messages.at(-1)?.seq;
    if (typeof m.around === "number") {
      // It may lie apart from what is held: page forward until it meets it, so there is no hole.
      const oldest = c.messages.find((x) => x.convSeq !== undefined)?.convSeq;
      if (m.complete && m.messages.length > 0 && oldest === m.messages[0].seq) c.complete = true;
      if (m.more && typeof last === "number" && !this.#meets(c, last)) this.#catchUp(c, last);
      this.#ctx.emit("history", { peer: c.peer, around: m.around });
      return;
    }
    // An answer to `after` (catching up) or to `before` (older history).
    if (c.catchingUp) {
      c.catchingUp = false;
      if (!m.complete && typeof last === "number" && !this.#meets(c, last)) this.#catchUp(c, last);
    } else {
      c.loadingOlder = false;
      if (m.complete) c.complete = true;
      if (c.catchUpAfter) this.#catchUp(c, c.catchUpAfter), c.catchUpAfter = 0;
    }
    this.#ctx.emit("history", { peer: c.peer });
  }

  /**
   * Your read position in a conversation moved (maybe on another device).
   * @param {Record<string, any>} m a `read` with a numeric `seq`
   */
  read(m) {
    const c = [...this.map.values()].find((x) => x.conv === m.conv);
    if (!c) return;
    if (m.seq > c.lastRead) c.lastRead = m.seq;
    recount(c);
    this.#ctx.emit("read", { peer: c.peer });
  }

  /**
   * Someone was renamed: the conversation with them goes under the new name (unless there is one).
   * @param {string} old
   * @param {string} name
   */
  renamed(old, name) {
    const c = this.map.get(old.toLowerCase());
    if (c && !this.map.has(name.toLowerCase())) {
      this.map.delete(old.toLowerCase());
      c.peer = name;
      this.map.set(name.toLowerCase(), c);
    }
  }

  /**
   * Whether the message after seq `last` is held already (paging forward has met what was held).
   * @param {DirectConversation} c
   * @param {number} last
   */
  #meets(c, last) {
    return c.messages.some((x) => x.convSeq === last + 1);
  }

  /**
   * Asks for the messages of `c` newer than `after` (missed while disconnected, or between a page
   * around a search result and what is held).
   * @param {DirectConversation} c
   * @param {number} after
   */
  #catchUp(c, after) {
    if (c.catchingUp || !c.conv) return;
    if (c.loadingOlder) return void (c.catchUpAfter = after);
    c.catchingUp = true;
    this.#ctx.takeToken();
    this.#ctx.send({ type: "history", conv: c.conv, after });
  }
}

/**
 * Whether `x` goes after `m`: by time, and within one millisecond by seq (a page of older messages
 * then lands before the list's last message, which came first).
 * @param {DirectMessage} x
 * @param {DirectMessage} m
 */
function after(x, m) {
  if (x.ts !== m.ts) return x.ts > m.ts;
  return x.convSeq !== undefined && m.convSeq !== undefined && x.convSeq > m.convSeq;
}

/**
 * A stored message of conversation `conv` as the server sends it (a conversation list's `last`, a
 * history page's message), as the conversation holds it; `to`: the other person's name.
 * @param {string} conv
 * @param {Record<string, any>} x
 * @param {string} to
 */
function stored(conv, x, to) {
  return {
    conv,
    convSeq: x.seq,
    to,
    from: x.from,
    text: x.text,
    ts: x.ts,
    ...(x.cid === undefined ? {} : { cid: x.cid }),
    ...(typeof x.display === "string" ? { display: x.display } : {}),
  };
}

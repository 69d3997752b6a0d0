/**
 * Rooms: joining (a rejoin resumes with `join {since, epoch, rev}`), leaving, the room's lines
 * (`joined`, messages, history, presence, deletes and edits, reactions, read positions), and what you
 * send about a room (reactions, history pages, read marks, frames that need you in the room).
 * @module
 */
import { normalizeRoom } from "./names.js";
import { applyChange, RoomState } from "./room-state.js";
import { restoreRoom } from "./snapshot.js";
import { recount } from "./unread.js";
import { DEFAULT_RULES } from "../shared/rooms.js";

/** @typedef {import("./types.js").Context} Context */
/** @typedef {import("./types.js").OutboxItem} OutboxItem */
/** @typedef {import("./types.js").RoomMessage} RoomMessage */

/** The rooms of one client: `client.rooms`, by canonical name. */
export class Rooms {
  /**
   * @param {Context} ctx
   * @param {string[]} [rooms] rooms to be in when none are stored
   * @param {Map<string, unknown>} [kept] what this device kept of the rooms' history, by room: a room
   *   restored from it shows its messages before any connection and resumes from them
   */
  constructor(ctx, rooms = ["lobby"], kept = new Map()) {
    this.#ctx = ctx;
    const stored = ctx.persisted.load("rooms");
    for (const r of Array.isArray(stored) ? stored : rooms) {
      const n = typeof r === "string" ? normalizeRoom(r) : undefined;
      if (n) this.map.set(n, restoreRoom(n, kept.get(n)) ?? new RoomState(n));
    }
  }

  /** @type {Map<string, RoomState>} */
  map = new Map();
  #ctx;

  /**
   * Joins `room` and remembers it (see {@link import("./client.js").ChatClient.join}).
   * @param {string} room
   * @param {{ resume?: RoomState }} opts
   */
  join(room, opts) {
    const name = normalizeRoom(room);
    if (!name) return undefined;
    if (!this.map.has(name)) {
      const kept = opts.resume?.name === name ? opts.resume : undefined;
      if (kept) {
        kept.joined = false;
        kept.loadingOlder = false;
        kept.typing.clear();
      }
      const r = kept ?? new RoomState(name);
      this.map.set(name, r);
      this.#save();
      this.#ctx.emit("rooms", {});
      if (this.#ctx.connection.welcomed) this.sendJoin(r);
    }
    return name;
  }

  /**
   * Leaves `room`; what was waiting in the outbox for it is dropped.
   * @param {string} room
   */
  leave(room) {
    const r = this.map.get(room);
    if (!r) return undefined;
    this.map.delete(room);
    this.#save();
    if (r.joined && this.#ctx.connection.ws?.readyState === 1) this.#ctx.send({ type: "leave", room });
    this.#ctx.outbox.dropRoom(room);
    this.#ctx.emit("rooms", {});
    return r;
  }

  /**
   * Sends `join` for `r`: a resume from what is held once it was joined.
   * @param {RoomState} r
   */
  sendJoin(r) {
    /** @type {Record<string, unknown>} */
    const msg = { type: "join", room: r.name };
    if (r.synced) {
      msg.since = r.lastSeq;
      if (r.epoch) msg.epoch = r.epoch;
      msg.rev = r.rev;
    }
    this.#ctx.takeToken();
    this.#ctx.send(msg);
  }

  /**
   * Sends a frame about a room you are in, or says why it cannot go.
   * @param {Record<string, unknown> & { room: string }} msg
   * @throws {RangeError} when not connected or not in the room
   */
  frame(msg) {
    if (!this.#ctx.client.live) throw new RangeError("Not connected: try again when live");
    if (!this.map.get(msg.room)?.joined) throw new RangeError(`You are not in #${msg.room}`);
    this.#ctx.takeToken();
    this.#ctx.send(msg);
  }

  /**
   * Sends a reaction now, if it can go (see {@link import("./client.js").ChatClient.react}).
   * @param {string} room
   * @param {number} seq
   * @param {string} emoji
   * @param {boolean} [on]
   */
  react(room, seq, emoji, on) {
    const r = this.map.get(normalizeRoom(room) ?? "");
    if (!r?.joined || !this.#ctx.client.live || !this.#ctx.takeToken()) return false;
    /** @type {Record<string, unknown>} */
    const msg = { type: "react", room: r.name, seq, emoji };
    if (on !== undefined) msg.on = on;
    this.#ctx.send(msg);
    return true;
  }

  /**
   * Asks for the page of messages older than the oldest one held.
   * @param {string} room
   */
  loadOlder(room) {
    const r = this.map.get(room);
    if (!r || r.complete || r.loadingOlder || !r.joined || !this.#ctx.client.live) return false;
    r.loadingOlder = true;
    /** @type {Record<string, unknown>} */
    const msg = { type: "history", room };
    if (r.messages.length) msg.before = r.messages[0].seq;
    this.#ctx.takeToken();
    this.#ctx.send(msg);
    return true;
  }

  /**
   * Makes message `seq` of `room` held: true when it is already; else asks for the page around it
   * (answered `history {around}`; see {@link history}).
   * @param {string} room
   * @param {number} seq
   */
  around(room, seq) {
    const r = this.map.get(room);
    if (!r?.joined) return false;
    if (r.find(seq)) return true;
    if (this.#ctx.client.live && this.#ctx.takeToken()) {
      this.#ctx.send({ type: "history", room, around: seq });
    }
    return false;
  }

  /**
   * Marks `room` read up to its newest message (or `seq`); false when there is nothing to mark.
   * @param {string} room
   * @param {number} [seq]
   */
  markRead(room, seq) {
    // Taken as read here at once (the badge goes now, and the same seq is not sent twice); the
    // server's `read` line confirms it, and a later `joined` corrects it.
    const r = this.map.get(room);
    const upTo = Math.min(seq ?? r?.lastSeq ?? 0, r?.lastSeq ?? 0);
    if (!r?.joined || upTo <= r.lastRead) return false;
    this.#ctx.send({ type: "read", room: r.name, seq: upTo });
    r.lastRead = upTo;
    this.#recount(r);
    this.#ctx.emit("read", { room: r.name });
    return true;
  }

  /** The connection closed: no room is joined, nobody types. */
  closed() {
    for (const r of this.map.values()) {
      r.joined = false;
      r.loadingOlder = false;
      if (r.typing.size) {
        r.typing.clear();
        this.#ctx.emit("typing", { room: r.name });
      }
    }
  }

  /**
   * `joined`: the room's members, the messages since what we hold (or the newest page), the changes
   * of held messages, rules, your standing and read position.
   * @param {Record<string, any>} m
   */
  joined(m) {
    let r = this.map.get(m.room);
    if (!r) {
      // Joined by the server on our behalf (e.g. `?room=`): keep it.
      r = new RoomState(m.room);
      this.map.set(m.room, r);
      this.#save();
      this.#ctx.emit("rooms", {});
    }
    /** @type {RoomMessage[]} */
    const msgs = Array.isArray(m.messages) ? m.messages : [];
    r.members = new Set(m.members ?? []);
    // A big room's `members` is its first page: the count says how many there are.
    r.memberCount = typeof m.memberCount === "number" ? m.memberCount : undefined;
    r.membersNext = typeof m.next === "string" ? m.next : undefined;
    r.membersPrefix = "";
    r.present = new Set(); // the partners here come as presence right after
    // A resume keeps what we have, unless the server's history no longer lines up with it
    // (more missed than it returns, or a store that started over).
    // More changes of held messages than one answer tells: what we hold is reloaded, like a gap.
    const reset = !r.synced || m.truncated || m.changesTruncated === true || m.lastSeq < r.lastSeq ||
      (typeof m.epoch === "string" && r.epoch !== "" && m.epoch !== r.epoch);
    if (reset) {
      r.messages = [];
      r.complete = !m.truncated && m.changesTruncated !== true;
      r.moderation = []; // they sat between messages that are gone
    }
    const added = r.add(msgs);
    // Held messages deleted or edited while we were away, in their form now.
    const changed = [];
    for (const c of Array.isArray(m.changes) && !reset ? m.changes : []) {
      if (c && typeof c.seq === "number") changed.push(...applyChange(r, c.seq, c));
    }
    r.lastSeq = m.lastSeq;
    r.rev = typeof m.rev === "number" ? m.rev : 0;
    if (typeof m.lastRead === "number") r.lastRead = m.lastRead;
    this.#recount(r, typeof m.mentions === "number" ? m.mentions : undefined);
    if (typeof m.epoch === "string") r.epoch = m.epoch;
    r.synced = true;
    r.joined = true;
    r.removed = undefined;
    // Messages shown from what this device kept: their reactions now come with one history page.
    const held = r.messages.filter((x) => !added.includes(x)).length;
    if (r.kept && !reset && held > 0) {
      const before = added[0]?.seq ?? r.lastSeq + 1;
      this.#ctx.send({
        type: "history",
        room: r.name,
        before,
        limit: Math.min(held, this.#ctx.client.limits.historyPage),
      });
    }
    r.kept = false;
    if (m.rules && typeof m.rules === "object") r.rules = { ...DEFAULT_RULES, ...m.rules };
    const you = m.you && typeof m.you === "object" ? m.you : {};
    r.role = typeof you.role === "string" ? you.role : "";
    r.mutedUntil = typeof you.muted === "number" ? you.muted : undefined;
    for (const msg of added) r.typing.delete(msg.from);
    this.#ctx.outbox.settleMine(added);
    this.#ctx.emit("joined", { room: r.name, added, reset });
    for (const message of changed) this.#ctx.emit("changed", { room: r.name, message });
    // The held messages were dropped: the newest page comes back in its current form.
    if (m.changesTruncated === true) this.loadOlder(r.name);
    this.#ctx.emit("members", { room: r.name });
    this.#ctx.emit("rules", { room: r.name });
    this.#ctx.emit("standing", { room: r.name });
    this.#ctx.outbox.pump();
  }

  /** @param {Record<string, any>} m */
  left(m) {
    const r = this.map.get(m.room);
    if (r) r.joined = false;
  }

  /**
   * A message of a room.
   * @param {Record<string, any>} m
   */
  message(m) {
    const { client } = this.#ctx;
    const r = this.map.get(m.room);
    if (!r) return;
    /** @type {RoomMessage} */
    const msg = { room: m.room, seq: m.seq, from: m.from, text: m.text, ts: m.ts };
    if (m.cid !== undefined) msg.cid = m.cid;
    if (typeof m.display === "string") msg.display = m.display;
    if (m.replyTo && typeof m.replyTo === "object") msg.replyTo = m.replyTo;
    if (Array.isArray(m.mentions)) msg.mentions = m.mentions;
    const added = r.add([msg]);
    if (!added.length) this.#completeHeld(r, msg);
    if (m.seq > r.lastSeq) r.lastSeq = m.seq;
    const mine = client.isMe(m.from);
    // Your own message reads the room up to it (the server does the same), and its mentions count again.
    if (mine && m.seq > r.lastRead) r.lastRead = m.seq;
    const mentioned = added.length > 0 && m.seq > r.lastRead && client.mentionsMe(msg);
    this.#recount(r, mine ? undefined : r.mentions + (mentioned ? 1 : 0));
    if (r.typing.delete(m.from)) this.#ctx.emit("typing", { room: r.name });
    if (mine) this.sentToRoom(r.name, m.cid);
    this.#ctx.outbox.settleMine(added);
    if (added.length) this.#ctx.emit("message", { room: r.name, message: msg });
  }

  /**
   * Shows our message `item` from its ack when its line has not come (a de-duplicated re-send).
   * @param {string} room
   * @param {OutboxItem} item
   * @param {Record<string, any>} m the ack
   */
  showAcked(room, item, m) {
    const r = this.map.get(room);
    const msg = { room, seq: m.seq, from: this.#ctx.client.me, text: item.text, ts: m.ts, cid: item.cid };
    if (r && (r.messages.length === 0 || m.seq >= r.messages[0].seq || r.complete)) {
      const added = r.add([msg]);
      if (added.length) this.#ctx.emit("message", { room: r.name, message: msg });
    }
  }

  /**
   * A message line for a seq we already hold: ours, shown from its ack, which can come first (on
   * Redis the line travels through pub/sub). The ack has no quote or mentions; the line has.
   * @param {RoomState} r
   * @param {RoomMessage} line
   */
  #completeHeld(r, line) {
    const held = r.find(line.seq);
    if (!held || held.from !== line.from) return;
    let changed = false;
    if (line.replyTo && !held.replyTo) held.replyTo = line.replyTo, changed = true;
    if (line.mentions && !held.mentions) held.mentions = line.mentions, changed = true;
    if (changed) this.#ctx.emit("changed", { room: r.name, message: held });
  }

  /**
   * Our message reached the room (its line or its ack): slow mode's turn is taken, and typing starts over.
   * @param {string} room
   * @param {unknown} cid
   */
  sentToRoom(room, cid) {
    const r = this.map.get(room);
    if (r) this.#ctx.moderation.tookTurn(r);
    this.#ctx.typing.cleared(room, this.#ctx.outbox.find(cid)?.createdAt);
  }

  /**
   * `count`: a big room's number of people changed.
   * @param {Record<string, any>} m
   */
  count(m) {
    const r = this.map.get(m.room);
    if (!r || typeof m.members !== "number") return;
    r.memberCount = m.members;
    this.#ctx.emit("members", { room: r.name });
  }

  /**
   * Asks for a page of `room`'s members: after `after` (more of the same list), or a new list of
   * those whose name or display name starts with `prefix`.
   * @param {string} room
   * @param {{ after?: string, prefix?: string }} [query]
   */
  askMembers(room, query = {}) {
    const prefix = query.prefix?.trim() ?? "";
    this.frame({
      type: "members",
      room,
      ...(query.after !== undefined && { after: query.after }),
      ...(prefix !== "" && { prefix }),
    });
  }

  /**
   * `members`: a page of a room's people. A first page (no `after`) replaces what is shown; a later
   * one adds to it; an answer to a search the user has typed past since is dropped.
   * @param {Record<string, any>} m
   */
  membersPage(m) {
    const r = this.map.get(m.room);
    if (!r || !Array.isArray(m.names)) return;
    const prefix = typeof m.prefix === "string" ? m.prefix : "";
    if (typeof m.after === "string") {
      if (prefix !== r.membersPrefix) return;
      for (const name of m.names) r.members.add(name);
    } else {
      r.members = new Set(m.names);
      r.membersPrefix = prefix;
    }
    r.membersNext = typeof m.next === "string" ? m.next : undefined;
    if (typeof m.count === "number" && r.memberCount !== undefined) r.memberCount = m.count;
    this.#ctx.emit("members", { room: r.name });
  }

  /** @param {Record<string, any>} m */
  presence(m) {
    const r = this.map.get(m.room);
    if (!r || typeof m.name !== "string") return;
    const big = r.memberCount !== undefined;
    if (m.event === "join") {
      if (big) r.present.add(m.name);
      // A big room shows its loaded pages: someone arriving joins them only where a page would have them.
      if (!big || onLoadedPages(r, m.name, typeof m.display === "string" ? m.display : undefined)) {
        r.members.add(m.name);
      }
    } else if (m.event === "leave") {
      r.members.delete(m.name);
      r.present.delete(m.name);
      r.typing.delete(m.name);
    }
    this.#ctx.emit("members", { room: r.name });
  }

  /** @param {Record<string, any>} m */
  history(m) {
    const r = this.map.get(m.room);
    if (!r) return;
    const page = Array.isArray(m.messages) ? m.messages : [];
    this.#refreshReactions(r, page);
    if (typeof m.around !== "number" && typeof m.after !== "number") {
      r.loadingOlder = false;
      const added = r.add(page);
      if (m.complete) r.complete = true;
      this.#ctx.emit("history", { room: r.name, added });
      return;
    }
    // A page around a search result, or forward from it: it may lie apart from what is held.
    const added = r.add(page);
    if (m.complete && page.length > 0 && r.messages[0].seq === page[0].seq) r.complete = true;
    const last = page.at(-1)?.seq;
    if (m.more && last !== undefined) {
      const i = r.messages.findIndex((x) => x.seq === last);
      const next = r.messages[i + 1];
      // Pages forward until it meets what was held, so the thread has no hole.
      if (next === undefined || next.seq > last + 1) {
        this.#ctx.send({ type: "history", room: r.name, after: last });
      }
    }
    /** @type {{ room: string, added: RoomMessage[], around?: number }} */
    const detail = { room: r.name, added };
    if (typeof m.around === "number") detail.around = m.around;
    this.#ctx.emit("history", detail);
  }

  /**
   * `deleted` and `edited`: the message changes in place (a tombstone keeps its seq).
   * @param {Record<string, any>} m
   */
  changed(m) {
    const r = this.map.get(m.room);
    if (!r) return;
    // Counted only in order, and only for a seq we have had (an older one: history brings it
    // changed). A server sends a change after its message; one of an older version could send it
    // first (on another path): that message may then come with its old text, and the next resume
    // must still list the change.
    if (typeof m.rev === "number" && m.rev <= r.rev) return; // in joined already (it landed during the join)
    if (typeof m.rev === "number" && m.rev === r.rev + 1 && m.seq <= r.lastSeq) r.rev = m.rev;
    const change = m.type === "deleted" ? { deleted: true } : { text: m.text, editedTs: m.editedTs };
    if (typeof m.seq !== "number") return;
    for (const msg of applyChange(r, m.seq, change)) {
      this.#ctx.emit("changed", { room: m.room, message: msg });
    }
  }

  /**
   * A history page is the server's word on its messages now: those held here take their reactions
   * (counts and ours) from it, as a kept copy's may be old.
   * @param {RoomState} r
   * @param {Record<string, any>[]} page
   */
  #refreshReactions(r, page) {
    for (const p of page) {
      const held = typeof p?.seq === "number" ? r.find(p.seq) : undefined;
      if (!held || held === p) continue;
      const before = JSON.stringify([held.reactions ?? null, held.mine ?? null]);
      if (before === JSON.stringify([p.reactions ?? null, p.mine ?? null])) continue;
      if (p.reactions) held.reactions = p.reactions;
      else delete held.reactions;
      if (p.mine) held.mine = p.mine;
      else delete held.mine;
      this.#ctx.emit("reactions", { room: r.name, seq: held.seq, message: held });
    }
  }

  /**
   * A message's reactions changed: its counts, and ours when the change was ours.
   * @param {Record<string, any>} m
   */
  reactions(m) {
    const r = this.map.get(m.room);
    const msg = r?.messages.find((x) => x.seq === m.seq);
    if (!r || !msg || !m.counts || typeof m.counts !== "object") return;
    if (Object.keys(m.counts).length > 0) msg.reactions = m.counts;
    else delete msg.reactions;
    if (this.#ctx.client.isMe(m.by)) {
      const mine = (msg.mine ?? []).filter((e) => e !== m.emoji);
      if (m.on) mine.push(m.emoji);
      if (mine.length > 0) msg.mine = mine;
      else delete msg.mine;
    }
    this.#ctx.emit("reactions", { room: r.name, seq: m.seq, message: msg });
  }

  /**
   * Your read position in a room moved (maybe on another device).
   * @param {Record<string, any>} m a `read` with a numeric `seq`
   */
  read(m) {
    const r = this.map.get(m.room);
    if (!r) return;
    if (m.seq > r.lastRead) r.lastRead = m.seq;
    this.#recount(r);
    this.#ctx.emit("read", { room: r.name });
  }

  /**
   * Someone was renamed: members and typers follow.
   * @param {string} old
   * @param {string} name
   */
  renamed(old, name) {
    for (const r of this.map.values()) {
      if (r.present.delete(old)) r.present.add(name);
      if (r.members.delete(old)) {
        r.members.add(name);
        this.#ctx.emit("members", { room: r.name });
      }
      if (r.typing.delete(old)) this.#ctx.emit("typing", { room: r.name });
    }
  }

  /**
   * @param {RoomState} r
   * @param {number} [told]
   */
  #recount(r, told) {
    recount(r, (m) => this.#ctx.client.mentionsMe(m), told);
  }

  #save() {
    this.#ctx.persisted.save("rooms", [...this.map.keys()]);
  }
}

/**
 * Whether big room `r`'s loaded member pages (code-unit order up to their cursor, filtered by their
 * prefix) would hold `name`.
 * @param {RoomState} r
 * @param {string} name
 * @param {string} [display]
 */
function onLoadedPages(r, name, display) {
  const prefix = r.membersPrefix.toLowerCase();
  const matches = prefix === "" || name.toLowerCase().startsWith(prefix) ||
    (display !== undefined && display.toLowerCase().startsWith(prefix));
  return matches && (r.membersNext === undefined || name <= r.membersNext);
}

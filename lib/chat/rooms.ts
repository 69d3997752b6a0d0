/**
 * Rooms: join (with its access check), resume (`join {since, epoch, rev}`), leave, history pages, and
 * a room whose history started over. A join takes the member in at once and answers `joined` when the
 * history is read: meanwhile the room's lines for this member wait in the hub, and after the answer
 * only messages newer than it follow.
 * @module
 */
import { displaysOf } from "../display_names.ts";
import type { ChatMessage } from "../domain.ts";
import { type Role, roomAllowedByClaim } from "../identity.ts";
import { forbidden } from "../moderation.ts";
import { ProtocolError } from "../protocol.ts";
import { encode, type ServerMessage, wireMessage } from "../server_messages.ts";
import type { AnswerBudget } from "./answers.ts";
import type { Conn } from "./connections.ts";
import { accessOf, type ChatContext, mustBeMember, nameOf } from "./context.ts";
import { engineError } from "./errors.ts";
import type { Presence } from "./presence.ts";
import { pageOf } from "../sharing.ts";
import type { Reactions } from "./reactions.ts";
import type { ReadState } from "./read_state.ts";

/** What `joined` holds besides the room's rules and the member's standing. */
interface JoinRead {
  messages: ChatMessage[];
  lastSeq: number;
  truncated: boolean;
  epoch: string;
  members: string[];
  /** The members' display names, by name (only those who have one). */
  displays?: Record<string, string>;
  /** A big room: how many people are in it (`members` is its first page), and the next page's cursor. */
  memberCount?: number;
  next?: string;
  changed?: { rev: number; messages?: ChatMessage[]; truncated?: boolean };
  lastRead: number;
  mentions?: number;
}

/** Rooms and their members' answers. */
export class Rooms {
  readonly #ctx: ChatContext;
  readonly #budget: AnswerBudget;
  readonly #presence: Presence;
  readonly #reactions: Reactions;
  readonly #reads: ReadState;
  /** Handles one frame that waited for a join check. */
  readonly #frame: (conn: Conn, data: string) => void;

  constructor(
    ctx: ChatContext,
    parts: {
      budget: AnswerBudget;
      presence: Presence;
      reactions: Reactions;
      reads: ReadState;
      frame: (conn: Conn, data: string) => void;
    },
  ) {
    this.#ctx = ctx;
    this.#budget = parts.budget;
    this.#presence = parts.presence;
    this.#reactions = parts.reactions;
    this.#reads = parts.reads;
    this.#frame = parts.frame;
  }

  /** `join`: checked against the room's rules first (frames that come meanwhile wait), then entered. */
  join(conn: Conn, room: string, since?: number, epoch?: string, rev?: number): void {
    const { hub, conns, moderation, now } = this.#ctx;
    // No hint of why (a private room or a token's limit): the same sentence either way.
    if (!roomAllowedByClaim(conn.identity!, room)) throw forbidden(room);
    // Held from the check until `joined` is queued (or the join fails), so joins sent together count.
    if (hub.isMember(conn.peer.id, room)) {
      return void this.#budget.during(conn, () => this.#enter(conn, room, since, epoch, rev));
    }
    const release = this.#budget.reserve(conn);
    // Refused before any room is touched: no presence, no history, no hint. Frames that come
    // meanwhile wait, so the client may send to the room right after its join.
    const id = conn.peer.id;
    conn.queue = [];
    accessOf(this.#ctx, conn, room).then(
      (acc) => {
        let entered: Promise<void> | undefined;
        if (conns.alive(conn)) {
          conns.run(id, () => {
            moderation.admit(conn.identity!, room, acc, now());
            entered = this.#enter(conn, room, since, epoch, rev);
          }, { room });
        }
        (entered ?? Promise.resolve()).finally(release);
      },
      (e) => {
        release();
        if (conns.alive(conn)) conns.answer(conn.peer, engineError({ reading: room }, e), { room });
      },
    ).finally(() => this.drain(conn));
  }

  /**
   * Handles the frames that waited (for a join check, or for the name at connect), in order, until
   * another check starts.
   */
  drain(conn: Conn): void {
    const waiting = conn.queue ?? [];
    conn.queue = undefined;
    const checking = () => (conn.queue as string[] | undefined) !== undefined;
    while (waiting.length > 0 && !checking() && this.#ctx.conns.alive(conn)) {
      const data = waiting.shift()!;
      this.#ctx.conns.run(conn.peer.id, () => this.#frame(conn, data));
    }
    // A join among them started another check: the rest waits for that one.
    if (checking()) conn.queue!.unshift(...waiting);
  }

  /** Enters `room`; settles once `joined` is queued or the join has failed. */
  #enter(conn: Conn, room: string, since?: number, epoch?: string, rev?: number): Promise<void> {
    const { hub, conns, moderation, now, log } = this.#ctx;
    const { added, firstTab } = hub.join(conn.peer.id, room, true);
    conn.current = room;
    if (!added) return Promise.resolve(void hub.settle(conn.peer.id, room, hub.knownSeq(conn.peer.id, room)));
    const id = conn.peer.id;
    const arriving = firstTab
      ? { name: nameOf(this.#ctx, conn), display: hub.displayOf(conn.key) }
      : undefined;
    return this.#readJoin(room, since, epoch, arriving, conn.key, rev).then(
      (
        {
          messages,
          lastSeq,
          truncated,
          epoch,
          members,
          displays,
          memberCount,
          next,
          changed,
          lastRead,
          mentions,
        },
      ) => {
        if (!conns.alive(conn) || !hub.isMember(id, room)) return;
        const you: { role: Role; muted?: number } = { role: conn.identity!.role };
        const muted = moderation.mutedUntil(room, conn.identity!.uid, now());
        if (muted !== undefined) you.muted = muted;
        const joined: Extract<ServerMessage, { type: "joined" }> = {
          type: "joined",
          room,
          members,
          messages: messages.map(wireMessage),
          lastSeq,
          truncated,
          epoch,
          rules: moderation.rules(room),
          you,
          lastRead,
          unread: Math.max(0, lastSeq - lastRead),
        };
        if (mentions !== undefined) joined.mentions = mentions;
        if (displays !== undefined) joined.displays = displays;
        if (memberCount !== undefined) {
          joined.memberCount = memberCount;
          if (next !== undefined) joined.next = next;
          // Whoever is on the first page is whom this member is told about, until it asks for another.
          hub.watch(id, room, members);
        }
        if (changed) {
          joined.rev = changed.rev;
          if (changed.messages) joined.changes = changed.messages.map(wireMessage);
          if (changed.truncated) joined.changesTruncated = true;
        }
        conn.peer.send(encode(joined));
        this.#presence.elsewhere(hub.settle(id, room, lastSeq));
      },
      (e) => {
        if (!conns.alive(conn)) return;
        log.error("history read failed", { room, error: (e as Error).message });
        this.left(conn, room);
        if (conn.current === room) conn.current = hub.roomsOf(id).at(-1) ?? "";
        conns.answer(conn.peer, engineError({ reading: room }, e), { room });
      },
    );
  }

  /**
   * What `joined` holds: the missed messages after `since`, or the last `historyOnJoin`. A `since`
   * of another epoch means nothing here: that history is gone, and the answer says `truncated`.
   * With `rev` (and a `since` of this epoch), also the held messages (seq <= since) changed since.
   */
  async #readJoin(
    room: string,
    since: number | undefined,
    epoch: string | undefined,
    arriving: { name: string; display?: string } | undefined,
    key: string,
    rev: number | undefined,
  ): Promise<JoinRead> {
    const { engine, sharing, cfg, hub } = this.#ctx;
    let messages: ChatMessage[];
    let truncated: boolean;
    let lastSeq: number;
    // Live messages first, then the read: whatever the read misses is on its way (the hub holds it).
    await sharing.watch(room);
    if (arriving !== undefined) await sharing.presence(room, arriving.name, true, arriving.display);
    // The rev is read before the messages: a change after it reaches this member as a line (held
    // like the live messages), with a higher rev; one before it is in the answer.
    const resuming = since !== undefined && rev !== undefined;
    const cap = cfg.resumeCap;
    const revPage = await engine.changes(room, resuming ? since : 0, rev ?? 0, resuming ? cap + 1 : 0);
    let page = since === undefined ? undefined : await engine.after(room, since, cap + 1);
    const lost = page !== undefined && epoch !== undefined && epoch !== page.epoch;
    if (page && !lost) {
      lastSeq = page.lastSeq;
      // A page holds nothing newer than its lastSeq (the engine's promise).
      messages = page.messages;
      truncated = messages.length > cap;
      if (truncated) messages = (await engine.before(room, lastSeq + 1, cap)).messages;
    } else {
      const n = cfg.historyOnJoin;
      page = await engine.before(room, Number.MAX_SAFE_INTEGER, n + 1);
      lastSeq = page.lastSeq;
      messages = n === 0 ? [] : page.messages;
      truncated = lost || messages.length > n;
      if (messages.length > n) messages = messages.slice(-n);
    }
    // A big room answers a count and a page: the whole list would make filling it quadratic. One
    // process knows (the hub counts); across processes the count is shared, and the hub follows it
    // from the first join here on (each count line reads it again): one read a room, not one a join.
    if (sharing.spansProcesses && !hub.followsCount(room)) hub.counted(room, await sharing.memberCount(room));
    const big = hub.isBig(room);
    // Independent reads, together: on Redis each is a round trip a join would otherwise wait for in turn.
    // A room with no messages has nothing to have read or be mentioned in: no read-state reads for it
    // (most joins of a server filling up after a start are such).
    const empty = lastSeq === 0;
    const [reacted, who, [lastRead]] = await Promise.all([
      this.#reactions.attach(room, messages, key),
      big
        ? sharing.memberPage(room, { limit: cfg.membersPage })
        : Promise.all([sharing.members(room), sharing.displays(room)]).then(([members, shown]) => ({
          names: members,
          displays: displaysOf(members, shown),
          count: undefined,
          next: undefined,
        })),
      empty ? [0] : engine.readPositions(key, [room]),
    ]);
    const { names: members, displays } = who;
    messages = reacted;
    const fitted = this.#budget.newest(messages);
    if (fitted.length < messages.length) messages = fitted, truncated = true;
    const mentions = empty
      ? undefined
      : (await this.#reads.mentionCounts(key, [{ room, after: lastRead }]))[room];
    const base: Omit<JoinRead, "changed"> = {
      messages,
      lastSeq,
      truncated,
      epoch: page.epoch,
      members,
      displays,
      lastRead,
      mentions,
    };
    if (big) base.memberCount = who.count, base.next = who.next;
    // A rev of another history (lost between the two reads) would be too high: 0 is always safe.
    const changed: JoinRead["changed"] = { rev: revPage.epoch === page.epoch ? revPage.rev : 0 };
    if (resuming && !lost && revPage.epoch === page.epoch) {
      // More than resumeCap, or more than fits beside the messages: the client reloads instead.
      const all = [...messages, ...revPage.messages];
      const fits = this.#budget.newest(all).length === all.length;
      if (revPage.messages.length > cap || !fits) changed.messages = [], changed.truncated = true;
      else changed.messages = revPage.messages;
    }
    return { ...base, changed };
  }

  /** `leave`: out of the room, answered `left`. */
  leave(conn: Conn, room: string): void {
    if (!this.drop(conn, room)) throw new ProtocolError("not_member", `You are not in room "${room}"`);
  }

  /** Takes one connection out of `room` and tells it why (`kicked`, `banned`, `forbidden`). */
  remove(conn: Conn, room: string, why: "kicked" | "banned" | "forbidden"): void {
    this.left(conn, room);
    this.#moveCurrent(conn, room);
    conn.peer.send(encode({ type: "kicked", room, reason: why }));
  }

  /**
   * Out of `room`, answered `left`: a `leave`, or a room a refreshed token no longer allows. Returns
   * whether the connection was in it.
   */
  drop(conn: Conn, room: string): boolean {
    if (!this.left(conn, room)) return false;
    this.#moveCurrent(conn, room);
    conn.peer.send(encode({ type: "left", room }));
    return true;
  }

  /** Raw text goes to the last room joined: after leaving `room`, the one joined before. */
  #moveCurrent(conn: Conn, room: string): void {
    if (conn.current === room) conn.current = this.#ctx.hub.roomsOf(conn.peer.id).at(-1) ?? "";
  }

  /**
   * Connection `conn` leaves `room`; sharing hears when it was the person's last tab or the room's last
   * member here. Returns whether it was in the room.
   */
  left(conn: Conn, room: string): boolean {
    const { hub, sharing, moderation } = this.#ctx;
    const { removed, deleted, lastTab } = hub.leave(conn.peer.id, room);
    if (lastTab) this.#presence.present(room, nameOf(this.#ctx, conn), false);
    if (deleted) sharing.unwatch(room), moderation.forget(room);
    return removed;
  }

  /** `history {room}`: a page older than `before`, never newer than what the member has live. */
  history(conn: Conn, room: string, before?: number, limit?: number): void {
    const { hub, engine, conns, cfg, log } = this.#ctx;
    mustBeMember(this.#ctx, conn, room, "read the history of");
    const n = Math.min(limit ?? cfg.historyPage, cfg.historyPage);
    // Nothing newer than what this member has: that is on its way live.
    const id = conn.peer.id;
    const end = Math.min(before ?? Infinity, hub.knownSeq(id, room) + 1);
    const here = () => conns.alive(conn) && hub.isMember(id, room);
    // n >= 1 (the parser refuses limit 0), so an answer with fewer than n + 1 rows really is the start.
    this.#budget.during(conn, () =>
      engine.before(room, end, n + 1).then((page) => {
        if (!here()) return;
        let messages = page.messages;
        let complete = messages.length <= n;
        if (!complete) messages = messages.slice(1);
        return this.#reactions.attach(room, messages, conn.key).then((read) => {
          if (!here()) return;
          const messages = this.#budget.newest(read);
          if (messages.length < read.length) complete = false;
          conn.peer.send(encode({ type: "history", room, messages: messages.map(wireMessage), complete }));
        });
      })).catch((e) => {
        log.error("history read failed", { room, error: (e as Error).message });
        conns.answer(conn.peer, engineError({ reading: room }, e), { room });
      });
  }

  /**
   * `history {room, around}`: the page centered on seq `around` (half of it older, `around` itself,
   * the rest newer), never newer than what the member has live: how a search result opens its room at
   * the message in one request. `more` says whether newer messages lie between it and the live end.
   */
  around(conn: Conn, room: string, around: number, limit?: number): void {
    const { hub, engine, cfg } = this.#ctx;
    mustBeMember(this.#ctx, conn, room, "read the history of");
    const n = Math.min(limit ?? cfg.historyPage, cfg.historyPage);
    const known = hub.knownSeq(conn.peer.id, room);
    const at = Math.min(around, known);
    const olderWanted = Math.floor((n - 1) / 2) + 1;
    this.#page(conn, room, { around }, async () => {
      const older = await engine.before(room, at + 1, olderWanted + 1);
      const complete = older.messages.length <= olderWanted;
      const head = older.messages.slice(complete ? 0 : 1);
      // Near the start the older half is short: the newer side fills the page.
      const newerWanted = n - head.length;
      const newer = await engine.after(room, at, newerWanted + 1);
      const tail = newer.messages.filter((m) => m.seq <= known);
      return {
        messages: [...head, ...tail.slice(0, newerWanted)],
        complete,
        more: tail.length > newerWanted,
      };
    });
  }

  /** `history {room, after}`: the page newer than `after`, up to what the member has live. */
  newer(conn: Conn, room: string, after: number, limit?: number): void {
    const { hub, engine, cfg } = this.#ctx;
    mustBeMember(this.#ctx, conn, room, "read the history of");
    const n = Math.min(limit ?? cfg.historyPage, cfg.historyPage);
    const known = hub.knownSeq(conn.peer.id, room);
    this.#page(conn, room, { after }, async () => {
      const page = await engine.after(room, after, n + 1);
      const tail = page.messages.filter((m) => m.seq <= known);
      // "complete" speaks of older messages: a forward page does not look at them.
      return { messages: tail.slice(0, n), complete: false, more: tail.length > n };
    });
  }

  /** Reads a centered or forward page, attaches reactions and answers `history` with `more`. */
  #page(
    conn: Conn,
    room: string,
    asked: { around: number } | { after: number },
    read: () => Promise<{ messages: ChatMessage[]; complete: boolean; more: boolean }>,
  ): void {
    const { hub, conns, log } = this.#ctx;
    const id = conn.peer.id;
    const here = () => conns.alive(conn) && hub.isMember(id, room);
    this.#budget.during(conn, () =>
      read().then(({ messages, complete, more }) => {
        if (!here()) return;
        return this.#reactions.attach(room, messages, conn.key).then((withReactions) => {
          if (!here()) return;
          // Cut to one answer from the newer end: the page stays joined to what it was asked from.
          const fits = this.#budget.oldest(withReactions);
          conn.peer.send(encode({
            type: "history",
            room,
            messages: fits.map(wireMessage),
            complete,
            ...asked,
            more: more || fits.length < withReactions.length,
          }));
        });
      })).catch((e) => {
        log.error("history read failed", { room, error: (e as Error).message });
        conns.answer(conn.peer, engineError({ reading: room }, e), { room });
      });
  }

  /**
   * `members {room, after?, prefix?}`: a page of the room's people (a big room's `joined` holds only
   * the first). Its people are whom this connection is told about in a big room from now on. Paid for
   * like `history`: a frame of the rate limit, and room in the answer budget while it is read.
   */
  members(conn: Conn, room: string, after?: string, prefix?: string): void {
    const { hub, sharing, conns, cfg, log } = this.#ctx;
    mustBeMember(this.#ctx, conn, room, "list the members of");
    const id = conn.peer.id;
    const q = {
      limit: cfg.membersPage,
      ...(after !== undefined && { after }),
      ...(prefix !== undefined && { prefix }),
    };
    this.#budget.during(conn, () =>
      sharing.memberPage(room, q).then((page) => {
        if (!conns.alive(conn) || !hub.isMember(id, room)) return;
        if (hub.isBig(room)) hub.watch(id, room, page.names);
        const answer: Extract<ServerMessage, { type: "members" }> = {
          type: "members",
          room,
          names: page.names,
          ...(page.displays && { displays: page.displays }),
          ...(page.next !== undefined && { next: page.next }),
          count: page.count,
        };
        // `after` and `prefix` say which request this answers: a client may have several out (a search box).
        if (after !== undefined) answer.after = after;
        if (prefix !== undefined) answer.prefix = prefix;
        conn.peer.send(encode(answer));
      })).catch((e) => {
        log.error("member page read failed", { room, error: (e as Error).message });
        conns.answer(conn.peer, engineError({ reading: room }, e), { room });
      });
  }

  /**
   * The room has a new epoch: its history was lost and its seqs start over (`from` 0), or the store
   * went back to seq `from` and gives the seqs after it out again. Every member here is told with a
   * fresh `joined` (nothing in it, `truncated`, the new epoch, `lastSeq` = `from`), so no client takes
   * new seqs for old ones.
   */
  restarted(room: string, epoch: string, from = 0): void {
    const { hub, cfg } = this.#ctx;
    // A big room's members get its first page again, not the whole list each.
    const big = hub.isBig(room)
      ? pageOf(hub.sortedMembers(room), (name) => hub.displayIn(room, name), { limit: cfg.membersPage })
      : undefined;
    const displays = big ? big.displays : hub.displays(room);
    const line = encode({
      type: "joined",
      room,
      members: big ? big.names : hub.members(room),
      ...(displays && { displays }),
      ...(big && { memberCount: big.count, ...(big.next !== undefined && { next: big.next }) }),
      messages: [],
      lastSeq: from,
      truncated: true,
      epoch,
      // The new history's rev is not read here; 0 is below it, so a later resume misses nothing.
      rev: 0,
    });
    hub.restart(room, line, from);
  }
}

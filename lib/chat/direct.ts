/**
 * Direct conversations: a message to a person by name (online here, online elsewhere, or known to the
 * people directory), stored in the two people's conversation like a room message and delivered to
 * every connection of both; the conversation list; a conversation's history.
 * @module
 */
import { type ChatMessage, conversationId, type Draft } from "../domain.ts";
import { uidOfKey } from "../identity.ts";
import { type Bucket, fullBucket, takeToken } from "../limits.ts";
import { type ConvHistory, ProtocolError } from "../protocol.ts";
import { type ConversationItem, encode, wireConvMessage } from "../server_messages.ts";
import type { AnswerBudget } from "./answers.ts";
import type { Conn } from "./connections.ts";
import { type ChatContext, nameOf } from "./context.ts";
import { engineError, SHUTTING_DOWN } from "./errors.ts";
import type { Found, Naming } from "./naming.ts";
import type { Presence } from "./presence.ts";
import { mustBeInConversation, type ReadState } from "./read_state.ts";
import type { Writer } from "./writer.ts";

/** Direct conversations in one `conversations` answer (the first comes right after `welcome`). */
export const CONVERSATIONS_PAGE = 50;

/** The direct-conversation feature. */
export class Direct {
  readonly #ctx: ChatContext;
  readonly #writer: Writer;
  readonly #naming: Naming;
  readonly #reads: ReadState;
  readonly #budget: AnswerBudget;
  readonly #firstContacts: FirstContacts;
  readonly #presence: Presence;

  constructor(
    ctx: ChatContext,
    parts: { writer: Writer; naming: Naming; reads: ReadState; budget: AnswerBudget; presence: Presence },
  ) {
    this.#ctx = ctx;
    this.#writer = parts.writer;
    this.#naming = parts.naming;
    this.#reads = parts.reads;
    this.#budget = parts.budget;
    this.#presence = parts.presence;
    this.#firstContacts = new FirstContacts(ctx.cfg.firstContactsPerHour, ctx.cfg.firstContactsPerIpPerHour);
  }

  /**
   * `send {to}`: the person is found by name, then the message is queued like a room message. One to
   * someone who has not written in the conversation (a first contact) takes from the sender's and the
   * address's hourly allowance first.
   */
  send(conn: Conn, to: string, text: string, cid?: string): void {
    const { conns, engine } = this.#ctx;
    // Online here, or gone moments ago and still holding the name here: the directory may not have
    // their entry written yet, and they are the person so called.
    const here = this.#naming.findHere(to, true);
    const id = conn.peer.id;
    const found = here ? Promise.resolve(here) : this.#naming.findPerson(to, { held: true, directory: true });
    found.then(async (target) => {
      if (!conns.alive(conn)) return;
      if (!target) {
        return conns.refuse(id, new ProtocolError("user_not_found", `No one is called "${to}"`), { cid });
      }
      const self = target.key === conn.key;
      const first = !self && !await engine.wrote(conversationId(conn.key, target.key), target.key);
      if (!conns.alive(conn)) return;
      conns.run(id, () => {
        if (first) this.#firstContacts.take(conn, this.#ctx.now());
        this.#queue(conn, target, text, cid);
      }, { cid });
    }).catch((e) => conns.answer(conn.peer, engineError("people", e), { cid }));
  }

  /** Forgets the allowances that are full again (called now and then: they only grow back). */
  sweep(now: number): void {
    this.#firstContacts.sweep(now);
  }

  #queue(conn: Conn, target: Found, text: string, cid?: string): void {
    const { conns, now } = this.#ctx;
    if (target.key === conn.key) {
      throw new ProtocolError("bad_message", "You cannot send a direct message to yourself");
    }
    if (this.#ctx.closing()) return conns.answer(conn.peer, SHUTTING_DOWN, { cid });
    if (this.#writer.joinInFlight(conn.key, cid, conn.peer)) return;
    const draft: Draft = {
      room: conversationId(conn.key, target.key),
      from: nameOf(this.#ctx, conn),
      text,
      ts: now(),
      key: conn.key,
      between: [conn.key, target.key],
    };
    const display = this.#ctx.hub.displayOf(conn.key);
    if (display !== undefined) draft.display = display;
    if (cid !== undefined) draft.cid = cid;
    this.#writer.submit({
      draft,
      sender: conn.peer,
      waiters: [],
      about: { cid },
      ack: (m) => encode({ type: "ack", cid: m.cid, seq: m.seq, ts: m.ts, conv: m.room, to: target.name }),
      stored: (m) => this.#deliver(draft.between!, m, target.name),
    }, conn);
  }

  /** A stored direct message goes to every connection of both people, on every process. */
  #deliver(between: readonly [string, string], m: ChatMessage, to: string): void {
    const msg = wireConvMessage(m, to);
    // Stored already: a lost publish costs only the live copy (the conversation's history has it).
    for (const key of between) {
      this.#ctx.sharing.sendToPerson(key, msg).catch((e) =>
        this.#ctx.log.warn("direct message not delivered live", { error: (e as Error).message })
      );
    }
  }

  /** A page of the person's conversations, newest first (see docs/protocol.md, Direct conversations). */
  async page(
    key: string,
    before: number,
    limit: number,
  ): Promise<{ items: ConversationItem[]; complete: boolean }> {
    const { engine, hub } = this.#ctx;
    const found = await engine.conversations(key, before, limit + 1);
    const page = found.slice(0, limit);
    const convs = page.map((c) => c.conv);
    const [people, reads, lasts] = await Promise.all([
      engine.people(page.map((c) => c.peer)),
      engine.readPositions(key, convs),
      Promise.all(convs.map((conv) => engine.before(conv, Number.MAX_SAFE_INTEGER, 1))),
    ]);
    const mentions = await this.#reads.mentionCounts(
      key,
      convs.map((room, i) => ({ room, after: reads[i] ?? 0 })),
    );
    const items = page.map((c, i): ConversationItem => {
      const last = lasts[i].messages.at(-1);
      const lastRead = reads[i] ?? 0;
      const name = hub.nameOf(c.peer) ?? people[i]?.name ?? uidOfKey(c.peer);
      // The other person's display name: theirs now while they are online here, else the one their
      // last message carries (the directory keeps names, not display names).
      const display = hub.tabsOf(c.peer) > 0
        ? hub.displayOf(c.peer)
        : last && last.from === name
        ? last.display
        : undefined;
      return {
        conv: c.conv,
        with: name,
        ...(display !== undefined && { display }),
        uid: people[i]?.uid ?? uidOfKey(c.peer),
        lastSeq: lasts[i].lastSeq,
        lastTs: c.lastTs,
        last: last ? wireConvMessage(last) : null,
        lastRead,
        unread: Math.max(0, lasts[i].lastSeq - lastRead),
        mentions: mentions[c.conv] ?? 0,
      };
    });
    return { items, complete: found.length <= limit };
  }

  /** Sends `conversations {items, complete}`; `asked`: an answer to the client (its budget applies). */
  list(conn: Conn, before: number, limit: number, asked = false): void {
    const { conns, log } = this.#ctx;
    const read = () => this.page(conn.key, before, limit);
    (asked ? this.#budget.during(conn, read) : read()).then(
      (page) => {
        if (!conns.alive(conn)) return;
        // The newest conversations' people are whom big rooms tell this person about (see Hub.watchPartners).
        if (before === Number.MAX_SAFE_INTEGER) {
          this.#presence.watchPartners(
            conn.key,
            page.items.map((i) => i.with),
            true,
          );
        }
        conn.peer.send(encode({ type: "conversations", ...page }));
      },
      (e) => {
        log.error("conversations read failed", { error: (e as Error).message });
        conns.answer(conn.peer, engineError("people", e));
      },
    );
  }

  /**
   * `history {conv}`: older than `before` (or the newest), the page centered on `around` (how a search
   * result opens the conversation at the message in one request), or newer than `after`; oldest first.
   * A page `around` or `after` echoes it and says with `more` whether newer messages lie beyond.
   */
  history(conn: Conn, m: ConvHistory): void {
    const { engine, conns, cfg, log } = this.#ctx;
    const { conv } = m;
    const n = Math.min(m.limit ?? cfg.historyPage, cfg.historyPage);
    this.#budget.during(conn, async () => {
      await mustBeInConversation(this.#ctx, conn, conv);
      let page: { messages: ChatMessage[]; complete: boolean; lastSeq: number; more?: boolean };
      if (m.around !== undefined) page = await this.#around(conv, m.around, n);
      else if (m.after !== undefined) {
        const newer = await engine.after(conv, m.after, n + 1);
        page = {
          messages: newer.messages.slice(0, n),
          complete: newer.messages.length <= n,
          lastSeq: newer.lastSeq,
          more: newer.messages.length > n,
        };
      } else {
        const older = await engine.before(conv, m.before ?? Number.MAX_SAFE_INTEGER, n + 1);
        const complete = older.messages.length <= n;
        page = {
          messages: complete ? older.messages : older.messages.slice(1),
          complete,
          lastSeq: older.lastSeq,
        };
      }
      // Backward pages keep their newest, the others their oldest: each stays joined to what it was
      // asked from, and the client asks again from its other end.
      const backward = m.around === undefined && m.after === undefined;
      const fitted = backward ? this.#budget.newest(page.messages) : this.#budget.oldest(page.messages);
      const cut = fitted.length < page.messages.length;
      if (!conns.alive(conn)) return;
      conn.peer.send(encode({
        type: "history",
        conv,
        messages: fitted.map((x) => wireConvMessage(x)),
        // A forward page's `complete` has always meant "nothing newer follows" (catching up).
        complete: page.complete && !cut,
        lastSeq: page.lastSeq,
        ...(m.around !== undefined ? { around: m.around } : m.after !== undefined ? { after: m.after } : {}),
        ...(page.more !== undefined ? { more: page.more || cut } : {}),
      }));
    }).catch((e) => {
      if (e instanceof ProtocolError) return conns.refuse(conn.peer.id, e, { conv });
      log.error("history read failed", { conv, error: (e as Error).message });
      conns.answer(conn.peer, engineError({ reading: conv }, e), { conv });
    });
  }

  /** The page of `conv` centered on seq `at`: half older, `at` itself, the rest newer. */
  async #around(conv: string, at: number, n: number) {
    const { engine } = this.#ctx;
    const olderWanted = Math.floor((n - 1) / 2) + 1;
    const older = await engine.before(conv, at + 1, olderWanted + 1);
    const complete = older.messages.length <= olderWanted;
    const head = complete ? older.messages : older.messages.slice(1);
    // Near the start the older half is short: the newer side fills the page.
    const newerWanted = n - head.length;
    const newer = await engine.after(conv, at, newerWanted + 1);
    return {
      messages: [...head, ...newer.messages.slice(0, newerWanted)],
      complete,
      lastSeq: Math.max(older.lastSeq, newer.lastSeq),
      more: newer.messages.length > newerWanted,
    };
  }
}

const HOUR_MS = 3_600_000;

/**
 * The hourly allowances of first contacts (messages to someone who has not written in the conversation),
 * one per sender and one per address, each a token bucket refilled over an hour. Per process, like the
 * other rate limits: a bucket lives while it is not full, so the maps hold only who wrote lately.
 */
class FirstContacts {
  readonly #byKey = new Map<string, Bucket>();
  readonly #byAddress = new Map<string, Bucket>();
  readonly #perKey: number;
  readonly #perAddress: number;

  constructor(perKey: number, perAddress: number) {
    this.#perKey = perKey;
    this.#perAddress = perAddress;
  }

  /**
   * Takes one from `conn`'s person and address, or neither.
   * @throws {ProtocolError} `too_many_contacts`, with `retryAfter`, when either is spent.
   */
  take(conn: Conn, now: number): void {
    const mine = this.#bucket(this.#byKey, conn.key, this.#perKey, now);
    const address = conn.address === undefined
      ? undefined
      : this.#bucket(this.#byAddress, conn.address, this.#perAddress, now);
    for (
      const [b, cap, who] of [[mine, this.#perKey, "You have"], [
        address,
        this.#perAddress,
        "Your address has",
      ]] as const
    ) {
      if (!b || b.tokens >= 1) continue;
      const retryAfter = Math.ceil((1 - b.tokens) * HOUR_MS / cap / 1000);
      throw new ProtocolError(
        "too_many_contacts",
        `${who} written ${cap} times within the hour to people who have not answered; ` +
          `wait for an answer, or ${retryAfter} s`,
        undefined,
        { retryAfter },
      );
    }
    takeToken(mine, now, this.#perKey * 1000 / HOUR_MS, this.#perKey);
    if (address) takeToken(address, now, this.#perAddress * 1000 / HOUR_MS, this.#perAddress);
  }

  sweep(now: number): void {
    for (const [map, cap] of [[this.#byKey, this.#perKey], [this.#byAddress, this.#perAddress]] as const) {
      for (const [k, b] of map) if (b.tokens + (now - b.at) * cap / HOUR_MS >= cap) map.delete(k);
    }
  }

  /** The bucket of `id`, refilled to `now` (a new one is full). */
  #bucket(map: Map<string, Bucket>, id: string, cap: number, now: number): Bucket {
    let b = map.get(id);
    if (!b) map.set(id, b = fullBucket(cap, now));
    b.tokens = Math.min(cap, b.tokens + (now - b.at) * cap / HOUR_MS);
    b.at = now;
    return b;
  }
}

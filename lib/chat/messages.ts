/**
 * Room messages: `send {room}` (with a reply and `@name` mentions), raw text to the current room,
 * `typing`, and a message the host application posts through the server API.
 * @module
 */
import type { ChatMessage, Draft, Mention } from "../domain.ts";
import { UnavailableError } from "../engine.ts";
import type { Actor } from "../moderation.ts";
import { canonicalName, nameProblem } from "../names.ts";
import { mentionCandidates } from "../../static/shared/mentions.js";
import { ProtocolError } from "../protocol.ts";
import { encode } from "../server_messages.ts";
import type { Conn } from "./connections.ts";
import { type ChatContext, mustBeMember, nameOf } from "./context.ts";
import { SHUTTING_DOWN } from "./errors.ts";
import type { Found, Naming } from "./naming.ts";
import type { Pending, Writer } from "./writer.ts";

/** The room-message feature. */
export class Messages {
  readonly #ctx: ChatContext;
  readonly #writer: Writer;
  readonly #naming: Naming;

  constructor(ctx: ChatContext, writer: Writer, naming: Naming) {
    this.#ctx = ctx;
    this.#writer = writer;
    this.#naming = naming;
  }

  /** `send {room}`: checked against membership and the room's rules, then queued for the write. */
  send(conn: Conn, room: string, text: string, cid?: string, replyTo?: number): void {
    const { moderation, now } = this.#ctx;
    mustBeMember(this.#ctx, conn, room, "send to");
    moderation.checkPost(conn.identity!, room, now());
    if (this.#writer.joinInFlight(conn.key, cid, conn.peer)) return;
    const draft: Draft = { room, from: nameOf(this.#ctx, conn), text, ts: now(), key: conn.key };
    const display = this.#ctx.hub.displayOf(conn.key);
    if (display !== undefined) draft.display = display;
    if (cid !== undefined) draft.cid = cid;
    if (replyTo !== undefined) draft.replyTo = replyTo;
    const p: Pending = {
      draft,
      sender: conn.peer,
      waiters: [],
      about: { cid, room },
      ack: (m) => encode({ type: "ack", cid: m.cid, seq: m.seq, ts: m.ts, room: m.room }),
    };
    // Most messages hold no "@": one indexOf is all they cost.
    if (text.includes("@")) this.#mentions(p, conn.key);
    this.#writer.submit(p, conn);
  }

  /** A frame that was not JSON: text for the room joined last. */
  raw(conn: Conn, text: string): void {
    if (!conn.current) {
      throw new ProtocolError("not_member", "Join a room before sending text (for example /ws?room=lobby)");
    }
    this.send(conn, conn.current, text);
  }

  /**
   * `typing`: told to the room's members, not stored. A muted person's typing reaches nobody, without
   * an error: the page types as the person types, and a strike per keystroke would close it.
   */
  typing(conn: Conn, room: string): void {
    mustBeMember(this.#ctx, conn, room, "type in");
    if (this.#ctx.moderation.mutedUntil(room, conn.identity!.uid, this.#ctx.now()) !== undefined) return;
    const display = this.#ctx.hub.displayOf(conn.key);
    const name = nameOf(this.#ctx, conn);
    this.#ctx.sharing.publishLine(
      room,
      encode(
        display === undefined ? { type: "typing", room, name } : { type: "typing", room, name, display },
      ),
    );
  }

  /**
   * Stores and delivers `text` in `room` from `actor` (a user the host names, or the system), with no
   * connection: no membership, rate limit or room rule applies, the host is trusted.
   * @throws {ProtocolError} `unavailable`, `store_failed`, `shutting_down`.
   */
  async post(actor: Actor, room: string, text: string, cid?: string): Promise<ChatMessage> {
    const { engine, metrics, now } = this.#ctx;
    if (this.#ctx.closing()) throw SHUTTING_DOWN;
    const draft: Draft = { room, from: actor.name, text, ts: now(), key: actor.key || "api" };
    if (actor.display !== undefined) draft.display = actor.display;
    if (cid !== undefined) draft.cid = cid;
    try {
      const [stored] = await engine.append([draft]);
      if (!stored.duplicate) metrics.messagesStored++;
      return stored.message;
    } catch (e) {
      throw e instanceof UnavailableError
        ? new ProtocolError("unavailable", "Storage is out of reach for a moment; nothing was stored")
        : new ProtocolError("store_failed", "The message could not be stored; nothing was stored");
    }
  }

  /**
   * Finds who the `@name`s of `p`'s text mention (the first `maxMentions` distinct valid names): people
   * here (or holding the name) at once, others online elsewhere or known to the people directory (then
   * `p.ready` holds the write back until known). A name nobody holds, and the sender, are not recorded.
   */
  #mentions(p: Pending, self: string): void {
    const names = mentionedNames(p.draft.text, this.#ctx.cfg.maxMentions);
    if (names.length === 0) return;
    const found: (Found | undefined)[] = names.map((tries) => {
      for (const n of tries) {
        const here = this.#naming.findHere(n, true);
        if (here) return here;
      }
    });
    const done = () => {
      const keys = new Set<string>([self]);
      const mentions: Mention[] = [];
      for (const m of found) if (m && !keys.has(m.key)) keys.add(m.key), mentions.push(m);
      if (mentions.length > 0) p.draft.mentions = mentions;
    };
    const remote = names.flatMap((_, i) => found[i] === undefined ? [i] : []);
    if (remote.length === 0) return done();
    // Online on another process, else known to the people directory (offline): a mention counts for
    // the person on every device, whenever they come back.
    p.ready = Promise.all(remote.map(async (i) => {
      for (const n of names[i]) {
        const got = await this.#naming.findPerson(n, { held: true, directory: true });
        if (got) return void (found[i] = got);
      }
    })).catch((e) => {
      // A mention is worth less than the message: it goes without the people not found.
      this.#ctx.log.debug("mentions not looked up", { error: (e as Error).message });
    }).then(done);
  }
}

/**
 * The names `text` mentions with `@name`, at most `max` distinct ones, each as the canonical names to
 * try in turn: "@bob." at the end of a sentence tries "bob." first (a valid name), then "bob".
 */
export function mentionedNames(text: string, max: number): string[][] {
  const names: string[][] = [];
  const seen = new Set<string>();
  // The page highlights by the same rule (static/shared/mentions.js), so what it shows is what counts.
  for (const candidates of mentionCandidates(text, canonicalName)) {
    if (names.length >= max) break;
    const tries = candidates.filter((n) => n !== "" && nameProblem(n) === undefined);
    if (tries.length === 0 || seen.has(tries[0])) continue;
    seen.add(tries[0]);
    names.push(tries);
  }
  return names;
}

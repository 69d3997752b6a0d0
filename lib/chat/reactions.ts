/**
 * Reactions: a person puts, takes back or toggles an emoji on a message; the room hears the new
 * counts. History and joins carry each message's counts and the reader's own.
 * @module
 */
import type { ChatMessage } from "../domain.ts";
import { ProtocolError } from "../protocol.ts";
import { encode } from "../server_messages.ts";
import type { Conn } from "./connections.ts";
import { type ChatContext, mustBeMember, nameOf } from "./context.ts";

/** The reactions feature. */
export class Reactions {
  readonly #ctx: ChatContext;

  constructor(ctx: ChatContext) {
    this.#ctx = ctx;
  }

  /** `react`: the person's reaction on message `seq`, within the caps; the room hears the counts. */
  async react(conn: Conn, room: string, seq: number, emoji: string, on?: boolean): Promise<void> {
    const { moderation, engine, cfg, now } = this.#ctx;
    mustBeMember(this.#ctx, conn, room, "react in");
    const muted = moderation.mutedUntil(room, conn.identity!.uid, now());
    if (muted !== undefined) {
      throw new ProtocolError("muted", `You are muted in room "${room}"`, undefined, { room, until: muted });
    }
    const caps = {
      maxEmoji: cfg.maxReactionEmoji,
      maxPerPerson: cfg.maxReactionsPerPerson,
      maxTotal: cfg.maxReactionsPerMessage,
    };
    const r = await engine.react(room, seq, conn.key, emoji, on, caps);
    if (!r.ok) {
      if (r.problem === "not_found") {
        throw new ProtocolError("message_not_found", `Room "${room}" has no message ${seq} to react to`);
      }
      throw new ProtocolError(
        "too_many_reactions",
        r.problem === "too_many_emoji"
          ? `Message ${seq} has ${caps.maxEmoji} different reactions already: add to one of them`
          : r.problem === "too_many_total"
          ? `Message ${seq} has ${caps.maxTotal} reactions already, the most one message takes`
          : `You have ${caps.maxPerPerson} reactions on message ${seq} already: take one back first`,
      );
    }
    this.#ctx.sharing.publishLine(
      room,
      encode({
        type: "reactions",
        room,
        seq,
        counts: r.counts,
        by: nameOf(this.#ctx, conn),
        emoji,
        on: r.on,
      }),
    );
  }

  /** `messages` (one room's, oldest first) with their reactions and person `key`'s own: one read. */
  async attach(room: string, messages: ChatMessage[], key: string): Promise<ChatMessage[]> {
    if (messages.length === 0) return messages;
    const got = await this.#ctx.engine.reactions(room, messages[0].seq, messages.at(-1)!.seq, key);
    if (got.size === 0) return messages;
    return messages.map((m) => {
      const r = got.get(m.seq);
      if (!r || m.deleted) return m;
      const out: ChatMessage = { ...m, reactions: r.counts };
      if (r.mine.length > 0) out.mine = r.mine;
      return out;
    });
  }
}

/**
 * Read state: how far a person has read each room and direct conversation (`read`), stored and told to
 * all their connections, and how many messages mention them after that position.
 * @module
 */
import { ProtocolError } from "../protocol.ts";
import { encode, type ServerMessage } from "../server_messages.ts";
import type { Conn } from "./connections.ts";
import { type ChatContext, mustBeMember } from "./context.ts";
import { engineError } from "./errors.ts";

/** Throws `not_member` unless the person of `conn` is in direct conversation `conv`. */
export async function mustBeInConversation(ctx: ChatContext, conn: Conn, conv: string): Promise<void> {
  const peer = await ctx.engine.conversationPeer(conn.key, conv);
  if (peer === undefined) throw new ProtocolError("not_member", `You are not in conversation "${conv}"`);
}

/** The read-state feature. */
export class ReadState {
  readonly #ctx: ChatContext;

  constructor(ctx: ChatContext) {
    this.#ctx = ctx;
  }

  /** `read {room, seq}`. */
  readRoom(conn: Conn, room: string, seq: number): void {
    mustBeMember(this.#ctx, conn, room, "mark as read");
    this.#mark(conn, { room }, seq);
  }

  /** `read {conv, seq}`. */
  readConv(conn: Conn, conv: string, seq: number): void {
    const { conns } = this.#ctx;
    mustBeInConversation(this.#ctx, conn, conv).then(
      () => this.#mark(conn, { conv }, seq),
      (e) =>
        e instanceof ProtocolError
          ? conns.refuse(conn.peer.id, e, { conv })
          : conns.answer(conn.peer, engineError("people", e)),
    );
  }

  #mark(conn: Conn, where: { room: string } | { conv: string }, seq: number): void {
    const { engine, sharing, conns } = this.#ctx;
    const room = "room" in where ? where.room : where.conv;
    engine.markRead(conn.key, room, seq).then((mark) => {
      const read: ServerMessage = { type: "read", ...where, seq: mark.seq };
      // Moved: every connection of the person hears it; not moved: only the asker, as the answer.
      if (!mark.moved) return void conn.peer.send(encode(read));
      return sharing.sendToPerson(conn.key, read);
    }).catch((e) => {
      const marking = "room" in where ? `room "${room}"` : "this conversation";
      conns.answer(conn.peer, engineError({ marking }, e), where);
    });
  }

  /** Mentions of person `key` per room after each read position (rooms without any left out). */
  mentionCounts(key: string, rooms: { room: string; after: number }[]): Promise<Record<string, number>> {
    if (rooms.length === 0) return Promise.resolve({});
    return this.#ctx.engine.mentionCounts(key, rooms);
  }
}

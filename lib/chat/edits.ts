/**
 * Message changes: a delete (by its author or a moderator; the seq stays as a tombstone) and an edit
 * (by its author, within the edit window). Every member is told `deleted` or `edited` when the engine
 * tells the change, in the room's order.
 * @module
 */
import { ms } from "../config.ts";
import type { ChangeInfo, ChatMessage } from "../domain.ts";
import type { Actor } from "../moderation.ts";
import { moderates } from "../identity.ts";
import { ProtocolError } from "../protocol.ts";
import { encode } from "../server_messages.ts";
import type { Conn } from "./connections.ts";
import type { ChatContext } from "./context.ts";

/** The message-change feature. */
export class Edits {
  readonly #ctx: ChatContext;

  constructor(ctx: ChatContext) {
    this.#ctx = ctx;
  }

  /**
   * Deletes message `seq` of `room` for `actor`: its author, or a moderator.
   * @throws {ProtocolError} `message_not_found`, `not_allowed`.
   */
  async delete(actor: Actor, room: string, seq: number): Promise<void> {
    const t = this.#ctx.now();
    const mod = moderates(actor.role);
    // Only a moderator's delete is a moderation act for the audit log: members' own deletes and edits
    // are not, so however many they make, moderators' actions stay in the log.
    const result = await this.#ctx.engine.changeMessage(
      room,
      seq,
      { kind: "delete", by: actor.name },
      mod ? {} : { authorKey: actor.key },
      mod ? { ts: t, action: "delete", by: actor.uid, seq } : undefined,
    );
    if (!result.ok) {
      if (result.problem === "not_author") {
        throw new ProtocolError("not_allowed", `Only its author or a moderator can delete message ${seq}`);
      }
      throw new ProtocolError("message_not_found", `Room "${room}" has no message ${seq} to delete`);
    }
  }

  /**
   * A change the engine tells, on any process, after the message it changes: this process's members of
   * the room hear `deleted` or `edited`. The one path for both, so a change never overtakes its message.
   */
  changed(m: ChatMessage, info: ChangeInfo): void {
    const { hub } = this.#ctx;
    if (m.deleted) {
      hub.publish(
        m.room,
        encode({ type: "deleted", room: m.room, seq: m.seq, by: info.by ?? "system", rev: info.rev }),
      );
    } else if (m.editedTs !== undefined) {
      hub.publish(
        m.room,
        encode({
          type: "edited",
          room: m.room,
          seq: m.seq,
          text: m.text,
          editedTs: m.editedTs,
          rev: info.rev,
        }),
      );
    }
  }

  /**
   * Edits one's own message within the edit window. An edit is a post: it obeys mute, read-only and
   * slow mode like a send (and takes the slow-mode turn).
   */
  async edit(conn: Conn, room: string, seq: number, text: string): Promise<void> {
    const { cfg, engine, moderation } = this.#ctx;
    const t = this.#ctx.now();
    const window = ms(cfg, "editWindowSeconds");
    if (window === 0) throw new ProtocolError("not_allowed", "Messages cannot be edited on this server");
    moderation.checkPost(conn.identity!, room, t);
    const result = await engine.changeMessage(
      room,
      seq,
      { kind: "edit", text, editedTs: t },
      { authorKey: conn.key, sentSince: t - window },
    );
    if (!result.ok) {
      if (result.problem === "not_author") {
        throw new ProtocolError("not_allowed", `Only its author can edit message ${seq}`);
      }
      if (result.problem === "too_old") {
        throw new ProtocolError(
          "edit_window_closed",
          `Messages can be edited for ${cfg.editWindowSeconds} s after they are sent; message ${seq} is older`,
        );
      }
      throw new ProtocolError("message_not_found", `Room "${room}" has no message ${seq} to edit`);
    }
  }
}

/**
 * Which part of the client handles each line the server writes (docs/protocol.md, "Server → client"):
 * one table, so a new line type is one entry here and a handler in its part.
 * @module
 */

/** @typedef {import("./types.js").Context} Context */
/** @typedef {(m: Record<string, any>) => void} Handler */

/**
 * The handlers of the server's lines, by `type`; a type not in the table is ignored.
 * @param {Context} ctx
 * @param {{ welcome: Handler, authed: Handler, nick: Handler }} own the lines about you, which the
 *   client itself handles
 * @returns {Record<string, Handler>}
 */
export function lineHandlers(ctx, own) {
  const { rooms, directs, outbox, moderation, typing } = ctx;
  return {
    ...own,
    joined: (m) => rooms.joined(m),
    left: (m) => rooms.left(m),
    message: (m) => typeof m.room === "string" ? rooms.message(m) : directs.message(m),
    ack: (m) => outbox.acked(m),
    presence: (m) => rooms.presence(m),
    count: (m) => rooms.count(m),
    members: (m) => rooms.membersPage(m),
    typing: (m) => typing.line(m),
    history: (m) => typeof m.conv === "string" ? directs.history(m) : rooms.history(m),
    reactions: (m) => rooms.reactions(m),
    conversations: (m) => directs.list(m),
    read: (m) => {
      if (typeof m.seq !== "number") return;
      if (typeof m.room === "string") rooms.read(m);
      else directs.read(m);
    },
    error: (m) => {
      // The outbox takes the entry the error refuses first: what it says about a room may need it.
      const item = outbox.refused(m);
      moderation.refused(m, item);
      ctx.directory.refused(m);
      ctx.emit("servererror", { code: m.code, message: String(m.message ?? m.code), item });
    },
    deleted: (m) => rooms.changed(m),
    edited: (m) => rooms.changed(m),
    moderation: (m) => moderation.line(m),
    room: (m) => moderation.rules(m),
    kicked: (m) => moderation.kicked(m),
    rooms: (m) => ctx.directory.answer(m),
    search: (m) => {
      if (typeof m.q === "string" && Array.isArray(m.results)) {
        ctx.emit("search", { q: m.q, results: m.results, next: m.next, partial: m.partial === true });
      }
    },
  };
}

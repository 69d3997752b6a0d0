/**
 * The table from client message type to the feature that handles it: the one place that says which
 * feature does what. Adding a message type is a parser case (lib/protocol.ts) and a row here.
 * @module
 */
import type { ClientMessage } from "../protocol.ts";
import { ProtocolError } from "../protocol.ts";
import { encode } from "../server_messages.ts";
import type { Admission } from "./admission.ts";
import type { Conn } from "./connections.ts";
import { type ChatContext, mustBeMember, settle } from "./context.ts";
import { CONVERSATIONS_PAGE, type Direct } from "./direct.ts";
import type { Directory } from "./directory.ts";
import type { Edits } from "./edits.ts";
import type { Messages } from "./messages.ts";
import type { Moderate } from "./moderate.ts";
import type { Naming } from "./naming.ts";
import type { Reactions } from "./reactions.ts";
import type { ReadState } from "./read_state.ts";
import type { Rooms } from "./rooms.ts";
import type { Search } from "./search.ts";

/** The client messages of type `T` (a union member may carry several types, as `allow | disallow`). */
type MessageOf<T, M = ClientMessage> = M extends { type: infer U } ? (T extends U ? M : never) : never;
/** One client message type's handler. */
export type Handler<T extends ClientMessage["type"]> = (conn: Conn, msg: MessageOf<T>) => void;
/** A handler for every client message type. */
export type Handlers = { [T in ClientMessage["type"]]: Handler<T> };

/** The features the handlers call. */
export interface Features {
  admission: Admission;
  naming: Naming;
  rooms: Rooms;
  messages: Messages;
  direct: Direct;
  reads: ReadState;
  reactions: Reactions;
  edits: Edits;
  moderate: Moderate;
  directory: Directory;
  search: Search;
}

/** Every client message type's handler, over the features. */
export function handlers(ctx: ChatContext, f: Features): Handlers {
  const page = (limit?: number) => Math.min(limit ?? CONVERSATIONS_PAGE, CONVERSATIONS_PAGE);
  return {
    // A refused join names its room, so a client with several joins out knows which.
    join: (c, m) =>
      ctx.conns.run(c.peer.id, () => f.rooms.join(c, m.room, m.since, m.epoch, m.rev), {
        room: m.room,
      }),
    leave: (c, m) => f.rooms.leave(c, m.room),
    send: (c, m) => {
      try {
        if ("to" in m) return f.direct.send(c, m.to, m.text, m.cid);
        f.messages.send(c, m.room, m.text, m.cid, m.replyTo);
      } catch (e) {
        // The refusal names the send it refuses, so a client with several in flight knows which.
        if (!(e instanceof ProtocolError)) throw e;
        const room = "room" in m ? { room: m.room } : {};
        ctx.conns.refuse(c.peer.id, e, m.cid === undefined ? room : { cid: m.cid, ...room });
      }
    },
    raw: (c, m) => f.messages.raw(c, m.text),
    typing: (c, m) => f.messages.typing(c, m.room),
    nick: (c, m) => {
      if (m.name !== undefined) f.naming.nick(c, m.name);
      if (m.display !== undefined) f.naming.setDisplay(c, m.display);
    },
    history: (c, m) =>
      "conv" in m
        ? f.direct.history(c, m)
        : "around" in m
        ? f.rooms.around(c, m.room, m.around, m.limit)
        : "after" in m
        ? f.rooms.newer(c, m.room, m.after, m.limit)
        : f.rooms.history(c, m.room, m.before, m.limit),
    read: (c, m) => "conv" in m ? f.reads.readConv(c, m.conv, m.seq) : f.reads.readRoom(c, m.room, m.seq),
    conversations: (c, m) => f.direct.list(c, m.before ?? Number.MAX_SAFE_INTEGER, page(m.limit), true),
    ping: (c) => void c.peer.send(encode({ type: "pong", ts: ctx.now() })),
    react: (c, m) => settle(ctx, c, f.reactions.react(c, m.room, m.seq, m.emoji, m.on), m.room, "react"),
    delete: (c, m) => {
      mustBeMember(ctx, c, m.room, "delete in");
      settle(ctx, c, f.edits.delete(f.moderate.actor(c), m.room, m.seq), m.room, "delete");
    },
    edit: (c, m) => {
      mustBeMember(ctx, c, m.room, "edit in");
      settle(ctx, c, f.edits.edit(c, m.room, m.seq, m.text), m.room, "edit");
    },
    kick: (c, m) => f.moderate.sanctionFrame(c, m),
    ban: (c, m) => f.moderate.sanctionFrame(c, m),
    mute: (c, m) => f.moderate.sanctionFrame(c, m),
    unmute: (c, m) => f.moderate.sanctionFrame(c, m),
    unban: (c, m) => f.moderate.unbanFrame(c, m.room, m.uid),
    allow: (c, m) => f.moderate.changeFrame(c, m.room, { kind: m.type, uid: m.uid }),
    disallow: (c, m) => f.moderate.changeFrame(c, m.room, { kind: m.type, uid: m.uid }),
    room: (c, m) => {
      const { type: _, room, ...rules } = m;
      f.moderate.changeFrame(c, room, { kind: "rules", rules });
    },
    audit: (c, m) => f.moderate.audit(c, m.room, m.before, m.limit),
    auth: (c, m) => f.admission.auth(c, m.token),
    // A refusal names the request as its answer would (`q`, `after`): a client may have several out.
    rooms: (c, m) =>
      ctx.conns.run(c.peer.id, () => f.directory.list(c, m.q ?? "", m.after ?? "", m.limit), {
        q: m.q ?? "",
        after: m.after,
      }),
    search: (c, m) => f.search.search(c, m),
    members: (c, m) => f.rooms.members(c, m.room, m.after, m.prefix),
  };
}

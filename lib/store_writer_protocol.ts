/**
 * What the history store and its writer worker (`store_writer.ts`) say to each other: one request,
 * one answer with the same id. Types only: the worker is loaded by path, and `--allow-read` and
 * `deno compile --include` name its files (the worker and `search_text.ts`), so this module must add
 * nothing to what it imports at run time.
 * @module
 */
import type { RoomChange } from "./domain.ts";

/** A request to the writer worker. */
export type WriterRequest =
  /** `search`: whether the search index is kept (see `SqliteOptions.searchIndex`). */
  | { id: number; op: "open"; path: string; synchronous: string; search: boolean }
  | {
    id: number;
    op: "append";
    /** room, seq, ts, sender, text, ukey, cid, meta */
    rows: (string | number | null)[][];
    /** ukey, room, seq: one per mentioned person */
    mentions: (string | number)[][];
    /** Read positions its senders move to: ukey, room, seq. */
    reads: (string | number)[][];
    /** Conversation list entries: ukey, conv, peer, last_ts. */
    convs: (string | number)[][];
    /** Guests who wrote or are in a conversation stay in the directory at least until: until, ukey. */
    keeps: (string | number)[][];
  }
  /**
   * History from before the search index, indexed by the rebuild: room, seq, ts, sender, text. A row
   * whose message was deleted, edited or removed since it was read is left out (its change indexed it
   * already); `cursor` is stored as the rebuild's progress.
   */
  | { id: number; op: "index"; rows: (string | number)[][]; cursor: string }
  | { id: number; op: "react"; row: (string | number)[]; on: boolean }
  /** ukey, uid, name, name_key, seen_ts, until (a guest's; null for a signed person). */
  | { id: number; op: "people"; rows: (string | number | null)[][] }
  | { id: number; op: "read"; key: string; room: string; seq: number }
  | { id: number; op: "prune"; now: number; retainMessages: number; retainMs: number }
  | {
    id: number;
    op: "messages";
    /** One per message change, in order: text, deleted (0/1), edited_ts, room, seq. */
    rows: (string | number | null)[][];
    /** The room's change revision each change takes (stored on the message and the room). */
    revs: (number | null)[];
    /** Each change's audit entry, or null. */
    audits: (AuditRow | null)[];
    auditRetain: number;
    /** Some are deletes: once committed, the old texts are wiped from the WAL file too. */
    scrub: boolean;
  }
  | { id: number; op: "room"; room: string; change: RoomChange; audit: AuditRow; auditRetain: number }
  | { id: number; op: "close" };

/** The writer's answer to the request with the same id. */
export type WriterAnswer = { id: number; ok: true; count?: number; counts?: number[] } | {
  id: number;
  ok: false;
  error: string;
};

/** An audit entry as the writer inserts it: room, ts, action, by, target, reason, until, seq. */
export type AuditRow = (string | number | null)[];

/**
 * How the history database's rows read as domain values and back: messages (with their `meta` JSON),
 * room rules and audit entries. The column orders here match the statements that use them
 * (`store_sqlite.ts` reads, `store_writer.ts` writes).
 * @module
 */
import { type AuditEntry, type ChatMessage, type RoomRules, type StoredMessage, toWire } from "./domain.ts";
import type { AuditRow } from "./store_writer_protocol.ts";

/** A `messages` row as {@link MESSAGE_COLUMNS} selects it. */
export type MessageRow = {
  room: string;
  seq: number;
  ts: number;
  sender: string;
  text: string;
  cid: string | null;
  deleted: number;
  edited_ts: number | null;
  ukey: string;
  meta: string | null;
};

/** The columns of a {@link MessageRow}, for a `SELECT`. */
export const MESSAGE_COLUMNS = "room, seq, ts, sender, text, cid, deleted, edited_ts, ukey, meta";

/**
 * What `messages.meta` holds (JSON), when a message has any of it. A reply keeps what it answers by
 * reference, `{seq, from}`: the engine quotes that message as it is when the reply is read, so an edit
 * or a delete rewrites no reply. (Rows of schema version 3 kept the quote's text too; the upgrade to
 * version 4 drops it wherever the message answered is still stored.)
 */
interface Meta {
  replyTo?: { seq: number; from: string; text?: string; deleted?: true };
  mentions?: string[];
  /** The sender's display name then (kept when the message is deleted: the tombstone still says who). */
  display?: string;
}

/**
 * A stored message as clients see it (no sender key, no quote or mentions once deleted); a reply's
 * quote as stored: no text (the engine makes it), or the text a version-3 row kept.
 */
export function messageOf(r: MessageRow): ChatMessage {
  const m: ChatMessage = { room: r.room, seq: r.seq, from: r.sender, text: r.text, ts: r.ts };
  if (r.cid !== null) m.cid = r.cid;
  if (r.deleted) m.deleted = true;
  if (r.edited_ts !== null) m.editedTs = r.edited_ts;
  const meta = r.meta === null ? undefined : JSON.parse(r.meta) as Meta;
  if (meta?.display !== undefined) m.display = meta.display;
  if (meta && !r.deleted) {
    if (meta.replyTo) {
      const q = meta.replyTo;
      m.replyTo = q.deleted
        ? { seq: q.seq, from: q.from, text: "", deleted: true }
        : { seq: q.seq, from: q.from, text: q.text ?? "" };
    }
    if (meta.mentions) m.mentions = meta.mentions;
  }
  return toWire(m);
}

/** A stored message with its sender's key and cid. */
export function storedMessageOf(r: MessageRow): StoredMessage {
  const m: StoredMessage = { ...messageOf(r), key: r.ukey };
  if (r.cid !== null) m.cid = r.cid;
  return m;
}

/** A message as the writer inserts it: room, seq, ts, sender, text, ukey, cid, meta. */
export function messageRow(m: StoredMessage): (string | number | null)[] {
  return [m.room, m.seq, m.ts, m.from, m.text, m.key, m.cid ?? null, metaOf(m)];
}

/**
 * The `meta` column of a message: JSON of its reply quote, mentions and sender's display name, or null
 * (most messages).
 */
function metaOf(m: StoredMessage): string | null {
  if (m.replyTo === undefined && m.mentions === undefined && m.display === undefined) return null;
  const meta: Meta = {};
  if (m.display !== undefined) meta.display = m.display;
  if (m.replyTo !== undefined) meta.replyTo = { seq: m.replyTo.seq, from: m.replyTo.from };
  if (m.mentions !== undefined) meta.mentions = m.mentions;
  return JSON.stringify(meta);
}

/** A `room_rules` row: topic, private, read_only, slow_mode. */
export type RulesRow = { topic: string; private: number; read_only: number; slow_mode: number };

/** A room's rules from its row; a room without one has the defaults. */
export function rulesOf(r: RulesRow | undefined): RoomRules {
  if (!r) return { topic: "", private: false, readOnly: false, slowModeSeconds: 0 };
  return {
    topic: r.topic,
    private: r.private === 1,
    readOnly: r.read_only === 1,
    slowModeSeconds: r.slow_mode,
  };
}

/** An `audit` row as the store selects it: ts, action, by_uid, target, reason, until, seq. */
export type AuditRecord = {
  ts: number;
  action: string;
  by_uid: string;
  target: string | null;
  reason: string | null;
  until: number | null;
  seq: number | null;
};

/** An audit entry from its row (absent fields left out, not null). */
export function auditEntryOf(r: AuditRecord): AuditEntry {
  const e: AuditEntry = { ts: r.ts, action: r.action, by: r.by_uid };
  if (r.target !== null) e.target = r.target;
  if (r.reason !== null) e.reason = r.reason;
  if (r.until !== null) e.until = r.until;
  if (r.seq !== null) e.seq = r.seq;
  return e;
}

/** An audit entry of `room` as the writer inserts it. */
export function auditRow(room: string, a: AuditEntry): AuditRow {
  return [room, a.ts, a.action, a.by, a.target ?? null, a.reason ?? null, a.until ?? null, a.seq ?? null];
}

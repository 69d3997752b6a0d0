/**
 * The SQLite writer, run in a Worker so that a slow disk (fsync) delays acks, never the event loop
 * that delivers messages, presence and typing. It owns every write: batches and retention.
 * It also turns each message's text into its search index row (`search_text.ts`): segmenting and
 * folding cost 5-30 us a message, which this thread pays instead of the event loop. Requests and
 * answers are `WriterRequest` / `WriterAnswer` from `store_writer_protocol.ts`. It is loaded by path,
 * so every module it imports at run time is named in deno.json's `--allow-read` and `--include` and in
 * `OWN_READS` (lib/permissions.ts): that is `search_text.ts`, which imports nothing.
 * @module
 */
/// <reference lib="deno.worker" />
import { DatabaseSync } from "node:sqlite";
import type { RoomChange } from "./domain.ts";
import { indexRow, searchId } from "./search_text.ts";
import type { AuditRow, WriterAnswer, WriterRequest } from "./store_writer_protocol.ts";

/** Serves one database for the lifetime of the worker. */
class Writer {
  readonly #db: DatabaseSync;
  readonly #insert;
  readonly #setLast;
  readonly #getLast;
  readonly #trimCount;
  readonly #trimAge;
  readonly #changeMessage;
  readonly #setMessageRev;
  readonly #setRoomRev;
  readonly #insertAudit;
  readonly #capAudit;
  readonly #setRules;
  readonly #setPerson;
  readonly #dropPerson;
  readonly #expirePeople;
  readonly #insertMention;
  readonly #addReaction;
  readonly #dropReaction;
  readonly #dropExtras: { run(room: string, seq: number): unknown }[];
  readonly #trimExtras: { run(room: string, seq: number): unknown }[];
  readonly #orphans;
  readonly #setRead;
  readonly #setConv;
  readonly #setPerson2;
  readonly #setGuest;
  readonly #keepGuest;
  readonly #forgetGuests;
  readonly #convPeople;
  readonly #hasMessages;
  readonly #dropConv;
  readonly #dropRead;
  /** A delete's old text may still be in the WAL file: the checkpoint that wipes it was busy. */
  #scrubPending = false;
  readonly #search: SearchIndexWriter;
  /** Rooms written since the last prune: count retention only looks at those. */
  readonly #touched = new Set<string>();

  constructor(path: string, synchronous: string, search: boolean) {
    this.#db = new DatabaseSync(path);
    // secure_delete: space freed by a delete or an edit (cells, pages) is zeroed, not left readable.
    this.#db.exec(
      `PRAGMA journal_mode = WAL; PRAGMA synchronous = ${synchronous}; PRAGMA busy_timeout = 5000;
       PRAGMA secure_delete = ON`,
    );
    this.#insert = this.#db.prepare(
      "INSERT INTO messages (room, seq, ts, sender, text, ukey, cid, meta, sid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.#insertMention = this.#db.prepare(
      "INSERT OR IGNORE INTO mentions (ukey, room, seq) VALUES (?, ?, ?)",
    );
    // Only on a message that is stored and not deleted: retention may have removed it since the check.
    this.#addReaction = this.#db.prepare(
      `INSERT OR IGNORE INTO reactions (room, seq, emoji, ukey, ts) SELECT ?1, ?2, ?3, ?4, ?5
       WHERE EXISTS (SELECT 1 FROM messages WHERE room = ?1 AND seq = ?2 AND deleted = 0)`,
    );
    this.#dropReaction = this.#db.prepare(
      "DELETE FROM reactions WHERE room = ? AND seq = ? AND emoji = ? AND ukey = ?",
    );
    this.#dropExtras = [
      this.#db.prepare("DELETE FROM reactions WHERE room = ? AND seq = ?"),
      this.#db.prepare("DELETE FROM mentions WHERE room = ? AND seq = ?"),
    ];
    this.#trimExtras = [
      this.#db.prepare("DELETE FROM reactions WHERE room = ? AND seq <= ?"),
      this.#db.prepare("DELETE FROM mentions WHERE room = ? AND seq <= ?"),
    ];
    // After age retention: the reactions and mention rows whose message is gone.
    this.#orphans = [
      this.#db.prepare(
        `DELETE FROM reactions WHERE NOT EXISTS
           (SELECT 1 FROM messages m WHERE m.room = reactions.room AND m.seq = reactions.seq)`,
      ),
      this.#db.prepare(
        `DELETE FROM mentions WHERE NOT EXISTS
           (SELECT 1 FROM messages m WHERE m.room = mentions.room AND m.seq = mentions.seq)`,
      ),
    ];
    this.#setLast = this.#db.prepare(
      "INSERT INTO rooms (room, last_seq) VALUES (?, ?) ON CONFLICT (room) DO UPDATE SET last_seq = excluded.last_seq",
    );
    this.#getLast = this.#db.prepare("SELECT last_seq AS s FROM rooms WHERE room = ?");
    // Their search ids: the index rows go with them.
    this.#trimCount = this.#db.prepare("DELETE FROM messages WHERE room = ? AND seq <= ? RETURNING sid");
    // The rooms it touched: a conversation it empties loses its list entries and read positions.
    this.#trimAge = this.#db.prepare("DELETE FROM messages WHERE ts < ? RETURNING room, sid");
    // A delete drops the reply quote and mentions (meta) with the text; the sender's display name stays.
    this.#changeMessage = this.#db.prepare(
      `UPDATE messages SET text = ?1, deleted = ?2, edited_ts = ?3,
         meta = CASE WHEN ?2 = 0 THEN meta WHEN json_extract(meta, '$.display') IS NULL THEN NULL
                ELSE json_object('display', json_extract(meta, '$.display')) END
       WHERE room = ?4 AND seq = ?5 AND deleted = 0`,
    );
    // The message's change revision, and the room's: both in the change's transaction.
    this.#setMessageRev = this.#db.prepare("UPDATE messages SET rev = ? WHERE room = ? AND seq = ?");
    this.#setRoomRev = this.#db.prepare("UPDATE rooms SET rev = max(rev, ?) WHERE room = ?");
    this.#insertAudit = this.#db.prepare(
      "INSERT INTO audit (room, ts, action, by_uid, target, reason, until, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.#capAudit = this.#db.prepare(
      `DELETE FROM audit WHERE room = ?1 AND id <= (
         SELECT id FROM audit WHERE room = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)`,
    );
    // A partial change: NULL keeps the stored value (or the default for a new room).
    this.#setRules = this.#db.prepare(
      `INSERT INTO room_rules (room, topic, private, read_only, slow_mode)
         VALUES (?1, coalesce(?2, ''), coalesce(?3, 0), coalesce(?4, 0), coalesce(?5, 0))
       ON CONFLICT (room) DO UPDATE SET topic = coalesce(?2, topic), private = coalesce(?3, private),
         read_only = coalesce(?4, read_only), slow_mode = coalesce(?5, slow_mode)`,
    );
    this.#setPerson = this.#db.prepare(
      "INSERT OR REPLACE INTO room_people (room, uid, kind, until) VALUES (?, ?, ?, ?)",
    );
    this.#dropPerson = this.#db.prepare("DELETE FROM room_people WHERE room = ? AND uid = ? AND kind = ?");
    // Never backwards.
    this.#setRead = this.#db.prepare(
      `INSERT INTO reads (ukey, room, seq) VALUES (?, ?, ?)
       ON CONFLICT (ukey, room) DO UPDATE SET seq = max(seq, excluded.seq)`,
    );
    this.#setConv = this.#db.prepare(
      `INSERT INTO conversations (ukey, conv, peer, last_ts) VALUES (?, ?, ?, ?)
       ON CONFLICT (ukey, conv) DO UPDATE SET last_ts = max(last_ts, excluded.last_ts)`,
    );
    this.#setPerson2 = this.#db.prepare(
      `INSERT INTO people (ukey, uid, name, name_key, seen_ts) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (ukey) DO UPDATE SET uid = excluded.uid, name = excluded.name,
         name_key = excluded.name_key, seen_ts = excluded.seen_ts`,
    );
    // A later until stays: the guest wrote meanwhile (see keepGuest).
    this.#setGuest = this.#db.prepare(
      `INSERT INTO guests (ukey, until) VALUES (?, ?)
       ON CONFLICT (ukey) DO UPDATE SET until = max(until, excluded.until)`,
    );
    // Only guests have a row: a signed person's entry is never forgotten.
    this.#keepGuest = this.#db.prepare("UPDATE guests SET until = max(until, ?) WHERE ukey = ?");
    // The entry, the read positions, then the row that said when: the first two find keys through it.
    this.#forgetGuests = [
      this.#db.prepare("DELETE FROM people WHERE ukey IN (SELECT ukey FROM guests WHERE until < ?)"),
      this.#db.prepare("DELETE FROM reads WHERE ukey IN (SELECT ukey FROM guests WHERE until < ?)"),
      this.#db.prepare("DELETE FROM guests WHERE until < ?"),
    ];
    this.#convPeople = this.#db.prepare("SELECT ukey FROM conversations WHERE conv = ?");
    this.#hasMessages = this.#db.prepare("SELECT 1 FROM messages WHERE room = ? LIMIT 1");
    this.#dropConv = this.#db.prepare("DELETE FROM conversations WHERE conv = ?");
    this.#dropRead = this.#db.prepare("DELETE FROM reads WHERE ukey = ? AND room = ?");
    this.#expirePeople = this.#db.prepare(
      "DELETE FROM room_people WHERE kind IN ('ban', 'mute') AND until > 0 AND until <= ?",
    );
    this.#search = new SearchIndexWriter(this.#db, search);
  }

  /** Runs `fn` in one transaction; a false result (or a throw) rolls it back. */
  #transaction(fn: () => boolean): boolean {
    this.#db.exec("BEGIN IMMEDIATE");
    let keep: boolean;
    try {
      keep = fn();
    } catch (e) {
      this.#db.exec("ROLLBACK");
      throw e;
    }
    try {
      this.#db.exec(keep ? "COMMIT" : "ROLLBACK");
    } catch (e) {
      try {
        this.#db.exec("ROLLBACK");
      } catch { /* the transaction may be gone already */ }
      throw e;
    }
    return keep;
  }

  #audit(row: AuditRow, retain: number): void {
    this.#insertAudit.run(...row);
    this.#capAudit.run(row[0], retain);
  }

  /**
   * Replaces messages' texts (a tombstone: "") in one transaction, in order: one row each (a reply
   * keeps what it answers by reference, so none of them is written). Per row, 1 when it was changed,
   * 0 when it is not stored or already deleted (then its rev and audit entry are not written either).
   */
  changeMessages(
    rows: readonly (string | number | null)[][],
    revs: readonly (number | null)[],
    audits: readonly (AuditRow | null)[],
    retain: number,
    scrub: boolean,
  ): number[] {
    const counts: number[] = [];
    this.#transaction(() => {
      rows.forEach((row, i) => {
        const n = Number(this.#changeMessage.run(...row).changes);
        counts.push(n);
        if (n !== 1) return;
        const [room, seq] = [row[3] as string, row[4] as number];
        if (row[1] === 1) { for (const drop of this.#dropExtras) drop.run(room, seq); }
        // An edit is found by its new text only, a delete not at all: in the change's transaction.
        this.#search.change(room, seq, row[1] === 1 ? null : row[0] as string);
        const rev = revs[i];
        if (rev !== null) {
          this.#setMessageRev.run(rev, room, seq);
          this.#setRoomRev.run(rev, room);
        }
        const audit = audits[i];
        if (audit) this.#audit(audit, retain);
      });
      return true;
    });
    if (scrub && counts.includes(1)) this.#scrubPending = true;
    this.#scrub();
    return counts;
  }

  /**
   * The old text of a deleted message is zeroed in the database pages (secure_delete), but the WAL
   * file still holds the frames that carried it: checkpoint everything and truncate the WAL. Busy
   * (a reader on an older snapshot): tried again after the next write.
   */
  #scrub(): void {
    if (!this.#scrubPending) return;
    const r = this.#db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get() as { busy: number };
    this.#scrubPending = r.busy !== 0;
  }

  changeRoom(room: string, change: RoomChange, audit: AuditRow, retain: number): void {
    this.#transaction(() => {
      switch (change.kind) {
        case "rules": {
          const r = change.rules;
          const flag = (b: boolean | undefined) => b === undefined ? null : b ? 1 : 0;
          this.#setRules.run(
            room,
            r.topic ?? null,
            flag(r.private),
            flag(r.readOnly),
            r.slowModeSeconds ?? null,
          );
          break;
        }
        case "allow":
          this.#setPerson.run(room, change.uid, "allow", 0);
          break;
        case "ban":
        case "mute":
          this.#setPerson.run(room, change.uid, change.kind, change.until);
          break;
        case "disallow":
          this.#dropPerson.run(room, change.uid, "allow");
          break;
        case "unban":
        case "unmute":
          this.#dropPerson.run(room, change.uid, change.kind.slice(2));
          break;
      }
      this.#audit(audit, retain);
      return true;
    });
    this.#scrub();
  }

  /** Adds or removes one reaction (one row; an add to a message that is gone adds nothing). */
  react(row: readonly (string | number)[], on: boolean): void {
    if (on) this.#addReaction.run(...row);
    else this.#dropReaction.run(row[0], row[1], row[2], row[3]);
  }

  append(
    rows: readonly (string | number | null)[][],
    mentions: readonly (string | number)[][],
    reads: readonly (string | number)[][],
    convs: readonly (string | number)[][],
    keeps: readonly (string | number)[][],
  ): void {
    const last = new Map<string, number>();
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      rows.forEach((r) => {
        const [room, seq, ts, sender, text] = r as [string, number, number, string, string];
        const sid = this.#search.on ? this.#search.nextId(ts) : null;
        this.#insert.run(...r, sid);
        last.set(room, seq);
        // Findable once acked: the index row is in the message's transaction.
        if (sid !== null) this.#search.add(sid, room, seq, indexRow(room, sender, text));
      });
      for (const m of mentions) this.#insertMention.run(...m);
      for (const [room, seq] of last) this.#setLast.run(room, seq);
      // One row per sender and room: the batch's last message of each.
      const newest = new Map<string, (string | number)[]>();
      for (const r of reads) newest.set(`${r[0]}\n${r[1]}`, r);
      for (const r of newest.values()) this.#setRead.run(...r);
      for (const c of convs) this.#setConv.run(...c);
      for (const k of keeps) this.#keepGuest.run(...k);
      this.#db.exec("COMMIT");
    } catch (e) {
      try {
        this.#db.exec("ROLLBACK");
      } catch { /* the transaction may be gone already */ }
      throw e;
    }
    for (const room of last.keys()) this.#touched.add(room);
    this.#scrub();
  }

  /** People's directory entries (and when a guest's is forgotten), in one transaction. */
  people(rows: readonly (readonly (string | number | null)[])[]): void {
    this.#transaction(() => {
      for (const row of rows) {
        this.#setPerson2.run(...row.slice(0, 5) as (string | number)[]);
        if (row[5] !== null && row[5] !== undefined) this.#setGuest.run(row[0], row[5]);
      }
      return true;
    });
  }

  /** A read position, clamped to the room's last seq, never backwards. */
  read(key: string, room: string, seq: number): void {
    const last = (this.#getLast.get(room) as { s: number } | undefined)?.s ?? 0;
    const at = Math.min(seq, last);
    if (at > 0) this.#setRead.run(key, room, at);
  }

  prune(now: number, retainMessages: number, retainMs: number): number {
    let n = 0;
    if (retainMessages > 0) {
      for (const room of this.#touched) {
        const last = (this.#getLast.get(room) as { s: number } | undefined)?.s ?? 0;
        const trimmed = this.#trimCount.all(room, last - retainMessages) as { sid: number | null }[];
        if (trimmed.length > 0) { for (const t of this.#trimExtras) t.run(room, last - retainMessages); }
        this.#search.drop(trimmed);
        n += trimmed.length;
      }
    }
    this.#touched.clear();
    if (retainMs > 0) {
      const gone = this.#trimAge.all(now - retainMs) as { room: string; sid: number | null }[];
      if (gone.length > 0) {
        for (const o of this.#orphans) o.run();
        this.#search.drop(gone);
        this.#forgetEmptied(new Set(gone.map((r) => r.room)));
      }
      n += gone.length;
    }
    this.#expirePeople.run(now);
    this.#transaction(() => {
      for (const f of this.#forgetGuests) f.run(now);
      return true;
    });
    this.#scrub();
    return n;
  }

  /**
   * Conversations among `rooms` that retention emptied leave both people's lists, with their read
   * positions. The room's row (its last seq) stays, so a new message there never reuses a seq. Only
   * age retention can empty one: count retention keeps the newest messages.
   */
  #forgetEmptied(rooms: ReadonlySet<string>): void {
    for (const room of rooms) {
      if (!room.startsWith("@") || this.#hasMessages.get(room)) continue;
      for (const { ukey } of this.#convPeople.all(room) as { ukey: string }[]) this.#dropRead.run(ukey, room);
      this.#dropConv.run(room);
    }
  }

  /** History from before the index (see the `index` request), in one transaction with its progress. */
  index(rows: readonly (string | number)[][], cursor: string): number {
    let n = 0;
    this.#transaction(() => {
      for (const r of rows) if (this.#search.rebuild(r)) n++;
      this.#search.progress(cursor);
      return true;
    });
    return n;
  }

  close(): void {
    this.#db.close();
  }
}

/**
 * The search index's writes (`message_search` and `messages.sid`, see the schema): always in the
 * transaction of the message write they go with.
 */
class SearchIndexWriter {
  /** The newest search id given: this writer is the database's only one, so it need not be read again. */
  #lastId: number;
  readonly #idInMs;
  readonly #addText;
  readonly #sidOf;
  readonly #setSid;
  readonly #dropText;
  readonly #unindexed;
  readonly #progress;

  /** Whether the index is kept (`--search on`). */
  readonly on: boolean;

  constructor(db: DatabaseSync, on: boolean) {
    this.on = on;
    // Messages written with the index off have no rows: the rebuild, which indexes any message that
    // has none, goes over the whole history when the index is next on (nothing that has one again).
    if (!on) db.exec("UPDATE meta SET v = '[]' WHERE k = 'search_rebuild'");
    this.#lastId = (db.prepare("SELECT coalesce(max(id), 0) AS id FROM message_search_content").get() as {
      id: number;
    }).id;
    // History indexed late goes at its own time among the rest: the next free number in its ms.
    this.#idInMs = db.prepare(
      "SELECT coalesce(max(id) + 1, ?1) AS id FROM message_search_content WHERE id >= ?1 AND id < ?1 + 1000",
    );
    this.#addText = db.prepare(
      "INSERT INTO message_search (rowid, words, extra, tags, room, seq) VALUES (?, ?, ?, ?, ?, ?)",
    );
    this.#sidOf = db.prepare("SELECT sid, ts, sender FROM messages WHERE room = ? AND seq = ?");
    this.#setSid = db.prepare("UPDATE messages SET sid = ? WHERE room = ? AND seq = ?");
    this.#dropText = db.prepare("DELETE FROM message_search WHERE rowid = ?");
    this.#unindexed = db.prepare(
      "SELECT 1 FROM messages WHERE room = ? AND seq = ? AND deleted = 0 AND text = ? AND sid IS NULL",
    );
    this.#progress = db.prepare("UPDATE meta SET v = ? WHERE k = 'search_rebuild'");
  }

  /** The search id of a new message of time `ts` (see `searchId`), for its row and {@link add}. */
  nextId(ts: number): number {
    return this.#lastId = searchId(ts, this.#lastId);
  }

  /** A new message's index row (words, extra, tags) as search id `id`. */
  add(id: number, room: string, seq: number, row: readonly string[]): void {
    this.#addText.run(id, row[0], row[1], row[2], room, seq);
  }

  /**
   * An edit (its new text) or a delete (null); the message's row is changed already. With the index
   * off, an edit only drops the old row: the rebuild indexes the new text once the index is on again.
   */
  change(room: string, seq: number, text: string | null): void {
    const m = this.#sidOf.get(room, seq) as { sid: number | null; ts: number; sender: string } | undefined;
    if (!m) return;
    if (m.sid !== null) this.#dropText.run(m.sid);
    if (text === null || !this.on) {
      if (m.sid !== null) this.#setSid.run(null, room, seq);
      return;
    }
    const row = indexRow(room, m.sender, text);
    if (m.sid !== null) return this.add(m.sid, room, seq, row);
    // Edited before the rebuild got to it: indexed now, by its new text.
    this.#insertLate(room, seq, m.ts, row);
  }

  /** Indexes a stored message of time `ts` among the others of its ms: words, extra, tags. */
  #insertLate(room: string, seq: number, ts: number, row: readonly string[]): void {
    const id = (this.#idInMs.get(ts * 1000) as { id: number }).id;
    // A message of this very ms may come next: its id must be past this one.
    this.#lastId = Math.max(this.#lastId, id);
    this.add(id, room, seq, row);
    this.#setSid.run(id, room, seq);
  }

  /** One message of the rebuild: true when indexed (false: indexed already, or changed since read). */
  rebuild(r: readonly (string | number)[]): boolean {
    const [room, seq, ts, sender, text] = r as [string, number, number, string, string];
    if (!this.#unindexed.get(room, seq, text)) return false;
    this.#insertLate(room, seq, ts, indexRow(room, sender, text));
    return true;
  }

  progress(cursor: string): void {
    this.#progress.run(cursor);
  }

  /** The index rows of messages retention removed. */
  drop(gone: readonly { sid: number | null }[]): void {
    for (const { sid } of gone) if (sid !== null) this.#dropText.run(sid);
  }
}

/** The message handler; the writer lives in its closure, one per worker. */
function serve(): (e: MessageEvent<WriterRequest>) => void {
  let writer: Writer | undefined;
  return (e) => {
    const req = e.data;
    let answer: WriterAnswer;
    try {
      switch (req.op) {
        case "open":
          // One connection per worker: a second would stay open, unseen, and hold locks after close.
          if (writer) throw new Error("the writer is open already");
          writer = new Writer(req.path, req.synchronous, req.search);
          answer = { id: req.id, ok: true };
          break;
        case "append":
          writer!.append(req.rows, req.mentions, req.reads, req.convs, req.keeps);
          answer = { id: req.id, ok: true };
          break;
        case "react":
          writer!.react(req.row, req.on);
          answer = { id: req.id, ok: true };
          break;
        case "people":
          writer!.people(req.rows);
          answer = { id: req.id, ok: true };
          break;
        case "read":
          writer!.read(req.key, req.room, req.seq);
          answer = { id: req.id, ok: true };
          break;
        case "prune":
          answer = { id: req.id, ok: true, count: writer!.prune(req.now, req.retainMessages, req.retainMs) };
          break;
        case "messages":
          answer = {
            id: req.id,
            ok: true,
            counts: writer!.changeMessages(
              req.rows,
              req.revs,
              req.audits,
              req.auditRetain,
              req.scrub,
            ),
          };
          break;
        case "index":
          answer = { id: req.id, ok: true, count: writer!.index(req.rows, req.cursor) };
          break;
        case "room":
          writer!.changeRoom(req.room, req.change, req.audit, req.auditRetain);
          answer = { id: req.id, ok: true };
          break;
        case "close":
          writer?.close();
          writer = undefined;
          answer = { id: req.id, ok: true };
          break;
      }
    } catch (err) {
      answer = { id: req.id, ok: false, error: (err as Error)?.message ?? String(err) };
    }
    self.postMessage(answer);
  };
}

self.onmessage = serve();

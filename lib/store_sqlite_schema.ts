/**
 * The history database's schema, its upgrades from older versions, and opening a file with both
 * checked: the one place that knows which tables and versions `chat.db` has.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { newEpoch } from "./domain.ts";
import { StoreError } from "./store.ts";

/**
 * Bumped when the schema changes; a file of an older version this server knows is upgraded in place
 * (see {@link MIGRATIONS}), any other is refused, not misread.
 */
const SCHEMA_VERSION = 5;

/**
 * Version 5 (#21, the write cost): the search index keeps no table of its own beside FTS5. A message's
 * search id is `messages.sid` (NULL: not indexed), and `message_search` holds the room and seq of each
 * of its rows itself (unindexed columns, kept although the text is not: `contentless_unindexed`), so a
 * search maps its matches to messages without the `search_docs` table, whose row and unique index on
 * (room, seq) were half of what the index cost the writer (measured: 10 of 20 us a message). The upgrade
 * drops the old index and lets the rebuild index the history again (a contentless index cannot be
 * copied: its text is not kept). A later upgrade that drops `message_search` must know that SQLite 3.53
 * leaves its `message_search_content` table behind, which only another connection may then drop.
 *
 * Version 4 (#18): a reply's `meta.replyTo` is a reference, `{seq, from}`, quoted when read; an edit
 * or a delete writes its own row only. No new table: the upgrade drops the quote text of the replies
 * whose message is still stored (it is made from that message now).
 *
 * Version 3 (#11): `messages.meta` (JSON: `replyTo`, `mentions`), the people directory (a person key's
 * uid and current name, found by {@link nameKeys}-style key), direct conversations per person, read
 * positions per person and room, mentions per person, reactions per message and person.
 *
 * Version 2 (#10): tombstones and edits on `messages`; room rules, people (`kind` is `allow`, `ban`
 * or `mute`; `until` ms, 0 = forever) and the audit log.
 *
 * Also in version 3: `rooms.rev`, the room's change revision (deletes and edits, counted from 1),
 * and `messages.rev`, the rev a message's last change took (NULL: never changed), indexed for resume.
 *
 * Added within version 3 (#18; a new table, which every open creates if missing, so no upgrade step):
 * `guests`, when each guest's directory entry is forgotten (see `Store.rememberPerson`); a file from
 * before has none, so its guests stay until they connect again. And `conversations_conv`: retention
 * that empties a conversation finds its two list entries (and read positions) by it.
 *
 * Added within version 4 (#21, new tables again, so no upgrade step): the search index, reshaped in
 * version 5. `message_search` is FTS5 over the folded words, the CJK characters and pairs, and tags
 * (`link`, room, sender), contentless: the text stays in `messages` only, so a delete leaves no copy. Its
 * rowid is the message's search id (`messages.sid`; see `searchId`: newest-first order and the page
 * cursor), and it keeps the message's room and seq. `meta.search_rebuild` is where indexing of the
 * history from before the index has got to: `done`, or the last `[room, seq]` indexed (`[]`: not
 * started).
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS rooms (
  room TEXT PRIMARY KEY, last_seq INTEGER NOT NULL,
  rev INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  room TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, sender TEXT NOT NULL,
  text TEXT NOT NULL, ukey TEXT NOT NULL, cid TEXT,
  deleted INTEGER NOT NULL DEFAULT 0, edited_ts INTEGER, meta TEXT,
  rev INTEGER, sid INTEGER,
  PRIMARY KEY (room, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_cid ON messages (ukey, cid) WHERE cid IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_ts ON messages (ts);
CREATE INDEX IF NOT EXISTS messages_rev ON messages (room, rev) WHERE rev IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS room_rules (
  room TEXT PRIMARY KEY, topic TEXT NOT NULL, private INTEGER NOT NULL, read_only INTEGER NOT NULL,
  slow_mode INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS room_people (
  room TEXT NOT NULL, uid TEXT NOT NULL, kind TEXT NOT NULL, until INTEGER NOT NULL,
  PRIMARY KEY (room, uid, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY, room TEXT NOT NULL, ts INTEGER NOT NULL, action TEXT NOT NULL,
  by_uid TEXT NOT NULL, target TEXT, reason TEXT, until INTEGER, seq INTEGER
);
CREATE INDEX IF NOT EXISTS audit_room ON audit (room);
CREATE TABLE IF NOT EXISTS people (
  ukey TEXT PRIMARY KEY, uid TEXT NOT NULL, name TEXT NOT NULL, name_key TEXT NOT NULL, seen_ts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS people_name ON people (name_key);
CREATE TABLE IF NOT EXISTS guests (
  ukey TEXT PRIMARY KEY, until INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS guests_until ON guests (until);
CREATE TABLE IF NOT EXISTS conversations (
  ukey TEXT NOT NULL, conv TEXT NOT NULL, peer TEXT NOT NULL, last_ts INTEGER NOT NULL,
  PRIMARY KEY (ukey, conv)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS conversations_recent ON conversations (ukey, last_ts);
CREATE INDEX IF NOT EXISTS conversations_conv ON conversations (conv);
CREATE TABLE IF NOT EXISTS reads (
  ukey TEXT NOT NULL, room TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (ukey, room)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mentions (
  ukey TEXT NOT NULL, room TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (ukey, room, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mentions_message ON mentions (room, seq);
CREATE TABLE IF NOT EXISTS reactions (
  room TEXT NOT NULL, seq INTEGER NOT NULL, emoji TEXT NOT NULL, ukey TEXT NOT NULL, ts INTEGER NOT NULL,
  PRIMARY KEY (room, seq, emoji, ukey)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS message_search USING fts5 (
  words, extra, tags, room UNINDEXED, seq UNINDEXED,
  content = '', contentless_delete = 1, contentless_unindexed = 1, tokenize = 'ascii'
);
INSERT OR IGNORE INTO meta (k, v)
  SELECT 'search_rebuild', CASE WHEN EXISTS (SELECT 1 FROM messages) THEN '[]' ELSE 'done' END;
PRAGMA user_version = ${SCHEMA_VERSION};
`;

/** From each older version to the next; {@link SCHEMA} then adds the new tables. */
const MIGRATIONS: Record<number, string> = {
  1: `ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE messages ADD COLUMN edited_ts INTEGER;`,
  2: `ALTER TABLE messages ADD COLUMN meta TEXT;
      ALTER TABLE messages ADD COLUMN rev INTEGER;
      ALTER TABLE rooms ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;`,
  // A reply whose message retention removed keeps the quote it had: nothing else would tell it.
  3: `UPDATE messages SET meta = json_remove(meta, '$.replyTo.text', '$.replyTo.deleted')
      WHERE meta IS NOT NULL AND json_extract(meta, '$.replyTo.seq') IS NOT NULL
        AND EXISTS (SELECT 1 FROM messages o
                    WHERE o.room = messages.room AND o.seq = json_extract(messages.meta, '$.replyTo.seq'));`,
  // The old index's pages are zeroed as they are freed: they hold the words of messages deleted since.
  // A file from before the index has neither table and no rebuild row yet (SCHEMA adds it).
  4: `PRAGMA secure_delete = ON;
      DROP TABLE IF EXISTS search_docs;
      DROP TABLE IF EXISTS message_search;
      ALTER TABLE messages ADD COLUMN sid INTEGER;
      UPDATE meta SET v = '[]' WHERE k = 'search_rebuild' AND EXISTS (SELECT 1 FROM messages);`,
};

/**
 * Opens (or creates) the history database at `path` in WAL mode for reading: checks its integrity,
 * upgrades an older schema in place (see {@link MIGRATIONS}) and gives a new file its epoch.
 * @throws {StoreError} naming `path` when the file is corrupt, of an unknown version or cannot be opened.
 */
export function openDatabase(path: string): DatabaseSync {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path);
    // First, so that a lock held by another process (or a writer still closing) is waited for.
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec("PRAGMA journal_mode = WAL");
    const check = db.prepare("PRAGMA quick_check").get() as { quick_check: string } | undefined;
    if (check?.quick_check !== "ok") {
      throw new Error(`integrity check says ${JSON.stringify(check?.quick_check)}`);
    }
    const { user_version: version } = db.prepare("PRAGMA user_version").get() as { user_version: number };
    const empty = !db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'messages'").get();
    if (!empty && version !== SCHEMA_VERSION && !MIGRATIONS[version]) {
      throw new Error(
        `it holds schema version ${version}, this server reads version ${SCHEMA_VERSION}; ` +
          "move the file away (or use another --data-dir) to start afresh",
      );
    }
    // One transaction: a crash mid-upgrade leaves the old version, which the next start upgrades.
    db.exec("BEGIN IMMEDIATE");
    try {
      if (!empty) { for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]); }
      db.exec(SCHEMA);
      db.exec("COMMIT");
    } catch (e) {
      db.exec("ROLLBACK");
      throw e;
    }
    db.prepare("INSERT OR IGNORE INTO meta (k, v) VALUES ('epoch', ?)").run(newEpoch());
  } catch (e) {
    try {
      db?.close();
    } catch { /* already failing; report the first error */ }
    throw new StoreError(`Cannot open the history database "${path}": ${(e as Error).message}`);
  }
  return db;
}

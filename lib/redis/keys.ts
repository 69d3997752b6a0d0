/**
 * Where the Redis engine keeps things. Per room, under the hash tag `{room}` (so one room's keys live in
 * one Cluster slot):
 *
 * - `chat:{room}:meta`, a hash: `seq` (the last one handed out), `epoch` (set once), `rev` (the
 *   room's change revision: one per delete or edit) and `tl` (the lowest seq whose text bucket fields
 *   retention has not removed yet);
 * - `chat:{room}:log`, a stream: one entry per message, its id `<seq>-1`, holding what never changes;
 * - `chat:{room}:t:<n>`, a hash per 64 seqs (`n` = floor(seq / 64)): what a change replaces or removes
 *   (text, mentions, edit and delete fields; see `lua/stored.lua`);
 * - `chat:{room}:changes`, a sorted set: the seqs of changed messages, scored by that rev (for resume);
 * - `chat:{room}:cids:<n>`, a hash per half dedup window: `<key>:<cid>` to the seq and ts the person's
 *   cid was stored under (see `lib/redis/lua/append.lua`);
 * - `chat:{room}`, the channel the messages of each append are published on (a JSON object: the
 *   epoch and the messages), and each change
 *   to a message or to the room's rules or people (a JSON object); `chat:{room}:lines` for lines
 *   that are not stored (typing);
 * - `chat:{room}:rules`, a hash (`topic`, `private`, `readOnly`, `slow`); `chat:{room}:allowed`, a set
 *   of uids; `chat:{room}:bans` and `chat:{room}:mutes`, hashes uid to until (ms, 0 = forever);
 *   `chat:{room}:audit`, a list of JSON entries, newest first, capped at `auditRetain`;
 * - `chat:{room}:reads`, a hash: person key to their read position (seq) in the room;
 * - presence: `chat:{room}:who`, a sorted set of `<process>\t<name>` by expiry, and `chat:{room}:names`,
 *   a hash name to the number of processes that hold it, and `chat:{room}:disp`, a hash name to display
 *   name for those present who have one (see `lua/presence_join.lua`);
 * - reactions (#11): `chat:{room}:rc:<seq>`, a hash emoji to count; `chat:{room}:rp:<seq>`, a hash
 *   person key to that person's emoji (tab-separated); `chat:{room}:rx`, a sorted set of the seqs
 *   that have reactions (a page read, retention and deletes find them there);
 * - mentions (#11): `chat:{room}:mn:<person key>`, a sorted set of the seqs that mention the person
 *   (score = seq), capped (the engine's `MENTIONS_KEPT`): in the room's slot, so the append, a delete and
 *   retention change them atomically with the message; a person's counts are one read per room.
 *
 * A direct conversation is a room whose name is its id (`@…`, see `conversationId`), with the keys
 * above. Per person, under `{names}` (one slot): `chat:{names}:dir:<key>` (hash `uid`, `name`, `nk`,
 * `seen`) and `chat:{names}:dirname:<name key>` (to the key) are the people directory;
 * `chat:{names}:convs:<key>` (sorted set, conv by last ts) and `chat:{names}:peers:<key>` (hash, conv to
 * the other person's key) the person's conversations, `chat:{names}:wrote:<key>` (set) those they wrote in; `chat:{names}:name:<name key>` (`<key>\t<name>`,
 * one per lookalike key of a name) and `chat:{names}:person:<key>` (the name) are the name claims, which
 * expire unless refreshed. `chat:people` and `chat:renames` are the channels every process hears;
 * `chat:sse:{<session>}` is the channel of one fallback (SSE) session, which the process holding it
 * hears (the frames of its POSTs that landed on other processes).
 *
 * A message's stream entry holds `f` (from), `ts`, `c` (cid), `k` (sender key), `dn` (the sender's display
 * name, when they had one), and for a reply `q` and
 * `qf` (the seq and sender of the message it answers, quoted when read). Its text bucket holds `<seq>`
 * (text), `m<seq>` (mentioned names JSON), `k<seq>` (mentioned person keys, tab-separated), and once
 * changed `e<seq>` (editedTs), `d<seq>` (deleted) and `v<seq>` (the rev of its last change). Entries
 * stored before #18 hold `t`, `d`, `e`, `v`, `r` (the quote JSON), `m` and `mk` themselves.
 *
 * The scripts derive some keys from those they are given (a room's `chat:{room}:` prefix from its meta,
 * log or rx key, its channel from its meta key, a directory entry from a name's directory key): what
 * changes here changes there.
 * @module
 */

/** The keys of one room (all under its hash tag). */
export const roomKeys = (room: string) => ({
  meta: `chat:{${room}}:meta`,
  log: `chat:{${room}}:log`,
  channel: `chat:{${room}}`,
  lines: `chat:{${room}}:lines`,
  who: `chat:{${room}}:who`,
  names: `chat:{${room}}:names`,
  disp: `chat:{${room}}:disp`,
  rules: `chat:{${room}}:rules`,
  allowed: `chat:{${room}}:allowed`,
  bans: `chat:{${room}}:bans`,
  mutes: `chat:{${room}}:mutes`,
  audit: `chat:{${room}}:audit`,
  rx: `chat:{${room}}:rx`,
  /** Followed by a person key: the seqs that mention them. */
  mentions: `chat:{${room}}:mn:`,
  changes: `chat:{${room}}:changes`,
  reads: `chat:{${room}}:reads`,
});

/**
 * The rooms that have messages (conversations too), scored by the ts of their oldest (or earlier): the
 * engine's prune finds there the rooms whose messages are due for age retention, also when nobody
 * writes to them again (the append script ages only the rooms written to). One key: on a Cluster in its
 * own slot, written beside each room's append.
 */
export const AGING = "chat:aging";

/**
 * The room directory's two indexes, sorted sets of room names (score 0, so `ZRANGEBYLEX` reads them in
 * name order from any name). `ROOMS`: the rooms a message was stored in or whose rules or people were
 * changed (conversations never), written beside each append and change; private ones are left out when
 * read, so a room that turns private again is listed again. `PRESENT`: the rooms someone is in on some
 * process, written when a process starts serving one and again at each presence refresh; a room found
 * empty when read is taken out (so one joined again at that moment is back at the next refresh). Each
 * key is one slot on a Cluster; a room whose index entry was lost to a crash is back at its next write.
 */
export const ROOMS = "chat:rooms";
/** See {@link ROOMS}. */
export const PRESENT = "chat:present";

/** The channel every process hears for lines to one person (direct messages). */
export const PEOPLE = "chat:people";
/** The channel every process hears for renames (told to the members of the person's rooms). */
export const RENAMES = "chat:renames";
/** The channel of one fallback (SSE) session, heard by the process that holds it. */
export const sessionChannel = (session: string) => `chat:sse:{${session}}`;
/**
 * A name claim's key. One hash tag for every name key: a claim touches several, and on a Cluster they
 * must share a slot.
 */
export const nameKey = (k: string) => `chat:{names}:name:${k}`;
/** The name a person holds now (a claim). */
export const personKey = (key: string) => `chat:{names}:person:${key}`;
/** A person's entry in the people directory (durable, unlike the name claims): a hash. */
export const dirKey = (key: string) => `chat:{names}:dir:${key}`;
/** The people directory's key for one name (its first lookalike key): to the person's key. */
export const dirNameKey = (nameKey: string) => `chat:{names}:dirname:${nameKey}`;
/** A person's conversations: a sorted set, conv by last ts. */
export const convsKey = (key: string) => `chat:{names}:convs:${key}`;
/** The other person of each of a person's conversations: a hash, conv to their key. */
export const peersKey = (key: string) => `chat:{names}:peers:${key}`;
/** The conversations a person has written in: a set of convs (first contacts are those the other has not). */
export const wroteKey = (key: string) => `chat:{names}:wrote:${key}`;

/**
 * The Redis engine: rooms shared by every server process on one Redis. Per room, under the hash tag
 * `{room}` (so one room's keys live in one Cluster slot):
 *
 * - `chat:{room}:meta`, a hash: `seq` (the last one handed out), `epoch` (set once) and `rev` (the
 *   room's change revision: one per delete or edit);
 * - `chat:{room}:log`, a stream: one entry per message, its id `<seq>-1` (a changed one's field `v`:
 *   the rev of its last change);
 * - `chat:{room}:changes`, a sorted set: the seqs of changed messages, scored by that rev (for resume);
 * - `chat:{room}:cids:<n>`, a hash per half dedup window: `<key>:<cid>` to the seq and ts the person's
 *   cid was stored under (see {@link APPEND});
 * - `chat:{room}`, the channel the messages of each append are published on (a JSON object: the
 *   epoch and the messages), and each change
 *   to a message or to the room's rules or people (a JSON object); `chat:{room}:lines` for lines
 *   that are not stored (typing);
 * - `chat:{room}:rules`, a hash (`topic`, `private`, `readOnly`, `slow`); `chat:{room}:allowed`, a set
 *   of uids; `chat:{room}:bans` and `chat:{room}:mutes`, hashes uid to until (ms, 0 = forever);
 *   `chat:{room}:audit`, a list of JSON entries, newest first, capped at `auditRetain`;
 * - `chat:{room}:reads`, a hash: person key to their read position (seq) in the room.
 * - reactions (#11): `chat:{room}:rc:<seq>`, a hash emoji to count; `chat:{room}:rp:<seq>`, a hash
 *   person key to that person's emoji (tab-separated); `chat:{room}:rx`, a sorted set of the seqs
 *   that have reactions (a page read, retention and deletes find them there);
 * - mentions (#11): `chat:{room}:mn:<person key>`, a sorted set of the seqs that mention the person
 *   (score = seq), capped at {@link MENTIONS_KEPT}: in the room's slot, so the append, a delete and
 *   retention change them atomically with the message; a person's counts are one read per room.
 *
 * A direct conversation is a room whose name is its id (`@…`, see `conversationId`), with the keys
 * above. Per person, under `{names}` (one slot): `chat:{names}:dir:<key>` (hash `uid`, `name`, `nk`,
 * `seen`) and `chat:{names}:dirname:<name key>` (to the key) are the people directory;
 * `chat:{names}:convs:<key>` (sorted set, conv by last ts) and `chat:{names}:peers:<key>` (hash, conv to
 * the other person's key) the person's conversations.
 *
 * A message's stream entry holds `f` (from), `t` (text), `ts`, `c` (cid), `k` (sender key), and when
 * it has them `d` (deleted), `e` (editedTs), `r` (reply quote JSON), `m` (mentioned names JSON) and
 * `mk` (mentioned person keys, tab-separated).
 *
 * A stream entry cannot be changed in place, and `XDEL` only flags an entry (its bytes stay in the
 * node, in `DUMP`, in the RDB): a delete or an edit rewrites the end of the room's stream from the
 * target's node on (see {@link CHANGE}), so a deleted text is gone from Redis.
 *
 * One Lua script per group of messages (on a Cluster: per room and group) numbers, de-duplicates,
 * appends, trims and publishes atomically, so `seq` is gap-free and never reused across processes.
 * Pub/sub is lossy: a process that sees a seq jump, or comes back from a lost connection, reads the gap
 * from the stream before it delivers newer.
 * @module
 */
import { createClient, createCluster } from "@redis/client";
import {
  type AccessList,
  type Appended,
  type AuditEntry,
  type ChangeGuard,
  type ChangeResult,
  type ChangesPage,
  type ConversationEntry,
  DEFAULT_AUDIT_RETAIN,
  type Draft,
  type Engine,
  type EngineEvents,
  type HistoryPage,
  type MessageChange,
  type MessageReactions,
  type Person,
  type ReactionCaps,
  type ReactResult,
  type ReadMark,
  refusedDraft,
  type RoomAccess,
  type RoomChange,
  type RoomRules,
  UnavailableError,
} from "./engine.ts";
import type { Logger } from "./log.ts";
import { type ChatMessage, QUOTE_MAX_CHARS } from "./protocol.ts";
import { nameKeys } from "./names.ts";
import { checkRoomChange, holds, newEpoch } from "./store.ts";

/** Options of {@link RedisEngine.connect}. */
export interface RedisOptions {
  url: string;
  /** Messages kept per room (0 = all). */
  retainMessages: number;
  /** Milliseconds a message is kept (0 = forever). */
  retainMs: number;
  /** Milliseconds a `cid` is remembered. */
  dedupWindowMs: number;
  /** Audit entries kept per room (the newest). @default 1000 */
  auditRetain?: number;
  log: Logger;
  /** Milliseconds a command may wait for Redis before it fails as unavailable. @default 2000 */
  commandTimeoutMs?: number;
  /**
   * Milliseconds a process's presence entries live without a refresh: when a process dies, its
   * people leave their rooms within this (and a third of it). @default 15000
   */
  presenceTtlMs?: number;
  /** Milliseconds a name stays held after its person's last connection anywhere. @default 60000 */
  nameHoldMs?: number;
}

const keys = (room: string) => ({
  meta: `chat:{${room}}:meta`,
  log: `chat:{${room}}:log`,
  channel: `chat:{${room}}`,
  lines: `chat:{${room}}:lines`,
  who: `chat:{${room}}:who`,
  names: `chat:{${room}}:names`,
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

/** The channel every process hears for lines to one person (direct messages). */
const PEOPLE = "chat:people";
/** The channel every process hears for renames (told to the members of the person's rooms). */
const RENAMES = "chat:renames";
// One hash tag for every name key: a claim touches several, and on a Cluster they must share a slot.
const nameKey = (k: string) => `chat:{names}:name:${k}`;

const personKey = (key: string) => `chat:{names}:person:${key}`;
/** The people directory (durable, unlike the name claims above): a hash per person, a key per name. */
const dirKey = (key: string) => `chat:{names}:dir:${key}`;
const dirNameKey = (nameKey: string) => `chat:{names}:dirname:${nameKey}`;
/** A person's conversations: a sorted set (conv by last ts) and a hash (conv to the other person's key). */
const convsKey = (key: string) => `chat:{names}:convs:${key}`;
const peersKey = (key: string) => `chat:{names}:peers:${key}`;

/**
 * KEYS: the person's entry, their new name's key. ARGV: key, uid, name, name key, ts. The old name's
 * key is dropped when it still points here (same hash tag, so the same slot).
 */
const REMEMBER = `
local old = redis.call('HGET', KEYS[1], 'nk')
if old and old ~= ARGV[4] then
  local ok = string.sub(KEYS[2], 1, -1 - string.len(ARGV[4])) .. old
  if redis.call('GET', ok) == ARGV[1] then redis.call('DEL', ok) end
end
redis.call('HSET', KEYS[1], 'uid', ARGV[2], 'name', ARGV[3], 'nk', ARGV[4], 'seen', ARGV[5])
redis.call('SET', KEYS[2], ARGV[1])
return 0
`;

/** KEYS: name keys. Returns key, uid, name of the first that names a person, or nothing. */
const FIND = `
for i = 1, #KEYS do
  local k = redis.call('GET', KEYS[i])
  if k then
    local d = string.sub(KEYS[i], 1, string.find(KEYS[i], ':dirname:', 1, true)) .. 'dir:' .. k
    local p = redis.call('HMGET', d, 'uid', 'name')
    if p[1] then return { k, p[1], p[2] } end
  end
end
return {}
`;

/** KEYS: directory entries. Returns uid and name of each ('' for none). */
const DIRS = `
local out = {}
for i = 1, #KEYS do
  local p = redis.call('HMGET', KEYS[i], 'uid', 'name')
  out[#out + 1] = p[1] or ''
  out[#out + 1] = p[2] or ''
end
return out
`;

/** KEYS: convs A, peers A, convs B, peers B. ARGV: conv, key A, key B, ts. Both lists get the conv. */
const CONVERSE = `
redis.call('ZADD', KEYS[1], 'GT', ARGV[4], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], 'GT', ARGV[4], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])
return 0
`;

/** KEYS: convs, peers. ARGV: before (exclusive), limit. Returns conv, peer, ts triples, newest first. */
const CONVERSATIONS = `
local r = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '-inf', 'WITHSCORES', 'LIMIT', 0, ARGV[2])
local out = {}
for i = 1, #r, 2 do
  out[#out + 1] = r[i]
  out[#out + 1] = redis.call('HGET', KEYS[2], r[i]) or ''
  out[#out + 1] = r[i + 1]
end
return out
`;

/**
 * KEYS: reads, meta. ARGV: key, seq. The read position, clamped to the last seq, never backwards.
 * Returns the position and 1 when it moved.
 */
const READ = `
local last = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')
local at = math.min(tonumber(ARGV[2]), last)
local was = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if at > was then redis.call('HSET', KEYS[1], ARGV[1], at) return { at, 1 } end
return { was, 0 }
`;

/**
 * KEYS: the person's key, then the name's keys (its lookalike keys). ARGV: person key, value
 * (`<key>\t<name>`), ttl ms, name. Takes them all for the person unless another person holds one.
 */
const CLAIM = `
for i = 2, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v and string.sub(v, 1, string.len(ARGV[1]) + 1) ~= ARGV[1] .. '\t' then return 0 end
end
for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[2], 'PX', ARGV[3]) end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[3])
return 1
`;

/** A presence line, the same in every process (built in Lua too: keep the two in step). */
const PRESENCE_LINE = (event: string) => `
'{"type":"presence","room":' .. cjson.encode(ARGV[4]) .. ',"event":"${event}","name":' .. cjson.encode(ARGV[2]) .. '}'`;

/**
 * Presence is the union over processes: `who` holds one entry per (process, name) scored by when it
 * expires, `names` counts the processes that hold a name. KEYS: who, names, lines. ARGV: entry,
 * name, expiry (ms), room. A join that is the name's first anywhere is announced; so is a leave
 * that is its last. Also the refresh: an entry that exists only gets its new expiry.
 */
const PJOIN = `
if redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) == 1 and redis.call('HINCRBY', KEYS[2], ARGV[2], 1) == 1 then
  redis.call('%PUB%', KEYS[3], ${PRESENCE_LINE("join")})
end
return 0
`;
const PLEAVE = `
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 and redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('%PUB%', KEYS[3], ${PRESENCE_LINE("leave")})
end
return 0
`;
/**
 * A rename of someone present here: the entry moves to the new name without a join or leave
 * (members see the rename itself). KEYS: who, names. ARGV: old entry, old name, expiry, new entry, new name.
 */
const PRENAME = `
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 and redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
end
if redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4]) == 1 then redis.call('HINCRBY', KEYS[2], ARGV[5], 1) end
return 0
`;

/**
 * The entries of a process that stopped refreshing (it died): removed, and each name's leave
 * announced once, by whichever process removes it first. KEYS: who, names, lines. ARGV: now, -, -, room.
 */
const PSWEEP = `
local n = 0
for _, entry in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  local name = string.match(entry, '\t(.*)$')
  ARGV[2] = name
  if redis.call('ZREM', KEYS[1], entry) == 1 and redis.call('HINCRBY', KEYS[2], name, -1) <= 0 then
    redis.call('HDEL', KEYS[2], name)
    redis.call('%PUB%', KEYS[3], ${PRESENCE_LINE("leave")})
    n = n + 1
  end
end
return n
`;

/** How often, at most, an append looks for messages past the age retention in a room (ms). */
const AGE_CHECK_MS = 1000;

/** Mentions kept per person and room (the newest): a count shows at most this many. */
const MENTIONS_KEPT = 1000;

/**
 * Lua: the quote a reply keeps of `t` (as `quoteOf` in lib/protocol.ts): its first line, cut to
 * QUOTE_MAX_CHARS code points (UTF-8 lead bytes are counted, so no character is split).
 */
const QUOTE_LUA = `
local function quote(t)
  local nl = string.find(t, '[\\r\\n]')
  if nl then t = string.sub(t, 1, nl - 1) end
  local n = 0
  for i = 1, #t do
    local b = string.byte(t, i)
    if b < 128 or b >= 192 then
      n = n + 1
      if n > ${QUOTE_MAX_CHARS} then return string.sub(t, 1, i - 1) end
    end
  end
  return t
end
`;

/**
 * Stores one group of messages, room by room: KEYS are (meta, log, reads) per room (reads: each
 * sender's read position moves to their message). ARGV: retainMessages, minTs (0: keep all), dedupMs,
 * then per room its epoch if new and its count, then per message key, cid ("" for none), from, text, ts,
 * extras ("" or replyTo seq, mentioned names JSON and mentioned keys (tab-separated), each line ""
 * when it has none), and its channel form (the JSON array `[from, text, ts, cid, names]` without its
 * brackets; "" when none of from, text and cid has a character JSON escapes and it mentions nobody: the
 * script puts it together). Returns per room the epoch and its seq before the group, then per message
 * "n" (stored: numbered on from that seq), "d" (a duplicate: its seq and ts; "D" deleted since, "E"
 * edited), or "r" (its replyTo is not stored or deleted: nothing stored). On a Cluster a call holds one
 * room (its keys, and the cid, reaction and mention keys, share the room's hash tag, so they live in its
 * slot); on one Redis, every room of the group: one call.
 *
 * Redis spends more on each `redis.call` than on most commands it makes, so the work per message is
 * one XADD; the rest is per room and group: the cids are looked up with one HMGET per cid bucket and
 * written with one HSET, the read positions with one HSET, and the room's new messages go out as one
 * publish, `{"e": epoch, "m": [[seq, from, text, ts, cid, names, quote], ...]}` (an object, so a process of
 * an older version, which read an array as one message, drops it as a change it does not know rather
 * than misreading it), put together from the channel forms the process encoded (Lua's number formatting
 * and cjson cost more than the rest). A cid bucket (`cids:<n>`, field `<key>:<cid>`) holds the cids
 * stored in half a dedup window (Redis' clock: TIME) and expires a window after its last moment, so a
 * cid is remembered at least the window and at most one and a half.
 */
const APPEND = `${QUOTE_LUA}
local win = tonumber(ARGV[3])
local half = math.max(1, math.ceil(win / 2))
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local bucket = math.floor(now / half)
local function chunked(f, cmd, key, list)
  local out = {}
  for c = 1, #list, 1000 do
    local r = redis.call(cmd, key, unpack(list, c, math.min(c + 999, #list)))
    if f then for x = 1, #r do out[c + x - 1] = r[x] end end
  end
  return out
end
local function room(meta, log, reads, at)
  -- aged: when age retention last looked (ms); cb: the cid bucket whose expiry is set.
  local head = redis.call('HMGET', meta, 'seq', 'epoch', 'aged', 'cb')
  local seq, epoch = tonumber(head[1] or '0'), head[2]
  local later = {}
  if not epoch then
    epoch = ARGV[at]
    later = { 'epoch', epoch }
  end
  local out = { epoch, tostring(seq) }
  local base = string.sub(meta, 1, -5)
  local channel = string.sub(meta, 1, -6)
  local count = tonumber(ARGV[at + 1])
  -- The cids of this room's messages stored within the window (and, below, those of this group).
  local known, fresh, fieldOf, fields = {}, {}, {}, {}
  for n = 1, count do
    local i = at + 2 + (n - 1) * 7
    if ARGV[i + 1] ~= '' then
      fieldOf[n] = ARGV[i] .. ':' .. ARGV[i + 1]
      fields[#fields + 1] = fieldOf[n]
    end
  end
  if win > 0 then
    if #fields > 0 then
      for b = math.floor((now - win) / half), bucket do
        local got = chunked(true, 'HMGET', base .. 'cids:' .. b, fields)
        for x = 1, #fields do if got[x] then known[fields[x]] = got[x] end end
      end
    end
  end
  local readAt, pubs = {}, {}
  local i = at + 2
  for n = 1, count do
    local key, cid, from, text, ts = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    local extras, tail = ARGV[i + 5], ARGV[i + 6]
    i = i + 7
    local reply, names, mkeys = '', '', ''
    if extras ~= '' then reply, names, mkeys = string.match(extras, '^([^\\n]*)\\n([^\\n]*)\\n(.*)$') end
    local field = fieldOf[n] or false
    local prev = field and known[field] or false
    local quoted = ''
    if not prev and reply ~= '' then
      local t = redis.call('XRANGE', log, reply .. '-1', reply .. '-1')[1]
      local f = {}
      if t then for j = 1, #t[2], 2 do f[t[2][j]] = t[2][j + 1] end end
      if t and not f.d then
        quoted = cjson.encode({ seq = tonumber(reply), from = f.f, text = quote(f.t) })
      else
        prev = 'refused'
        out[#out + 1] = 'r'
      end
    end
    if prev == 'refused' then
      -- nothing stored
    elseif prev then
      -- The stored message as it is now: 'D' deleted, 'E' edited (editedTs, text), else 'd'.
      local id = string.match(prev, '^(%d+)') .. '-1'
      local e = redis.call('XRANGE', log, id, id)[1]
      local f = {}
      if e then for j = 1, #e[2], 2 do f[e[2][j]] = e[2][j + 1] end end
      if f.d then out[#out + 1] = 'D' .. prev
      elseif f.e then out[#out + 1] = 'E' .. prev .. ':' .. f.e .. ':' .. f.t
      else out[#out + 1] = 'd' .. prev end
    else
      seq = seq + 1
      local sid = tostring(seq)
      if quoted == '' and names == '' then
        redis.call('XADD', log, sid .. '-1', 'f', from, 't', text, 'ts', ts, 'c', cid, 'k', key)
      else
        local fields = { 'f', from, 't', text, 'ts', ts, 'c', cid, 'k', key }
        if quoted ~= '' then fields[#fields + 1] = 'r'; fields[#fields + 1] = quoted end
        if names ~= '' then
          fields[#fields + 1] = 'm'; fields[#fields + 1] = names
          fields[#fields + 1] = 'mk'; fields[#fields + 1] = mkeys
          for pk in string.gmatch(mkeys, '[^\t]+') do
            local mn = base .. 'mn:' .. pk
            redis.call('ZADD', mn, seq, seq)
            redis.call('ZREMRANGEBYRANK', mn, 0, -${MENTIONS_KEPT + 1})
          end
        end
        redis.call('XADD', log, sid .. '-1', unpack(fields))
      end
      readAt[key] = sid
      local stored = sid .. ':' .. ts
      if field then
        known[field] = stored
        fresh[#fresh + 1] = field
        fresh[#fresh + 1] = stored
      end
      -- No channel form: from, text and cid need no escaping in JSON (and there are no mentions).
      if tail == '' then tail = '"' .. from .. '","' .. text .. '",' .. ts .. ',"' .. cid .. '",""' end
      pubs[#pubs + 1] = '[' .. sid .. ',' .. tail .. ',' .. (quoted == '' and '""' or cjson.encode(quoted)) .. ']'
      out[#out + 1] = 'n'
    end
  end
  if #pubs > 0 then
    later[#later + 1] = 'seq'
    later[#later + 1] = seq
    local positions = {}
    for k, s in pairs(readAt) do positions[#positions + 1] = k; positions[#positions + 1] = s end
    chunked(false, 'HSET', reads, positions)
    if win > 0 and #fresh > 0 then
      local cids = base .. 'cids:' .. bucket
      chunked(false, 'HSET', cids, fresh)
      if head[4] ~= tostring(bucket) then
        redis.call('PEXPIREAT', cids, (bucket + 1) * half + win)
        later[#later + 1] = 'cb'
        later[#later + 1] = bucket
      end
    end
    redis.call('%PUB%', channel, '{"e":' .. cjson.encode(epoch) .. ',"m":[' .. table.concat(pubs, ',') .. ']}')
  end
  local trimmed = 0
  local keep = tonumber(ARGV[1])
  if keep > 0 and seq > keep then trimmed = redis.call('XTRIM', log, 'MINID', (seq - keep + 1) .. '-1') end
  -- Age retention: the oldest entries (at most 100 a call) older than ARGV[2] (ms since the epoch),
  -- looked for at most every ${AGE_CHECK_MS} ms a room (retention is counted in days).
  local minTs = tonumber(ARGV[2])
  if minTs > 0 and now - tonumber(head[3] or '0') >= ${AGE_CHECK_MS} then
    later[#later + 1] = 'aged'
    later[#later + 1] = now
    local function tsOf(e)
      for j = 1, #e[2], 2 do if e[2][j] == 'ts' then return tonumber(e[2][j + 1]) end end
    end
    local oldest = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
    -- Most looks find the oldest entry young enough: one read. Only then up to 100 are looked at.
    if oldest and (tsOf(oldest) or minTs) < minTs then
      local cut = nil
      for _, e in ipairs(redis.call('XRANGE', log, '-', '+', 'COUNT', 100)) do
        local ts = tsOf(e)
        if ts and ts < minTs then cut = tonumber(string.match(e[1], '^(%d+)')) else break end
      end
      if cut then trimmed = trimmed + redis.call('XTRIM', log, 'MINID', (cut + 1) .. '-1') end
    end
  end
  if #later > 0 then redis.call('HSET', meta, unpack(later)) end
  -- Reactions of messages retention removed go with them.
  local rx = base .. 'rx'
  if trimmed > 0 and redis.call('EXISTS', rx) == 1 then
    local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
    local low = first and tonumber(string.match(first[1], '^(%d+)')) or (seq + 1)
    local gone = redis.call('ZRANGEBYSCORE', rx, '-inf', '(' .. low)
    for _, s in ipairs(gone) do redis.call('DEL', base .. 'rc:' .. s, base .. 'rp:' .. s) end
    if #gone > 0 then redis.call('ZREMRANGEBYSCORE', rx, '-inf', '(' .. low) end
  end
  return out, i
end
local all, at = {}, 4
for k = 1, #KEYS, 3 do
  all[#all + 1], at = room(KEYS[k], KEYS[k + 1], KEYS[k + 2], at)
end
return all
`;

/**
 * Puts, takes back or toggles one person's reaction on one message, within the caps. KEYS: log, rx.
 * ARGV: seq, person key, emoji, want ('t' toggle, '1' on, '0' off), max emoji, max per person.
 * Returns { 'ok', on (1/0), counts as emoji, n, ... } or { problem }.
 */
const REACT = `
local log, rx = KEYS[1], KEYS[2]
local seq, key, emoji, want = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local e = redis.call('XRANGE', log, seq .. '-1', seq .. '-1')[1]
if not e then return { 'not_found' } end
for j = 1, #e[2], 2 do if e[2][j] == 'd' then return { 'not_found' } end end
local base = string.sub(log, 1, -4)
local rc, rp = base .. 'rc:' .. seq, base .. 'rp:' .. seq
local list, had = {}, false
for x in string.gmatch(redis.call('HGET', rp, key) or '', '[^\t]+') do
  if x == emoji then had = true else list[#list + 1] = x end
end
local on = (want == '1') or (want == 't' and not had)
if on ~= had then
  if on then
    if #list >= tonumber(ARGV[6]) then return { 'too_many_mine' } end
    if redis.call('HEXISTS', rc, emoji) == 0 and redis.call('HLEN', rc) >= tonumber(ARGV[5]) then
      return { 'too_many_emoji' }
    end
    redis.call('HINCRBY', rc, emoji, 1)
    list[#list + 1] = emoji
  elseif redis.call('HINCRBY', rc, emoji, -1) <= 0 then
    redis.call('HDEL', rc, emoji)
  end
  if #list == 0 then redis.call('HDEL', rp, key) else redis.call('HSET', rp, key, table.concat(list, '\t')) end
  if redis.call('EXISTS', rc) == 0 then redis.call('ZREM', rx, seq) else redis.call('ZADD', rx, seq, seq) end
end
return { 'ok', on and 1 or 0, redis.call('HGETALL', rc) }
`;

/**
 * The reactions of the messages from ARGV[2] to ARGV[3] that have any, with person ARGV[1]'s own.
 * KEYS: rx. Returns { seq, counts (emoji, n, ...), mine (tab-separated) } per message.
 */
const REACTIONS = `
local base = string.sub(KEYS[1], 1, -3)
local out = {}
for _, s in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], ARGV[3])) do
  out[#out + 1] = { s, redis.call('HGETALL', base .. 'rc:' .. s), redis.call('HGET', base .. 'rp:' .. s, ARGV[1]) or '' }
end
return out
`;

/**
 * How many seqs after ARGV[1] mention the person, among the messages retention kept. KEYS: the
 * person's mention set in the room, the room's log.
 */
const MENTION_COUNT = `
local after = tonumber(ARGV[1])
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
if not first then return 0 end
local low = tonumber(string.match(first[1], '^(%d+)')) - 1
if low > after then after = low end
return redis.call('ZCOUNT', KEYS[1], '(' .. after, '+inf')
`;

/**
 * What one person may do in a room, in one round trip (it runs on every join). KEYS: rules, allowed,
 * bans, mutes. ARGV: uid ("" for the rules only), now (ms). Returns topic, private, readOnly, slow,
 * allowed (1/0), ban until, mute until ("" when none or expired).
 */
const ACCESS = `
local r = redis.call('HMGET', KEYS[1], 'topic', 'private', 'readOnly', 'slow')
local uid, now = ARGV[1], tonumber(ARGV[2])
local function live(h)
  if uid == '' then return '' end
  local u = redis.call('HGET', h, uid)
  if u and (tonumber(u) == 0 or tonumber(u) > now) then return u end
  return ''
end
local allowed = 0
if uid ~= '' then allowed = redis.call('SISMEMBER', KEYS[2], uid) end
return { r[1] or '', r[2] or '0', r[3] or '0', r[4] or '0', allowed, live(KEYS[3]), live(KEYS[4]) }
`;

/**
 * One change to a room's rules or people, its audit entry, and the news on the room's channel.
 * KEYS: rules, allowed, bans, mutes, audit. ARGV: kind, uid, until, change JSON, audit JSON,
 * auditRetain, now, then for `rules` the hash fields and values to set. Returns the rules as ACCESS
 * does. Expired bans (or mutes) are dropped when that list changes, so the hashes stay small.
 */
const CHANGE_ROOM = `
local kind, uid = ARGV[1], ARGV[2]
if kind == 'rules' then
  if #ARGV > 7 then redis.call('HSET', KEYS[1], unpack(ARGV, 8)) end
elseif kind == 'allow' then redis.call('SADD', KEYS[2], uid)
elseif kind == 'disallow' then redis.call('SREM', KEYS[2], uid)
elseif kind == 'kick' then -- nothing stored: the audit entry, and every process hears it
else
  local h = KEYS[3]
  if kind == 'mute' or kind == 'unmute' then h = KEYS[4] end
  if kind == 'ban' or kind == 'mute' then redis.call('HSET', h, uid, ARGV[3]) else redis.call('HDEL', h, uid) end
  local all = redis.call('HGETALL', h)
  for i = 1, #all, 2 do
    local u = tonumber(all[i + 1])
    if u ~= 0 and u <= tonumber(ARGV[7]) then redis.call('HDEL', h, all[i]) end
  end
end
redis.call('LPUSH', KEYS[5], ARGV[5])
redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[6]) - 1)
local r = redis.call('HMGET', KEYS[1], 'topic', 'private', 'readOnly', 'slow')
local rules = { r[1] or '', r[2] or '0', r[3] or '0', r[4] or '0' }
redis.call('%PUB%', string.sub(KEYS[1], 1, -7),
  '{"c":"r","change":' .. ARGV[4] .. ',"rules":' .. cjson.encode(rules) .. '}')
return rules
`;

/**
 * Entries one stream node holds at most: Redis's `stream-node-max-entries` (default 100) must not be
 * larger (0 = unlimited breaks it too), or a deleted text may stay in its node. Checked at connect.
 */
const NODE = 100;

/**
 * Deletes or edits one message, if the guard allows. XDEL only flags an entry (its bytes stay in its
 * node), and a node is freed only when every entry in it is deleted: so the script XDELs the {@link NODE}
 * entries before the target and every later one (the target's node is among them, whole), lowers the
 * stream's last id and adds them again, the target changed. The cost is that window (about NODE + the
 * messages after the target), not the room's history; the entries XDELed in the node before the
 * target's stay as flagged copies until retention trims that node. The replies to the target are
 * among the entries added again (a reply comes after what it answers): their quote (`r`) gets the
 * target's new first line, or on a delete loses its text, in the same pass. KEYS: meta, log, audit,
 * changes. ARGV: seq, kind (delete, edit), text, editedTs, authorKey ("" any), sentSince ("" any), audit
 * JSON ("" none), auditRetain. Returns a problem (not_found, not_author, too_old) or 'ok' with from,
 * text, ts, cid, deleted ('1'/''), editedTs, quote, names, rev (the room's change revision this change
 * took: the meta hash's `rev`, also stored on the entry as `v` and in the changes set).
 */
const CHANGE = `${QUOTE_LUA}
local meta, log = KEYS[1], KEYS[2]
local id = ARGV[1] .. '-1'
local e = redis.call('XRANGE', log, id, id)[1]
if not e then return { 'not_found' } end
local f = {}
for j = 1, #e[2], 2 do f[e[2][j]] = e[2][j + 1] end
if f.d then return { 'not_found' } end
if ARGV[5] ~= '' and f.k ~= ARGV[5] then return { 'not_author' } end
if ARGV[6] ~= '' and tonumber(f.ts) < tonumber(ARGV[6]) then return { 'too_old' } end
local base = string.sub(log, 1, -4)
if ARGV[2] == 'delete' then
  -- Its reactions and mention rows go with the text; so do its quote and mentions.
  redis.call('DEL', base .. 'rc:' .. ARGV[1], base .. 'rp:' .. ARGV[1])
  redis.call('ZREM', base .. 'rx', ARGV[1])
  for pk in string.gmatch(f.mk or '', '[^\t]+') do redis.call('ZREM', base .. 'mn:' .. pk, ARGV[1]) end
  f.t = ''; f.d = '1'; f.e = nil; f.r = nil; f.m = nil; f.mk = nil
else f.t = ARGV[3]; f.e = ARGV[4] end
-- The room's change revision: on the entry as 'v' ('r' is a reply's quote) and in the changes set.
f.v = tostring(redis.call('HINCRBY', meta, 'rev', 1))
redis.call('ZADD', KEYS[4], f.v, ARGV[1])
local fields = { 'f', f.f, 't', f.t, 'ts', f.ts, 'c', f.c or '', 'k', f.k or '', 'v', f.v }
if f.d then fields[#fields + 1] = 'd'; fields[#fields + 1] = f.d end
if f.e then fields[#fields + 1] = 'e'; fields[#fields + 1] = f.e end
for _, x in ipairs({ 'r', 'm', 'mk' }) do
  if f[x] then fields[#fields + 1] = x; fields[#fields + 1] = f[x] end
end
-- The window: NODE entries before the target, the target and every later one, oldest first.
local win = redis.call('XREVRANGE', log, '(' .. id, '-', 'COUNT', ${NODE})
for i = 1, math.floor(#win / 2) do win[i], win[#win + 1 - i] = win[#win + 1 - i], win[i] end
for _, x in ipairs(redis.call('XRANGE', log, id, '+')) do win[#win + 1] = x end
local ids = {}
for i, x in ipairs(win) do ids[i] = x[1] end
for i = 1, #ids, 1000 do redis.call('XDEL', log, unpack(ids, i, math.min(i + 999, #ids))) end
-- Back to the newest entry kept, so the window goes in again under its own ids.
local kept = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
local top = kept and kept[1] or '0-1'
redis.call('XSETID', log, top, 'MAXDELETEDID', top)
local target = tonumber(ARGV[1])
local requoted = cjson.encode(f.d and { seq = target, from = f.f, text = '', deleted = true }
  or { seq = target, from = f.f, text = quote(f.t) })
local after = false
for _, x in ipairs(win) do
  if x[1] == id then
    redis.call('XADD', log, id, unpack(fields))
    after = true
  else
    if after then
      local v = x[2]
      for j = 1, #v, 2 do
        if v[j] == 'r' and cjson.decode(v[j + 1]).seq == target then v[j + 1] = requoted end
      end
    end
    redis.call('XADD', log, x[1], unpack(x[2]))
  end
end
if ARGV[7] ~= '' then
  redis.call('LPUSH', KEYS[3], ARGV[7])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[8]) - 1)
end
-- Seqs that retention trimmed from the log leave the changes set once it outgrows the log (amortized).
if redis.call('ZCARD', KEYS[4]) > 2 * redis.call('XLEN', log) + 64 then
  local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
  local low = first and tonumber(string.match(first[1], '^(%d+)')) or math.huge
  for _, s in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
    if tonumber(s) < low then redis.call('ZREM', KEYS[4], s) end
  end
end
local epoch = redis.call('HGET', meta, 'epoch') or ''
redis.call('%PUB%', string.sub(meta, 1, -6), cjson.encode({ c = 'm', seq = ARGV[1], from = f.f, text = f.t,
  ts = f.ts, cid = f.c or '', deleted = f.d or '', editedTs = f.e or '', epoch = epoch, r = f.r or '',
  m = f.m or '', rev = f.v }))
return { 'ok', f.f, f.t, f.ts, f.c or '', f.d or '', f.e or '', f.r or '', f.m or '', f.v }
`;

/**
 * The room's change revision and the changed messages a resume needs, in one step. KEYS: meta, log,
 * changes. ARGV: upTo (seq), afterRev, limit, epoch if new. Returns the epoch, the rev, then per
 * message (in rev order, at most limit, seq <= upTo, rev > afterRev) its seq and stream fields. A seq
 * that retention trimmed is dropped from the set on the way.
 */
const CHANGES = `
local meta, log, changes = KEYS[1], KEYS[2], KEYS[3]
redis.call('HSETNX', meta, 'epoch', ARGV[4])
local out = { redis.call('HGET', meta, 'epoch'), redis.call('HGET', meta, 'rev') or '0' }
local upTo, limit, offset = tonumber(ARGV[1]), tonumber(ARGV[3]), 0
while #out - 2 < limit * 2 do
  local chunk = redis.call('ZRANGEBYSCORE', changes, '(' .. ARGV[2], '+inf', 'LIMIT', offset, 200)
  if #chunk == 0 then break end
  offset = offset + #chunk
  for _, s in ipairs(chunk) do
    if tonumber(s) <= upTo and #out - 2 < limit * 2 then
      local e = redis.call('XRANGE', log, s .. '-1', s .. '-1')[1]
      if e then
        out[#out + 1] = s
        out[#out + 1] = e[2]
      else
        redis.call('ZREM', changes, s)
        offset = offset - 1
      end
    end
  end
end
return out
`;

/**
 * The audit log, newest first: entries with ts < ARGV[1], at most ARGV[2]. KEYS: audit. Entries are
 * JSON objects that start with their ts (see {@link auditJson}).
 */
const AUDIT = `
local before, limit, out, i = tonumber(ARGV[1]), tonumber(ARGV[2]), {}, 0
while #out < limit do
  local chunk = redis.call('LRANGE', KEYS[1], i, i + 99)
  if #chunk == 0 then break end
  for _, e in ipairs(chunk) do
    local ts = tonumber(string.match(e, '^{"ts":(%-?%d+)'))
    if ts and ts < before and #out < limit then out[#out + 1] = e end
  end
  i = i + 100
end
return out
`;

/** KEYS: allowed, bans, mutes. Returns the members, then both hashes as field/value lists. */
const PEOPLE_LISTS = `
return { redis.call('SMEMBERS', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]) }
`;

/** KEYS: meta. ARGV: epoch if new. Returns epoch and last seq; makes the epoch if the room is new. */
const META = `
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
return { redis.call('HGET', KEYS[1], 'epoch'), redis.call('HGET', KEYS[1], 'seq') or '0' }
`;

/**
 * The commands this engine uses, the same on one Redis and on a Cluster (node-redis has one client
 * type for each).
 */
interface RedisLike {
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  close(): Promise<unknown>;
  destroy(): unknown;
  on(event: string, listener: (e: Error) => void): unknown;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  xRange(key: string, start: string, end: string, options?: { COUNT: number }): Promise<unknown>;
  xRevRange(key: string, start: string, end: string, options?: { COUNT: number }): Promise<unknown>;
  get(key: string): Promise<string | null>;
  hKeys(key: string): Promise<string[]>;
  publish(channel: string, message: string): Promise<unknown>;
  sPublish(channel: string, message: string): Promise<unknown>;
  subscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  sSubscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  unsubscribe(channels: string | string[]): Promise<unknown>;
  sUnsubscribe(channels: string | string[]): Promise<unknown>;
  configGet?(parameters: string[]): Promise<Record<string, string>>;
}

/** What JSON must escape in a string: a quote, a backslash, a control character. */
// deno-lint-ignore no-control-regex -- control characters are exactly what JSON escapes
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;

/** `s` as it reads back from UTF-8: a lone surrogate is U+FFFD. */
const wellFormed = (s: string) => s.isWellFormed() ? s : s.toWellFormed();

/** The scripts with the publish of this deployment: sharded on a Cluster, so a room stays on its node. */
function scriptsFor(cluster: boolean) {
  const pub = (script: string) => script.replaceAll("%PUB%", cluster ? "SPUBLISH" : "PUBLISH");
  return {
    APPEND: pub(APPEND),
    PJOIN: pub(PJOIN),
    PLEAVE: pub(PLEAVE),
    PSWEEP: pub(PSWEEP),
    CHANGE: pub(CHANGE),
    CHANGE_ROOM: pub(CHANGE_ROOM),
  };
}

/** Rooms on Redis; see the module doc. */
export class RedisEngine implements Engine {
  readonly #cmd: RedisLike;
  readonly #sub: RedisLike;
  readonly #cluster: boolean;
  readonly #lua: ReturnType<typeof scriptsFor>;
  readonly #opts: RedisOptions;
  readonly #subscribers = new Set<EngineEvents>();
  /** Per watched room: the last seq delivered here, and the chain that keeps delivery in order. */
  readonly #rooms = new Map<string, Watched>();
  /** The names of the people online here (person key to name), refreshed with the presence. */
  readonly #names = new Map<string, string>();
  /** This process's presence entries: room to names. */
  readonly #present = new Map<string, Set<string>>();
  /** Names this process's entries (random per process). */
  readonly #instance = newEpoch();
  readonly #ttl: number;
  readonly #timer: ReturnType<typeof setInterval>;
  #closed = false;

  private constructor(cmd: RedisLike, sub: RedisLike, opts: RedisOptions, cluster: boolean) {
    this.#cmd = cmd;
    this.#sub = sub;
    this.#cluster = cluster;
    this.#lua = scriptsFor(cluster);
    this.#opts = opts;
    this.#ttl = opts.presenceTtlMs ?? 15_000;
    this.#timer = setInterval(() => this.#keepPresence(), this.#ttl / 3);
    // Node's typings (pulled in by node:sqlite) say Timeout; Deno's timers are numbers.
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  /** Connects both clients (commands, subscriptions). @throws {UnavailableError} with one sentence. */
  static async connect(opts: RedisOptions): Promise<RedisEngine> {
    const timeout = opts.commandTimeoutMs ?? 2000;
    // `redis+cluster://host:port` (or `rediss+cluster://`): a Cluster, found from that node.
    const cluster = /^rediss?\+cluster:/.test(opts.url);
    const url = opts.url.replace("+cluster:", ":");
    const client = {
      // Fail at once while disconnected instead of queueing: a send is answered "unavailable".
      disableOfflineQueue: true,
      socket: {
        connectTimeout: timeout,
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000),
      },
    };
    const make = () =>
      (cluster
        ? createCluster({ rootNodes: [{ url }], defaults: client })
        : createClient({ url, ...client })) as unknown as RedisLike;
    const cmd = make();
    const sub = make();
    // Until both are up the first error ends the start-up (one sentence); after, errors are logged
    // once per outage and the clients reconnect by themselves.
    let starting = true;
    let failStart: (e: Error) => void = () => {};
    let down = false;
    for (const c of [cmd, sub]) {
      c.on("error", (e: Error) => {
        if (starting) return failStart(e);
        if (!down) opts.log.error("redis connection failed", { error: e.message });
        down = true;
      });
      c.on("ready", () => {
        if (down) opts.log.warn("redis connection back");
        down = false;
      });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        Promise.all([cmd.connect(), sub.connect()]),
        new Promise((_, reject) => {
          failStart = reject;
          timer = setTimeout(() => reject(new Error(`no answer within ${timeout} ms`)), timeout);
        }),
      ]);
    } catch (e) {
      await Promise.allSettled([cmd.destroy(), sub.destroy()]);
      throw new UnavailableError(`cannot reach Redis at ${redactUrl(opts.url)}: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
      starting = false;
    }
    const engine = new RedisEngine(cmd, sub, opts, cluster);
    sub.on("ready", () => engine.#resync());
    await sub.subscribe(PEOPLE, (raw: string) => engine.#toPerson(raw));
    await sub.subscribe(RENAMES, (raw: string) => engine.#renamedElsewhere(raw));
    await engine.#checkPersistence();
    return engine;
  }

  health(): string | undefined {
    return this.#cmd.isReady && this.#sub.isReady ? undefined : "redis unavailable";
  }

  async append(batch: readonly Draft[]): Promise<Appended[]> {
    // One script per room, in order: a room's keys share one slot; rooms may not.
    const byRoom = new Map<string, number[]>();
    batch.forEach((d, i) => {
      const idx = byRoom.get(d.room);
      if (idx) idx.push(i);
      else byRoom.set(d.room, [i]);
    });
    const out: Appended[] = new Array(batch.length);
    const minTs = this.#opts.retainMs > 0 ? Date.now() - this.#opts.retainMs : 0;
    // A conversation goes in both people's lists before its message is stored (another slot on a
    // Cluster, so not in the same script): a crash between the two leaves a listed conversation
    // without that message, never a stored message in a conversation nobody lists.
    const conversing = new Map<string, Draft>();
    for (const d of batch) if (d.between) conversing.set(d.room, d);
    await Promise.all([...conversing.values()].map((d) => {
      const [a, b] = d.between!;
      return this.#run(() =>
        this.#cmd.eval(CONVERSE, {
          keys: [convsKey(a), peersKey(a), convsKey(b), peersKey(b)],
          arguments: [d.room, a, b, String(d.ts)],
        })
      );
    }));
    // One script for every room of the group on one Redis; one per room on a Cluster (a room's keys
    // share one slot, rooms may not).
    const rooms = [...byRoom];
    const groups = this.#cluster ? rooms.map((r) => [r]) : [rooms];
    await Promise.all(groups.map(async (group) => {
      const keyList: string[] = [];
      const args = [String(this.#opts.retainMessages), String(minTs), String(this.#opts.dedupWindowMs)];
      for (const [room, idx] of group) {
        const k = keys(room);
        keyList.push(k.meta, k.log, k.reads);
        args.push(newEpoch(), String(idx.length));
        for (const i of idx) {
          const d = batch[i];
          args.push(d.key, d.cid ?? "", d.from, d.text, String(d.ts));
          const names = d.mentions?.length ? JSON.stringify(d.mentions.map((p) => p.name)) : "";
          // A reply and mentions in one argument ("" for neither, as most messages): fewer to encode.
          const mkeys = d.mentions?.length ? d.mentions.map((p) => p.key).join("\t") : "";
          args.push(d.replyTo || names ? `${d.replyTo ?? ""}\n${names}\n${mkeys}` : "");
          // The message as the channel carries it, but for its seq (first) and reply quote (last); ""
          // when the script can put it together itself (most messages: nothing to escape, no mentions).
          // Stored as UTF-8, a lone surrogate becomes U+FFFD: the channel says what the stream holds.
          const plain = !names && !NEEDS_ESCAPE.test(d.text) && !NEEDS_ESCAPE.test(d.from) &&
            !NEEDS_ESCAPE.test(d.cid ?? "");
          args.push(
            plain
              ? ""
              : JSON.stringify([d.from, wellFormed(d.text), d.ts, wellFormed(d.cid ?? ""), names]).slice(
                1,
                -1,
              ),
          );
        }
      }
      const all = await this.#run(() =>
        this.#cmd.eval(this.#lua.APPEND, { keys: keyList, arguments: args })
      ) as string[][];
      group.forEach(([room, idx], g) => {
        const res = all[g];
        // New messages are numbered on from the room's seq before the group, in order.
        let next = Number(res[1]);
        idx.forEach((i, j) => {
          const d = batch[i];
          const r = res[j + 2];
          if (r === "r") {
            out[i] = { message: refusedDraft(d), duplicate: false, refused: "reply_not_found" };
            return;
          }
          const [seq, ts, editedTs] = r === "n" ? [++next, d.ts] : r.slice(1).split(":", 3).map(Number);
          if (r[0] === "D") {
            out[i] = { message: { room, seq, from: d.from, ts, text: "", deleted: true }, duplicate: true };
            return;
          }
          // An edited one: its text is what follows the third ':'.
          const text = r[0] === "E"
            ? r.slice(r.indexOf(":", r.indexOf(":", r.indexOf(":") + 1) + 1) + 1)
            : d.text;
          const message: ChatMessage = { room, seq, from: d.from, text, ts };
          if (d.cid !== undefined) message.cid = d.cid;
          if (r[0] === "E") message.editedTs = editedTs;
          if (d.mentions?.length) message.mentions = d.mentions.map((p) => p.name);
          out[i] = { message, duplicate: r !== "n" };
        });
      });
    }));
    return out;
  }

  async after(room: string, after: number, limit: number): Promise<HistoryPage> {
    const { epoch, lastSeq } = await this.#meta(room);
    const entries = await this.#run(() =>
      this.#cmd.xRange(keys(room).log, `${after + 1}-1`, `${lastSeq}-1`, { COUNT: limit })
    ) as unknown as StreamEntry[];
    return { messages: entries.map((e) => fromEntry(room, e)), lastSeq, epoch };
  }

  async before(room: string, before: number, limit: number): Promise<HistoryPage> {
    const { epoch, lastSeq } = await this.#meta(room);
    const end = Math.min(before - 1, lastSeq);
    if (end < 1) return { messages: [], lastSeq, epoch };
    const entries = await this.#run(() =>
      this.#cmd.xRevRange(keys(room).log, `${end}-1`, "-", { COUNT: limit })
    ) as unknown as StreamEntry[];
    return { messages: entries.map((e) => fromEntry(room, e)).reverse(), lastSeq, epoch };
  }

  subscribe(events: EngineEvents): () => void {
    this.#subscribers.add(events);
    return () => this.#subscribers.delete(events);
  }

  publishLine(room: string, line: string): void {
    if (!this.#cmd.isReady) return; // typing is not worth a queue
    const sent = this.#cluster
      ? this.#cmd.sPublish(keys(room).lines, line)
      : this.#cmd.publish(keys(room).lines, line);
    sent.catch(() => {});
  }

  /**
   * Starts receiving `room`'s messages here: subscribes, then takes the room's stored seq as
   * delivered (this process had no members in it), so a history read after it and the channel meet.
   */
  watch(room: string): Promise<void> {
    const known = this.#rooms.get(room);
    if (known) return known.ready;
    const state: Watched = {
      delivered: 0,
      epoch: "",
      live: false,
      chain: Promise.resolve(),
      ready: Promise.resolve(),
    };
    this.#rooms.set(room, state);
    state.ready = (async () => {
      // Sharded on a Cluster: a room's channels live on the node of its keys.
      const subscribe = (channel: string, listener: (message: string) => void) =>
        this.#cluster ? this.#sub.sSubscribe(channel, listener) : this.#sub.subscribe(channel, listener);
      await this.#run(() => subscribe(keys(room).channel, (raw: string) => this.#received(room, state, raw)));
      await this.#run(() =>
        subscribe(keys(room).lines, (line: string) => {
          if (this.#rooms.get(room) === state) { for (const s of this.#subscribers) s.line?.(room, line); }
        })
      );
      const meta = await this.#storedMeta(room);
      state.delivered = meta.seq;
      state.epoch = meta.epoch;
      state.live = true;
    })();
    state.ready.catch(() => this.#rooms.get(room) === state && this.#rooms.delete(room));
    return state.ready;
  }

  /** Stops receiving `room` here (its last member left). */
  unwatch(room: string): void {
    if (!this.#rooms.delete(room)) return;
    const channels = [keys(room).channel, keys(room).lines];
    (this.#cluster ? this.#sub.sUnsubscribe(channels) : this.#sub.unsubscribe(channels)).catch(() => {});
  }

  /** Records that `name` is (or no longer is) in `room` here; Redis announces the union's changes. */
  async presence(room: string, name: string, present: boolean): Promise<void> {
    let names = this.#present.get(room);
    if (present) {
      if (!names) this.#present.set(room, names = new Set());
      names.add(name);
    } else {
      names?.delete(name);
      if (names?.size === 0) this.#present.delete(room);
    }
    await this.#presenceScript(present ? this.#lua.PJOIN : this.#lua.PLEAVE, room, name);
  }

  async claimName(key: string, name: string): Promise<boolean> {
    const ok = await this.#claim(key, name);
    if (ok) this.#names.set(key, name);
    return ok;
  }

  async nameOf(key: string): Promise<string | undefined> {
    return (await this.#run(() => this.#cmd.get(personKey(key)))) ?? undefined;
  }

  releaseName(key: string): void {
    this.#names.delete(key);
  }

  async whoIs(name: string): Promise<{ key: string; name: string } | undefined> {
    for (const k of nameKeys(name)) {
      const v = await this.#run(() => this.#cmd.get(nameKey(k)));
      if (v) {
        const tab = v.indexOf("\t");
        return { key: v.slice(0, tab), name: v.slice(tab + 1) };
      }
    }
    return undefined;
  }

  async sendToPerson(key: string, line: string): Promise<void> {
    await this.#run(() => this.#cmd.publish(PEOPLE, JSON.stringify([key, line])));
  }

  #claim(key: string, name: string): Promise<boolean> {
    const ttl = Math.max(this.#opts.nameHoldMs ?? 60_000, this.#ttl);
    return this.#run(() =>
      this.#cmd.eval(CLAIM, {
        keys: [personKey(key), ...nameKeys(name).map(nameKey)],
        arguments: [key, `${key}\t${name}`, String(ttl), name],
      })
    ).then((r) => r === 1);
  }

  async rememberPerson(p: Person): Promise<void> {
    const nk = nameKeys(p.name)[0];
    await this.#run(() =>
      this.#cmd.eval(REMEMBER, {
        keys: [dirKey(p.key), dirNameKey(nk)],
        arguments: [p.key, p.uid, p.name, nk, String(Date.now())],
      })
    );
  }

  async findPerson(name: string): Promise<Person | undefined> {
    const r = await this.#run(() =>
      this.#cmd.eval(FIND, { keys: nameKeys(name).map(dirNameKey), arguments: [] })
    ) as string[];
    return r.length ? { key: r[0], uid: r[1], name: r[2] } : undefined;
  }

  async people(keys: readonly string[]): Promise<(Person | undefined)[]> {
    if (keys.length === 0) return [];
    const r = await this.#run(() =>
      this.#cmd.eval(DIRS, { keys: keys.map(dirKey), arguments: [] })
    ) as string[];
    return keys.map((key, i) => r[2 * i] === "" ? undefined : { key, uid: r[2 * i], name: r[2 * i + 1] });
  }

  async conversations(key: string, before: number, limit: number): Promise<ConversationEntry[]> {
    const bound = Number.isFinite(before) ? String(before) : "+inf";
    const r = await this.#run(() =>
      this.#cmd.eval(CONVERSATIONS, {
        keys: [convsKey(key), peersKey(key)],
        arguments: [bound, String(limit)],
      })
    ) as string[];
    const out: ConversationEntry[] = [];
    for (let i = 0; i < r.length; i += 3) out.push({ conv: r[i], peer: r[i + 1], lastTs: Number(r[i + 2]) });
    return out;
  }

  async conversationPeer(key: string, conv: string): Promise<string | undefined> {
    const r = await this.#run(() =>
      this.#cmd.eval("return redis.call('HGET', KEYS[1], ARGV[1])", {
        keys: [peersKey(key)],
        arguments: [conv],
      })
    ) as string | null;
    return r ?? undefined;
  }

  readPositions(key: string, rooms: readonly string[]): Promise<number[]> {
    return Promise.all(rooms.map(async (room) => {
      const r = await this.#run(() =>
        this.#cmd.eval("return redis.call('HGET', KEYS[1], ARGV[1])", {
          keys: [keys(room).reads],
          arguments: [key],
        })
      ) as string | null;
      return Number(r ?? 0);
    }));
  }

  async markRead(key: string, room: string, seq: number): Promise<ReadMark> {
    const k = keys(room);
    const [at, moved] = await this.#run(() =>
      this.#cmd.eval(READ, { keys: [k.reads, k.meta], arguments: [key, String(seq)] })
    ) as [number, number];
    return { seq: Number(at), moved: moved === 1 };
  }

  publishRename(oldName: string, newName: string, rooms: string[]): void {
    if (!this.#cmd.isReady) return;
    this.#cmd.publish(RENAMES, JSON.stringify([oldName, newName, rooms])).catch(() => {});
  }

  #renamedElsewhere(raw: string): void {
    try {
      const [oldName, newName, rooms] = JSON.parse(raw) as [string, string, string[]];
      for (const s of this.#subscribers) s.renamed?.(oldName, newName, rooms);
    } catch {
      this.#opts.log.error("bad line on the renames channel");
    }
  }

  #toPerson(raw: string): void {
    try {
      const [key, line] = JSON.parse(raw) as [string, string];
      for (const s of this.#subscribers) s.person?.(key, line);
    } catch {
      this.#opts.log.error("bad line on the people channel");
    }
  }

  /** Person `oldName` here is now `newName`: its presence entries follow, with no join or leave. */
  async renamed(oldName: string, newName: string): Promise<void> {
    const moves: Promise<unknown>[] = [];
    for (const [room, names] of this.#present) {
      if (!names.delete(oldName)) continue;
      names.add(newName);
      const k = keys(room);
      const args = [
        `${this.#instance}\t${oldName}`,
        oldName,
        String(Date.now() + this.#ttl),
        `${this.#instance}\t${newName}`,
        newName,
      ];
      moves.push(this.#run(() => this.#cmd.eval(PRENAME, { keys: [k.who, k.names], arguments: args })));
    }
    await Promise.all(moves);
  }

  /** Everyone in `room`, on any process, sorted by code unit. */
  async members(room: string): Promise<string[]> {
    const names = await this.#run(() => this.#cmd.hKeys(keys(room).names));
    return names.sort();
  }

  #presenceScript(script: string, room: string, name: string): Promise<unknown> {
    const k = keys(room);
    const entry = `${this.#instance}\t${name}`;
    return this.#run(() =>
      this.#cmd.eval(script, {
        keys: [k.who, k.names, k.lines],
        arguments: [entry, name, String(Date.now() + this.#ttl), room],
      })
    );
  }

  /** Every third of the TTL: refresh this process's entries, and sweep the dead ones of watched rooms. */
  #keepPresence(): void {
    if (!this.#cmd.isReady) return;
    for (const [key, name] of this.#names) this.#claim(key, name).catch(() => {});
    for (const [room, names] of this.#present) {
      for (const name of names) this.#presenceScript(this.#lua.PJOIN, room, name).catch(() => {});
    }
    for (const room of this.#rooms.keys()) {
      const k = keys(room);
      this.#run(() =>
        this.#cmd.eval(this.#lua.PSWEEP, {
          keys: [k.who, k.names, k.lines],
          arguments: [String(Date.now()), "", "", room],
        })
      ).catch(() => {});
    }
  }

  async access(room: string, uid: string): Promise<RoomAccess> {
    const k = keys(room);
    const r = await this.#run(() =>
      this.#cmd.eval(ACCESS, {
        keys: [k.rules, k.allowed, k.bans, k.mutes],
        arguments: [uid, String(Date.now())],
      })
    ) as [string, string, string, string, number, string, string];
    const out: RoomAccess = { rules: rulesOf(r.slice(0, 4) as string[]), allowed: r[4] === 1 };
    if (r[5] !== "") out.ban = Number(r[5]);
    if (r[6] !== "") out.mute = Number(r[6]);
    return out;
  }

  async rules(room: string): Promise<RoomRules> {
    return (await this.access(room, "")).rules;
  }

  async changeRoom(room: string, change: RoomChange, audit: AuditEntry): Promise<RoomRules> {
    checkRoomChange(change);
    const k = keys(room);
    const args = [
      change.kind,
      "uid" in change ? change.uid : "",
      "until" in change ? String(change.until) : "",
      JSON.stringify(change),
      auditJson(audit),
      String(this.#auditRetain),
      String(Date.now()),
    ];
    if (change.kind === "rules") {
      const r = change.rules;
      if (r.topic !== undefined) args.push("topic", r.topic);
      if (r.private !== undefined) args.push("private", r.private ? "1" : "0");
      if (r.readOnly !== undefined) args.push("readOnly", r.readOnly ? "1" : "0");
      if (r.slowModeSeconds !== undefined) args.push("slow", String(r.slowModeSeconds));
    }
    const r = await this.#run(() =>
      this.#cmd.eval(this.#lua.CHANGE_ROOM, {
        keys: [k.rules, k.allowed, k.bans, k.mutes, k.audit],
        arguments: args,
      })
    ) as [string, string, string, string];
    return rulesOf(r);
  }

  async changeMessage(
    room: string,
    seq: number,
    change: MessageChange,
    guard: ChangeGuard,
    audit?: AuditEntry,
  ): Promise<ChangeResult> {
    const k = keys(room);
    const r = await this.#run(() =>
      this.#cmd.eval(this.#lua.CHANGE, {
        keys: [k.meta, k.log, k.audit, k.changes],
        arguments: [
          String(seq),
          change.kind,
          change.kind === "edit" ? change.text : "",
          change.kind === "edit" ? String(change.editedTs) : "",
          guard.authorKey ?? "",
          guard.sentSince === undefined ? "" : String(guard.sentSince),
          audit ? auditJson(audit) : "",
          String(this.#auditRetain),
        ],
      })
    ) as string[];
    if (r[0] !== "ok") return { ok: false, problem: r[0] as "not_found" | "not_author" | "too_old" };
    const [, from, text, ts, cid, deleted, editedTs, reply, names, rev] = r;
    return {
      ok: true,
      message: changedMessage(room, seq, from, text, ts, cid, deleted, editedTs, reply, names),
      rev: Number(rev),
    };
  }

  async message(room: string, seq: number): Promise<ChatMessage | undefined> {
    const entries = await this.#run(() =>
      this.#cmd.xRange(keys(room).log, `${seq}-1`, `${seq}-1`)
    ) as unknown as StreamEntry[];
    return entries[0] && fromEntry(room, entries[0]);
  }

  async react(
    room: string,
    seq: number,
    key: string,
    emoji: string,
    want: boolean | undefined,
    caps: ReactionCaps,
  ): Promise<ReactResult> {
    const k = keys(room);
    const r = await this.#run(() =>
      this.#cmd.eval(REACT, {
        keys: [k.log, k.rx],
        arguments: [
          String(seq),
          key,
          emoji,
          want === undefined ? "t" : want ? "1" : "0",
          String(caps.maxEmoji),
          String(caps.maxPerPerson),
        ],
      })
    ) as [string, number?, string[]?];
    if (r[0] !== "ok") {
      return { ok: false, problem: r[0] as "not_found" | "too_many_emoji" | "too_many_mine" };
    }
    return { ok: true, on: r[1] === 1, counts: countsOf(r[2]!) };
  }

  async reactions(
    room: string,
    from: number,
    to: number,
    key: string,
  ): Promise<Map<number, MessageReactions>> {
    const r = await this.#run(() =>
      this.#cmd.eval(REACTIONS, { keys: [keys(room).rx], arguments: [key, String(from), String(to)] })
    ) as [string, string[], string][];
    const out = new Map<number, MessageReactions>();
    for (const [seq, counts, mine] of r) {
      out.set(Number(seq), { counts: countsOf(counts), mine: mine === "" ? [] : mine.split("\t") });
    }
    return out;
  }

  async mentionCounts(
    key: string,
    rooms: readonly { room: string; after: number }[],
  ): Promise<Record<string, number>> {
    // One read per room (each room's keys live in its own slot), all at once.
    const counts = await Promise.all(
      rooms.map(({ room, after }) =>
        this.#run(() =>
          this.#cmd.eval(MENTION_COUNT, {
            keys: [`${keys(room).mentions}${key}`, keys(room).log],
            arguments: [String(after)],
          })
        ) as Promise<number>
      ),
    );
    const out: Record<string, number> = {};
    rooms.forEach(({ room }, i) => counts[i] > 0 && (out[room] = counts[i]));
    return out;
  }

  async changes(room: string, upTo: number, afterRev: number, limit: number): Promise<ChangesPage> {
    const k = keys(room);
    const r = await this.#run(() =>
      this.#cmd.eval(CHANGES, {
        keys: [k.meta, k.log, k.changes],
        arguments: [String(upTo), String(afterRev), String(limit), newEpoch()],
      })
    ) as [string, string, ...(string | string[])[]];
    const messages: ChatMessage[] = [];
    for (let i = 2; i < r.length; i += 2) {
      const flat = r[i + 1] as string[];
      const message: Record<string, string> = {};
      for (let j = 0; j < flat.length; j += 2) message[flat[j]] = flat[j + 1];
      messages.push(fromEntry(room, { id: `${r[i]}-1`, message }));
    }
    messages.sort((a, b) => a.seq - b.seq);
    return { epoch: r[0], rev: Number(r[1]), messages };
  }

  async audit(room: string, before: number, limit: number): Promise<AuditEntry[]> {
    const bound = Number.isFinite(before) ? String(before) : String(Number.MAX_SAFE_INTEGER);
    const r = await this.#run(() =>
      this.#cmd.eval(AUDIT, { keys: [keys(room).audit], arguments: [bound, String(limit)] })
    ) as string[];
    return r.map((e) => JSON.parse(e) as AuditEntry);
  }

  async accessList(room: string): Promise<AccessList> {
    const k = keys(room);
    const [allowed, bans, mutes] = await this.#run(() =>
      this.#cmd.eval(PEOPLE_LISTS, { keys: [k.allowed, k.bans, k.mutes], arguments: [] })
    ) as [string[], string[], string[]];
    const now = Date.now();
    const live = (flat: string[]) => {
      const out: { uid: string; until: number }[] = [];
      for (let i = 0; i < flat.length; i += 2) {
        const until = Number(flat[i + 1]);
        if (holds(until, now)) out.push({ uid: flat[i], until });
      }
      return out.sort((a, b) => a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0);
    };
    return { allowed: allowed.sort(), bans: live(bans), mutes: live(mutes) };
  }

  get #auditRetain(): number {
    return this.#opts.auditRetain ?? DEFAULT_AUDIT_RETAIN;
  }

  prune(_now: number): Promise<number> {
    // Both retentions run in the append script, on the room written to.
    return Promise.resolve(0);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    // People here leave their rooms at once, rather than when their entries expire.
    const leaving: Promise<unknown>[] = [];
    for (const [room, names] of this.#present) {
      for (const name of names) leaving.push(this.#presenceScript(this.#lua.PLEAVE, room, name));
    }
    await Promise.allSettled(leaving);
    this.#present.clear();
    this.#rooms.clear();
    await Promise.allSettled([this.#cmd.close(), this.#sub.close()]);
  }

  /**
   * The room's epoch and last seq. For a watched room the last seq is what was delivered here:
   * anything newer is still on its way through the channel and must not be read twice.
   */
  async #meta(room: string): Promise<{ epoch: string; lastSeq: number }> {
    const { epoch, seq } = await this.#storedMeta(room);
    const watched = this.#rooms.get(room);
    const delivered = watched?.live && watched.epoch === epoch ? watched.delivered : 0;
    return { epoch, lastSeq: watched?.live ? Math.min(delivered, seq) : seq };
  }

  /** The room's epoch (made now if the room is new, or Redis lost it) and its last stored seq. */
  async #storedMeta(room: string): Promise<{ epoch: string; seq: number }> {
    const [epoch, seq] = await this.#run(() =>
      this.#cmd.eval(META, { keys: [keys(room).meta], arguments: [newEpoch()] })
    ) as [string, string];
    return { epoch, seq: Number(seq) };
  }

  #received(room: string, state: Watched, raw: string): void {
    const got: ChatMessage[] = [];
    let epoch: string;
    try {
      const parsed = JSON.parse(raw);
      // One publish per room and append, `{e: epoch, m: [...messages]}` (see APPEND); a message alone
      // (an array) is what an older process publishes.
      const old = Array.isArray(parsed);
      if (!old && (parsed.c !== undefined || !Array.isArray(parsed.m))) {
        return this.#changed(room, state, parsed);
      }
      epoch = old ? parsed[5] : parsed.e;
      for (const one of old ? [parsed] : parsed.m) {
        const [seq, from, text, ts, cid] = one as [number, string, string, number, string];
        const [names, reply] = old ? [one[7], one[6]] : [one[5], one[6]] as [string?, string?];
        const m: ChatMessage = { room, seq, from, text, ts };
        if (cid) m.cid = cid;
        if (reply) m.replyTo = replyOf(reply);
        if (names) m.mentions = JSON.parse(names);
        got.push(m);
      }
    } catch {
      return this.#opts.log.error("bad message on a room channel", { room });
    }
    state.chain = state.chain.then(() => state.ready).then(async () => {
      if (epoch !== state.epoch) this.#restart(room, state, epoch);
      for (const m of got) {
        // In order and nothing missing (the usual case): no backfill to wait for.
        if (m.seq === state.delivered + 1 && this.#rooms.get(room) === state) this.#hand(state, m);
        else await this.#catchUp(room, state, m);
      }
    }, () => {});
  }

  /**
   * A change on the room's channel: a message's (after that message is delivered here, so nobody
   * hears of a change before the message) or the room's rules or people.
   */
  #changed(room: string, state: Watched, c: Record<string, unknown>): void {
    if (c.c === "r") {
      const rules = rulesOf(c.rules as string[]);
      state.chain = state.chain.then(() => {
        if (this.#rooms.get(room) !== state) return;
        for (const s of this.#subscribers) s.roomChanged?.(room, c.change as RoomChange, { ...rules });
      });
      return;
    }
    if (c.c !== "m") return this.#opts.log.error("bad change on a room channel", { room });
    const s = c as Record<string, string>;
    const m = changedMessage(
      room,
      Number(s.seq),
      s.from,
      s.text,
      s.ts,
      s.cid,
      s.deleted,
      s.editedTs,
      s.r,
      s.m,
    );
    state.chain = state.chain.then(() => state.ready).then(async () => {
      if (this.#rooms.get(room) !== state || s.epoch !== state.epoch) return;
      if (m.seq > state.delivered) await this.#catchUp(room, state);
      for (const sub of this.#subscribers) sub.messageChanged?.({ ...m });
    }, () => {});
  }

  /** Redis lost the room (restarted without persistence, flushed, evicted): its seqs start over. */
  #restart(room: string, state: Watched, epoch: string): void {
    this.#opts.log.warn("room history was lost in Redis; its seqs start over", { room });
    state.epoch = epoch;
    state.delivered = 0;
    for (const s of this.#subscribers) s.restarted?.(room, epoch);
  }

  /**
   * Delivers, once and in order, what is stored but not yet delivered here: up to just before `m`
   * (a jump in the channel) and then `m`, or without `m` everything stored (after a reconnect).
   */
  async #catchUp(room: string, state: Watched, m?: ChatMessage): Promise<void> {
    if (this.#rooms.get(room) !== state || (m && m.seq <= state.delivered)) return;
    try {
      let target = m ? m.seq - 1 : 0;
      if (!m) {
        const meta = await this.#storedMeta(room);
        if (meta.epoch !== state.epoch) this.#restart(room, state, meta.epoch);
        target = meta.seq;
      }
      if (target > state.delivered) {
        const entries = await this.#run(() =>
          this.#cmd.xRange(keys(room).log, `${state.delivered + 1}-1`, `${target}-1`)
        ) as unknown as StreamEntry[];
        for (const e of entries) {
          const g = fromEntry(room, e);
          if (g.seq > state.delivered) this.#hand(state, g);
        }
        // What retention trimmed away is gone for everyone; move on rather than wait for it.
        if (state.delivered < target) state.delivered = target;
      }
    } catch (e) {
      // Redis is away: the next message or the reconnect tries again from `delivered`.
      this.#opts.log.error("redis backfill failed", { room, error: (e as Error).message });
      if (m) return;
    }
    if (m && m.seq === state.delivered + 1) this.#hand(state, m);
  }

  #hand(state: Watched, m: ChatMessage): void {
    state.delivered = m.seq;
    for (const s of this.#subscribers) s.message(m);
  }

  /** The subscriber came back: every watched room reads what it missed while it was away. */
  #resync(): void {
    for (const [room, state] of this.#rooms) {
      state.chain = state.chain.then(() => state.ready).then(() => this.#catchUp(room, state), () => {});
    }
  }

  async #run<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.#cmd.isReady) throw new UnavailableError("Redis is not connected");
    try {
      return await fn();
    } catch (e) {
      throw new UnavailableError(`Redis: ${(e as Error).message}`);
    }
  }

  /** One log line when an ack would not survive a Redis restart. */
  async #checkPersistence(): Promise<void> {
    try {
      if (!this.#cmd.configGet) throw new Error("a Cluster client has no CONFIG GET");
      const conf = await this.#cmd.configGet(["appendonly", "appendfsync", "stream-node-max-entries"]);
      const node = Number(conf["stream-node-max-entries"]);
      if (!(node > 0 && node <= NODE)) {
        this.#opts.log.warn(
          `deleted messages may stay in Redis memory: stream-node-max-entries must be from 1 to ${NODE}`,
          { "stream-node-max-entries": conf["stream-node-max-entries"] },
        );
      }
      if (conf.appendonly !== "yes" || conf.appendfsync !== "always") {
        this.#opts.log.warn(
          "acks are not durable: Redis needs appendonly yes and appendfsync always for an ack to survive its crash",
          { appendonly: conf.appendonly, appendfsync: conf.appendfsync },
        );
      }
    } catch {
      this.#opts.log.warn(
        "cannot read Redis persistence settings (CONFIG GET refused); acks may not be durable",
      );
    }
  }
}

interface Watched {
  delivered: number;
  /** The epoch `delivered` counts in. */
  epoch: string;
  /** Subscribed and `delivered` set: reads are clamped to it. */
  live: boolean;
  chain: Promise<void>;
  ready: Promise<void>;
}

interface StreamEntry {
  id: string;
  message: Record<string, string>;
}

function fromEntry(room: string, e: StreamEntry): ChatMessage {
  const f = e.message;
  return changedMessage(room, Number(e.id.split("-")[0]), f.f, f.t, f.ts, f.c, f.d, f.e, f.r, f.m);
}

/** Counts from a flat HGETALL list (emoji, n, ...). */
function countsOf(flat: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i]] = Number(flat[i + 1]);
  return out;
}

/** A message from its stored fields: a tombstone when `deleted` is set ("1"), edited with `editedTs`. */
function changedMessage(
  room: string,
  seq: number,
  from: string,
  text: string,
  ts: string,
  cid: string | undefined,
  deleted: string | undefined,
  editedTs: string | undefined,
  reply?: string,
  names?: string,
): ChatMessage {
  if (deleted) return { room, seq, from, ts: Number(ts), text: "", deleted: true };
  const m: ChatMessage = { room, seq, from, text, ts: Number(ts) };
  if (cid) m.cid = cid;
  if (editedTs) m.editedTs = Number(editedTs);
  if (reply) m.replyTo = replyOf(reply);
  if (names) m.mentions = JSON.parse(names);
  return m;
}

/** A stored reply quote (cjson's key order is its own: the wire's is seq, from, text, deleted). */
function replyOf(json: string): ChatMessage["replyTo"] {
  const q = JSON.parse(json) as { seq: number; from: string; text: string; deleted?: boolean };
  return q.deleted
    ? { seq: q.seq, from: q.from, text: "", deleted: true }
    : { seq: q.seq, from: q.from, text: q.text };
}

/** Rules from the hash fields topic, private, readOnly, slow (as ACCESS returns them). */
function rulesOf(r: readonly string[]): RoomRules {
  return { topic: r[0], private: r[1] === "1", readOnly: r[2] === "1", slowModeSeconds: Number(r[3]) };
}

/** An audit entry as the log keeps it: JSON that starts with `{"ts":`, which the AUDIT script reads. */
function auditJson(a: AuditEntry): string {
  const o: AuditEntry = { ts: a.ts, action: a.action, by: a.by };
  if (a.target !== undefined) o.target = a.target;
  if (a.reason !== undefined) o.reason = a.reason;
  if (a.until !== undefined) o.until = a.until;
  if (a.seq !== undefined) o.seq = a.seq;
  return JSON.stringify(o);
}

/** `url` without its password, for logs and messages. */
export function redactUrl(url: string): string {
  const u = URL.parse(url);
  if (!u) return "(an unreadable URL)";
  if (u.password) u.password = "***";
  return u.toString();
}

-- change_message: deletes or edits one message, if the guard allows, so that a deleted or replaced
-- text is gone from Redis.
-- KEYS: meta, log, audit, changes.
-- ARGV: seq, kind (delete, edit), text, editedTs, author key ('' any), sent since ('' any), audit JSON
-- ('' none), audit entries kept, publish command (PUBLISH, or SPUBLISH on a Cluster), quote length
-- (code points), entries a stream node holds at most, who deleted it (a name; '' for an edit).
-- Publishes the change on the room's channel with its rev and who deleted it: the processes tell
-- their members `deleted` or `edited` from that, after the message itself.
-- Reply: { problem } (not_found, not_author, too_old) or { 'ok', from, text, ts, cid, deleted ('1' or
-- ''), editedTs, quote, names, rev, display ('' none) } (rev: the room's change revision this change took: the meta
-- hash's rev, also stored with the message and in the changes set).
-- Needs quote.lua and stored.lua.
--
-- A message's text, mentions and change fields live in its text bucket (see stored.lua): a change
-- writes a few fields of that one hash and touches no other message, so it costs the same for the
-- newest message and for one with thousands after it. The replies to it are not rewritten either:
-- their quote is made when they are read.
--
-- An entry of the older layout holds its text itself, and XDEL only flags an entry (its bytes stay in
-- its node; a node is freed only when every entry in it is deleted): for one of those the script XDELs
-- the node-size entries before the target and every later one (the target's node is among them,
-- whole), lowers the stream's last id and adds them again, the target changed, and the replies to it
-- of that layout with their quote (r) made again. That costs the messages after the target, and
-- happens once per such message (a changed one is in the new layout's buckets only if it was new).
local meta, log = KEYS[1], KEYS[2]
local publish, quoteMax, node = ARGV[9], tonumber(ARGV[10]), tonumber(ARGV[11])
local id = ARGV[1] .. '-1'
local e = redis.call('XRANGE', log, id, id)[1]
if not e then return { 'not_found' } end
local base = string.sub(log, 1, -4)
local f = current(base, { e })[1]
if f.d then return { 'not_found' } end
if ARGV[5] ~= '' and f.k ~= ARGV[5] then return { 'not_author' } end
if ARGV[6] ~= '' and tonumber(f.ts) < tonumber(ARGV[6]) then return { 'too_old' } end
local older = false
for j = 1, #e[2], 2 do if e[2][j] == 't' then older = true end end
if ARGV[2] == 'delete' then
  -- Its reactions and mention rows go with the text; so do its quote and mentions.
  redis.call('DEL', base .. 'rc:' .. ARGV[1], base .. 'rp:' .. ARGV[1])
  redis.call('ZREM', base .. 'rx', ARGV[1])
  for pk in string.gmatch(f.mk or '', '[^\t]+') do redis.call('ZREM', base .. 'mn:' .. pk, ARGV[1]) end
  f.t = ''; f.d = '1'; f.e = nil; f.r = nil; f.q = nil; f.m = nil; f.mk = nil
else f.t = ARGV[3]; f.e = ARGV[4] end
-- The room's change revision: with the message as 'v' and in the changes set.
f.v = tostring(redis.call('HINCRBY', meta, 'rev', 1))
redis.call('ZADD', KEYS[4], f.v, ARGV[1])
if not older then
  local tb, s = bucketKey(base, ARGV[1]), ARGV[1]
  if f.d then
    redis.call('HDEL', tb, s, 'm' .. s, 'k' .. s, 'e' .. s)
    redis.call('HSET', tb, 'd' .. s, '1', 'v' .. s, f.v)
  else
    redis.call('HSET', tb, s, f.t, 'e' .. s, f.e, 'v' .. s, f.v)
  end
else
  local fields = { 'f', f.f, 't', f.t, 'ts', f.ts, 'c', f.c or '', 'k', f.k or '', 'v', f.v }
  if f.d then fields[#fields + 1] = 'd'; fields[#fields + 1] = f.d end
  if f.e then fields[#fields + 1] = 'e'; fields[#fields + 1] = f.e end
  for _, x in ipairs({ 'r', 'm', 'mk' }) do
    if f[x] then fields[#fields + 1] = x; fields[#fields + 1] = f[x] end
  end
  -- The window: a node's worth of entries before the target, the target and every later one, oldest
  -- first.
  local win = redis.call('XREVRANGE', log, '(' .. id, '-', 'COUNT', node)
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
    or { seq = target, from = f.f, text = quote(f.t, quoteMax) })
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
local r = quoteOfReply(base, log, f, quoteMax) or ''
redis.call(publish, string.sub(meta, 1, -6), cjson.encode({ c = 'm', seq = ARGV[1], from = f.f, text = f.t,
  ts = f.ts, cid = f.c or '', deleted = f.d or '', editedTs = f.e or '', epoch = epoch, r = r,
  m = f.m or '', rev = f.v, by = ARGV[12], dn = f.dn or '' }))
return { 'ok', f.f, f.t, f.ts, f.c or '', f.d or '', f.e or '', r, f.m or '', f.v, f.dn or '' }

-- stored: not a script but a library, put after quote.lua before the scripts that read or change
-- messages (see lib/redis/scripts.ts): where a message's parts live, and the message as it is now.
--
-- A stream entry cannot be changed in place and XDEL only flags it (its bytes stay in its node): so
-- the entry holds what never changes, f (from), ts, c (cid), k (sender key), dn (the sender's display
-- name, when they had one; a tombstone keeps it), and for a reply q and
-- qf (the seq and sender of the message it answers; its quote is made when read, from that message
-- as it is then). What a change replaces or removes lives in the room's text buckets, hashes of
-- TEXT_BUCKET seqs each (chat:{room}:t:<floor(seq / TEXT_BUCKET)>): field <seq> the text, m<seq> the
-- mentioned names (JSON), k<seq> their keys (tab-separated), and once changed e<seq> (editedTs),
-- d<seq> (deleted: '1') and v<seq> (the rev of its last change). A hash field is replaced or removed
-- for good: an edit or a delete writes a few fields of one bucket, whatever the message's age and the
-- room's size, and a deleted text is gone from Redis. Retention drops whole buckets (append.lua).
--
-- Entries stored before this layout hold t, d, e, v, r (the quote JSON), m and mk themselves: they
-- read the same, and change_message.lua changes them the way it always did.
local TEXT_BUCKET = 64

local function bucketKey(base, seq)
  return base .. 't:' .. math.floor(tonumber(seq) / TEXT_BUCKET)
end

-- An entry's fields as a table, with its seq.
local function fieldsOf(e)
  local f = { seq = string.match(e[1], '^(%d+)') }
  for j = 1, #e[2], 2 do f[e[2][j]] = e[2][j + 1] end
  return f
end

-- The messages of the stream entries `list` as they are now (tables as fieldsOf makes them, with t,
-- m, mk, d, e and v from the buckets): one HMGET per bucket the list touches.
local function current(base, list)
  local out, buckets, order = {}, {}, {}
  for i, e in ipairs(list) do
    local f = fieldsOf(e)
    out[i] = f
    if not f.t then
      local b = bucketKey(base, f.seq)
      local g = buckets[b]
      if not g then
        g = { fields = {}, msgs = {} }
        buckets[b] = g
        order[#order + 1] = b
      end
      local s = f.seq
      for _, x in ipairs({ s, 'm' .. s, 'k' .. s, 'd' .. s, 'e' .. s, 'v' .. s }) do g.fields[#g.fields + 1] = x end
      g.msgs[#g.msgs + 1] = f
    end
  end
  for _, b in ipairs(order) do
    local g = buckets[b]
    local r = redis.call('HMGET', b, unpack(g.fields))
    for j, f in ipairs(g.msgs) do
      local o = (j - 1) * 6
      f.t = r[o + 1] or ''
      f.m = r[o + 2] or nil
      f.mk = r[o + 3] or nil
      f.d = r[o + 4] or nil
      f.e = r[o + 5] or nil
      f.v = r[o + 6] or nil
    end
  end
  for _, f in ipairs(out) do
    if f.d then f.t = ''; f.e = nil; f.m = nil; f.mk = nil; f.q = nil; f.r = nil end
  end
  return out
end

-- Message `seq` as it is now, or nil when the stream does not hold it.
local function currentOne(base, log, seq)
  local e = redis.call('XRANGE', log, seq .. '-1', seq .. '-1')[1]
  return e and current(base, { e })[1] or nil
end

-- The quote (JSON) of reply `f` (a table from current), made from the message it answers as it is
-- now: its first line, or a tombstone's nothing. When retention removed that message the quote
-- keeps its seq and sender and has no text (an entry of the older layout keeps the quote it stored).
local function quoteOfReply(base, log, f, quoteMax)
  local seq, from
  if f.q then
    seq, from = f.q, f.qf
  elseif f.r then
    local old = cjson.decode(f.r)
    seq, from = tostring(old.seq), old.from
  else
    return nil
  end
  local o = currentOne(base, log, seq)
  if not o then
    if f.r then return f.r end
    return cjson.encode({ seq = tonumber(seq), from = from, text = '' })
  end
  if o.d then return cjson.encode({ seq = tonumber(seq), from = from, text = '', deleted = true }) end
  return cjson.encode({ seq = tonumber(seq), from = from, text = quote(o.t, quoteMax) })
end

-- A message (a table from current) as the engine reads one: a flat list of the fields f, t, ts, c,
-- and those it has of d, e, r (the quote JSON), m, v and dn (see storedMessage in lib/redis/codec.ts).
local function flat(base, log, f, quoteMax)
  local out = { 'f', f.f, 't', f.t, 'ts', f.ts, 'c', f.c or '' }
  local r = quoteOfReply(base, log, f, quoteMax)
  for _, x in ipairs({ { 'd', f.d }, { 'e', f.e }, { 'r', r }, { 'm', f.m }, { 'v', f.v }, { 'dn', f.dn } }) do
    if x[2] then out[#out + 1] = x[1]; out[#out + 1] = x[2] end
  end
  return out
end

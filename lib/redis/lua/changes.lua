-- changes: the room's change revision and the changed messages a resume needs, in one step. A seq
-- that retention trimmed is dropped from the changes set on the way.
-- KEYS: meta, log, changes.
-- ARGV: upTo (seq), afterRev, limit, epoch if the room is new, quote length (code points).
-- Reply: { epoch, rev, then per message (in rev order, at most limit, seq <= upTo, rev > afterRev) its
-- seq and its fields as it is now (field, value, ...: as history.lua reads them) }.
-- Needs quote.lua and stored.lua.
local meta, log, changes = KEYS[1], KEYS[2], KEYS[3]
local base = string.sub(log, 1, -4)
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
        out[#out + 1] = flat(base, log, current(base, { e })[1], tonumber(ARGV[5]))
      else
        redis.call('ZREM', changes, s)
        offset = offset - 1
      end
    end
  end
end
return out

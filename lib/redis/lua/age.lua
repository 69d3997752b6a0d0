-- age: age retention for a room that may have had no message for a while (append.lua applies it only
-- to the rooms written to): every entry older than a time goes, with its text bucket fields, reactions,
-- change entries and mention rows. An emptied log is deleted (the meta hash keeps the last seq, so no seq is reused), and
-- an emptied direct conversation loses its read positions too.
-- KEYS: meta, log, reads, rx, changes.
-- ARGV: minTs (ms since the epoch).
-- Reply: { entries removed, ts of the oldest entry left ('' when the log is empty), then for an
-- emptied conversation the keys of the people in it (its writers and readers) }.
-- Needs quote.lua and stored.lua.
local log, rx, changes = KEYS[2], KEYS[4], KEYS[5]
local base = string.sub(log, 1, -4)
local minTs = tonumber(ARGV[1])
local people, seen = {}, {}
local oldest, n = '', 0
repeat
  local cut = nil
  local batch = redis.call('XRANGE', log, '-', '+', 'COUNT', 100)
  -- The messages as they are now: their mentions (mk) live in the text buckets (stored.lua).
  for _, f in ipairs(current(base, batch)) do
    if tonumber(f.ts or '0') >= minTs then
      oldest = f.ts
      break
    end
    cut = f.seq
    n = n + 1
    redis.call('HDEL', bucketKey(base, cut), cut, 'm' .. cut, 'k' .. cut, 'd' .. cut, 'e' .. cut, 'v' .. cut)
    redis.call('DEL', base .. 'rc:' .. cut, base .. 'rp:' .. cut)
    redis.call('ZREM', rx, cut)
    redis.call('ZREM', changes, cut)
    for pk in string.gmatch(f.mk or '', '[^\t]+') do redis.call('ZREM', base .. 'mn:' .. pk, cut) end
    if f.k and not seen[f.k] then
      seen[f.k] = true
      people[#people + 1] = f.k
    end
  end
  if cut then redis.call('XTRIM', log, 'MINID', (tonumber(cut) + 1) .. '-1') end
until oldest ~= '' or not cut
if oldest ~= '' then return { n, oldest } end
redis.call('DEL', log, rx, changes)
local out = { n, '' }
-- chat:{@...}:meta: a direct conversation (room names never start with '@').
if string.sub(KEYS[1], 7, 7) == '@' then
  -- Every sender's read position moved to their message, so the readers include every writer.
  for _, k in ipairs(redis.call('HKEYS', KEYS[3])) do
    if not seen[k] then
      seen[k] = true
      people[#people + 1] = k
    end
  end
  redis.call('DEL', KEYS[3])
  for _, k in ipairs(people) do out[#out + 1] = k end
end
return out

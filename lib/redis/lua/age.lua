-- age: age retention for a room that may have had no message for a while (append.lua applies it only
-- to the rooms written to): every entry older than a time goes, with its reactions, change entries and
-- mention rows. An emptied log is deleted (the meta hash keeps the last seq, so no seq is reused), and
-- an emptied direct conversation loses its read positions too.
-- KEYS: meta, log, reads, rx, changes.
-- ARGV: minTs (ms since the epoch).
-- Reply: { entries removed, ts of the oldest entry left ('' when the log is empty), then for an
-- emptied conversation the keys of the people in it (its writers and readers) }.
local log, rx, changes = KEYS[2], KEYS[4], KEYS[5]
local base = string.sub(log, 1, -4)
local minTs = tonumber(ARGV[1])
local people, seen = {}, {}
local oldest, n = '', 0
repeat
  local cut = nil
  for _, e in ipairs(redis.call('XRANGE', log, '-', '+', 'COUNT', 100)) do
    local f = {}
    for j = 1, #e[2], 2 do f[e[2][j]] = e[2][j + 1] end
    if tonumber(f.ts or '0') >= minTs then
      oldest = f.ts
      break
    end
    cut = string.match(e[1], '^(%d+)')
    n = n + 1
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

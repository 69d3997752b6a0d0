-- history: stored messages of a room as they are now, from the stream and the text buckets (see
-- stored.lua), with each reply's quote made from the message it answers.
-- KEYS: log.
-- ARGV: first id, last id (XRANGE order; XREVRANGE's when reversed), count (0: all), '1' to read
-- newest first, quote length (code points).
-- Reply: per message its seq and its fields (field, value, ...: f, t, ts, c, and d, e, r, m, v, dn
-- when it has them), in the order read.
-- Needs quote.lua and stored.lua.
local log = KEYS[1]
local base = string.sub(log, 1, -4)
local cmd = ARGV[4] == '1' and 'XREVRANGE' or 'XRANGE'
local entries
if tonumber(ARGV[3]) > 0 then
  entries = redis.call(cmd, log, ARGV[1], ARGV[2], 'COUNT', ARGV[3])
else
  entries = redis.call(cmd, log, ARGV[1], ARGV[2])
end
local out = {}
for _, f in ipairs(current(base, entries)) do
  out[#out + 1] = f.seq
  out[#out + 1] = flat(base, log, f, tonumber(ARGV[5]))
end
return out

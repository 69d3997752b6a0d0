-- reactions: the reactions of a range of messages (those that have any), with one person's own.
-- KEYS: rx.
-- ARGV: person key, from seq, to seq.
-- Reply: { seq, counts (emoji, n, ...), mine (tab-separated) } per message with reactions.
local base = string.sub(KEYS[1], 1, -3)
local out = {}
for _, s in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], ARGV[3])) do
  out[#out + 1] = { s, redis.call('HGETALL', base .. 'rc:' .. s), redis.call('HGET', base .. 'rp:' .. s, ARGV[1]) or '' }
end
return out

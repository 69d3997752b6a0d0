-- mention_count: how many messages after a seq mention the person, among those retention kept.
-- KEYS: the person's mention set in the room, the room's log.
-- ARGV: after (seq).
-- Reply: the count.
local after = tonumber(ARGV[1])
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
if not first then return 0 end
local low = tonumber(string.match(first[1], '^(%d+)')) - 1
if low > after then after = low end
return redis.call('ZCOUNT', KEYS[1], '(' .. after, '+inf')

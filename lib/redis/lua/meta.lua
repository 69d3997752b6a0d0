-- meta: a room's epoch and last seq; makes the epoch if the room is new.
-- KEYS: meta.
-- ARGV: epoch if the room is new.
-- Reply: { epoch, last seq, the seq the epoch starts after (rb: a rebase.lua epoch; '0' for none) }.
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
local m = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'rb')
return { m[1], m[2] or '0', m[3] or '0' }

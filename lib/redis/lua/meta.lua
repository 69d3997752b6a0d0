-- meta: a room's epoch and last seq; makes the epoch if the room is new.
-- KEYS: meta.
-- ARGV: epoch if the room is new.
-- Reply: { epoch, last seq }.
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
return { redis.call('HGET', KEYS[1], 'epoch'), redis.call('HGET', KEYS[1], 'seq') or '0' }

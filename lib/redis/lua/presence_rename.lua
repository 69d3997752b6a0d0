-- presence_rename: someone present here was renamed, or has a new display name: the entry moves to
-- the new name without a join or a leave (members see the rename itself), and the display name
-- follows.
-- KEYS: who, names, disp.
-- ARGV: old entry, old name, expiry (ms), new entry, new name, display name ('' for none).
-- Reply: 0.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 and redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[2])
end
if redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4]) == 1 then redis.call('HINCRBY', KEYS[2], ARGV[5], 1) end
if ARGV[6] == '' then redis.call('HDEL', KEYS[3], ARGV[5]) else redis.call('HSET', KEYS[3], ARGV[5], ARGV[6]) end
return 0

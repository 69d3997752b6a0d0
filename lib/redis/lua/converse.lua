-- converse: a direct conversation goes in both people's lists (its last ts only moves forward).
-- KEYS: convs of A, peers of A, convs of B, peers of B.
-- ARGV: conv, key of A, key of B, ts.
-- Reply: 0.
redis.call('ZADD', KEYS[1], 'GT', ARGV[4], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], 'GT', ARGV[4], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])
return 0

-- converse: a direct conversation goes in both people's lists (its last ts only moves forward), and in
-- the set of those the sender wrote in (a message to someone who has not written is a first contact).
-- KEYS: convs of A, peers of A, convs of B, peers of B, wrote of the sender.
-- ARGV: conv, key of A, key of B, ts.
-- Reply: 0.
redis.call('ZADD', KEYS[1], 'GT', ARGV[4], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], 'GT', ARGV[4], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[5], ARGV[1])
return 0

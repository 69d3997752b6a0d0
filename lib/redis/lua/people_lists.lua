-- people_lists: who is allowed in a room, banned or muted.
-- KEYS: allowed, bans, mutes.
-- ARGV: none.
-- Reply: { allowed uids, bans (uid, until, ...), mutes (uid, until, ...) }.
return { redis.call('SMEMBERS', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]) }

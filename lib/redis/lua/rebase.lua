-- rebase: a room's store went back (a failover lost messages a process had delivered): it gets a new
-- epoch, so nobody takes the seqs given out again for the ones they had. Only once: a process that
-- finds the epoch changed already takes that one.
-- KEYS: meta.
-- ARGV: the epoch that went back, a new epoch, the seq it was found back at (the new epoch starts
-- after it: what was stored after it under the old epoch is history, not news), the publish command.
-- Every process hears the new epoch at once on the room's channel: a line of it with no message.
-- Reply: { epoch, last seq, the seq the epoch starts after (rb; '0' for none) }.
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[2], 'rb', ARGV[3])
  redis.call(ARGV[4], string.sub(KEYS[1], 1, -6), '{"e":' .. cjson.encode(ARGV[2]) .. ',"m":[]}')
end
local m = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'rb')
return { m[1], m[2] or '0', m[3] or '0' }

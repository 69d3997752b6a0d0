-- presence_leave: a name left a room on this process; announced when it was the name's last entry
-- anywhere (see presence_join.lua), and then its display name goes too.
-- KEYS: who, names, lines, disp.
-- ARGV: entry ('<process>\t<name>'), name, expiry (unused), room, publish command (PUBLISH, or
-- SPUBLISH on a Cluster), display name ('' for none).
-- Reply: 0.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 and redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[4], ARGV[2])
  redis.call(ARGV[5], KEYS[3],
    '{"type":"presence","room":' .. cjson.encode(ARGV[4]) .. ',"event":"leave","name":' ..
        cjson.encode(ARGV[2]) .. (ARGV[6] == '' and '' or ',"display":' .. cjson.encode(ARGV[6])) .. '}')
end
return 0

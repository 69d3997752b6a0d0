-- presence_join: a name is in a room on this process (also the refresh: an entry that exists only
-- gets its new expiry). Presence is the union over processes: `who` holds one entry per (process,
-- name) scored by when it expires, `names` counts the processes that hold a name, `disp` holds the
-- display names of the names that have one; a join that is the name's first anywhere is announced on
-- the room's lines channel.
-- KEYS: who, names, lines, disp.
-- ARGV: entry ('<process>\t<name>'), name, expiry (ms), room, publish command (PUBLISH, or SPUBLISH
-- on a Cluster), display name ('' for none).
-- Reply: 0.
-- The announcement is the hub's presence line (lib/hub.ts), byte for byte: keep the two in step.
if ARGV[6] ~= '' then redis.call('HSET', KEYS[4], ARGV[2], ARGV[6]) end
if redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) == 1 and redis.call('HINCRBY', KEYS[2], ARGV[2], 1) == 1 then
  if ARGV[6] == '' then redis.call('HDEL', KEYS[4], ARGV[2]) end
  redis.call(ARGV[5], KEYS[3],
    '{"type":"presence","room":' .. cjson.encode(ARGV[4]) .. ',"event":"join","name":' ..
        cjson.encode(ARGV[2]) .. (ARGV[6] == '' and '' or ',"display":' .. cjson.encode(ARGV[6])) .. '}')
end
return 0

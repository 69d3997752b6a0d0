-- presence_sweep: the entries of a process that stopped refreshing (it died) are removed, and each
-- name's leave is announced once, by whichever process removes it first (see presence_join.lua).
-- KEYS: who, names, lines, disp.
-- ARGV: now (ms), room, publish command (PUBLISH, or SPUBLISH on a Cluster).
-- Reply: the number of leaves announced.
local n = 0
for _, entry in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  local name = string.match(entry, '\t(.*)$')
  if redis.call('ZREM', KEYS[1], entry) == 1 and redis.call('HINCRBY', KEYS[2], name, -1) <= 0 then
    redis.call('HDEL', KEYS[2], name)
    local display = redis.call('HGET', KEYS[4], name)
    redis.call('HDEL', KEYS[4], name)
    redis.call(ARGV[3], KEYS[3],
      '{"type":"presence","room":' .. cjson.encode(ARGV[2]) .. ',"event":"leave","name":' ..
          cjson.encode(name) .. (display and ',"display":' .. cjson.encode(display) or '') .. '}')
    n = n + 1
  end
end
return n

-- change_room: one change to a room's rules or people, its audit entry, and the news on the room's
-- channel. Expired bans (or mutes) are dropped when that list changes, so the hashes stay small.
-- KEYS: rules, allowed, bans, mutes, audit.
-- ARGV: kind, uid, until, change JSON, audit JSON, audit entries kept, now (ms), publish command
-- (PUBLISH, or SPUBLISH on a Cluster), then for kind 'rules' the hash fields and values to set.
-- Reply: { topic, private, readOnly, slow }, as access.lua reads them.
local kind, uid = ARGV[1], ARGV[2]
if kind == 'rules' then
  if #ARGV > 8 then redis.call('HSET', KEYS[1], unpack(ARGV, 9)) end
elseif kind == 'allow' then redis.call('SADD', KEYS[2], uid)
elseif kind == 'disallow' then redis.call('SREM', KEYS[2], uid)
elseif kind == 'kick' then -- nothing stored: the audit entry, and every process hears it
else
  local h = KEYS[3]
  if kind == 'mute' or kind == 'unmute' then h = KEYS[4] end
  if kind == 'ban' or kind == 'mute' then redis.call('HSET', h, uid, ARGV[3]) else redis.call('HDEL', h, uid) end
  local all = redis.call('HGETALL', h)
  for i = 1, #all, 2 do
    local u = tonumber(all[i + 1])
    if u ~= 0 and u <= tonumber(ARGV[7]) then redis.call('HDEL', h, all[i]) end
  end
end
redis.call('LPUSH', KEYS[5], ARGV[5])
redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[6]) - 1)
local r = redis.call('HMGET', KEYS[1], 'topic', 'private', 'readOnly', 'slow')
local rules = { r[1] or '', r[2] or '0', r[3] or '0', r[4] or '0' }
redis.call(ARGV[8], string.sub(KEYS[1], 1, -7),
  '{"c":"r","change":' .. ARGV[4] .. ',"rules":' .. cjson.encode(rules) .. '}')
return rules

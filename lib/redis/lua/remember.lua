-- remember: puts a person in the people directory under their name now.
-- KEYS: the person's directory entry, their new name's key.
-- ARGV: person key, uid, name, name key, ts.
-- Reply: 0. The old name's key is dropped when it still points here (same hash tag, so the same slot).
local old = redis.call('HGET', KEYS[1], 'nk')
if old and old ~= ARGV[4] then
  local ok = string.sub(KEYS[2], 1, -1 - string.len(ARGV[4])) .. old
  if redis.call('GET', ok) == ARGV[1] then redis.call('DEL', ok) end
end
redis.call('HSET', KEYS[1], 'uid', ARGV[2], 'name', ARGV[3], 'nk', ARGV[4], 'seen', ARGV[5])
redis.call('SET', KEYS[2], ARGV[1])
return 0

-- remember: puts a person in the people directory under their name now.
-- KEYS: the person's directory entry, their new name's key.
-- ARGV: person key, uid, name, name key, ts, ms a guest's new entry lasts ('' for a signed person: forever).
-- Reply: 0. The old name's key is dropped when it still points here (same hash tag, so the same slot).
-- A guest's entry expires ARGV[6] after it was first written, or later when the guest wrote since
-- (keep.lua); the name's key expires with it. SET clears a key's expiry, so it is set again after.
local old = redis.call('HGET', KEYS[1], 'nk')
if old and old ~= ARGV[4] then
  local ok = string.sub(KEYS[2], 1, -1 - string.len(ARGV[4])) .. old
  if redis.call('GET', ok) == ARGV[1] then redis.call('DEL', ok) end
end
local fresh = redis.call('EXISTS', KEYS[1]) == 0
redis.call('HSET', KEYS[1], 'uid', ARGV[2], 'name', ARGV[3], 'nk', ARGV[4], 'seen', ARGV[5])
redis.call('SET', KEYS[2], ARGV[1])
if ARGV[6] ~= '' and fresh then
  redis.call('PEXPIREAT', KEYS[1], tonumber(ARGV[5]) + tonumber(ARGV[6]))
end
local at = redis.call('PEXPIRETIME', KEYS[1])
if at > 0 then redis.call('PEXPIREAT', KEYS[2], at) end
return 0

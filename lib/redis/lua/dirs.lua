-- dirs: several people's directory entries in one round trip.
-- KEYS: directory entries.
-- ARGV: none.
-- Reply: uid, name of each entry in turn ('' and '' for one that does not exist).
local out = {}
for i = 1, #KEYS do
  local p = redis.call('HMGET', KEYS[i], 'uid', 'name')
  out[#out + 1] = p[1] or ''
  out[#out + 1] = p[2] or ''
end
return out

-- find: the person a name (or one of its lookalikes) belongs to, from the people directory.
-- KEYS: the name's directory keys, in order of preference.
-- ARGV: none.
-- Reply: { key, uid, name } of the first that names a person, or {}.
for i = 1, #KEYS do
  local k = redis.call('GET', KEYS[i])
  if k then
    local d = string.sub(KEYS[i], 1, string.find(KEYS[i], ':dirname:', 1, true)) .. 'dir:' .. k
    local p = redis.call('HMGET', d, 'uid', 'name')
    if p[1] then return { k, p[1], p[2] } end
  end
end
return {}

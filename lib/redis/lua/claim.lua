-- claim: takes (or refreshes) a name and all its lookalike keys for one person, unless another
-- person holds one of them.
-- KEYS: the person's key, then the name's keys (its lookalike keys).
-- ARGV: person key, value ('<person key>\t<name>'), ttl (ms), name.
-- Reply: 1 taken, 0 refused.
for i = 2, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v and string.sub(v, 1, string.len(ARGV[1]) + 1) ~= ARGV[1] .. '\t' then return 0 end
end
for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[2], 'PX', ARGV[3]) end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[3])
return 1

-- claim: takes (or refreshes) a name and all its lookalike keys for one person, unless another
-- person holds one of them now.
-- KEYS: the person's key, then the name's keys (its lookalike keys).
-- ARGV: person key, value ('<person key>\t<name>'), ttl (ms), name.
-- Reply: 1 taken, 0 refused.
-- A name key left by a person who has since taken another name (a guest moved aside for a signed
-- person on another process) is stale: it is taken over. Its person's claim is read from the same
-- slot ({names}), as `chat:{names}:person:<key>`.
local people = string.sub(KEYS[1], 1, select(2, string.find(KEYS[1], ':person:', 1, true)))
for i = 2, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v and string.sub(v, 1, string.len(ARGV[1]) + 1) ~= ARGV[1] .. '\t' then
    local tab = string.find(v, '\t', 1, true)
    if redis.call('GET', people .. string.sub(v, 1, tab - 1)) == string.sub(v, tab + 1) then return 0 end
  end
end
for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[2], 'PX', ARGV[3]) end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[3])
return 1

-- present: how many people are in a room on the processes that are alive (entries not expired), each
-- name once however many processes hold it (see presence_join.lua). Read-only: the leaves of a dead
-- process are announced by presence_sweep.lua.
-- KEYS: who.
-- ARGV: now (ms).
-- Reply: the count.
local seen, n = {}, 0
for _, entry in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')) do
  local name = string.match(entry, '\t(.*)$')
  if name and not seen[name] then
    seen[name] = true
    n = n + 1
  end
end
return n

-- forget_conv: a direct conversation that retention emptied (age.lua) leaves its people's lists, and
-- the sets of conversations they wrote in; the other person of each is found in their peers hash.
-- KEYS: the conversation lists (convs) of the people known to be in it.
-- ARGV: conv, minTs: a list entry with a later last ts stays (a message came meanwhile).
-- Reply: 0.
local conv, minTs, done = ARGV[1], tonumber(ARGV[2]), {}
local function forget(convs)
  if done[convs] then return end
  done[convs] = true
  local at = string.find(convs, ':convs:', 1, true)
  local prefix, key = string.sub(convs, 1, at), string.sub(convs, at + 7)
  local peer = redis.call('HGET', prefix .. 'peers:' .. key, conv)
  local last = redis.call('ZSCORE', convs, conv)
  if last and tonumber(last) >= minTs then return end
  redis.call('ZREM', convs, conv)
  redis.call('HDEL', prefix .. 'peers:' .. key, conv)
  redis.call('SREM', prefix .. 'wrote:' .. key, conv)
  if peer then forget(prefix .. 'convs:' .. peer) end
end
for _, k in ipairs(KEYS) do forget(k) end
return 0

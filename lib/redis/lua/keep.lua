-- keep: guests who wrote (or are in a conversation) stay in the people directory at least until a
-- time: as long as what they wrote may be kept. Only entries that expire are guests' (a signed
-- person's never does); the name's key that points to the entry lasts as long.
-- KEYS: directory entries.
-- ARGV: until (ms since the epoch), or 'forever' (messages are kept forever: no expiry).
-- Reply: 0.
for _, dir in ipairs(KEYS) do
  if redis.call('PTTL', dir) > 0 then
    local at = string.find(dir, ':dir:', 1, true)
    local nk = redis.call('HGET', dir, 'nk')
    local named = nk and (string.sub(dir, 1, at) .. 'dirname:' .. nk)
    if named and redis.call('GET', named) ~= string.sub(dir, at + 5) then named = nil end
    for _, k in ipairs({ dir, named }) do
      if ARGV[1] == 'forever' then redis.call('PERSIST', k)
      else redis.call('PEXPIREAT', k, ARGV[1], 'GT') end
    end
  end
end
return 0

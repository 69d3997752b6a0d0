-- conversations: one page of a person's conversations, newest first.
-- KEYS: convs, peers.
-- ARGV: before (a ts, exclusive; '+inf' for the newest), limit.
-- Reply: conv, peer key ('' when unknown), last ts: one triple per conversation.
local r = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '-inf', 'WITHSCORES', 'LIMIT', 0, ARGV[2])
local out = {}
for i = 1, #r, 2 do
  out[#out + 1] = r[i]
  out[#out + 1] = redis.call('HGET', KEYS[2], r[i]) or ''
  out[#out + 1] = r[i + 1]
end
return out

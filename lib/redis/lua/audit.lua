-- audit: one page of the audit log, newest first. Entries are JSON objects that start with their ts
-- (see auditJson in lib/redis/codec.ts).
-- KEYS: audit.
-- ARGV: before (ts, exclusive), limit.
-- Reply: the entries (JSON).
local before, limit, out, i = tonumber(ARGV[1]), tonumber(ARGV[2]), {}, 0
while #out < limit do
  local chunk = redis.call('LRANGE', KEYS[1], i, i + 99)
  if #chunk == 0 then break end
  for _, e in ipairs(chunk) do
    local ts = tonumber(string.match(e, '^{"ts":(%-?%d+)'))
    if ts and ts < before and #out < limit then out[#out + 1] = e end
  end
  i = i + 100
end
return out

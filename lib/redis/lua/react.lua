-- react: puts, takes back or toggles one person's reaction on one message, within the caps.
-- KEYS: log, rx.
-- ARGV: seq, person key, emoji, want ('t' toggle, '1' on, '0' off), max emoji per message, max
-- reactions per person and message, max reactions per message (everyone's).
-- Reply: { 'ok', on (1/0), counts (emoji, n, ...) } or { problem } (not_found, too_many_emoji,
-- too_many_mine, too_many_total).
-- Needs quote.lua and stored.lua.
local log, rx = KEYS[1], KEYS[2]
local seq, key, emoji, want = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local base = string.sub(log, 1, -4)
local m = currentOne(base, log, seq)
if not m or m.d then return { 'not_found' } end
local rc, rp = base .. 'rc:' .. seq, base .. 'rp:' .. seq
local list, had = {}, false
for x in string.gmatch(redis.call('HGET', rp, key) or '', '[^\t]+') do
  if x == emoji then had = true else list[#list + 1] = x end
end
local on = (want == '1') or (want == 't' and not had)
if on ~= had then
  if on then
    if #list >= tonumber(ARGV[6]) then return { 'too_many_mine' } end
    if redis.call('HEXISTS', rc, emoji) == 0 and redis.call('HLEN', rc) >= tonumber(ARGV[5]) then
      return { 'too_many_emoji' }
    end
    -- At most max emoji fields: summing them is cheaper than keeping a total in step.
    local total = 0
    for _, n in ipairs(redis.call('HVALS', rc)) do total = total + tonumber(n) end
    if total >= tonumber(ARGV[7]) then return { 'too_many_total' } end
    redis.call('HINCRBY', rc, emoji, 1)
    list[#list + 1] = emoji
  elseif redis.call('HINCRBY', rc, emoji, -1) <= 0 then
    redis.call('HDEL', rc, emoji)
  end
  if #list == 0 then redis.call('HDEL', rp, key) else redis.call('HSET', rp, key, table.concat(list, '\t')) end
  if redis.call('EXISTS', rc) == 0 then redis.call('ZREM', rx, seq) else redis.call('ZADD', rx, seq, seq) end
end
return { 'ok', on and 1 or 0, redis.call('HGETALL', rc) }

-- read: moves a person's read position in a room, clamped to the room's last seq, never backwards.
-- KEYS: reads, meta.
-- ARGV: person key, seq.
-- Reply: { position, moved (1 when it moved, else 0) }.
local last = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')
local at = math.min(tonumber(ARGV[2]), last)
local was = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if at > was then redis.call('HSET', KEYS[1], ARGV[1], at) return { at, 1 } end
return { was, 0 }

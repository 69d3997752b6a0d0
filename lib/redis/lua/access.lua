-- access: what one person may do in a room, in one round trip (it runs on every join).
-- KEYS: rules, allowed, bans, mutes, meta, audit.
-- ARGV: uid ('' for the rules only), now (ms).
-- Reply: { topic, private, readOnly, slow, allowed (1/0), ban until, mute until, exists (1/0) } (until:
-- '' when none or expired, '0' forever; exists: a message was ever stored, or a change, which leaves an
-- audit entry).
local r = redis.call('HMGET', KEYS[1], 'topic', 'private', 'readOnly', 'slow')
local uid, now = ARGV[1], tonumber(ARGV[2])
local function live(h)
  if uid == '' then return '' end
  local u = redis.call('HGET', h, uid)
  if u and (tonumber(u) == 0 or tonumber(u) > now) then return u end
  return ''
end
local allowed = 0
if uid ~= '' then allowed = redis.call('SISMEMBER', KEYS[2], uid) end
local exists = redis.call('HEXISTS', KEYS[5], 'seq')
if exists == 0 then exists = redis.call('EXISTS', KEYS[6]) end
return { r[1] or '', r[2] or '0', r[3] or '0', r[4] or '0', allowed, live(KEYS[3]), live(KEYS[4]), exists }

-- append: stores one group of messages, room by room: numbers, de-duplicates, appends, trims and
-- publishes atomically, so a room's seq is gap-free and never reused across processes.
-- KEYS: meta, log, reads per room (reads: each sender's read position moves to their message).
-- ARGV: retainMessages (0 keeps all), minTs (0: no age retention), dedup window (ms), publish command
-- (PUBLISH, or SPUBLISH on a Cluster; '' returns the line instead, see below), quote length (code points), mentions kept per person, age check
-- interval (ms); then per room its epoch if new and its message count, then per message 7 values:
-- person key, cid ('' for none), from, text, ts, extras ('' or four lines: replyTo seq, mentioned
-- names JSON, mentioned person keys tab-separated, the sender's display name, each '' when it has
-- none), and its channel form
-- (the JSON array [from, text, ts, cid, names] without its brackets; '' when none of from, text and
-- cid has a character JSON escapes and it mentions nobody: the script puts it together).
-- Reply: per room { epoch, seq before the group, then per message: 'n' (stored, numbered on from that
-- seq), 'r' (its replyTo is not stored or is deleted: nothing stored), or a duplicate: { 'd', seq, ts,
-- '', '', display } as stored, { 'D', seq, ts, '', '', display } deleted since, { 'E', seq, ts, editedTs,
-- text, display } edited since (display: its sender's display name then, '' for none) }; with
-- publish '' one more last element: the line to publish ('' for none).
-- Needs quote.lua and stored.lua (where a message's parts live: its entry, and its text bucket).
--
-- On a Cluster a call holds one room (its keys, and the cid, reaction and mention keys, share the
-- room's hash tag, so they live in its slot); on one Redis, every room of the group: one call.
-- Redis spends more on each redis.call than on most commands it makes, so the work per message is one
-- XADD; the rest is per room and group: the texts go in with one HSET per text bucket (one, mostly),
-- the cids are looked up with one HMGET per cid bucket and
-- written with one HSET, the read positions with one HSET, and the room's new messages go out as one
-- publish, {"e": epoch, "m": [[seq, from, text, ts, cid, names, quote, display], ...]} (an object, so a process
-- of an older version, which read an array as one message, drops it as a change it does not know
-- rather than misreading it), put together from the channel forms the process encoded (Lua's number
-- formatting and cjson cost more than the rest). A cid bucket (cids:<n>, field <key>:<cid>) holds the
-- cids stored in half a dedup window (Redis' clock: TIME) and expires a window after its last moment,
-- so a cid is remembered at least the window and at most one and a half.
--
-- With publish '' the process waits for replicas (WAIT) and publishes the line itself once they have
-- the group, so no process delivers a message a failover could still take back. The line then also
-- carries the plain duplicates: an earlier try of theirs may have been stored and its WAIT failed, and
-- then nothing published it (a process that delivered it already drops it again).
local win = tonumber(ARGV[3])
local publish, quoteMax = ARGV[4], tonumber(ARGV[5])
local mentionsKept, ageCheckMs = tonumber(ARGV[6]), tonumber(ARGV[7])
local half = math.max(1, math.ceil(win / 2))
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local bucket = math.floor(now / half)
local function chunked(f, cmd, key, list)
  local out = {}
  for c = 1, #list, 1000 do
    local r = redis.call(cmd, key, unpack(list, c, math.min(c + 999, #list)))
    if f then for x = 1, #r do out[c + x - 1] = r[x] end end
  end
  return out
end
local function room(meta, log, reads, at)
  -- aged: when age retention last looked (ms); cb: the cid bucket whose expiry is set; tl: the
  -- lowest seq whose text bucket fields retention has not removed.
  local head = redis.call('HMGET', meta, 'seq', 'epoch', 'aged', 'cb', 'tl')
  local seq, epoch = tonumber(head[1] or '0'), head[2]
  local later = {}
  if not epoch then
    epoch = ARGV[at]
    later = { 'epoch', epoch }
  end
  local out = { epoch, tostring(seq) }
  local base = string.sub(meta, 1, -5)
  local channel = string.sub(meta, 1, -6)
  local count = tonumber(ARGV[at + 1])
  -- The cids of this room's messages stored within the window (and, below, those of this group).
  local known, fresh, fieldOf, fields = {}, {}, {}, {}
  for n = 1, count do
    local i = at + 2 + (n - 1) * 7
    if ARGV[i + 1] ~= '' then
      fieldOf[n] = ARGV[i] .. ':' .. ARGV[i + 1]
      fields[#fields + 1] = fieldOf[n]
    end
  end
  if win > 0 then
    if #fields > 0 then
      for b = math.floor((now - win) / half), bucket do
        local got = chunked(true, 'HMGET', base .. 'cids:' .. b, fields)
        for x = 1, #fields do if got[x] then known[fields[x]] = got[x] end end
      end
    end
  end
  -- texts: per text bucket, the fields this group writes (in one HSET each, at the end); added: the
  -- texts of this group's messages by seq, for a reply to one of them.
  local readAt, pubs, texts, bucketOrder, added, resent = {}, {}, {}, {}, {}, {}
  local i = at + 2
  for n = 1, count do
    local key, cid, from, text, ts = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    local extras, tail = ARGV[i + 5], ARGV[i + 6]
    i = i + 7
    local reply, names, mkeys, display = '', '', '', ''
    if extras ~= '' then
      reply, names, mkeys, display = string.match(extras, '^([^\n]*)\n([^\n]*)\n([^\n]*)\n(.*)$')
    end
    local field = fieldOf[n] or false
    local prev = field and known[field] or false
    local quoted = ''
    local replyFrom
    if not prev and reply ~= '' then
      local f = currentOne(base, log, reply)
      if f and added[reply] then f.t = added[reply] end
      if f and not f.d then
        replyFrom = f.f
        quoted = cjson.encode({ seq = tonumber(reply), from = f.f, text = quote(f.t, quoteMax) })
      else
        prev = 'refused'
        out[#out + 1] = 'r'
      end
    end
    if prev == 'refused' then
      -- nothing stored
    elseif prev then
      -- The stored message as it is now ('seq:ts' is what the cid bucket keeps).
      local ps, pt = string.match(prev, '^(%d+):(.*)$')
      local stored = currentOne(base, log, ps)
      local f = stored or {}
      if f.d then out[#out + 1] = { 'D', ps, pt, '', '', f.dn or '' }
      elseif f.e then out[#out + 1] = { 'E', ps, pt, f.e, f.t, f.dn or '' }
      else
        out[#out + 1] = { 'd', ps, pt, '', '', f.dn or '' }
        if publish == '' and stored then
          resent[#resent + 1] = cjson.encode({
            tonumber(ps), f.f, f.t, tonumber(f.ts), f.c or '', f.m or '', quoteOfReply(base, log, f, quoteMax) or '',
            f.dn or '',
          })
        end
      end
    else
      seq = seq + 1
      local sid = tostring(seq)
      local tb = bucketKey(base, seq)
      local tf = texts[tb]
      if not tf then
        tf = {}
        texts[tb] = tf
        bucketOrder[#bucketOrder + 1] = tb
      end
      tf[#tf + 1] = sid
      tf[#tf + 1] = text
      added[sid] = text
      if quoted == '' and display == '' then
        redis.call('XADD', log, sid .. '-1', 'f', from, 'ts', ts, 'c', cid, 'k', key)
      else
        local fields = { 'f', from, 'ts', ts, 'c', cid, 'k', key }
        if quoted ~= '' then
          fields[#fields + 1] = 'q'; fields[#fields + 1] = reply
          fields[#fields + 1] = 'qf'; fields[#fields + 1] = replyFrom
        end
        if display ~= '' then fields[#fields + 1] = 'dn'; fields[#fields + 1] = display end
        redis.call('XADD', log, sid .. '-1', unpack(fields))
      end
      if names ~= '' then
        tf[#tf + 1] = 'm' .. sid
        tf[#tf + 1] = names
        tf[#tf + 1] = 'k' .. sid
        tf[#tf + 1] = mkeys
        for pk in string.gmatch(mkeys, '[^\t]+') do
          local mn = base .. 'mn:' .. pk
          redis.call('ZADD', mn, seq, seq)
          redis.call('ZREMRANGEBYRANK', mn, 0, -mentionsKept - 1)
        end
      end
      readAt[key] = sid
      local stored = sid .. ':' .. ts
      if field then
        known[field] = stored
        fresh[#fresh + 1] = field
        fresh[#fresh + 1] = stored
      end
      -- No channel form: from, text and cid need no escaping in JSON (and there are no mentions).
      if tail == '' then tail = '"' .. from .. '","' .. text .. '",' .. ts .. ',"' .. cid .. '",""' end
      pubs[#pubs + 1] = '[' .. sid .. ',' .. tail .. ',' .. (quoted == '' and '""' or cjson.encode(quoted)) ..
          (display == '' and '' or ',' .. cjson.encode(display)) .. ']'
      out[#out + 1] = 'n'
    end
  end
  for _, tb in ipairs(bucketOrder) do chunked(false, 'HSET', tb, texts[tb]) end
  if #pubs > 0 then
    later[#later + 1] = 'seq'
    later[#later + 1] = seq
    local positions = {}
    for k, s in pairs(readAt) do positions[#positions + 1] = k; positions[#positions + 1] = s end
    chunked(false, 'HSET', reads, positions)
    if win > 0 and #fresh > 0 then
      local cids = base .. 'cids:' .. bucket
      chunked(false, 'HSET', cids, fresh)
      if head[4] ~= tostring(bucket) then
        redis.call('PEXPIREAT', cids, (bucket + 1) * half + win)
        later[#later + 1] = 'cb'
        later[#later + 1] = bucket
      end
    end
    if publish ~= '' then
      redis.call(publish, channel, '{"e":' .. cjson.encode(epoch) .. ',"m":[' .. table.concat(pubs, ',') .. ']}')
    end
  end
  local trimmed = 0
  local keep = tonumber(ARGV[1])
  if keep > 0 and seq > keep then trimmed = redis.call('XTRIM', log, 'MINID', (seq - keep + 1) .. '-1') end
  -- Age retention: the oldest entries (at most 100 a call) older than ARGV[2] (ms since the epoch),
  -- looked for at most every ageCheckMs a room (retention is counted in days).
  local minTs = tonumber(ARGV[2])
  if minTs > 0 and now - tonumber(head[3] or '0') >= ageCheckMs then
    later[#later + 1] = 'aged'
    later[#later + 1] = now
    local function tsOf(e)
      for j = 1, #e[2], 2 do if e[2][j] == 'ts' then return tonumber(e[2][j + 1]) end end
    end
    local oldest = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
    -- Most looks find the oldest entry young enough: one read. Only then up to 100 are looked at.
    if oldest and (tsOf(oldest) or minTs) < minTs then
      local cut = nil
      for _, e in ipairs(redis.call('XRANGE', log, '-', '+', 'COUNT', 100)) do
        local ts = tsOf(e)
        if ts and ts < minTs then cut = tonumber(string.match(e[1], '^(%d+)')) else break end
      end
      if cut then trimmed = trimmed + redis.call('XTRIM', log, 'MINID', (cut + 1) .. '-1') end
    end
  end
  -- The texts, reactions of messages retention removed go with them: whole text buckets below the
  -- oldest kept seq, the fields of those below it in its own bucket (amortized: each seq once).
  local rx = base .. 'rx'
  if trimmed > 0 then
    local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
    local low = first and tonumber(string.match(first[1], '^(%d+)')) or (seq + 1)
    -- A room stored before the text buckets has no tl: it starts where this trim did.
    local tl = math.max(1, tonumber(head[5] or (low - trimmed)))
    if tl < low then
      local lowBucket = bucketKey(base, low)
      local drop = {}
      for s = tl, low - 1 do
        local tb = bucketKey(base, s)
        if tb == lowBucket then
          for _, x in ipairs({ s, 'm' .. s, 'k' .. s, 'd' .. s, 'e' .. s, 'v' .. s }) do drop[#drop + 1] = x end
        elseif s == tl or (s % TEXT_BUCKET) == 0 then
          redis.call('DEL', tb)
        end
      end
      if #drop > 0 then chunked(false, 'HDEL', lowBucket, drop) end
      later[#later + 1] = 'tl'
      later[#later + 1] = low
    end
  end
  if #later > 0 then redis.call('HSET', meta, unpack(later)) end
  if trimmed > 0 and redis.call('EXISTS', rx) == 1 then
    local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
    local low = first and tonumber(string.match(first[1], '^(%d+)')) or (seq + 1)
    local gone = redis.call('ZRANGEBYSCORE', rx, '-inf', '(' .. low)
    for _, s in ipairs(gone) do redis.call('DEL', base .. 'rc:' .. s, base .. 'rp:' .. s) end
    if #gone > 0 then redis.call('ZREMRANGEBYSCORE', rx, '-inf', '(' .. low) end
  end
  if publish == '' then
    for _, p in ipairs(pubs) do resent[#resent + 1] = p end
    out[#out + 1] = #resent > 0 and ('{"e":' .. cjson.encode(epoch) .. ',"m":[' .. table.concat(resent, ',') .. ']}') or ''
  end
  return out, i
end
local all, at = {}, 8
for k = 1, #KEYS, 3 do
  all[#all + 1], at = room(KEYS[k], KEYS[k + 1], KEYS[k + 2], at)
end
return all

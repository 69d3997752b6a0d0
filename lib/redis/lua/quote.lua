-- quote: not a script but a library, put before the scripts that quote a reply (append.lua and
-- change_message.lua; see lib/redis/scripts.ts).
-- quote(t, max): the quote a reply keeps of text t, as quoteOf in lib/protocol.ts: its first line,
-- cut to max code points (UTF-8 lead bytes are counted, so no character is split).
local function quote(t, max)
  local nl = string.find(t, '[\r\n]')
  if nl then t = string.sub(t, 1, nl - 1) end
  local n = 0
  for i = 1, #t do
    local b = string.byte(t, i)
    if b < 128 or b >= 192 then
      n = n + 1
      if n > max then return string.sub(t, 1, i - 1) end
    end
  end
  return t
end

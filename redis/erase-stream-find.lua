-- erase-stream-find: one step of an erasure's walk of the intake stream: finds the phone's entries among the
-- next ARGV[4], for erase-stream to delete (with their dedupe claims, which the caller names as keys). Changes
-- nothing.
--
-- KEYS[1]  P{intake}:stream  the intake stream
-- ARGV[1]  the sender as the stream holds it (whatsapp:+E164)
-- ARGV[2]  where to start (an id, "-", or "(" and an id)
-- ARGV[3]  where to end: the last id when the erasure began (what the customer sends meanwhile is a new
--          conversation and kept)
-- ARGV[4]  how many entries to read
--
-- Returns {the next start, or "" at the end, then per entry of the phone: its id, its "sid" or "", its "idem"
-- or ""}.
local batch = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[3], 'COUNT', ARGV[4])
local out = {''}
if #batch >= tonumber(ARGV[4]) then out[1] = '(' .. batch[#batch][1] end
for _, e in ipairs(batch) do
  local f, from, sid, idem = e[2], nil, '', ''
  for i = 1, #f, 2 do
    if f[i] == 'from' then from = f[i + 1] elseif f[i] == 'sid' then sid = f[i + 1]
    elseif f[i] == 'idem' then idem = f[i + 1] end
  end
  if from == ARGV[1] then
    out[#out + 1] = e[1]; out[#out + 1] = sid; out[#out + 1] = idem
  end
end
return out

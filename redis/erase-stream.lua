-- erase-stream: one step of an erasure's walk of the intake stream: deletes the phone's entries among the
-- next ARGV[4] and marks their dedupe claims "erased" (kept until their TTL, so a replay stays a duplicate).
--
-- KEYS[1]  P{intake}:stream  the intake stream
-- ARGV[1]  the sender as the stream holds it (whatsapp:+E164)
-- ARGV[2]  where to start (an id, "-", or "(" and an id)
-- ARGV[3]  where to end: the last id when the erasure began (what the customer sends meanwhile is a new
--          conversation and kept)
-- ARGV[4]  how many entries to read
-- ARGV[5]  the MessageSid claim prefix, P{intake}:sid: (claims named from the entries' "sid")
-- ARGV[6]  the idempotency token claim prefix, P{intake}:idem: (named from the entries' "idem")
--
-- Returns {the next start, or "" at the end, entries deleted, claims marked}.
local batch = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[3], 'COUNT', ARGV[4])
local n, dd = 0, 0
for _, e in ipairs(batch) do
  local f, from, sid, idem = e[2], nil, nil, nil
  for i = 1, #f, 2 do
    if f[i] == 'from' then from = f[i + 1] elseif f[i] == 'sid' then sid = f[i + 1]
    elseif f[i] == 'idem' then idem = f[i + 1] end
  end
  if from == ARGV[1] then
    n = n + redis.call('XDEL', KEYS[1], e[1])
    if sid and redis.call('SET', ARGV[5] .. sid, 'erased', 'XX', 'KEEPTTL') then dd = dd + 1 end
    if idem and idem ~= '' and redis.call('SET', ARGV[6] .. idem, 'erased', 'XX', 'KEEPTTL') then
      dd = dd + 1
    end
  end
end
if #batch < tonumber(ARGV[4]) then return {'', n, dd} end
return {'(' .. batch[#batch][1], n, dd}

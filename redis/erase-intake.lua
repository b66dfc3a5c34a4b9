-- erase-intake: an erasure's step in the intake: marks the MessageSid claims of the phone's history and inbox
-- (found by erase-read) "erased", and notes the intake stream's last id for the walk that follows
-- (erase-stream-find and erase-stream).
--
-- KEYS[1]   P{intake}:stream       the intake stream (only its last id is read)
-- KEYS[2..] P{intake}:sid:<sid>    the claims
--
-- Returns {claims set to "erased" (kept until their TTL, so a replay is still a duplicate; none is created),
-- the stream's last id or ""}.
local n = 0
for i = 2, #KEYS do
  -- Counted once: the same claim is met by both this step and the other one (history and stream).
  local v = redis.call('GET', KEYS[i])
  if v and v ~= 'erased' then
    redis.call('SET', KEYS[i], 'erased', 'KEEPTTL')
    n = n + 1
  end
end
local last = ''
if redis.call('EXISTS', KEYS[1]) == 1 then
  local r = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #r > 0 then last = r[1][1] end
end
return {n, last}

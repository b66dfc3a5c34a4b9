-- erase-stream: deletes intake stream entries found by erase-stream-find and marks their dedupe claims
-- "erased" (kept until their TTL, so a replay stays a duplicate; none is created).
--
-- KEYS[1]   P{intake}:stream                              the intake stream
-- KEYS[2..] P{intake}:sid:<sid>, P{intake}:idem:<token>   the entries' claims
-- ARGV[1..] the entries' ids
--
-- Returns {entries deleted, claims marked}. The claims are marked before the entries go, so a step
-- interrupted half-way is found again and finished by the next erasure.
local dd = 0
for i = 2, #KEYS do
  -- Counted once: the same claim is met by both this step and the other one (history and stream).
  local v = redis.call('GET', KEYS[i])
  if v and v ~= 'erased' then
    redis.call('SET', KEYS[i], 'erased', 'KEEPTTL')
    dd = dd + 1
  end
end
local n = 0
if #ARGV > 0 then n = redis.call('XDEL', KEYS[1], unpack(ARGV)) end
return {n, dd}

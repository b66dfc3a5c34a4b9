-- engine-lease-one: takes one phone's turn lease if no turn holds it (lead jobs merging their result,
-- background lead retries).
--
-- KEYS[1]  P{turns}:lease  hash: phone -> until when a turn holds it (ms)
-- ARGV[1]  the phone (+E164)
-- ARGV[2]  now (ms)
-- ARGV[3]  the lease's end (ms)
--
-- Returns 1 when the lease was taken, 0 when a lease that has not ended holds the phone.
local l = redis.call('HGET', KEYS[1], ARGV[1])
if l and tonumber(l) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1

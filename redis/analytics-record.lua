-- analytics-record: adds the counts of the turns committed since the last call (summed by the daemon, one
-- call a second at most) to the totals and to the day, and notes the phones' last activity.
--
-- KEYS[1]  P{stats}:totals          hash of counters since the start
-- KEYS[2]  P{stats}:day:YYYY-MM-DD  the same counters for one UTC day
-- KEYS[3]  P{stats}:active          sorted set: phone -> last customer turn (ms)
-- ARGV[1]  now (ms)
-- ARGV[2]  the day key's TTL, in seconds (40 days)
-- ARGV[3]  the oldest activity kept (ms): older phones leave KEYS[3] (the conversation TTL)
-- ARGV[4]  n: how many (ms, phone) pairs follow (at most 500)
-- ARGV[5 .. 4+2n]  each phone's last customer turn (ms) and the phone (+E164)
-- ARGV[5+2n ..]  field, increment pairs
--
-- Returns 1.
local n = tonumber(ARGV[4])
for i = 5 + 2 * n, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
end
if #ARGV >= 5 + 2 * n then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
if n > 0 then redis.call('ZADD', KEYS[3], unpack(ARGV, 5, 4 + 2 * n)) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[3])
return 1

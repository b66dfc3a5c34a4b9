-- analytics-record: adds one committed turn's counts to the totals and to the day, and notes the phone's
-- last activity.
--
-- KEYS[1]  P{stats}:totals          hash of counters since the start
-- KEYS[2]  P{stats}:day:YYYY-MM-DD  the same counters for one UTC day
-- KEYS[3]  P{stats}:active          sorted set: phone -> last customer turn (ms)
-- ARGV[1]  the phone (+E164), or "" for counts that belong to no customer turn
-- ARGV[2]  now (ms)
-- ARGV[3]  the day key's TTL, in seconds (40 days)
-- ARGV[4]  the oldest activity kept (ms): older phones leave KEYS[3] (the conversation TTL)
-- ARGV[5..]  field, increment pairs
--
-- Returns 1.
for i = 5, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
if ARGV[1] ~= '' then redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[4])
return 1

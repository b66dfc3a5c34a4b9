-- analytics-read: reads the counters for /api/analytics/conversations in one call.
--
-- KEYS[1]  P{stats}:totals           hash of counters since the start
-- KEYS[2]  P{stats}:active           sorted set: phone -> last customer turn (ms)
-- KEYS[3..]  P{stats}:day:YYYY-MM-DD  the days asked for
-- ARGV[1]  24 hours ago (ms)
--
-- Returns {totals (HGETALL), phones active in 24 h, phones active within the conversation TTL, then each
-- day's HGETALL in KEYS order}.
local out = {redis.call('HGETALL', KEYS[1]), redis.call('ZCOUNT', KEYS[2], ARGV[1], '+inf'),
  redis.call('ZCARD', KEYS[2])}
for i = 3, #KEYS do table.insert(out, redis.call('HGETALL', KEYS[i])) end
return out

-- engine-schedule: makes a phone's turn due after the coalescing window, capped from its burst's start.
--
-- KEYS[1]  P{turns}:due    sorted set: phone -> when its turn may start (ms)
-- KEYS[2]  P{turns}:first  hash: phone -> when its current burst began (ms)
-- ARGV[1]  the phone (+E164)
-- ARGV[2]  now (ms)
-- ARGV[3]  the coalescing window (ms): the turn waits this long after the last message
-- ARGV[4]  the cap (ms): a burst never waits longer than this after its first message
--
-- Returns the due time written (ms).
local now = tonumber(ARGV[2])
local first = now
if redis.call('HSETNX', KEYS[2], ARGV[1], now) == 0 then first = tonumber(redis.call('HGET', KEYS[2], ARGV[1])) end
local due = math.min(now + tonumber(ARGV[3]), first + tonumber(ARGV[4]))
redis.call('ZADD', KEYS[1], due, ARGV[1])
return due

-- erase-outbox: an erasure's step in the outbox: the phone's queued replies, its due entry and its opt-out go,
-- unless a send to it is under way.
--
-- KEYS[1]  P{outbox}:due           sorted set by recipient: a due time ahead with jobs queued means a send is
--                                  under way ("busy")
-- KEYS[2]  P{outbox}:q:<+E164>     the phone's queue of JSON jobs
-- KEYS[3]  P{outbox}:optout        set of recipients who opted out
-- ARGV[1]  the phone (+E164)
-- ARGV[2]  now (ms)
--
-- Returns {"busy"} while a send is under way (the caller retries the erasure), else {queued jobs deleted,
-- opt-out removed (0/1)}.
local od = redis.call('ZSCORE', KEYS[1], ARGV[1])
local n = redis.call('LLEN', KEYS[2])
if od and tonumber(od) > tonumber(ARGV[2]) and n > 0 then return {'busy'} end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return {n, redis.call('SREM', KEYS[3], ARGV[1])}

-- sender-optout: records that a recipient opted out (Twilio's 21610) and drops everything queued for it.
--
-- KEYS[1]  P{outbox}:due     sorted set: recipients whose head job is due, by time (ms)
-- KEYS[2]  P{outbox}:q:<to>  the recipient's queue of JSON jobs
-- KEYS[3]  P{outbox}:optout  set of recipients who opted out
-- ARGV[1]  the recipient (+E164)
--
-- Returns the number of queued jobs dropped.
redis.call('SADD', KEYS[3], ARGV[1])
local n = redis.call('LLEN', KEYS[2])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return n

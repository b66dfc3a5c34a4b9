-- sender-optout: records that a recipient opted out (Twilio's 21610) and drops everything queued for it.
--
-- KEYS[1]  P{outbox}:due     sorted set: recipients whose head job is due, by time (ms)
-- KEYS[2]  P{outbox}:q:<to>  the recipient's list of job ids
-- KEYS[3]  P{outbox}:optout  set of recipients who opted out
-- ARGV[1]  the recipient (+E164)
-- ARGV[2]  the job key prefix, P{outbox}:job: (the jobs are named here, from the ids in KEYS[2])
--
-- Returns the number of queued jobs dropped.
redis.call('SADD', KEYS[3], ARGV[1])
local ids = redis.call('LRANGE', KEYS[2], 0, -1)
for _, id in ipairs(ids) do redis.call('DEL', ARGV[2] .. id) end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return #ids

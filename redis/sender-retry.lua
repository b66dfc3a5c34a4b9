-- sender-retry: records a failed attempt on the recipient's head job and makes it due again later.
--
-- KEYS[1]  P{outbox}:due     sorted set: recipients whose head job is due, by time (ms)
-- KEYS[2]  P{outbox}:q:<to>  the recipient's queue of JSON jobs
-- ARGV[1]  the recipient (+E164)
-- ARGV[2]  the job id
-- ARGV[3]  the attempts made so far
-- ARGV[4]  "1" when the attempt may have reached Twilio (its sent_ms stays: the next attempt looks first),
--          "0" when it created nothing (sent_ms goes)
-- ARGV[5]  when it is due again (ms)
--
-- Returns 1, or 0 when the job is no longer the queue's head (opted out or erased meanwhile): nothing changes.
local head = redis.call('LINDEX', KEYS[2], 0)
if not head then return 0 end
local ok, j = pcall(cjson.decode, head)
if not ok or type(j) ~= 'table' or tostring(j.id) ~= ARGV[2] then return 0 end
j.attempts = tonumber(ARGV[3])
if ARGV[4] ~= '1' then j.sent_ms = nil end
redis.call('LSET', KEYS[2], 0, cjson.encode(j))
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[1])
return 1

-- sender-done: removes a finished job (sent, or given up) and makes the recipient's next job due now.
--
-- KEYS[1]  P{outbox}:due     sorted set: recipients whose head job is due, by time (ms)
-- KEYS[2]  P{outbox}:q:<to>  the recipient's queue of JSON jobs
-- ARGV[1]  the recipient (+E164)
-- ARGV[2]  the job id
-- ARGV[3]  now (ms)
--
-- Returns 1. The job leaves the queue only if it is still its head (a repeated call changes nothing more);
-- a recipient with nothing left leaves the due set.
local head = redis.call('LINDEX', KEYS[2], 0)
if head then
  local ok, j = pcall(cjson.decode, head)
  if ok and type(j) == 'table' and tostring(j.id) == ARGV[2] then redis.call('LPOP', KEYS[2]) end
end
if redis.call('LLEN', KEYS[2]) > 0 then redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
else redis.call('ZREM', KEYS[1], ARGV[1]) end
return 1

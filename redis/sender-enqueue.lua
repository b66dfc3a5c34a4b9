-- sender-enqueue: queues a reply (one job per part) behind the recipient's earlier ones; also the STOP
-- confirmation (opt-out first) and the START welcome (opt-in first).
--
-- KEYS[1]  P{outbox}:seq         job id counter
-- KEYS[2]  P{outbox}:due         sorted set: recipients whose head job is due, by time (ms)
-- KEYS[3]  P{outbox}:q:<to>      the recipient's list of job ids, oldest first
-- KEYS[4]  P{outbox}:optout      set of recipients who opted out
-- KEYS[5]  P{outbox}:once:<key>  the message is queued at most once per key; KEYS[4] again for no key
-- ARGV[1]  the job key prefix, P{outbox}:job: (the jobs P{outbox}:job:<id> are named here, from INCR)
-- ARGV[2]  the recipient (+E164)
-- ARGV[3]  created_ms
-- ARGV[4]  now (ms): the recipient's due time if it has none
-- ARGV[5]  the once-key's TTL, in seconds
-- ARGV[6]  content_sid ("" for a body)
-- ARGV[7]  content_vars (JSON, with a content_sid)
-- ARGV[8]  tag ("" for none): set on the last part, whose outcome is recorded under P{outbox}:result:<tag>
-- ARGV[9]  "out" (opt out, then queue), "in" (opt in, then queue) or ""
-- ARGV[10..]  the parts' bodies
--
-- Returns the number of parts queued, 0 when the once-key was set already, -1 when the recipient opted out.
-- The once-key is checked first and set last: Redis does not undo a script that fails half-way.
if KEYS[5] ~= KEYS[4] and redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
if ARGV[9] == 'out' then
  -- Opting out: nothing queued goes out any more; only this confirmation.
  redis.call('SADD', KEYS[4], ARGV[2])
  for _, id in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do redis.call('DEL', ARGV[1] .. id) end
  redis.call('DEL', KEYS[3])
  redis.call('ZREM', KEYS[2], ARGV[2])
elseif ARGV[9] == 'in' then
  redis.call('SREM', KEYS[4], ARGV[2])
elseif redis.call('SISMEMBER', KEYS[4], ARGV[2]) == 1 then
  return -1
end
local parts = #ARGV - 9
for i = 10, #ARGV do
  local id = redis.call('INCR', KEYS[1])
  redis.call('HSET', ARGV[1] .. id, 'to', ARGV[2], 'body', ARGV[i], 'attempts', 0,
             'created_ms', ARGV[3], 'part', i - 9, 'parts', parts)
  if ARGV[6] ~= '' then redis.call('HSET', ARGV[1] .. id, 'content_sid', ARGV[6], 'content_vars', ARGV[7]) end
  if ARGV[8] ~= '' and i == #ARGV then redis.call('HSET', ARGV[1] .. id, 'tag', ARGV[8]) end
  redis.call('RPUSH', KEYS[3], id)
end
if not redis.call('ZSCORE', KEYS[2], ARGV[2]) then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2]) end
if KEYS[5] ~= KEYS[4] then redis.call('SET', KEYS[5], '1', 'EX', tonumber(ARGV[5])) end
return parts

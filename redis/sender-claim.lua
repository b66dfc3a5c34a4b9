-- sender-claim: hands out the head job of each due recipient and moves the recipient's due time a lease
-- ahead, so each recipient has one reply in flight and a crash only delays it by the lease.
--
-- KEYS[1]  P{outbox}:due  sorted set: recipients whose head job is due, by time (ms)
-- ARGV[1]  the queue key prefix, P{outbox}:q: (the recipients' queues are named here: they come from KEYS[1])
-- ARGV[2]  the job key prefix, P{outbox}:job:
-- ARGV[3]  now (ms)
-- ARGV[4]  the lease's end (ms)
-- ARGV[5]  how many recipients at most
--
-- Returns a flat array, per job handed out: id, to, body, attempts, sent_ms, content_sid, content_vars, tag
-- (missing fields as ""). Queue heads whose job is gone are dropped; a recipient with an empty queue leaves
-- the due set. sent_ms marks an attempt under way: still set at the next claim, that attempt's outcome is
-- unknown (the sender then looks at Twilio before sending again).
local out = {}
local tos = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[5]))
for _, to in ipairs(tos) do
  local id = redis.call('LINDEX', ARGV[1] .. to, 0)
  while id and redis.call('EXISTS', ARGV[2] .. id) == 0 do
    redis.call('LPOP', ARGV[1] .. to)
    id = redis.call('LINDEX', ARGV[1] .. to, 0)
  end
  if not id then
    redis.call('ZREM', KEYS[1], to)
  else
    redis.call('ZADD', KEYS[1], ARGV[4], to)
    local h = redis.call('HMGET', ARGV[2] .. id, 'body', 'attempts', 'sent_ms', 'content_sid', 'content_vars', 'tag')
    redis.call('HSET', ARGV[2] .. id, 'sent_ms', ARGV[3])
    table.insert(out, id); table.insert(out, to); table.insert(out, h[1]); table.insert(out, h[2])
    table.insert(out, h[3] or ''); table.insert(out, h[4] or ''); table.insert(out, h[5] or '')
    table.insert(out, h[6] or '')
  end
end
return out

-- sender-done: removes a finished job (sent, or given up) and hands out the recipient's next job at once when
-- the caller has room for it (as sender-claim would: sent_ms set, the recipient due again at the lease's end),
-- so the parts of a reply go out one after the other without a claim each; else the next job is due now.
-- With status callbacks on, it also records the message's SID for the delivery reports.
--
-- KEYS[1]  P{outbox}:due        sorted set: recipients whose head job is due, by time (ms)
-- KEYS[2]  P{outbox}:q:<to>     the recipient's queue of JSON jobs
-- KEYS[3]  P{outbox}:msg:<sid>  optional: the sent message's record (hash: to, job, and tag for a tagged job;
--                               the status callbacks add status, error_code), kept ARGV[6] seconds
-- ARGV[1]  the recipient (+E164)
-- ARGV[2]  the job id (an opaque string)
-- ARGV[3]  now (ms)
-- ARGV[4]  the lease's end (ms), for a hand-off
-- ARGV[5]  "1" when the caller may start one more send now, else "0"
-- ARGV[6]  with KEYS[3]: the record's TTL in seconds
-- ARGV[7]  with KEYS[3]: the job's tag, or "" (a failure the delivery reports tell is told to the tag's owner)
--
-- Returns {id, to, body, attempts, sent_ms, content_sid, content_vars, tag} (as sender-claim) when the next
-- job is handed out, 1 when it is not, 0 when the finished job was not the queue's head (a repeated call, or
-- the queue was replaced meanwhile: nothing changes but a due time for what is queued). The head and the job
-- after it are taken in one LPOP and the one after is pushed back (LPUSH), marked when it is handed out: that
-- costs one command less than reading it apart, and under maxmemory Redis never refuses the push: only a
-- script's first write may be refused, never one after it (Redis 7.0 src/script.c, scriptVerifyOOM).
if KEYS[3] then
  redis.call('HSET', KEYS[3], 'to', ARGV[1], 'job', ARGV[2])
  if ARGV[7] and ARGV[7] ~= '' then redis.call('HSET', KEYS[3], 'tag', ARGV[7]) end
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[6]))
end
-- The finished job and the one after it, in one pop: the one after goes back at the head below.
local two = redis.call('LPOP', KEYS[2], 2)
local head, nxt = two and two[1], two and two[2]
if head then
  local ok, j = pcall(cjson.decode, head)
  if not (ok and type(j) == 'table' and tostring(j.id) == ARGV[2]) then
    -- Not this job (should not happen): put both back, keep its due time (a send of it may be under way).
    if nxt then redis.call('LPUSH', KEYS[2], nxt, head) else redis.call('LPUSH', KEYS[2], head) end
    redis.call('ZADD', KEYS[1], 'NX', ARGV[3], ARGV[1])
    return 0
  end
end
if not nxt then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
local ok, j = pcall(cjson.decode, nxt)
if ARGV[5] ~= '1' or not (ok and type(j) == 'table' and j.id ~= nil) then
  -- No room here, or not a JSON job (a legacy id: sender-claim reports it for its conversion): back as it was.
  redis.call('LPUSH', KEYS[2], nxt)
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
local sent = j.sent_ms or ''
j.sent_ms = ARGV[3]
redis.call('LPUSH', KEYS[2], cjson.encode(j))
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
return {tostring(j.id), ARGV[1], j.body or '', tostring(j.attempts or 0), sent, j.content_sid or '',
        j.content_vars or '', j.tag or ''}

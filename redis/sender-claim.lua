-- sender-claim: hands out the head job of one due recipient and moves the recipient's due time a lease
-- ahead, so each recipient has one reply in flight and a crash only delays it by the lease. The sender reads
-- the due recipients first (ZRANGEBYSCORE on KEYS[1]), then runs this once per recipient, pipelined. Most
-- jobs never come here: sender-enqueue and sender-done hand them out themselves; this takes retries, a
-- crashed sender's jobs and what waited for room.
--
-- KEYS[1]  P{outbox}:due     sorted set: recipients whose head job is due, by time (ms)
-- KEYS[2]  P{outbox}:q:<to>  the recipient's queue of JSON jobs (see sender-enqueue)
-- ARGV[1]  the recipient (+E164)
-- ARGV[2]  now (ms)
-- ARGV[3]  the lease's end (ms)
--
-- Returns nil when the recipient is not due (another instance claimed it since it was read) or has nothing
-- queued (it then leaves the due set; a head that is neither a JSON job nor a job id is dropped), else
-- {id, to, body, attempts, sent_ms, content_sid, content_vars, tag} (missing fields as ""). sent_ms marks an
-- attempt under way: still set at the next claim, that attempt's outcome is unknown (the sender then looks at
-- Twilio before sending again). A head that is a bare job id, queued by a release before the JSON jobs (its
-- job in the hash P{outbox}:job:<id>), is left in place and answered {"legacy", id, to}: the sender converts it
-- with sender-upgrade, then claims again.
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not at or tonumber(at) > tonumber(ARGV[2]) then return nil end
local head, j = redis.call('LINDEX', KEYS[2], 0), nil
while head do
  if string.match(head, '^%d+$') then return {'legacy', head, ARGV[1]} end
  local ok, v = pcall(cjson.decode, head)
  if ok and type(v) == 'table' and v.id ~= nil then j = v; break end
  redis.call('LPOP', KEYS[2])
  head = redis.call('LINDEX', KEYS[2], 0)
end
if not j then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return nil
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
local sent = j.sent_ms or ''
j.sent_ms = ARGV[2]
redis.call('LSET', KEYS[2], 0, cjson.encode(j))
return {tostring(j.id), ARGV[1], j.body or '', tostring(j.attempts or 0), sent, j.content_sid or '',
        j.content_vars or '', j.tag or ''}

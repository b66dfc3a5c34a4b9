-- sender-enqueue: queues a reply (one job per part) behind the recipient's earlier ones; also the STOP
-- confirmation (opt-out first) and the START welcome (opt-in first). A job is a JSON object in the
-- recipient's queue itself (no key of its own), so every key is named by the caller. When the recipient had
-- nothing queued and no send under way, and the caller has room for one more send, the first job is handed
-- out at once, as sender-claim would: its sent_ms is set and the recipient is due again at the lease's end,
-- so a crash before the send leaves exactly what a claim leaves.
--
-- KEYS[1]  P{outbox}:seq         job id counter
-- KEYS[2]  P{outbox}:due         sorted set: recipients whose head job is due, by time (ms)
-- KEYS[3]  P{outbox}:q:<to>      the recipient's queue, oldest first: JSON jobs {id, body, attempts,
--                                created_ms, part, parts[, content_sid, content_vars][, tag][, sent_ms]}
-- KEYS[4]  P{outbox}:optout      set of recipients who opted out
-- KEYS[5]  P{outbox}:once:<key>  the message is queued at most once per key; KEYS[4] again for no key
-- ARGV[1]  the recipient (+E164)
-- ARGV[2]  created_ms
-- ARGV[3]  now (ms): the recipient's due time if it has none
-- ARGV[4]  the once-key's TTL, in seconds
-- ARGV[5]  content_sid ("" for a body)
-- ARGV[6]  content_vars (JSON, with a content_sid)
-- ARGV[7]  tag ("" for none): set on the last part, whose outcome is recorded under P{outbox}:result:<tag>
-- ARGV[8]  "out" (opt out, then queue), "in" (opt in, then queue) or ""
-- ARGV[9]  "1" when the caller may start one more send now (a hand-off), else "0"
-- ARGV[10] the lease's end (ms), for a hand-off
-- ARGV[11..]  the parts' bodies
--
-- Returns the number of parts queued, 0 when the once-key was set already, -1 when the recipient opted out;
-- with a hand-off, {parts, id, to, body, attempts, sent_ms, content_sid, content_vars, tag} (as sender-claim,
-- missing fields as ""). The once-key is checked first and set last: Redis does not undo a script that fails
-- half-way.
if KEYS[5] ~= KEYS[4] and redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
if ARGV[8] == 'out' then
  -- Opting out: nothing queued goes out any more; only this confirmation.
  redis.call('SADD', KEYS[4], ARGV[1])
  redis.call('DEL', KEYS[3])
  redis.call('ZREM', KEYS[2], ARGV[1])
elseif ARGV[8] == 'in' then
  redis.call('SREM', KEYS[4], ARGV[1])
elseif redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 1 then
  return -1
end
local parts = #ARGV - 10
local last = redis.call('INCRBY', KEYS[1], parts)
local jobs, first = {}, nil
for i = 1, parts do
  local j = {id = tostring(last - parts + i), body = ARGV[10 + i], attempts = 0, created_ms = ARGV[2], part = i,
             parts = parts}
  if ARGV[5] ~= '' then j.content_sid = ARGV[5]; j.content_vars = ARGV[6] end
  if ARGV[7] ~= '' and i == parts then j.tag = ARGV[7] end
  if i == 1 then first = j end
  jobs[i] = cjson.encode(j)
end
-- A due time ahead is a send under way (or a retry's wait): no hand-off then.
local at = redis.call('ZSCORE', KEYS[2], ARGV[1])
local handoff = ARGV[9] == '1' and (not at or tonumber(at) <= tonumber(ARGV[3]))
local plain = jobs[1]
if handoff then
  first.sent_ms = ARGV[3]
  jobs[1] = cjson.encode(first)
end
-- The queue was empty before this push only if it now holds just these parts.
if redis.call('RPUSH', KEYS[3], unpack(jobs)) ~= parts and handoff then
  -- Jobs were waiting (their recipient due, not yet claimed): this one waits its turn, unmarked.
  handoff = false
  redis.call('LSET', KEYS[3], -parts, plain)
end
if handoff then redis.call('ZADD', KEYS[2], ARGV[10], ARGV[1])
elseif not at then redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1]) end
if KEYS[5] ~= KEYS[4] then redis.call('SET', KEYS[5], '1', 'EX', tonumber(ARGV[4])) end
if not handoff then return parts end
return {parts, first.id, ARGV[1], first.body, '0', '', first.content_sid or '', first.content_vars or '',
        first.tag or ''}

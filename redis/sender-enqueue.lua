-- sender-enqueue: queues a reply (one job per part) behind the recipient's earlier ones; also the STOP
-- confirmation (opt-out first) and the START welcome (opt-in first). A job is a JSON object in the
-- recipient's queue itself (no key of its own), so every key is named by the caller. When the recipient had
-- nothing queued and no send under way, and the caller has room for one more send, the first job is handed
-- out at once, as sender-claim would: its sent_ms is set and the recipient is due again at the lease's end,
-- so a crash before the send leaves exactly what a claim leaves.
--
-- KEYS[1]  P{outbox}:due         sorted set: recipients whose head job is due, by time (ms)
-- KEYS[2]  P{outbox}:q:<to>      the recipient's queue, oldest first: JSON jobs {id, body, attempts,
--                                created_ms, part, parts[, content_sid, content_vars][, tag][, sent_ms]}
-- KEYS[3]  P{outbox}:optout      set of recipients who opted out
-- KEYS[4]  P{outbox}:once:<key>  the message is queued at most once per key; KEYS[3] again for no key
-- ARGV[1]  the recipient (+E164)
-- ARGV[2]  created_ms
-- ARGV[3]  now (ms): the recipient's due time when nothing was queued for it
-- ARGV[4]  the once-key's TTL, in seconds
-- ARGV[5]  content_sid ("" for a body)
-- ARGV[6]  content_vars (JSON, with a content_sid)
-- ARGV[7]  tag ("" for none): set on the last part, whose outcome is recorded under P{outbox}:result:<tag>
-- ARGV[8]  "out" (opt out, then queue), "in" (opt in, then queue) or ""
-- ARGV[9]  "1" when the caller may start one more send now (a hand-off), else "0"
-- ARGV[10] the lease's end (ms), for a hand-off
-- ARGV[11] the reply's id, made by the caller unique among all instances ([0-9a-z-]): part i's job id is
--          "<ARGV[11]>.<i>", an opaque string (jobs queued by older releases have numeric ids)
-- ARGV[12..]  the parts' bodies
--
-- Returns the number of parts queued, 0 when the once-key was set already, -1 when the recipient opted out;
-- with a hand-off, {parts, id, to, body, attempts, sent_ms, content_sid, content_vars, tag} (as sender-claim,
-- missing fields as ""). An opted-out recipient costs reads only: nothing is written, so after an opt-in the
-- same once-key still queues. Otherwise the once-key is checked and set by the first write, SET NX. Redis
-- does not undo a script that fails half-way, so nothing after it may fail: under maxmemory Redis refuses a
-- script's first write that needs memory (then nothing is written) and lets every later one through (Redis
-- 7.0 src/script.c, scriptVerifyOOM and SCRIPT_WRITE_DIRTY), the jobs are encoded before it, and the
-- commands after it fail only on a key of the wrong type.
local once = KEYS[4] ~= KEYS[3]
if ARGV[8] == '' and redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then
  if once and redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
  return -1
end
-- The jobs are made before the first write: nothing after it may fail.
local parts = #ARGV - 11
local handoff = ARGV[9] == '1'
local jobs, first = {}, nil
for i = 1, parts do
  local j = {id = ARGV[11] .. '.' .. i, body = ARGV[11 + i], attempts = 0, created_ms = ARGV[2], part = i,
             parts = parts}
  if ARGV[5] ~= '' then j.content_sid = ARGV[5]; j.content_vars = ARGV[6] end
  if ARGV[7] ~= '' and i == parts then j.tag = ARGV[7] end
  if i == 1 then first = j end
  jobs[i] = cjson.encode(j)
end
local plain = jobs[1]
if handoff then
  first.sent_ms = ARGV[3]
  jobs[1] = cjson.encode(first)
end
if once and not redis.call('SET', KEYS[4], '1', 'NX', 'EX', tonumber(ARGV[4])) then return 0 end
if ARGV[8] == 'out' then
  -- Opting out: nothing queued goes out any more; only this confirmation.
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[1], ARGV[1])
elseif ARGV[8] == 'in' then
  redis.call('SREM', KEYS[3], ARGV[1])
end
-- Every sender script keeps a recipient in the due set exactly while its queue is not empty, so the push
-- answering just these parts means nothing was queued or under way.
if redis.call('RPUSH', KEYS[2], unpack(jobs)) == parts then
  redis.call('ZADD', KEYS[1], handoff and ARGV[10] or ARGV[3], ARGV[1])
else
  -- Jobs were waiting (a send under way, a retry's wait, or due and not yet claimed): this one waits its
  -- turn, unmarked, and the due time stays (NX only puts back one that went missing).
  if handoff then
    handoff = false
    redis.call('LSET', KEYS[2], -parts, plain)
  end
  redis.call('ZADD', KEYS[1], 'NX', ARGV[3], ARGV[1])
end
if not handoff then return parts end
return {parts, first.id, ARGV[1], first.body, '0', '', first.content_sid or '', first.content_vars or '',
        first.tag or ''}

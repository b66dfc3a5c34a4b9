-- sender-upgrade: converts one job of the previous outbox format, where a recipient's queue held bare job ids
-- and each job was a hash P{outbox}:job:<id> (to, body, attempts, created_ms, part, parts, content_sid,
-- content_vars, tag, sent_ms), into today's JSON job, in place in the queue, and deletes the hash. The sender
-- runs it for every legacy entry its start-up walk or a claim finds, and for every job hash the walk finds.
--
-- KEYS[1]  P{outbox}:q:<to>     the recipient's queue
-- KEYS[2]  P{outbox}:job:<id>   the legacy job's hash
-- ARGV[1]  the job id
--
-- Returns 1 when the entry was converted, -2 when its hash was gone (the id is removed from the queue), -1 when
-- the hash was in no queue (a reply already dropped, or opted out or erased: the hash and its text go), 0 when
-- there was nothing to do (converted already). Converting keeps sent_ms, so an attempt whose outcome is unknown
-- is still looked up before sending again.
local h = redis.call('HGETALL', KEYS[2])
local pos = redis.call('LPOS', KEYS[1], ARGV[1])
if #h == 0 then
  if not pos then return 0 end
  redis.call('LREM', KEYS[1], 0, ARGV[1])
  return -2
end
redis.call('DEL', KEYS[2])
if not pos then return -1 end
local f = {}
for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
local j = {id = ARGV[1], body = f.body or '', attempts = tonumber(f.attempts) or 0, created_ms = f.created_ms or '',
           part = tonumber(f.part) or 1, parts = tonumber(f.parts) or 1}
if (f.content_sid or '') ~= '' then j.content_sid = f.content_sid; j.content_vars = f.content_vars or '' end
if (f.tag or '') ~= '' then j.tag = f.tag end
if (f.sent_ms or '') ~= '' then j.sent_ms = f.sent_ms end
redis.call('LSET', KEYS[1], pos, cjson.encode(j))
return 1

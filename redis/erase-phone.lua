-- erase-phone: the atomic part of an erasure: the phone's own keys, its entries in the shared schedules and
-- lists, its queued and given-up replies; notes the intake stream's last id for the walk that follows
-- (erase-stream), then erase-scan walks the key space.
--
-- KEYS[1]  P{+E164}:conv          the conversation state (JSON: lead_id, history[].sid)
-- KEYS[2]  P{+E164}:inbox         routed messages not yet taken (JSON: sid)
-- KEYS[3]  P{+E164}:routed        stream ids routed
-- KEYS[4]  P{+E164}:ctl           the control hash
-- KEYS[5]  P{turns}:due           sorted set by phone
-- KEYS[6]  P{turns}:first         hash by phone
-- KEYS[7]  P{turns}:lease         hash by phone: a live lease means "busy"
-- KEYS[8]  P{turns}:attempts      hash by phone
-- KEYS[9]  P{odoo}:pending        sorted set by phone
-- KEYS[10] P{followup}:due        sorted set by phone
-- KEYS[11] P{engine}:dead         list of JSON records of turns given up on
-- KEYS[12] P{intake}:stream       the intake stream (only its last id is read)
-- KEYS[13] P{outbox}:q:<+E164>    the phone's queued job ids
-- KEYS[14] P{outbox}:due          sorted set by recipient: a due time ahead with jobs queued means a send is
--                                 under way ("busy")
-- KEYS[15] P{outbox}:optout       set of recipients who opted out
-- KEYS[16] P{outbox}:dead         list of JSON records of replies given up on
-- KEYS[17] P{stats}:active        sorted set by phone
-- KEYS[18] P{+E164}:odoo          a lead write under way ("busy")
-- ARGV[1]  the phone (+E164)
-- ARGV[2]  the job key prefix, P{outbox}:job: (jobs named from the ids in KEYS[13])
-- ARGV[3]  the reply text prefix, P{outbox}:deadbody: (named from the "job" of the dead records)
-- ARGV[4]  the MessageSid claim prefix, P{intake}:sid: (named from the sids in the state and the inbox)
-- ARGV[5]  now (ms)
--
-- Returns {"busy"} while a turn, a send or a lead write for the phone is under way (the caller retries), else
-- {lead_id or -1, keys deleted, schedule entries removed, dead letters removed, queued jobs deleted, opt-out
-- removed (0/1), MessageSid claims set to "erased" (kept until their TTL, so a replay is still a duplicate),
-- the stream's last id or ""}.
local now = tonumber(ARGV[5])
local l = redis.call('HGET', KEYS[7], ARGV[1])
if l and tonumber(l) > now then return {'busy'} end
local od = redis.call('ZSCORE', KEYS[14], ARGV[1])
if od and tonumber(od) > now and redis.call('LLEN', KEYS[13]) > 0 then return {'busy'} end
-- A lead write under way would write the customer back into the state and Odoo after the erasure.
if redis.call('EXISTS', KEYS[18]) == 1 then return {'busy'} end
-- The phone inside a record, not as the start of a longer number: "%+573001112233%f[^%d]".
local pat = (string.gsub(ARGV[1], '%+', '%%+')) .. '%f[^%d]'
local lead, sids = -1, {}
local conv = redis.call('GET', KEYS[1])
if conv then
  local ok, st = pcall(cjson.decode, conv)
  if ok and type(st) == 'table' then
    if type(st.lead_id) == 'number' then lead = st.lead_id end
    if type(st.history) == 'table' then
      for _, h in ipairs(st.history) do
        if type(h) == 'table' and type(h.sid) == 'string' then sids[#sids + 1] = h.sid end
      end
    end
  end
end
for _, m in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local ok, j = pcall(cjson.decode, m)
  if ok and type(j) == 'table' and type(j.sid) == 'string' then sids[#sids + 1] = j.sid end
end
local keys = 0
for i = 1, 4 do keys = keys + redis.call('DEL', KEYS[i]) end
local sched = 0
for _, i in ipairs({5, 6, 7, 8, 9, 10, 17}) do
  local t = redis.call('TYPE', KEYS[i]).ok
  if t == 'zset' then sched = sched + redis.call('ZREM', KEYS[i], ARGV[1])
  elseif t == 'hash' then sched = sched + redis.call('HDEL', KEYS[i], ARGV[1]) end
end
local dead = 0
for _, k in ipairs({KEYS[11], KEYS[16]}) do
  for _, e in ipairs(redis.call('LRANGE', k, 0, -1)) do
    if string.find(e, pat) then
      dead = dead + redis.call('LREM', k, 0, e)
      local ok, j = pcall(cjson.decode, e)
      if ok and type(j) == 'table' and type(j.job) == 'string' then redis.call('DEL', ARGV[3] .. j.job) end
    end
  end
end
local jobs = 0
for _, id in ipairs(redis.call('LRANGE', KEYS[13], 0, -1)) do jobs = jobs + redis.call('DEL', ARGV[2] .. id) end
redis.call('DEL', KEYS[13])
redis.call('ZREM', KEYS[14], ARGV[1])
local optout = redis.call('SREM', KEYS[15], ARGV[1])
local dedupe = 0
for _, s in ipairs(sids) do
  if redis.call('SET', ARGV[4] .. s, 'erased', 'XX', 'KEEPTTL') then dedupe = dedupe + 1 end
end
local last = ''
if redis.call('EXISTS', KEYS[12]) == 1 then
  local r = redis.call('XREVRANGE', KEYS[12], '+', '-', 'COUNT', 1)
  if #r > 0 then last = r[1][1] end
end
return {lead, keys, sched, dead, jobs, optout, dedupe, last}

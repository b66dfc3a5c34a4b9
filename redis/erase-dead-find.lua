-- erase-dead-find: finds a phone's records in a dead-letter list, for erase-dead to remove (with the reply
-- texts named after their "job", which the caller passes to it as keys). Changes nothing.
--
-- KEYS[1]  P{engine}:dead or P{outbox}:dead  a list of JSON records
-- ARGV[1]  the phone (+E164)
--
-- Returns {the records that name the phone (not as the start of a longer number)..., then "" and the "job"
-- of each of them that has one}.
-- The phone inside a record, not as the start of a longer number: "%+573001112233%f[^%d]".
local pat = (string.gsub(ARGV[1], '%+', '%%+')) .. '%f[^%d]'
local recs, jobs = {}, {}
for _, e in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if string.find(e, pat) then
    recs[#recs + 1] = e
    local ok, j = pcall(cjson.decode, e)
    if ok and type(j) == 'table' and (type(j.job) == 'string' or type(j.job) == 'number') then
      jobs[#jobs + 1] = tostring(j.job)
    end
  end
end
recs[#recs + 1] = ''
for _, j in ipairs(jobs) do recs[#recs + 1] = j end
return recs

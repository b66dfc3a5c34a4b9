-- routes-dead-letters: reads both dead-letter lists for GET/POST /api/dead-letters, with each reply's text.
--
-- KEYS[1]  P{engine}:dead  list of turns given up on (JSON records)
-- KEYS[2]  P{outbox}:dead  list of replies given up on (JSON records, without their text)
-- ARGV[1]  the text key prefix, P{outbox}:deadbody: (the texts P{outbox}:deadbody:<job> are named here, from
--          the records' "job" field)
--
-- Returns {the first 1000 turn records, the first 1000 reply records, each reply's text or ""}.
local t = redis.call('LRANGE', KEYS[1], 0, 999)
local r = redis.call('LRANGE', KEYS[2], 0, 999)
local b = {}
for i, rec in ipairs(r) do
  local ok, v = pcall(cjson.decode, rec)
  b[i] = (ok and type(v) == 'table' and v.job and redis.call('GET', ARGV[1] .. v.job)) or ''
end
return {t, r, b}

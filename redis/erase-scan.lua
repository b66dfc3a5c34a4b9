-- erase-scan: one SCAN step of an erasure's walk of the key space: deletes keys named after the phone (the
-- outbox's once-keys, ...) and outbound message records sent to it. It has no KEYS: the keys are found by
-- SCAN, so it cannot run on a Redis Cluster.
--
-- ARGV[1]  the phone (+E164)
-- ARGV[2]  the SCAN cursor ("0" to start)
-- ARGV[3]  the pattern of all crmbridge keys (P*)
-- ARGV[4]  the outbound record prefix, P{outbox}:msg: (records whose "to" is the phone go)
-- ARGV[5]  the phone's own key prefix, P{+E164}: (erased already: anything there now is newer, and kept)
-- ARGV[6]  the SCAN COUNT
--
-- Returns {the next cursor ("0" at the end), keys deleted}.
-- The phone inside a key, not as the start of a longer number: "%+573001112233%f[^%d]".
local pat = (string.gsub(ARGV[1], '%+', '%%+')) .. '%f[^%d]'
local r = redis.call('SCAN', ARGV[2], 'MATCH', ARGV[3], 'COUNT', ARGV[6])
local n = 0
for _, k in ipairs(r[2]) do
  if string.sub(k, 1, #ARGV[5]) ~= ARGV[5] then
    if string.find(k, pat) then n = n + redis.call('DEL', k)
    elseif string.sub(k, 1, #ARGV[4]) == ARGV[4] and redis.call('HGET', k, 'to') == ARGV[1] then
      n = n + redis.call('DEL', k)
    end
  end
end
return {r[1], n}

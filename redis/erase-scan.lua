-- erase-scan: one SCAN step of an erasure's walk of the key space: finds the keys named after the phone (the
-- outbox's once-keys, ...) and the outbound message records, for erase-keys to delete (the caller groups them
-- by hash slot). Changes nothing; it has no KEYS, and SCAN sees one node's keys only.
--
-- ARGV[1]  the phone (+E164)
-- ARGV[2]  the SCAN cursor ("0" to start)
-- ARGV[3]  the pattern of all crmbridge keys (P*)
-- ARGV[4]  the outbound record prefix, P{outbox}:msg: (erase-keys deletes those whose "to" is the phone)
-- ARGV[5]  the phone's own key prefix, P{+E164}: (left for erase-phone)
-- ARGV[6]  the SCAN COUNT
--
-- Returns {the next cursor ("0" at the end), then the keys found}.
-- The phone inside a key, not as the start of a longer number: "%+573001112233%f[^%d]".
local pat = (string.gsub(ARGV[1], '%+', '%%+')) .. '%f[^%d]'
local r = redis.call('SCAN', ARGV[2], 'MATCH', ARGV[3], 'COUNT', ARGV[6])
local out = {r[1]}
for _, k in ipairs(r[2]) do
  if string.sub(k, 1, #ARGV[5]) ~= ARGV[5] and
     (string.find(k, pat) or string.sub(k, 1, #ARGV[4]) == ARGV[4]) then
    out[#out + 1] = k
  end
end
return out

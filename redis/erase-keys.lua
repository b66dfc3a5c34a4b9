-- erase-keys: deletes keys that erase-scan found: those named after the phone, and outbound message records
-- sent to it. The caller passes the keys of one hash slot at a time.
--
-- KEYS[1..] the keys found
-- ARGV[1]   the phone (+E164)
-- ARGV[2]   the outbound record prefix, P{outbox}:msg: (such a record goes if its "to" is the phone)
--
-- Returns the keys deleted.
-- The phone inside a key, not as the start of a longer number: "%+573001112233%f[^%d]".
local pat = (string.gsub(ARGV[1], '%+', '%%+')) .. '%f[^%d]'
local n = 0
for _, k in ipairs(KEYS) do
  if string.find(k, pat) then n = n + redis.call('DEL', k)
  elseif string.sub(k, 1, #ARGV[2]) == ARGV[2] and redis.call('TYPE', k).ok == 'hash'
     and redis.call('HGET', k, 'to') == ARGV[1] then
    n = n + redis.call('DEL', k)
  end
end
return n

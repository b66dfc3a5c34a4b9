-- erase-dead: removes records found by erase-dead-find from a dead-letter list, and the keys named after them
-- (the reply texts, P{outbox}:deadbody:<job>).
--
-- KEYS[1]   P{engine}:dead or P{outbox}:dead  a list of JSON records
-- KEYS[2..] the keys to delete with them (in the list's hash slot)
-- ARGV[1..] the records, as erase-dead-find returned them
--
-- Returns the records removed.
local n = 0
for _, e in ipairs(ARGV) do n = n + redis.call('LREM', KEYS[1], 0, e) end
for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
return n

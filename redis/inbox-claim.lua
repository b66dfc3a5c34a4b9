-- inbox-claim: takes (or renews) the right to read the salespeople's chatter messages for a while, so one
-- instance polls Odoo at a time, and reads the watermark (conversation/inbox.c).
--
-- KEYS[1]  P{odoo}:inbox:lock  string: the instance polling (engine.consumer), with a TTL
-- KEYS[2]  P{odoo}:inbox:mark  string: the id of the last mail.message dealt with
-- ARGV[1]  this instance's name
-- ARGV[2]  how long the right lasts (ms)
--
-- Returns {1, mark} when this instance may poll (mark is "" before the first poll: the caller starts it at
-- Odoo's newest message, so nothing written before crmbridge watched is sent), {0, ""} while another holds it.
local who = redis.call('GET', KEYS[1])
if who and who ~= ARGV[1] then return {0, ''} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, redis.call('GET', KEYS[2]) or ''}

-- erase-phone: the last step of an erasure: the phone's own keys. It comes last because erase-read finds in
-- them what the earlier steps need, so an erasure interrupted before this is finished by asking again.
--
-- KEYS[1]  P{+E164}:conv    the conversation state
-- KEYS[2]  P{+E164}:inbox   routed messages not yet taken
-- KEYS[3]  P{+E164}:routed  stream ids routed
-- KEYS[4]  P{+E164}:ctl     the control hash
-- KEYS[5]  P{+E164}:odoo    a lead write under way ("busy")
--
-- Returns {"busy"} while a lead write for the phone is under way (the caller retries the erasure), else
-- {keys deleted}.
if redis.call('EXISTS', KEYS[5]) == 1 then return {'busy'} end
return {redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])}

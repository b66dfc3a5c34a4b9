-- erase-read: the first step of an erasure: reads what the later steps need from the phone's own keys (the
-- lead id, the MessageSids of its history and inbox) without changing anything; the phone's keys go last
-- (erase-phone), so an erasure interrupted at any step finds all this again when it is asked again.
--
-- KEYS[1]  P{+E164}:conv   the conversation state (JSON: lead_id, history[].sid)
-- KEYS[2]  P{+E164}:inbox  routed messages not yet taken (JSON: sid)
-- KEYS[3]  P{+E164}:odoo   a lead write under way ("busy")
--
-- Returns {"busy"} while a lead write for the phone is under way (the caller retries), else {lead_id or -1,
-- the MessageSids...}.
if redis.call('EXISTS', KEYS[3]) == 1 then return {'busy'} end
local out = {-1}
local conv = redis.call('GET', KEYS[1])
if conv then
  local ok, st = pcall(cjson.decode, conv)
  if ok and type(st) == 'table' then
    if type(st.lead_id) == 'number' then out[1] = st.lead_id end
    if type(st.history) == 'table' then
      for _, h in ipairs(st.history) do
        if type(h) == 'table' and type(h.sid) == 'string' then out[#out + 1] = h.sid end
      end
    end
  end
end
for _, m in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local ok, j = pcall(cjson.decode, m)
  if ok and type(j) == 'table' and type(j.sid) == 'string' then out[#out + 1] = j.sid end
end
return out

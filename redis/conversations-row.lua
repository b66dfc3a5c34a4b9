-- conversations-row: one line of the conversations' list (GET /api/conversations), picked out of the state
-- where it is kept, so that a list of a thousand conversations does not carry their histories across.
--
-- KEYS[1]  P{+E164}:conv  the conversation's state (JSON, conversation/state.c)
-- KEYS[2]  P{+E164}:ctl   its control hash (the pause)
--
-- Returns false when there is no conversation (or its state is not a JSON object), else {name, email, stage,
-- quality, updated_ms, messages, lead_id, opted_out, waiting, pause_until, pause_reason}: texts ("" when
-- absent), the number of messages in the history, opted_out and waiting (the bot handed over and no person
-- has answered yet) as 1 or 0.
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local ok, st = pcall(cjson.decode, raw)
if not ok or type(st) ~= 'table' then return false end
local function text(v)
  if type(v) == 'string' then return v end
  if type(v) == 'number' then return string.format('%.0f', v) end
  return ''
end
local fields = type(st.fields) == 'table' and st.fields or {}
local function field(name)
  local f = fields[name]
  return type(f) == 'table' and text(f.value) or ''
end
local quality = ''
if type(st.quality) == 'table' and #st.quality > 0 and type(st.quality[#st.quality]) == 'table' then
  quality = text(st.quality[#st.quality].q)
end
local stage = text(st.stage)
if stage == '' then stage = 'new' end
return {field('name'), field('email'), stage, quality, text(st.updated_ms),
  type(st.history) == 'table' and #st.history or 0, text(st.lead_id), st.opted_out == true and 1 or 0,
  st.handoff_ms ~= nil and st.handoff_ms ~= cjson.null and 1 or 0,
  redis.call('HGET', KEYS[2], 'pause_until') or '', redis.call('HGET', KEYS[2], 'pause_reason') or ''}

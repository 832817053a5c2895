-- A model call's end: correct its reservation to the tokens really used (more or less), at its
-- turn. ARGV: id, seq, member, events, journal entry, delta, completions line ('' for none).
-- Reply: {'ok', used after} | {'dup', entry} | {'wait'} | {'killed'}.
local id, seq, m, events, entry, delta = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local done = redis.call('HGET', k('journal:') .. id, seq)
local was = model_entry(done)
if was and was['settled'] == true then return {'dup', done} end
if killed() then return {'killed', redis.call('GET', k('kill'))} end
if not holds_turn(id, m) then return wait_turn(id) end
if id ~= '' then redis.call('HDEL', k('unsettled'), id) end
if delta ~= 0 then
  redis.call('HINCRBY', k('used'), 'tokens', delta)
  sweep_charge('tokens', delta)
end
if id ~= '' then journal(id, seq, entry) end
if ARGV[7] ~= '' then
  redis.call('RPUSH', k('completions'), ARGV[7])
  record_charge(charged(ARGV[7]))
end
emit(events)
step_on(id, m)
return {'ok', tostring(used('tokens'))}

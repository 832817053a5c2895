-- A model call sent again: the runner that sent it was lost before its answer was kept, so
-- the program's resumed run sends it once more, and the caps are charged once more (the lost
-- attempt's tokens stay reserved in full: what the server did with it is not known).
-- ARGV: id, seq, member, events, the attempt the journal holds, the next attempt's journal
-- entry, then cap, amount pairs. Reply: {'ok'} | {'dup', entry} (another runner took this
-- attempt already, or the call was answered) | {'killed', reason} | denial.
local id, seq, m, events, attempt, entry = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local old = redis.call('HGET', k('journal:') .. id, seq) or ''
local entry_was = model_entry(old)
local was = 1
if entry_was and type(entry_was['attempt']) == 'number' then was = entry_was['attempt'] end
if not entry_was or entry_was['phase'] ~= 'reserved' or was ~= tonumber(attempt) then
  return {'dup', old}
end
if killed() then return {'killed', redis.call('GET', k('kill'))} end
if terminal(redis.call('HGET', k('state'), id)) then return {'killed', 'program ' .. id .. ' has ended'} end
if out_of_time() then return deny('wall_clock_s') end
for i = 7, #ARGV, 2 do
  local cap, n = ARGV[i], tonumber(ARGV[i + 1])
  local asked = used(cap) + n
  if asked > limit(cap) then return deny(cap, limit(cap), asked) end
  if not sweep_fits(cap, n) then return deny('sweep.' .. cap) end
end
for i = 7, #ARGV, 2 do
  redis.call('HINCRBY', k('used'), ARGV[i], ARGV[i + 1])
  sweep_charge(ARGV[i], tonumber(ARGV[i + 1]))
end
journal(id, seq, entry)
emit(events)
return {'ok'}

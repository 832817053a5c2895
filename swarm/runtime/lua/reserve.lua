-- Charge caps before an effect, all or nothing. ARGV: id, seq, member, events, next member
-- (where the program stands once the call is made: later in simulated time), journal entry,
-- then cap, amount pairs. Reply: {'ok'} | {'dup', entry} | denial.
local id, seq, m, events, after, entry = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local stop = begin(id, seq, m)
if stop then return stop end
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
if entry ~= '' then journal(id, seq, entry) end
emit(events)
if ORDERED and after ~= '' and after ~= m then
  lb_set(id, after)
  handoff()
end
return {'ok'}

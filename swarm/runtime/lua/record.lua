-- The end of a call that held the turn across several steps (a world action): journal its
-- answer and move the program on in simulated time. ARGV: id, seq, entry, events, next member.
local id, seq, entry, events, after = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if entry ~= '' then journal(id, seq, entry) end
emit(events)
if ORDERED and after ~= '' then
  lb_set(id, after)
  step_on(id, after)
end
return {'ok'}

-- Is it this program's turn? ARGV: id, seq, member, events. Reply: {'go'} (the events are in the
-- stream) | begin()'s refusals (a full record among them).
local id, seq, m, events = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local stop = begin(id, seq, m)
if stop then return stop end
emit(events or '')
return {'go'}

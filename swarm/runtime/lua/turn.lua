-- Is it this program's turn? ARGV: id, seq, member, events, and the call's answer to journal
-- ('' or none: nothing). Reply: {'go'} (the events are in the stream, the answer journaled) |
-- begin()'s refusals (a full record among them).
local id, seq, m, events, answer = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local stop = begin(id, seq, m)
if stop then return stop end
if answer and answer ~= '' then journal(id, seq, answer) end
emit(events or '')
return {'go'}

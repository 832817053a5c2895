-- Is it this program's turn? ARGV: id, seq, member, events (kept by the caller), and the
-- call's answer to journal ('' or none: nothing). Reply: {'go'} | begin()'s refusals.
local id, seq, m, answer = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
local stop = begin(id, seq, m)
if stop then return stop end
if answer and answer ~= '' then journal(id, seq, answer) end
return {'go'}

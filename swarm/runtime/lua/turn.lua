-- Is it this program's turn? ARGV: id, seq, member. Reply: {'go'} | begin()'s refusals.
local id, seq, m = ARGV[1], ARGV[2], ARGV[3]
local stop = begin(id, seq, m)
if stop then return stop end
return {'go'}

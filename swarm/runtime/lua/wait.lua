-- wait(): at the caller's turn, have the programs it names all ended?
-- ARGV: id, seq, member, events, timed_out ('1' when a timed wait's time has come), ids...
-- Reply: {'done', id, state, ...} (every named program with its state now, '' for an id no
-- program has) | {'park'} | refusals. An id no program has answers at once (the program gets
-- an error it can catch), never parks: nothing would ever end it.
-- The answer is journaled: a program re-run after a runner's loss gets the same answer.
local id, seq, m, events, timed_out = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local stop = begin(id, seq, m)
if stop then return stop end
local reply, open, unknown = {'done'}, false, false
for i = 6, #ARGV do
  local st = redis.call('HGET', k('state'), ARGV[i])
  if not st then unknown = true elseif not terminal(st) then open = true end
  reply[#reply + 1] = ARGV[i]
  reply[#reply + 1] = st or ''
end
if open and not unknown and timed_out ~= '1' then return {'park'} end
journal(id, seq, cjson.encode(reply))
emit(events)
return reply

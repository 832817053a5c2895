-- wait(): at the caller's turn, have the programs it names all ended?
-- ARGV: id, seq, member, events, timed_out ('1' when a timed wait's time has come), then
-- Python's JSON in pieces (`_stored.py`): a running program's view (around its id), the view of
-- an ended one whose end left none (around its id and its state), the entry (around the views)
-- and the refusal of an unknown id (around it); then ids...
-- Reply: {'done', entry} | {'park'} | {'unknown', id} | refusals. The entry is what the program
-- receives, `{"views": [...]}`: each named program's view (`id`, `status`, `result`, `error`),
-- the one its end left (finish.lua, stop.lua), or "running". It is journaled here, in the same
-- step that reads the states, so inputs.jsonl holds it, a replay compares it and a program
-- re-run after a runner's loss gets the same answer. An id no program has answers at once (the
-- program gets an error it can catch, journaled as such), never parks: nothing would ever end it.
local id, seq, m, events, timed_out = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local stop = begin(id, seq, m)
if stop then return stop end
local views, open = {}, false
local RUN1, RUN2, END1, END2, END3 = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local ENTRY1, ENTRY2, UNKNOWN1, UNKNOWN2 = ARGV[11], ARGV[12], ARGV[13], ARGV[14]
for i = 15, #ARGV do
  local x = ARGV[i]
  local st = redis.call('HGET', k('state'), x)
  if not st then
    journal(id, seq, UNKNOWN1 .. x .. UNKNOWN2)
    emit(events)
    return {'unknown', x}
  end
  if terminal(st) then
    views[#views + 1] = redis.call('HGET', k('views'), x)
      or END1 .. x .. END2 .. st .. END3
  else
    open = true
    views[#views + 1] = RUN1 .. x .. RUN2
  end
end
if open and timed_out ~= '1' then return {'park'} end
local entry = ENTRY1 .. table.concat(views, ',') .. ENTRY2
if not record_fits(shared_cost(entry) + #events) then
  return deny('record_bytes', limit('record_bytes'), used('record_bytes') + shared_cost(entry))
end
journal_shared(id, seq, entry)
emit(events)
step_on(id, m)
return {'done', entry}

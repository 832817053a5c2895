-- wait(): at the caller's turn, have the programs it names all ended?
-- ARGV: id, seq, member, events, timed_out ('1' when a timed wait's time has come), ids...
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
for i = 6, #ARGV do
  local x = ARGV[i]
  local st = redis.call('HGET', k('state'), x)
  if not st then
    journal(id, seq, cjson.encode({error = "ValueError: wait(): no program with id '" .. x .. "'"}))
    emit(events)
    return {'unknown', x}
  end
  if terminal(st) then
    views[#views + 1] = redis.call('HGET', k('views'), x)
      or '{"id":"' .. x .. '","status":' .. cjson.encode(st) .. ',"result":null,"error":null}'
  else
    open = true
    views[#views + 1] = '{"id":"' .. x .. '","status":"running","result":null,"error":null}'
  end
end
if open and timed_out ~= '1' then return {'park'} end
local entry = '{"views":[' .. table.concat(views, ',') .. ']}'
if not record_fits(shared_cost(entry) + #events) then
  return deny('record_bytes', limit('record_bytes'), used('record_bytes') + shared_cost(entry))
end
journal_shared(id, seq, entry)
emit(events)
return {'done', entry}

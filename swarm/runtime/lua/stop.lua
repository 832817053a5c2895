-- kill(target) from a program: at its turn, the target and its descendants end as killed.
-- ARGV: id, seq, member, events, target, then Python's JSON in pieces (`_stored.py`): the killed
-- envelope's four (around the time, the host state, then the record: each program's latest
-- state), the end event's three (around the time and the id) and the view's two (around the id).
-- The time is now, when the kill is applied (a kill kept for its turn is applied after programs
-- it ends may have been spawned): every program it ends ends then.
-- Reply: {'ok', stopped, runner tag, id, ...} (the programs that were computing, for their
-- runners to stop) | refusals. Programs parked, queued or ready end here and now, from the host
-- state they parked with; one computing ends from its last park's, and its runner, stopping
-- it, leaves its state as it was then (`halting`: leave.lua). An end held for its turn
-- (`ending`) is no end before its turn: the program is killed with its held record and events.
-- A call kept for its turn (`calls`) is never applied: its events are added, as park.lua does.
local id, seq, m, events, target = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local stop = begin(id, seq, m)
if stop then return stop end
local function held_end(x)
  local held = redis.call('HGET', k('ending'), x)
  if not held then return nil end
  local e = cjson.decode(held)
  for line in string.gmatch(e.events, '[^\n]+') do  -- its calls' events, not its own end
    local ok, event = pcall(cjson.decode, line)
    if not (ok and type(event) == 'table' and event['kind'] == 'end') then emit(line) end
  end
  return e.record
end
local now = now_text()
local todo, stopped, computing = {target}, 0, {}
while #todo > 0 do
  local x = table.remove(todo)
  for _, kid in ipairs(redis.call('SMEMBERS', k('kids:') .. x)) do todo[#todo + 1] = kid end
  local st = redis.call('HGET', k('state'), x)
  if st and not terminal(st) then
    local host = redis.call('HGET', k('host'), x) or 'null'
    local was = st == 'ending' and held_end(x)
    if was then host = 'null' else was = redis.call('HGET', k('programs'), x) end
    local rec = ARGV[6] .. now .. ARGV[7] .. host .. ARGV[8] .. was .. ARGV[9]
    -- It ends at the kill (where it stood in the order depends on timing: its next call made or
    -- not yet), so whoever waited on it wakes there, whenever its calls came.
    local clock = member_clock(m ~= '' and m or redis.call('HGET', k('lbm'), x) or member(0, x))
    if string.sub(st, 1, 4) == 'run:' then
      computing[#computing + 1] = string.sub(st, 5)
      computing[#computing + 1] = x
      redis.call('SREM', k('running:') .. string.sub(st, 5), x)
      redis.call('HSET', k('halting'), x, string.sub(st, 5))
    end
    keep_record(x, rec)
    redis.call('HSET', k('views'), x, ARGV[13] .. x .. ARGV[14])
    set_state(x, 'killed')
    lb_del(x)
    clear_wait(x)
    ready_del(x)
    redis.call('HDEL', k('snap'), x)
    redis.call('HDEL', k('ending'), x)
    local kept = redis.call('HGET', k('calls'), x)
    if kept then  -- a call kept for its turn, never applied: its events, as the gate adds them
      redis.call('HDEL', k('calls'), x)
      emit(cjson.decode(kept).a[4])
    end
    parked_release(x)
    settle_kept(x)  -- a model call answered but not settled: settled to what it used
    redis.call('HDEL', k('host'), x)
    redis.call('HINCRBY', k('used'), 'live', -1)
    redis.call('HINCRBY', k('counts'), 'killed', 1)
    emit(ARGV[10] .. now .. ARGV[11] .. x .. ARGV[12])  -- its end event, charged like any
    wake_waiters(x, clock)
    stopped = stopped + 1
  end
end
local reply = {'ok', tostring(stopped)}
for _, v in ipairs(computing) do reply[#reply + 1] = v end
journal(id, seq, cjson.encode({'ok', tostring(stopped)}))
emit(events)
for i = 1, #computing, 2 do
  redis.call('PUBLISH', k('stop:') .. computing[i], computing[i + 1])
end
step_on(id, m)
return reply

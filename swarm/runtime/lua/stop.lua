-- kill(target) from a program: at its turn, the target and its descendants end as killed.
-- ARGV: id, seq, member, events, target, reason, ended_at (unix seconds).
-- Reply: {'ok', stopped, runner tag, id, ...} (the programs that were computing, for their
-- runners to stop) | refusals. Programs parked, queued or ready end here and now.
local id, seq, m, events, target, reason, ended_at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local stop = begin(id, seq, m)
if stop then return stop end
local todo, stopped, computing = {target}, 0, {}
while #todo > 0 do
  local x = table.remove(todo)
  for _, kid in ipairs(redis.call('SMEMBERS', k('kids:') .. x)) do todo[#todo + 1] = kid end
  local st = redis.call('HGET', k('state'), x)
  if st and not terminal(st) then
    local rec = cjson.decode(redis.call('HGET', k('programs'), x))
    rec['status'] = 'killed'
    rec['error'] = reason
    rec['ended_at'] = tonumber(ended_at)
    local clock = member_clock(redis.call('HGET', k('lbm'), x) or member(0, x))
    if string.sub(st, 1, 4) == 'run:' then
      computing[#computing + 1] = string.sub(st, 5)
      computing[#computing + 1] = x
      redis.call('SREM', k('running:') .. string.sub(st, 5), x)
    end
    redis.call('HSET', k('programs'), x, cjson.encode(rec))
    redis.call('HSET', k('views'), x, '{"id":"' .. x .. '","status":"killed","result":'
      .. cjson.encode(rec['result']) .. ',"error":' .. cjson.encode(reason) .. '}')
    redis.call('XADD', k('records'), '*', 'r', cjson.encode(rec))
    set_state(x, 'killed')
    lb_del(x)
    clear_wait(x)
    ready_del(x)
    redis.call('HDEL', k('snap'), x)
    redis.call('HDEL', k('ending'), x)
    redis.call('HDEL', k('calls'), x)
    parked_release(x)
    redis.call('HDEL', k('host'), x)
    redis.call('HINCRBY', k('used'), 'live', -1)
    redis.call('HINCRBY', k('counts'), 'killed', 1)
    redis.call('XADD', k('events'), '*', 'e', cjson.encode({
      t = tonumber(ended_at), program = x, kind = 'end', decision = 'info', cap = cjson.null,
      detail = {status = 'killed', error = reason, by = id}}))
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
handoff()
return reply

-- Park a program: its snapshot and host state are kept here, its worker goes back to the pool.
-- ARGV: id, kind ('wait' | 'gate' | 'turn' | 'model'), member (wait: where a timed wait fires,
-- '' for none; gate, turn: its call's; model: where the call ends), snapshot (base64), host state
-- (JSON), events, runner tag, clock_ms, the call's seq, then for a wait the ids waited on.
-- 'turn' is the gate for a call kept for its turn (lib.lua's `wait_turn`): the kept call is
-- dropped (its events added) and the program parks at the gate; a kept call already applied has
-- its answer on the way to the program: {'go'}.
-- Reply: {'parked'} | {'go'} (no need: resume at once) | {'killed'} | a `parked_bytes` denial
-- (what Redis would then hold of parked programs is more than the cap: the call is refused).
local id, kind, m, snap, host, events, tag, clock_ms =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
CALL_ID, CALL_SEQ = id, ARGV[9]
if killed() then return {'killed', redis.call('GET', k('kill'))} end
if redis.call('HGET', k('state'), id) ~= 'run:' .. tag then return {'killed', 'stopped'} end
if kind == 'turn' then
  local kept = redis.call('HGET', k('calls'), id)
  if not kept then return {'go'} end
  redis.call('HDEL', k('calls'), id)
  emit(cjson.decode(kept).a[4])
  kind = 'gate'
end
if kind == 'gate' and ORDERED and first() == m then return {'go'} end
if kind == 'model' then
  local entry = redis.call('HGET', k('journal:') .. id, ARGV[9]) or ''
  local call = model_entry(entry)
  -- Answered (with an answer or a failure) or settled: nothing to wait for.
  if entry ~= '' and not (call and call['phase'] == 'reserved') then return {'go'} end
end
local held = tonumber(redis.call('HGET', k('psize'), id) or '0')
local size = #snap + charged(host)
local now = used('parked_now') - held + size
local lim = limit('parked_bytes')
if lim ~= nil and now > lim then return deny('parked_bytes', lim, now) end
if kind == 'wait' then
  local open = {}
  for i = 10, #ARGV do
    if not terminal(redis.call('HGET', k('state'), ARGV[i])) then open[#open + 1] = ARGV[i] end
  end
  if #open == 0 then return {'go'} end
  for _, x in ipairs(open) do
    redis.call('SADD', k('pending:') .. id, x)
    redis.call('SADD', k('waiters:') .. x, id)
  end
  redis.call('HSET', k('pclock'), id, clock_ms)
end
redis.call('HSET', k('used'), 'parked_now', now)
redis.call('HSET', k('psize'), id, size)
if now > used('parked_bytes') then redis.call('HSET', k('used'), 'parked_bytes', now) end
redis.call('HSET', k('snap'), id, snap)
redis.call('HSET', k('host'), id, host)
redis.call('HDEL', k('resume'), id)
redis.call('SREM', k('running:') .. tag, id)
if kind == 'model' then redis.call('HSET', k('modeltag'), id, tag) end
set_state(id, kind == 'wait' and 'parked' or kind)
if ORDERED then
  if m == '' then lb_del(id) else lb_set(id, m) end
  handoff()
end
emit(events)
return {'parked'}

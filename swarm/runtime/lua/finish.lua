-- A program ends: its record, its slot, and the programs waiting on it.
-- ARGV: id, member, status, record (JSON), clock_ms, events, runner tag ('' from the driver),
-- gated ('1': a program's own end waits for its turn; '0': a stop), then optionally the seq and
-- journal entry of an input its end is (a `cpu_s` cut: `_cuts.py`), journaled with the end,
-- and the program's view as wait() shows it (JSON: id, status, result, error; wait.lua).
-- Reply: {'ok'} | {'wait'} | {'gone'} (it had already ended).
local id, m, status, record, clock_ms, events, tag, gated =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[8]
local st = redis.call('HGET', k('state'), id)
if terminal(st) then return {'gone'} end
if tag ~= '' and st ~= 'run:' .. tag then return {'gone'} end
if gated == '1' and not killed() and not holds_turn(id, m) then return {'wait'} end
if ARGV[10] and ARGV[10] ~= '' then journal(id, ARGV[9], ARGV[10]) end
if ARGV[11] and ARGV[11] ~= '' then redis.call('HSET', k('views'), id, ARGV[11]) end
redis.call('HSET', k('programs'), id, record)
redis.call('XADD', k('records'), '*', 'r', record)
set_state(id, status)
if tag ~= '' then redis.call('SREM', k('running:') .. tag, id) end
lb_del(id)
clear_wait(id)
ready_del(id)
redis.call('HDEL', k('snap'), id)
parked_release(id)
redis.call('HDEL', k('host'), id)
redis.call('HDEL', k('resume'), id)
redis.call('HINCRBY', k('used'), 'live', -1)
redis.call('HINCRBY', k('counts'), status, 1)
wake_waiters(id, clock_ms)
handoff()
emit(events)
return {'ok'}

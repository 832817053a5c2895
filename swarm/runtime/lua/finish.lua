-- A program ends: its record, its slot, and the programs waiting on it.
-- ARGV: id, member, status, record (JSON), clock_ms, events, runner tag ('' from the driver),
-- gated ('1': a program's own end waits for its turn; '0': a stop), then the seq and journal
-- entry of an input its end is (a `cpu_s` cut: `_cuts.py`; '' for none), journaled with the end,
-- and the program's view as wait() shows it (JSON: id, status, result, error; wait.lua).
-- Reply: {'ok'} | {'held'} (not its turn: the end is kept, and recorded when its turn comes;
-- the program leaves its worker now) | {'gone'} (it had already ended).
local id, m, tag, gated = ARGV[1], ARGV[2], ARGV[7], ARGV[8]
local st = redis.call('HGET', k('state'), id)
if terminal(st) or st == 'ending' then return {'gone'} end
if tag ~= '' and st ~= 'run:' .. tag then return {'gone'} end
local e = {id = id, status = ARGV[3], record = ARGV[4], clock_ms = ARGV[5], events = ARGV[6],
  tag = tag, seq = ARGV[9] or '', cut = ARGV[10] or '', view = ARGV[11] or ''}
if gated == '1' and not killed() and not holds_turn(id, m) then
  -- An ended program that waited for its turn on its worker could fill every worker and stop
  -- the program whose turn it is from being claimed: its end waits here instead, computing no
  -- more (handoff records it).
  e.tag = ''
  redis.call('HSET', k('ending'), id, cjson.encode(e))
  set_state(id, 'ending')
  if tag ~= '' then redis.call('SREM', k('running:') .. tag, id) end
  return {'held'}
end
end_program(e)
handoff()
return {'ok'}

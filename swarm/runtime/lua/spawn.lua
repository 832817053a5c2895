-- spawn(): admit a child under the caps. ARGV: parent id ('' for the root program), seq, member,
-- events, depth, clock_ms, the child's record in two pieces (Python's JSON, split where its id
-- goes: `_stored.py`), admission ('queue' | 'deny').
-- Reply: {'ok', child id} | {'dup', child id} | denial.
local id, seq, m, events = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local depth, clock_ms, admission = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[9]
local stop = begin(id, seq, m)
if stop then return stop end
if depth > limit('depth') then return deny('depth', limit('depth'), depth) end
local kids = 0
if id ~= '' then
  kids = tonumber(redis.call('HGET', k('nchildren'), id) or '0')
  if kids + 1 > limit('children') then return deny('children', limit('children'), kids + 1) end
end
if used('programs') + 1 > limit('programs') then
  return deny('programs', limit('programs'), used('programs') + 1)
end
if not sweep_fits('programs', 1) then return deny('sweep.programs') end
local live = used('live')
if admission == 'deny' and live + 1 > limit('concurrent') then
  return deny('concurrent', limit('concurrent'), live + 1)
end
redis.call('HINCRBY', k('used'), 'programs', 1)
sweep_charge('programs', 1)
redis.call('HSET', k('used'), 'live', live + 1)
if admission == 'deny' and live + 1 > used('concurrent') then
  redis.call('HSET', k('used'), 'concurrent', live + 1)
end
if depth > used('depth') then redis.call('HSET', k('used'), 'depth', depth) end
local child = 'p0'
if id ~= '' then
  redis.call('HSET', k('nchildren'), id, kids + 1)
  if kids + 1 > used('children') then redis.call('HSET', k('used'), 'children', kids + 1) end
  child = id .. '.' .. (kids + 1)
  redis.call('SADD', k('kids:') .. id, child)
end
local rec = ARGV[7] .. child .. ARGV[8]
redis.call('HSET', k('programs'), child, rec)
redis.call('XADD', k('records'), '*', 'r', rec)
set_state(child, 'queued')
local cm = member(clock_ms, child)
if ORDERED then lb_set(child, cm) end
ready_add(child, cm)
if id ~= '' then journal(id, seq, child) end
emit(events)
step_on(id, m)
return {'ok', child}

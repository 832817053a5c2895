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
local child = id == '' and 'p0' or id .. '.' .. (kids + 1)
local rec = ARGV[7] .. child .. ARGV[8]
-- A program's child is refused when its record (as keep_record keeps it) does not fit; the
-- root, which the lab admits, always is: the run's record begins with it.
if id ~= '' and not record_fits(2 * charged(rec) + #events) then
  return deny('record_bytes', limit('record_bytes'), used('record_bytes') + 2 * charged(rec))
end
redis.call('HINCRBY', k('used'), 'programs', 1)
sweep_charge('programs', 1)
redis.call('HSET', k('used'), 'live', live + 1)
if admission == 'deny' and live + 1 > used('concurrent') then
  redis.call('HSET', k('used'), 'concurrent', live + 1)
end
if depth > used('depth') then redis.call('HSET', k('used'), 'depth', depth) end
if id ~= '' then
  redis.call('HSET', k('nchildren'), id, kids + 1)
  if kids + 1 > used('children') then redis.call('HSET', k('used'), 'children', kids + 1) end
  redis.call('SADD', k('kids:') .. id, child)
end
keep_record(child, rec)
set_state(child, 'queued')
local cm = member(clock_ms, child)
if ORDERED then lb_set(child, cm) end
ready_add(child, cm)
if id ~= '' then journal(id, seq, child) end
emit(events)
step_on(id, m)
return {'ok', child}

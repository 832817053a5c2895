-- A runner stopped computing a program before its end (a kill(), the run's stop): it leaves the
-- program's latest host state (calls, clock, output, ...) and its events not yet sent, so the
-- record says what the program did, not what it was when spawned.
-- ARGV: id, runner tag, host state (JSON), events, then where a killed envelope's host state and
-- record begin (`_stored.ENVELOPE_HOST`, `ENVELOPE_RECORD`).
-- Reply: {'ok'} | {'gone'} (it is not this runner's to leave: ended, or computing elsewhere).
local id, tag, host, events, at_host, at_record = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local st = redis.call('HGET', k('state'), id)
if st == 'run:' .. tag then
  -- The run is stopping: its end (finish.py) records the program from this state, and a call
  -- kept for its turn is never applied: its events are added, as park.lua does.
  redis.call('HSET', k('host'), id, host)
  local kept = redis.call('HGET', k('calls'), id)
  if kept then
    redis.call('HDEL', k('calls'), id)
    emit(cjson.decode(kept).a[4])
  end
elseif st == 'killed' and redis.call('HGET', k('halting'), id) == tag then
  -- A kill() ended it from its last park's state (stop.lua): this state takes that one's place.
  redis.call('HDEL', k('halting'), id)
  local rec = redis.call('HGET', k('programs'), id)
  local a = string.find(rec, at_host, 1, true)
  local b = a and string.find(rec, at_record, a + #at_host, true)
  if not b then return {'gone'} end
  rec = string.sub(rec, 1, a + #at_host - 1) .. host .. string.sub(rec, b)
  keep_record(id, rec)
else
  return {'gone'}
end
emit(events)
return {'ok'}

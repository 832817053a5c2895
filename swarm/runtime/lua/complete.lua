-- A model call's answer, kept for whichever runner resumes the program that made it.
-- ARGV: id, seq, journal entry (the answer), then the call's settlement as settle.lua takes it:
-- its settled entry, the tokens delta, its completions line ('' for none). A program parked on
-- the call is made ready; the settlement is kept (`unsettled`) until the program settles, so a
-- program that ends first (a kill(), the run's stop) is settled at its end (lib.lua's
-- `settle_kept`). A program that has ended already is settled here, to what the server used.
local id, seq, entry = ARGV[1], ARGV[2], ARGV[3]
local settled, delta, line = ARGV[4], tonumber(ARGV[5]), ARGV[6]
local old = model_entry(redis.call('HGET', k('journal:') .. id, seq))
if old and old['settled'] == true then return {'dup'} end
if terminal(redis.call('HGET', k('state'), id)) then
  settle_late(id, seq, settled, delta, line)
  return {'ok'}
end
journal(id, seq, entry)
redis.call('HSET', k('unsettled'), id,
  cjson.encode({seq = seq, settled = settled, delta = tostring(delta), completion = line}))
if redis.call('HGET', k('state'), id) == 'model' then
  make_ready(id, redis.call('HGET', k('lbm'), id) or member(0, id), nil)
  redis.call('HDEL', k('modeltag'), id)
end
return {'ok'}

-- A model call's answer, kept for whichever runner resumes the program that made it.
-- ARGV: id, seq, journal entry (the answer). A program parked on the call is made ready.
local id, seq, entry = ARGV[1], ARGV[2], ARGV[3]
local old = model_entry(redis.call('HGET', k('journal:') .. id, seq))
if old and old['settled'] == true then return {'dup'} end
journal(id, seq, entry)
if redis.call('HGET', k('state'), id) == 'model' then
  make_ready(id, redis.call('HGET', k('lbm'), id) or member(0, id), nil)
  redis.call('HDEL', k('modeltag'), id)
end
return {'ok'}

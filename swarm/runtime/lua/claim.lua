-- A runner takes the first program that is ready to start or resume.
-- ARGV: runner tag. Reply: {} (none), {'skip'} (taken by a kill meanwhile), or
-- {'go', id, state, record, snapshot, host, resume, restarts, place}: with what the runner needs
-- to run it ('' for what it does not have), so a slice starts on one round trip.
if killed() then return {} end
local popped = redis.call('ZPOPMIN', k('ready'))
if #popped == 0 then return {} end
local id = member_id(popped[1])
redis.call('HDEL', k('rdym'), id)
local st = redis.call('HGET', k('state'), id)
if st ~= 'queued' and st ~= 'ready' then return {'skip'} end
set_state(id, 'run:' .. ARGV[1])
redis.call('SADD', k('running:') .. ARGV[1], id)
local function get(name) return redis.call('HGET', k(name), id) or '' end
return {'go', id, st, get('programs'), get('snap'), get('host'), get('resume'), get('restarts'), get('lbm')}

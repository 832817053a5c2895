-- A runner takes the first program that is ready to start or resume.
-- ARGV: runner tag, how many workers it will still have free after this claim.
-- Reply: {} (none), {'skip'} (taken by a kill meanwhile), or
-- {'go', id, state, more, record, snapshot, host, resume, restarts, place, cut, now}: with what the
-- runner needs to run it ('' for what it does not have), so a slice starts on one round trip; `more`
-- is '1' when other programs are ready; `now` is when it was taken (Redis's clock, as a kill()'s
-- end is: a program killed just after it was taken started before it ended).
-- A runner that leaves the queue empty with a worker free joins `idle`: it claims again when it
-- is woken (lib.lua's ready_add), not at once to find nothing.
if killed() then return {} end
local tag, free = ARGV[1], tonumber(ARGV[2])
local popped = redis.call('ZPOPMIN', k('ready'))
if #popped == 0 then
  redis.call('SADD', k('idle'), tag)
  return {}
end
local more = redis.call('ZCARD', k('ready')) > 0
if more or free < 1 then redis.call('SREM', k('idle'), tag) else redis.call('SADD', k('idle'), tag) end
local id = member_id(popped[1])
redis.call('HDEL', k('rdym'), id)
local st = redis.call('HGET', k('state'), id)
if st ~= 'queued' and st ~= 'ready' then return {'skip'} end
set_state(id, 'run:' .. tag)
redis.call('SADD', k('running:') .. tag, id)
local function get(key) return redis.call('HGET', key, id) or '' end
return {'go', id, st, more and '1' or '0', get(k('programs')), get(k('snap')), get(k('host')),
  get(k('resume')), get(k('restarts')), get(k('lbm')), get(k('cuts')), now_text()}

-- A runner is gone: what it was computing starts again elsewhere, from its last snapshot (or its
-- start), and model calls it had in flight are made again. ARGV: the dead runner's tag.
-- Reply: {ids requeued...}.
local tag = ARGV[1]
redis.call('SREM', k('idle'), tag)
local again = {}
for _, id in ipairs(redis.call('SMEMBERS', k('running:') .. tag)) do
  if redis.call('HGET', k('state'), id) == 'run:' .. tag then again[#again + 1] = id end
end
local flat = redis.call('HGETALL', k('modeltag'))
for i = 1, #flat, 2 do
  if flat[i + 1] == tag and redis.call('HGET', k('state'), flat[i]) == 'model' then
    again[#again + 1] = flat[i]
    redis.call('HDEL', k('modeltag'), flat[i])
  end
end
for _, id in ipairs(again) do
  redis.call('HDEL', k('calls'), id)
  local had = redis.call('HEXISTS', k('snap'), id) == 1
  local m = redis.call('HGET', k('lbm'), id) or member(0, id)
  redis.call('HINCRBY', k('restarts'), id, 1)
  set_state(id, had and 'ready' or 'queued')
  ready_add(id, m)
end
redis.call('DEL', k('running:') .. tag)
return again

-- One bound per run on the requests in flight at the model server, shared by all its runners.
-- A slot is a member of `inflight`, scored by when its lease runs out: expired slots (a runner
-- that died holding them) are dropped before a slot is taken. ARGV: op ('take' | 'renew' |
-- 'give'), the slot's token, the bound, the lease (ms). Reply: {'ok'} | {'full'}.
local op, token, bound, lease = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local key = k('inflight')
local now = now_ms()
if op == 'give' then
  redis.call('ZREM', key, token)
  return {'ok'}
end
if op == 'renew' then
  redis.call('ZADD', key, 'XX', now + lease, token)
  return {'ok'}
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZSCORE', key, token) then return {'ok'} end
if redis.call('ZCARD', key) >= bound then return {'full'} end
redis.call('ZADD', key, now + lease, token)
return {'ok'}

-- The blackboard and other shared reads, at the caller's turn.
-- ARGV: id, seq, member, events, op, then per op:
--   put  key, value (JSON)                      -> {'ok', bytes charged}
--   get  key                                    -> {'ok', value or '', writer or '', edges}
--   keys prefix, most                           -> {'ok', key...}
--   budget caps (comma-separated)               -> {'ok', cap, limit, used, ...}
-- Every answer is journaled, so a program re-run after a runner's loss reads what it read; a
-- large answer is kept once however often it is given (lib.lua's journal_shared).
local id, seq, m, events, op = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local stop = begin(id, seq, m)
if stop then return stop end
local reply
if op == 'put' then
  local key, value = ARGV[6], ARGV[7]
  local old = redis.call('HGET', k('bb'), key)
  local delta
  if old then delta = #value - #old else delta = #key + #value end
  if delta > 0 and used('blackboard_bytes') + delta > limit('blackboard_bytes') then
    return deny('blackboard_bytes', limit('blackboard_bytes'), used('blackboard_bytes') + delta)
  end
  redis.call('HINCRBY', k('used'), 'blackboard_bytes', delta)
  if not old then redis.call('ZADD', k('bbk'), 0, key) end
  redis.call('HSET', k('bb'), key, value)
  redis.call('HSET', k('bbw'), key, id)
  reply = {'ok', tostring(delta)}
elseif op == 'get' then
  local key = ARGV[6]
  local value = redis.call('HGET', k('bb'), key) or ''
  local writer = redis.call('HGET', k('bbw'), key) or ''
  local edges = 0
  local related = writer == '' or writer == id
    or string.sub(writer, 1, #id + 1) == id .. '.' or string.sub(id, 1, #writer + 1) == writer .. '.'
  if not related then
    redis.call('SADD', k('edges'), id .. '<' .. writer)
    edges = redis.call('SCARD', k('edges'))
  end
  reply = {'ok', value, writer, tostring(edges)}
elseif op == 'keys' then
  -- The keys in byte order from the sorted index (`bbk`): a range read of at most `most` keys,
  -- never a pass over the whole blackboard. Keys are printable ASCII, so every key that starts
  -- with the prefix lies below the prefix followed by byte 255.
  local prefix, most = ARGV[6], tonumber(ARGV[7])
  local low, high = '-', '+'
  if prefix ~= '' then low, high = '[' .. prefix, '(' .. prefix .. '\255' end
  reply = {'ok'}
  for _, key in ipairs(redis.call('ZRANGE', k('bbk'), low, high, 'BYLEX', 'LIMIT', 0, most)) do
    reply[#reply + 1] = key
  end
elseif op == 'budget' then
  reply = {'ok'}
  for cap in string.gmatch(ARGV[6], '[^,]+') do
    reply[#reply + 1] = cap
    reply[#reply + 1] = tostring(limit(cap) or 0)
    reply[#reply + 1] = tostring(used(cap))
  end
else
  return redis.error_reply('unknown blackboard op ' .. op)
end
local entry = cjson.encode(reply)
if op ~= 'put' and not record_fits(shared_cost(entry) + #events) then
  return deny('record_bytes', limit('record_bytes'), used('record_bytes') + shared_cost(entry))
end
journal_shared(id, seq, entry)
emit(events)
step_on(id, m)
return reply

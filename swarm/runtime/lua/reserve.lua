-- Charge caps before an effect, all or nothing. ARGV: id, seq, member, events, next member
-- (where the program stands once the call is made: later in simulated time), journal entry,
-- fit (the least a shrinkable `tokens` reservation may become, or 0), then cap, amount pairs.
-- Reply: {'ok'} | {'dup', entry} | {'room', tokens left} | denial. A `tokens` reservation
-- that does not fit but could shrink to at least `fit` is answered with the room left, charged
-- nothing and not counted as denied: the caller asks again for what is left.
local id, seq, m, events, after, entry = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local fit = tonumber(ARGV[7]) or 0
local stop = begin(id, seq, m)
if stop then return stop end
for i = 8, #ARGV, 2 do
  local cap, n = ARGV[i], tonumber(ARGV[i + 1])
  local asked = used(cap) + n
  if asked > limit(cap) then
    local room = limit(cap) - used(cap)
    if cap == 'tokens' and fit > 0 and room >= fit then return {'room', tostring(room)} end
    return deny(cap, limit(cap), asked)
  end
  if not sweep_fits(cap, n) then return deny('sweep.' .. cap) end
end
for i = 8, #ARGV, 2 do
  redis.call('HINCRBY', k('used'), ARGV[i], ARGV[i + 1])
  sweep_charge(ARGV[i], tonumber(ARGV[i + 1]))
end
if entry ~= '' then journal(id, seq, entry) end
emit(events)
if ORDERED and after ~= '' and after ~= m then
  lb_set(id, after)
  handoff()
end
return {'ok'}

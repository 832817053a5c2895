-- Shared head of every script. KEYS[1]: the run's key prefix; KEYS[2], KEYS[3]: the limits and
-- usage of the sweep the run belongs to (keys that never exist when there is none).
-- Program ids are validated before they reach a script ("p0", "p0.3", ...); every key is built
-- from the prefix, a fixed name and such an id, never from a pattern.
local P = KEYS[1]
local SWEEP_LIMITS, SWEEP_USED = KEYS[2], KEYS[3]
local function k(name) return P .. name end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Now as JSON writes a Unix time in seconds, to the microsecond (Redis's clock, exact digits).
local function now_text()
  local t = redis.call('TIME')
  return t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
end
local function killed() return redis.call('EXISTS', k('kill')) == 1 end
local function limit(cap) return tonumber(redis.call('HGET', k('limits'), cap)) end
local function used(cap) return tonumber(redis.call('HGET', k('used'), cap) or '0') end
local function out_of_time()
  local deadline = tonumber(redis.call('HGET', k('meta'), 'deadline_ms') or '0')
  return deadline > 0 and now_ms() > deadline
end
local function sweep_fits(cap, n)
  local lim = redis.call('HGET', SWEEP_LIMITS, cap)
  if not lim then return true end
  return tonumber(redis.call('HGET', SWEEP_USED, cap) or '0') + n <= tonumber(lim)
end
local function sweep_charge(cap, n)
  if redis.call('HEXISTS', SWEEP_LIMITS, cap) == 1 then redis.call('HINCRBY', SWEEP_USED, cap, n) end
end

-- Members of the order: 16 digits of simulated milliseconds, the id's parts six digits each
-- (so "p0" < "p0.1" < "p0.2" < "p0.10": '!' sorts before '.'), then the id. Lexicographic
-- order is the run's order.
local function idkey(id)
  local parts = {}
  for part in string.gmatch(string.sub(id, 2), '[^.]+') do
    parts[#parts + 1] = string.format('%06d', tonumber(part))
  end
  return table.concat(parts, '.')
end
local function member(clock_ms, id)
  return string.format('%016d', math.floor(clock_ms)) .. '!' .. idkey(id) .. '!' .. id
end
local function member_id(m) return string.match(m, '!([^!]+)$') end
local function member_clock(m) return tonumber(string.sub(m, 1, 16)) end

-- Program states: queued (admitted, never ran), ready (to resume), run:<runner> (computing),
-- parked (in wait), gate (waiting for its turn), ending (its end held until its turn: finish.lua),
-- model (waiting for a model's answer), or the end status. Counts of each class (waiting for a
-- worker, computing, parked, calling) are kept for the progress display and the driver.
local function class(st)
  if st == 'queued' or st == 'ready' then return 'waiting' end
  if st == 'parked' or st == 'gate' or st == 'ending' then return 'parked' end
  if st == 'model' then return 'calling' end
  if st and string.sub(st, 1, 4) == 'run:' then return 'computing' end
  return nil
end
local function set_state(id, st)
  local old = redis.call('HGET', k('state'), id)
  local a, b = class(old), class(st)
  if a then redis.call('HINCRBY', k('nstate'), a, -1) end
  if b then
    local n = redis.call('HINCRBY', k('nstate'), b, 1)
    if b == 'computing' and n > used('computing_peak') then
      redis.call('HSET', k('used'), 'computing_peak', n)
    end
  end
  redis.call('HSET', k('state'), id, st)
  return old
end
local function terminal(st) return st ~= false and st ~= nil and class(st) == nil end

-- The order (simulated time): in `ordered` runs, a program changes shared state only when its
-- member is the first of `lb`. Members move up as clocks advance; a program parked in an untimed
-- wait has none (its children stand for it).
local ORDERED = redis.call('HGET', k('meta'), 'ordered') == '1'
local function lb_set(id, m)
  -- A program that has ended never takes a place again: a late step of a program killed while
  -- its runner was starting it would otherwise stand first for ever, and nobody could move.
  if terminal(redis.call('HGET', k('state'), id)) then return end
  local old = redis.call('HGET', k('lbm'), id)
  if old == m then return end
  if old then redis.call('ZREM', k('lb'), old) end
  redis.call('ZADD', k('lb'), 0, m)
  redis.call('HSET', k('lbm'), id, m)
end
local function lb_del(id)
  local old = redis.call('HGET', k('lbm'), id)
  if old then
    redis.call('ZREM', k('lb'), old)
    redis.call('HDEL', k('lbm'), id)
  end
end
local function first() return redis.call('ZRANGE', k('lb'), '-', '+', 'BYLEX', 'LIMIT', 0, 1)[1] end

local function clear_wait(id)
  for _, x in ipairs(redis.call('SMEMBERS', k('pending:') .. id)) do
    redis.call('SREM', k('waiters:') .. x, id)
  end
  redis.call('DEL', k('pending:') .. id)
end
-- The ready queue: programs to start or resume, taken first in the run's order. A runner that
-- found it empty is in `idle` (claim.lua): one of them is woken for each program made ready, on
-- its own channel. A busy runner claims again by itself whenever it has a free worker.
local function ready_add(id, m)
  redis.call('ZADD', k('ready'), 0, m)
  redis.call('HSET', k('rdym'), id, m)
  local runner = redis.call('SPOP', k('idle'))
  if runner then redis.call('PUBLISH', k('wake:') .. runner, id) end
end
local function ready_del(id)
  local m = redis.call('HGET', k('rdym'), id)
  if m then
    redis.call('ZREM', k('ready'), m)
    redis.call('HDEL', k('rdym'), id)
  end
end
local function make_ready(id, m, payload)
  if ORDERED then lb_set(id, m) end
  set_state(id, 'ready')
  if payload then redis.call('HSET', k('resume'), id, payload) end
  clear_wait(id)
  ready_add(id, m)
end
-- A program has ended at simulated `clock_ms`: whoever waited on it and waits on nothing else
-- now is made ready where the later of its park and this end stands.
local function wake_waiters(id, clock_ms)
  for _, w in ipairs(redis.call('SMEMBERS', k('waiters:') .. id)) do
    redis.call('SREM', k('pending:') .. w, id)
    if redis.call('SCARD', k('pending:') .. w) == 0 and redis.call('HGET', k('state'), w) == 'parked' then
      local parked_at = tonumber(redis.call('HGET', k('pclock'), w) or '0')
      make_ready(w, member(math.max(parked_at, clock_ms), w), nil)
    end
  end
  redis.call('DEL', k('waiters:') .. id)
end
-- The record's budget: every byte the run keeps of its record (events, journal entries, shared
-- answers) is charged to `record_bytes` as it is written. A call is refused once the record is
-- full, and an answer that would not fit is refused before it is kept.
local function record_charge(n) redis.call('HINCRBY', k('used'), 'record_bytes', n) end
-- What a line of the record is charged: its bytes, but a host measure (a wall-clock time, the
-- compute or latency seconds a run measured) counts HOST_WIDTH bytes whatever its digits (a
-- float's repr is at most 24 characters), so two runs of one seed charge the same. A longer
-- number under such a key (a program's own) counts as long as it is: nothing is undercharged.
-- Each host key is found by a plain search (a record of a few KB is read in microseconds); in
-- JSON a key's quotes are never escaped, so its text is found only where it is a key.
local HOST_KEYS = {'"t":', '"cpu_s":', '"latency_s":', '"created_at":', '"started_at":',
  '"ended_at":'}
local HOST_WIDTH = 24
local function charged(s)
  local n = #s
  for _, key in ipairs(HOST_KEYS) do
    local at = string.find(s, key, 1, true)
    while at do
      local num = string.match(s, '^ ?(%-?%d[%d%.eE+-]*)', at + #key)
      if num and #num < HOST_WIDTH then n = n + HOST_WIDTH - #num end
      at = string.find(s, key, at + #key, true)
    end
  end
  return n
end
local function record_fits(n)
  local lim = limit('record_bytes')
  return lim == nil or used('record_bytes') + n <= lim
end
-- A program's record as the run keeps it: the latest version in `programs`, every version in
-- the `records` stream; both are charged to the record as they are written. A new program is
-- refused when its record does not fit (spawn.lua); a record that changes (an end, a kill) is
-- always kept: it says what happened.
local function keep_record(id, rec)
  local old = redis.call('HGET', k('programs'), id)
  redis.call('HSET', k('programs'), id, rec)
  redis.call('XADD', k('records'), '*', 'r', rec)
  record_charge(2 * charged(rec) - (old and charged(old) or 0))
end
-- The record is full once `used` reaches the limit, and stays full (`record_full` in `used`:
-- an answer kept again smaller gives no room back). A full record is not written to say so: a
-- call refused while it is full is counted, never journaled, and adds no event (`deny`).
local function record_full()
  if redis.call('HEXISTS', k('used'), 'record_full') == 1 then return true end
  if record_fits(1) then return false end
  redis.call('HSET', k('used'), 'record_full', 1)
  return true
end
-- A large answer given again and again (db_keys over a full blackboard, db_get of a big value)
-- is kept once, by its SHA-1, in `blobs`; the journal holds a reference to it.
local BLOB_MIN = 512
local BLOB_REF = '{"blob":"'
local function blob_of(entry)
  if string.sub(entry, 1, #BLOB_REF) ~= BLOB_REF then return nil end
  return string.sub(entry, #BLOB_REF + 1, #BLOB_REF + 40)
end
local function journaled(id, seq)
  if seq == '' then return false end
  local entry = redis.call('HGET', k('journal:') .. id, seq)
  local sha = entry and blob_of(entry)
  if sha then return redis.call('HGET', k('blobs'), sha) end
  return entry
end
-- A model call's journal entry (JSON written by Python) as a table; nil for anything else (an
-- empty entry, a journaled denial, a blob reference, text that is not a JSON object). Its fields
-- are read from the decoded object, never found by searching its text.
local function model_entry(text)
  if not text or string.sub(text, 1, 1) ~= '{' then return nil end
  local ok, found = pcall(cjson.decode, text)
  if ok and type(found) == 'table' and type(found['phase']) == 'string' then return found end
  return nil
end
local function journal(id, seq, reply)
  local key = k('journal:') .. id
  local old = redis.call('HGET', key, seq)
  record_charge(charged(reply) - (old and charged(old) or 0))
  redis.call('HSET', key, seq, reply)
end
-- What keeping `reply` once would cost the record: its reference, plus itself if it is new.
local function shared_cost(reply)
  if #reply < BLOB_MIN then return charged(reply) end
  local sha = redis.sha1hex(reply)
  if redis.call('HEXISTS', k('blobs'), sha) == 1 then return #BLOB_REF + 42 end
  return #BLOB_REF + 42 + charged(reply)
end
local function journal_shared(id, seq, reply)
  if #reply < BLOB_MIN then return journal(id, seq, reply) end
  local sha = redis.sha1hex(reply)
  if redis.call('HSETNX', k('blobs'), sha, reply) == 1 then record_charge(charged(reply)) end
  journal(id, seq, BLOB_REF .. sha .. '"}')
end
-- A denial is what its call answered: it is journaled at the call's number (set by `begin`, or
-- by a script that takes no turn), in the script that denies, so inputs.jsonl holds it, a replay
-- compares it, and the call asked again (after a runner's loss) is denied again, counted once.
-- Once the record is full, a denial is counted and written nowhere: the call asked again is
-- refused again (the record stays full), and `unwritten` (each program's latest call so
-- refused) counts it once. A replay fills the record at the same call, and refuses the same.
local CALL_ID, CALL_SEQ = '', ''
local JOURNAL_DENIALS = true
-- The running call was answered before its turn (turn.lua, `answered`): out of time, the
-- program keeps that answer, so the refusal its turn gets is no refusal and is not counted.
local ANSWERED = false
local DENIAL = '["denied",'
local function first_refusal()
  if CALL_ID == '' or CALL_SEQ == '' then return true end
  local last = tonumber(redis.call('HGET', k('unwritten'), CALL_ID) or '0')
  if tonumber(CALL_SEQ) <= last then return false end
  redis.call('HSET', k('unwritten'), CALL_ID, CALL_SEQ)
  return true
end
local function deny(cap, lim, asked)
  local reply = {'denied', cap, tostring(lim or ''), tostring(asked or '')}
  if ANSWERED and cap == 'wall_clock_s' then return reply end
  if record_full() then
    if first_refusal() then redis.call('HINCRBY', k('denied'), cap, 1) end
    return reply
  end
  redis.call('HINCRBY', k('denied'), cap, 1)
  if JOURNAL_DENIALS and CALL_ID ~= '' and CALL_SEQ ~= '' then
    journal(CALL_ID, CALL_SEQ, cjson.encode(reply))
  end
  return reply
end
-- Parked state (snapshots and host state) held in Redis: `parked_now` is what is held now,
-- charged against `parked_bytes`, whose `used` is the most ever held at once.
local function parked_release(id)
  local held = tonumber(redis.call('HGET', k('psize'), id) or '0')
  if held > 0 then redis.call('HINCRBY', k('used'), 'parked_now', -held) end
  redis.call('HDEL', k('psize'), id)
end
-- Events arrive as JSON lines, one event each, and go to the run's stream as they are.
local function emit(lines)
  for line in string.gmatch(lines, '[^\n]+') do
    redis.call('XADD', k('events'), '*', 'e', line)
    record_charge(charged(line))
  end
end
-- A model call's settlement made where its program cannot make it (it ended before the answer
-- came, or after the answer was kept but before its turn to settle: a kill(), the run's stop):
-- `tokens` is corrected to what the server used, the call journaled as settled and its line
-- kept for completions.jsonl, as settle.lua does. `unsettled` holds, for a program whose answer
-- is kept (complete.lua), that settlement until the program makes it itself.
local function settle_late(id, seq, settled, delta, line)
  if delta ~= 0 then
    redis.call('HINCRBY', k('used'), 'tokens', delta)
    sweep_charge('tokens', delta)
  end
  journal(id, seq, settled)
  if line ~= '' then
    redis.call('RPUSH', k('completions'), line)
    record_charge(charged(line))
  end
end
local function settle_kept(id)
  local held = redis.call('HGET', k('unsettled'), id)
  if not held then return end
  redis.call('HDEL', k('unsettled'), id)
  local s = cjson.decode(held)
  local was = model_entry(redis.call('HGET', k('journal:') .. id, s.seq))
  if was and was['settled'] == true then return end
  settle_late(id, s.seq, s.settled, tonumber(s.delta), s.completion)
end
-- A program's end (`e`: finish.lua's arguments, by name): its record and state, its parked state
-- freed, the programs waiting on it woken, its events added. The caller hands the turn on.
local function end_program(e)
  local id = e.id
  if e.cut ~= '' then journal(id, e.seq, e.cut) end
  if e.view ~= '' then redis.call('HSET', k('views'), id, e.view) end
  keep_record(id, e.record)
  set_state(id, e.status)
  if e.tag ~= '' then redis.call('SREM', k('running:') .. e.tag, id) end
  redis.call('HDEL', k('ending'), id)
  redis.call('HDEL', k('calls'), id)
  lb_del(id)
  clear_wait(id)
  ready_del(id)
  redis.call('HDEL', k('snap'), id)
  parked_release(id)
  redis.call('HDEL', k('host'), id)
  redis.call('HDEL', k('resume'), id)
  settle_kept(id)
  redis.call('HINCRBY', k('used'), 'live', -1)
  redis.call('HINCRBY', k('counts'), e.status, 1)
  wake_waiters(id, tonumber(e.clock_ms))
  emit(e.events)
end
-- A call told to wait for its turn is kept (`calls`: its script's name and arguments) when its
-- program waits for the turn on its worker. The script that hands the turn to it applies it
-- there and sends the answer on the runner's `turn:` channel (id, seq, the answer as JSON):
-- the program is answered without asking again, one round trip less for each waiting call.
-- The call scripts are functions here (`CALLS`, defined after lib.lua by `lua_source`), run by
-- `call`, which keeps the running call's globals for the call that applies another.
local CALLS = {}
local RUNNING, RUNNING_ARGV, HANDING = '', nil, false
local APPLIED = {ok = true, done = true, go = true, unknown = true}  -- added the call's events
local function call(name, argv)
  local was, was_argv, was_id, was_seq, was_journal, was_answered =
    RUNNING, RUNNING_ARGV, CALL_ID, CALL_SEQ, JOURNAL_DENIALS, ANSWERED
  RUNNING, RUNNING_ARGV, JOURNAL_DENIALS, ANSWERED = name, argv, true, false
  local reply = CALLS[name](argv)
  RUNNING, RUNNING_ARGV, CALL_ID, CALL_SEQ, JOURNAL_DENIALS, ANSWERED =
    was, was_argv, was_id, was_seq, was_journal, was_answered
  return reply
end
-- The running call waits for its turn: {'wait', 'kept'} when it is kept to be applied at the
-- turn (its program computes on a runner, which hears the answer), else {'wait'}.
local function wait_turn(id)
  local st = redis.call('HGET', k('state'), id) or ''
  if RUNNING_ARGV == nil or string.sub(st, 1, 4) ~= 'run:' then return {'wait'} end
  redis.call('HSET', k('calls'), id, cjson.encode({s = RUNNING, a = RUNNING_ARGV}))
  return {'wait', 'kept'}
end
-- Whoever is first now may go: an end held for its turn is recorded, a call kept for its turn is
-- applied (and the next is looked at, for both); a program parked at the gate or in a timed
-- wait is made ready, a computing one is told on its runner's channel.
local function handoff()
  if not ORDERED or HANDING then return end
  HANDING = true
  while true do
    local m = first()
    if not m then break end
    local id = member_id(m)
    local st = redis.call('HGET', k('state'), id) or ''
    local running = string.sub(st, 1, 4) == 'run:'
    local kept = running and redis.call('HGET', k('calls'), id)
    if st == 'ending' then
      local held = redis.call('HGET', k('ending'), id)
      if held then end_program(cjson.decode(held)) else lb_del(id) end
    elseif kept then
      redis.call('HDEL', k('calls'), id)
      local c = cjson.decode(kept)
      local reply = call(c.s, c.a)
      if not APPLIED[reply[1]] then emit(c.a[4]) end  -- a refusal adds its events all the same
      redis.call('PUBLISH', k('turn:') .. string.sub(st, 5),
        id .. '\n' .. c.a[2] .. '\n' .. cjson.encode(reply))
      if reply[1] == 'wait' then break end
    else
      if st == 'gate' then
        make_ready(id, m, nil)
      elseif st == 'parked' then
        make_ready(id, m, '{"timed_out":true}')
      elseif running then
        redis.call('PUBLISH', k('turn:') .. string.sub(st, 5), id)
      end
      break
    end
  end
  HANDING = false
end
-- Whether it is this program's turn (at `m`); when it is not, whoever is first is handed the turn,
-- which may be this program once the ends held before it are recorded.
local function holds_turn(id, m)
  if not ORDERED or m == '' then return true end
  lb_set(id, m)
  if first() == m then return true end
  handoff()
  return first() == m
end
-- The program's call at `m` is made and it computes on: its next step (a call or its end) is at
-- least one simulated millisecond later (`_program.py`'s `next_step_h`), so it stands there in
-- the order and whoever is first now goes. That lookahead lets programs whose turns come before
-- its next step take them while it computes: without it every call waited for the previous
-- program's next one. Not for a step that holds the turn on (a world action's reservation, a
-- turn that only sends events): the program acts at `m` again.
local MAX_MS = 3600000000000  -- _keys.py's MAX_CLOCK_H in milliseconds
local function step_on(id, m)
  if not ORDERED then return end
  if id ~= '' and m ~= '' and redis.call('HGET', k('lbm'), id) == m
    and string.sub(redis.call('HGET', k('state'), id) or '', 1, 4) == 'run:'
    and member_clock(m) < MAX_MS then
    lb_set(id, member(member_clock(m) + 1, id))
  end
  handoff()
end
-- The common head of a program's transition: a committed call answers from the journal; a stopped
-- run or an exhausted wall clock refuses; a call that is not its turn waits.
local function begin(id, seq, m)
  CALL_ID, CALL_SEQ = id, seq
  local done = journaled(id, seq)
  if done and string.sub(done, 1, #DENIAL) == DENIAL then return cjson.decode(done) end
  if done then return {'dup', done} end
  if killed() then return {'killed', redis.call('GET', k('kill'))} end
  if terminal(redis.call('HGET', k('state'), id)) then return {'killed', 'program ' .. id .. ' has ended'} end
  if out_of_time() then return deny('wall_clock_s') end
  if record_full() then return deny('record_bytes', limit('record_bytes'), used('record_bytes')) end
  if not holds_turn(id, m) then return wait_turn(id) end
  return nil
end

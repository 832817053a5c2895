-- Is it this program's turn? ARGV: id, seq, member, events, the call's answer to journal
-- ('' or none: nothing), and '1' when the call was answered before its turn (the turn after a
-- call that took none: out of time, the program keeps that answer, so the refusal is not
-- counted as one; '' for a turn that is itself the call, whose refusal the program gets).
-- Reply: {'go'} (the events are in the stream, the answer journaled) | begin()'s refusals, not
-- journaled.
local id, seq, m, events, answer = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
JOURNAL_DENIALS = false
ANSWERED = ARGV[6] == '1'
local stop = begin(id, seq, m)
if stop then
  -- Out of time, a call that takes only a turn keeps the answer it had (the program gets it;
  -- its next call is refused): that answer is what it saw, and is journaled. A full record
  -- refuses the call itself (the program gets the refusal): nothing is written.
  if stop[1] == 'denied' and answer and answer ~= '' and not record_full() then
    journal(id, seq, answer)
  end
  return stop
end
if answer and answer ~= '' then journal(id, seq, answer) end
emit(events or '')
if ANSWERED then step_on(id, m) end  -- the call's own turn (else events sent before it)
return {'go'}

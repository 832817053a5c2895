"""Model calls under the caps: reserve, call, settle to what was really used.

Before a call, the prompt's upper-bound estimate plus `max_tokens` is reserved (when less room
is left, `max_tokens` shrinks to fit, and a call that cannot fit one token is denied). After the
call, the reservation is settled to the usage the server reports, also when that is more than
was reserved: the cap's `used` then tells the truth, the cap counts as exhausted, and the overrun
shows in summary.json.

A program's call is a journaled transition: reserved at its turn, answered by the model (the
program parks meanwhile if the answer is slow; the answer is kept in Redis for whichever runner
resumes it), settled at its turn one simulated minute later.

A call is charged when it is sent, keyed by (program, call number, attempt). A runner lost while
its call was in flight takes the answer with it: the program resumes elsewhere, finds its call
reserved but never answered, and sends it again as the next attempt, charged again (`retry.lua`).
Only a reservation made before the program's last restart is taken for lost (the entry keeps the
restarts it was made at): one made in this life was never sent, as when its turn applied it
while the program was parking at the gate, and asked again it is sent once and charged once.
The lost attempt's tokens stay reserved in full, since what the server did with it is not known:
`used` then covers what the server did, and equals it when no runner is lost.

A program that ends before it settles its call (another's kill(), the run's stop) is settled
all the same once the answer is known: when the answer comes after its end, or at its end when
the answer was kept before (`complete.lua`, lib.lua's `settle_kept`): `used` is what the server
used, and completions.jsonl has the call. So is one stopped after sending its call and before
it settles or parks: its answer is kept as a parked program's is (`_send_and_settle`).

The call's chat span is born with the reservation: its id and start time are journaled with it,
the request's traceparent names that id, and whichever slice ends the call writes the span once,
from the sending to the answer, with each attempt sent again as an event.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from swarmlab.core import CapExceeded, ModelCallFailed, ModelError, RunKilled
from swarmlab.models import Completion, CompletionRequest, ModelBackend, request_headers
from swarmlab.observability.telemetry import LaterSpan

from ._carried import stopping
from ._keys import member_clock_h
from ._program import ProgramHost
from ._replies import Denied, Dup, Killed, Reply, Room
from ._sandbox import Park
from ._scheduler import Scheduler
from ._transitions import NO_CALL, CompleteArgs, ReserveArgs, RetryArgs, SettleArgs

MODEL_CALL_HOURS = 1 / 60
"""Each model call costs a simulated minute."""
PARK_AFTER_S = 0.02
"""A model call slower than this parks the program (its worker goes back to the pool)."""


def entry(phase: str, **fields: Any) -> str:
    """A model call's journal entry (compact JSON, as the record keeps it; scripts decode it)."""
    return json.dumps({"phase": phase, **fields}, separators=(",", ":"))


def completion_line(request: CompletionRequest, completion: Completion) -> str:
    """The line of completions.jsonl for one call (what `replay:` answers from)."""
    return json.dumps(
        {
            "seed": request.seed,
            "request": request.model_dump(),
            "completion": completion.model_dump(),
        }
    )


async def program_model_call(
    host: ProgramHost, request: CompletionRequest, span: LaterSpan | None = None
) -> Completion | Park:
    """A program's model call, from reservation to settlement (or to parking on the answer);
    `span`: the call's chat span, which takes the journaled id and start."""
    after_clock = host.state.clock_h + MODEL_CALL_HOURS
    after = host.member(after_clock)
    journaled = await _reserve(host, request, after, span)
    if isinstance(journaled, Park):
        return journaled
    if journaled.pop("lost", False):
        journaled = await _retry(host, journaled)
        if isinstance(journaled, Park):
            return journaled
    host.attempts = int(journaled.get("attempt") or 1)
    _adopt(span, journaled)
    after = str(journaled.get("after") or after)  # where a first run of this call put it
    after_clock = member_clock_h(after)
    if journaled["phase"] == "settled":
        host.state.clock_h = after_clock
        return _outcome(journaled)
    if journaled["phase"] == "reserved":
        settled = await _send_and_settle(host, request, journaled, after, span)
    else:
        settled = await _settle(host, request, journaled, after)
    if isinstance(settled, Park):
        return settled
    host.state.clock_h = after_clock
    return _outcome(settled)


async def _send_and_settle(
    host: ProgramHost,
    request: CompletionRequest,
    reserved: dict[str, Any],
    after: str,
    span: LaterSpan | None,
) -> dict[str, Any] | Park:
    """Send a reserved call and settle its answer, or park on it when it is slow. A program
    stopped before its answer is settled or kept (a kill(), the run's stop: in the moment
    before it parks, or while the settlement waits for its turn) has the answer kept as a
    parked program's is, so the call is settled to what the server used."""
    if stopping():  # stopped while its reservation was in flight: the stop, before a request
        await asyncio.sleep(0)
    request = request.model_copy(update={"max_tokens": int(reserved["max_tokens"])})
    # The server's own spans (vLLM's, with --otlp-traces-endpoint) join this call's span:
    # the task takes the header with the context it is created in.
    traceparent = span.traceparent() if span is not None else None
    token = request_headers.set({"traceparent": traceparent or ""})
    try:
        task = host.env.runner.start_model_call(
            host.id, host.seq, lambda: _answer(host.env.backend, request, reserved)
        )
    finally:
        request_headers.reset(token)
    keep = _completer(host, request, after)
    try:
        done, _ = await asyncio.wait({task}, timeout=PARK_AFTER_S)
        if not done:
            host.env.runner.keep_answer(task, keep)
            return Park("model", lambda blob, spent: host.park("model", after, blob, spent))
        return await _settle(host, request, json.loads(task.result()), after)
    except asyncio.CancelledError:
        host.env.runner.keep_answer(task, keep)
        raise


def _adopt(span: LaterSpan | None, journaled: dict[str, Any]) -> None:
    """The call's span takes the id and start its reservation journaled, and marks each
    attempt sent again (all bounded: the journal is read back as hostile)."""
    span_id, start_ns = journaled.get("span"), journaled.get("start_ns")
    if span is None or not isinstance(span_id, str) or not isinstance(start_ns, int):
        return
    if len(span_id) == 16 and all(c in "0123456789abcdef" for c in span_id) and start_ns > 0:
        span.adopt(span_id, start_ns)
    resent = journaled.get("resent")
    for attempt, at_ns in enumerate(resent[:100] if isinstance(resent, list) else [], 2):
        if isinstance(at_ns, int) and at_ns > 0:
            span.add_event("swarmlab.model.resent", {"swarmlab.attempt": attempt}, at_ns)


async def _reserve(
    host: ProgramHost, request: CompletionRequest, after: str, span: LaterSpan | None = None
) -> dict[str, Any] | Park:
    """The call's journal entry once its tokens are reserved (or as an earlier run left it).
    When the tokens cap has less room than the request but room for the prompt and at least one
    token, the request shrinks to what is left (not counted as a denial)."""
    estimate = host.env.backend.estimate_prompt_tokens(request)
    max_tokens = request.max_tokens
    while True:
        reserved = estimate + max_tokens
        made = entry(
            "reserved",
            reserved=reserved,
            max_tokens=max_tokens,
            after=after,
            **_span_fields(span),
            **_life(host),
        )
        charges = (("model_calls", 1), ("tokens", reserved))
        reply = await host.transition(ReserveArgs(after, made, estimate + 1, charges))
        if isinstance(reply, Park):
            return reply
        if isinstance(reply, Room):
            max_tokens = min(max_tokens - 1, reply.tokens - estimate)  # fit what is left
            continue
        if not isinstance(reply, Dup):
            return dict(json.loads(made))
        journaled = reply.record()
        return {**journaled, "lost": lost_in_flight(host, journaled)}


def lost_in_flight(host: ProgramHost, journaled: dict[str, Any]) -> bool:
    """Whether a call the journal holds reserved was sent by a runner lost since: reserved
    before the program's last restart and never answered. One reserved in this life was never
    sent (its turn applied it while the program parked at the gate): it is sent now, once."""
    if journaled.get("phase") != "reserved":
        return False
    made_at = journaled.get("restarts")
    return host.state.restarts > (made_at if type(made_at) is int else 0)


def _life(host: ProgramHost) -> dict[str, int]:
    """What a reservation keeps of the program's life: the restarts it was made at (none for
    the first life, so an entry of a run with no lost runner is as it always was)."""
    return {"restarts": host.state.restarts} if host.state.restarts else {}


def _span_fields(span: LaterSpan | None) -> dict[str, Any]:
    """What the journal keeps of a call's span: its id and start (sent at once to the server)."""
    if span is None or span.span_id is None:
        return {}
    return {"span": span.span_id, "start_ns": time.time_ns()}


async def _retry(host: ProgramHost, lost: dict[str, Any]) -> dict[str, Any] | Park:
    """Charge the call's next attempt (its sender was lost in flight); its journal entry, or
    the entry another runner wrote first."""
    attempt = int(lost.get("attempt") or 1)
    resent = lost.get("resent")
    resent = [*(resent if isinstance(resent, list) else [])[:100], time.time_ns()]
    fields = answered_fields(lost) | {"attempt": attempt + 1, "resent": resent}
    fields.pop("restarts", None)
    made = entry("reserved", **fields, **_life(host))
    reserved = int(lost["reserved"])
    charges = (("model_calls", 1), ("tokens", reserved))
    reply = await host.transition(RetryArgs(attempt, made, charges))
    if isinstance(reply, Park):
        return reply
    if isinstance(reply, Dup):
        journaled = reply.record()
        return await _retry(host, journaled) if lost_in_flight(host, journaled) else journaled
    return dict(json.loads(made))


async def _answer(
    backend: ModelBackend, request: CompletionRequest, journaled: dict[str, Any]
) -> str:
    """Call the model; the journal entry of its answer (or of its failure)."""
    try:
        completion = await backend.generate(request)
    except ModelError as exc:
        return entry(
            "answered",
            reserved=journaled["reserved"],
            after=journaled.get("after"),
            error=str(exc)[:500],
            **_carried(journaled),
        )
    return entry(
        "answered",
        reserved=journaled["reserved"],
        after=journaled.get("after"),
        answer=completion.model_dump(),
        **_carried(journaled),
    )


def _carried(journaled: dict[str, Any]) -> dict[str, Any]:
    """What a call's journal entry keeps from phase to phase: its attempt and its span."""
    kept = {"attempt": journaled.get("attempt") or 1}
    return kept | {k: journaled[k] for k in ("span", "start_ns", "resent") if k in journaled}


def settlement(
    request: CompletionRequest, answered: dict[str, Any], after: str
) -> tuple[str, int, str]:
    """A call's settlement once it is answered: its settled journal entry, the tokens to add
    to its reservation (less than 0 to give some back), its completions.jsonl line ('' for
    none)."""
    reserved = int(answered["reserved"])
    answer = answered.get("answer")
    completion = Completion.model_validate(answer) if answer else None
    delta = (completion.usage.total_tokens if completion else 0) - reserved
    settled = entry(
        "settled",
        reserved=reserved,
        after=after,
        answer=answer,
        error=answered.get("error"),
        settled=True,
        **_carried(answered),
    )
    return settled, delta, completion_line(request, completion) if completion else ""


def _completer(
    host: ProgramHost, request: CompletionRequest, after: str
) -> Callable[[str], CompleteArgs]:
    """How the answer of a call its program parked on is kept: with its settlement, which the
    coordinator applies if the program ends before it settles (a kill())."""

    def complete(answered: str) -> CompleteArgs:
        settled, delta, line = settlement(request, json.loads(answered), after)
        return CompleteArgs(host.id, host.seq, answered, settled, delta, line)

    return complete


async def _settle(
    host: ProgramHost, request: CompletionRequest, answered: dict[str, Any], after: str
) -> dict[str, Any] | Park:
    """At the program's turn one simulated minute on, charge what the call really used."""
    settled, delta, line = settlement(request, answered, after)
    saved = host.state.clock_h
    host.state.clock_h = member_clock_h(after)  # the settlement's place in the order
    try:
        reply = await host.transition(SettleArgs(settled, delta, line))
    finally:
        host.state.clock_h = saved
    if isinstance(reply, Park):
        # Keep the answer before giving up the worker: the resumed program settles it.
        answer_entry = entry("answered", **answered_fields(answered))
        await host.scripts.run(CompleteArgs(host.id, host.seq, answer_entry, settled, delta, line))
        return reply
    return reply.record() if isinstance(reply, Dup) else dict(json.loads(settled))


def answered_fields(answered: dict[str, Any]) -> dict[str, Any]:
    """An entry's fields but its phase (to write it again under another phase)."""
    return {k: v for k, v in answered.items() if k != "phase"}


def _outcome(settled: dict[str, Any]) -> Completion:
    if settled.get("error"):
        raise ModelCallFailed(f"model call failed: {settled['error']}")
    return Completion.model_validate(settled["answer"])


async def charge_model_call(
    sched: Scheduler, backend: ModelBackend, request: CompletionRequest
) -> Completion:
    """A model call outside any program (the root dialogue): reserve, call, settle."""
    reserved = backend.estimate_prompt_tokens(request) + request.max_tokens
    charges = (("model_calls", 1), ("tokens", reserved))
    reply = await sched.run(ReserveArgs("", "", 0, charges), NO_CALL)
    _refused(reply)
    try:
        completion = await backend.generate(request)
    except ModelError as exc:
        await sched.run(SettleArgs("", -reserved, ""), NO_CALL)
        raise ModelCallFailed(f"model call failed: {exc}") from None
    line = completion_line(request, completion)
    await sched.run(SettleArgs("", completion.usage.total_tokens - reserved, line), NO_CALL)
    return completion


def _refused(reply: Reply) -> None:
    if isinstance(reply, Denied):
        raise CapExceeded(reply.cap, limit=reply.limit, asked=reply.asked)
    if isinstance(reply, Killed):
        raise RunKilled(reply.reason)

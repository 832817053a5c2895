"""The events a program's runner still held when a stop ended the program are kept.

A runner sends a call's event with the program's next script. When the run stopped (a kill,
Ctrl-C, the wall clock) at the moment a program ended or left, its end or its leave found the
program already ended by the stop and answered 'gone', and the events it carried were dropped:
calls Redis had applied and journaled (a settled model call, a refusal for the wall clock)
had no event, the program's `calls` fell short of its journal, and the caps' use disagreed with
the events (seen in 22 of 32 stopped runs). Now they are added all the same (record.lua), but
the program's own end: the stop recorded that.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

from helpers.scripted_lab import scripted_capabilities
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.records import Event
from swarmlab.runtime._program import restore_events
from swarmlab.runtime._runner import RunnerCore
from swarmlab.runtime._transitions import LeaveArgs, RecordArgs

KINDS = st.sampled_from(["db_put", "run_ai", "log", "world.inventory", "clock_read", "end"])


def _held(kinds: list[str]) -> list[Event]:
    return [
        Event(t=float(i), program="p0", kind=kind, decision="allowed", seq=i + 1)
        for i, kind in enumerate(kinds)
    ]


def _added(scripts: Any) -> list[Event]:
    return [
        event
        for args, _ in scripts.asked
        if isinstance(args, RecordArgs)
        for event in restore_events(args.events)
    ]


@settings(max_examples=50, deadline=None)
@given(kinds=st.lists(KINDS, max_size=6), how=st.sampled_from(["finish", "leave"]))
def test_events_sent_with_an_end_or_leave_that_found_the_program_ended_are_kept(
    kinds: list[str], how: str
) -> None:
    answers = {"finish": [["gone"]], "leave": [["gone"]], "record": [["ok"]]}
    caps, scripts = scripted_capabilities(answers)
    caps.pending.extend(_held(kinds))
    if how == "finish":
        runner: Any = SimpleNamespace(tag="r.test")
        recorded = asyncio.run(RunnerCore._finish(runner, caps, caps.record, gated=True))
        assert recorded is False  # no span either: the stop's end has the program's
    else:
        asyncio.run(caps.leave("r.test", None))
    kept = [e for e in _held(kinds) if e.kind != "end"]
    assert [e.model_dump() for e in _added(scripts)] == [e.model_dump() for e in kept]
    assert not caps.pending


class _SlowFinish:
    """The scripted lab's scripts, but `finish` in flight for a while: a stop can come then."""

    def __init__(self, scripts: Any) -> None:
        self.scripts = scripts

    async def run(self, args: Any, head: Any = None) -> Any:
        if args.SCRIPT == "finish":
            await asyncio.sleep(0.02)
        return await self.scripts.run(args, head)


@settings(max_examples=40, deadline=None)
@given(kinds=st.lists(KINDS, max_size=6), left=st.sampled_from(["ok", "gone"]))
def test_an_end_stopped_in_flight_keeps_its_calls_events_once_and_not_its_own_end(
    kinds: list[str], left: str
) -> None:
    # The stop cancels the slice while its end is in flight; the end then finds the program
    # ended ('gone'), and the leave adds what was held: before, the program's own end went back
    # with the calls' events, and a leave that found it halting added a second `end` event.
    answers = {"finish": [["gone"]], "leave": [[left]], "record": [["ok"]]}
    caps, scripts = scripted_capabilities(answers)
    caps.env.scripts = _SlowFinish(scripts)
    caps.pending.extend(_held(kinds))
    runner: Any = SimpleNamespace(tag="r.test")

    async def stopped() -> None:
        ending = asyncio.ensure_future(RunnerCore._finish(runner, caps, caps.record, gated=True))
        await asyncio.sleep(0.005)  # the finish is in flight
        ending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ending
        await caps.leave("r.test", None)

    asyncio.run(stopped())
    sent = [
        event
        for args, _ in scripts.asked
        if isinstance(args, RecordArgs) or (isinstance(args, LeaveArgs) and left == "ok")
        for event in restore_events(args.events)
    ]
    own_end = [e for e in _held(kinds) if e.kind == "end"]
    kept = [e for e in _held(kinds) if e.kind != "end"]
    assert [e.model_dump() for e in sent] == [e.model_dump() for e in kept]
    assert not own_end or all(e not in sent for e in own_end)

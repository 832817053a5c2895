"""A call whose script Redis applied is in the record, even when a stop met it in flight.

The class: a stop (a kill(), the run's stop) cancels a program's slice; a call script already
sent is applied whatever the runner does. The call's own event is made once its script answers
(a spawn's child, a db_put's bytes), so cancelling the wait for that answer lost the event and
the call's count: in a `race` run, 12 of 24 killed programs had a `db_put` journaled in
inputs.jsonl that events.jsonl and the program's `calls` did not show, and spawned children
had no spawn event. Now the applied call is answered and counted, and the stop goes on at the
program's next wait. The property stops every capability that takes a script of its own at any
moment of its call, in process, and checks the record against what the script did.
"""

from __future__ import annotations

import asyncio
from typing import Any

from helpers.scripted_lab import ScriptedTransitions, capabilities_on
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab import load_spec
from swarmlab.records import ProgramRecord
from swarmlab.runtime._replies import Reply
from swarmlab.runtime._transitions import Args, Head

CALLS: dict[str, tuple[tuple[Any, ...], str, list[str]]] = {
    "db_put": (("k", [1, 2]), "blackboard", ["ok", "5"]),
    "db_get": (("k",), "blackboard", ["ok", "[1, 2]", "p0", "0"]),
    "db_keys": (("",), "blackboard", ["ok", "a", "b"]),
    "budget": ((), "blackboard", ["ok", "programs", "10", "2"]),
    "spawn": (("x = 1\n",), "spawn", ["ok", "p0.1"]),
    "kill": (("p0.7",), "stop", ["ok", "1"]),
}


class InFlight(ScriptedTransitions):
    """Scripted answers that take `delay_s` to come; `applied` says whether one came."""

    def __init__(self, answers: dict[str, list[list[str]]], delay_s: float) -> None:
        super().__init__(answers)
        self.delay_s = delay_s
        self.applied = 0

    async def run(self, args: Args, head: Head | None = None) -> Reply:
        if args.SCRIPT == "turn":
            return await super().run(args, head)
        await asyncio.sleep(self.delay_s)  # sent: Redis applies it whatever the runner does
        reply = await super().run(args, head)
        self.applied += reply.applied
        return reply


async def stopped_call(name: str, delay_s: float, stop_s: float) -> tuple[Any, InFlight, bool]:
    args, script, raw = CALLS[name]
    scripts = InFlight({script: [raw]}, delay_s)
    record = ProgramRecord(id="p0", parent_id=None, depth=0, code="pass")
    caps = capabilities_on(scripts, record, load_spec("paperclips", ["schedule=race"]))
    task = asyncio.ensure_future(caps.call(name, args, {}))
    await asyncio.sleep(stop_s)
    task.cancel()
    stopped = False
    try:
        await task
    except asyncio.CancelledError:
        stopped = True
    return caps, scripts, stopped


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(CALLS)),
    delay_s=st.floats(0.001, 0.04),
    stop_at=st.floats(0.0, 1.5),
)
def test_a_call_applied_under_a_stop_is_counted_with_its_event(
    name: str, delay_s: float, stop_at: float
) -> None:
    caps, scripts, stopped = asyncio.run(stopped_call(name, delay_s, delay_s * stop_at))
    events = [e for e in caps.pending if e.kind == name and e.seq == 1]
    assert len(events) == scripts.applied  # once if Redis applied it, else never
    assert caps.state.calls == scripts.applied
    if scripts.applied:
        assert events[0].decision == "allowed"
    assert stopped or stop_at >= 1.0  # a stop before the answer always goes on


def test_the_stop_goes_on_at_the_next_wait() -> None:
    """A stop that met an applied spawn still ends the slice: the program does not run on."""
    caps, scripts, stopped = asyncio.run(stopped_call("spawn", 0.03, 0.01))
    assert scripts.applied == 1
    assert stopped
    assert caps.state.children == ["p0.1"]

"""A call answered before its turn has its events in the record once, wherever it waited.

Such a call (`my_id`, `log`, `now`, ...) sends its own event with its turn. When the program
waits for that turn on its worker, Redis keeps the turn with the event; if the program then
parks at the gate, the park script drops the kept turn and adds its events (or finds it applied
already, with them), and the program asks the call again: it made the event a second time, and
the record held the call twice (the run directory hid it; `record_bytes` counted it). Runs that
park every wait at the gate (`SWARMLAB_WAIT_AT_GATE=1`) charged 120 bytes more than the same
tree waiting on workers. Now a call asked again after its kept turn went to the stream adds no
event, for each answer the park may give and each capability answered before its turn.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from helpers.scripted_lab import ScriptedRunner, ScriptedTransitions, capabilities_on
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab import load_spec
from swarmlab.records import ProgramRecord
from swarmlab.runtime._capabilities import Capabilities
from swarmlab.runtime._program import HostState, restore_events
from swarmlab.runtime._sandbox import Park, Spent
from swarmlab.runtime._transitions import ParkArgs

ANSWERED_BEFORE_TURN = [("my_id", ()), ("now", ()), ("deadline", ()), ("log", ("hello",))]


class BusyRunner(ScriptedRunner):
    """A runner whose workers are all wanted: a program waiting for its turn parks."""

    def worker_free(self) -> bool:
        return False


def _sent(scripts: ScriptedTransitions) -> list[tuple[str, int | None]]:
    """Every event that went to Redis with a script: (kind, call number)."""
    sent = []
    for args, head in scripts.asked:
        lines = args.events if isinstance(args, ParkArgs) else head.events if head else ""
        sent += [(e.kind, e.seq) for e in restore_events(lines)]
    return sent


async def _ask(caps: Any, name: str, args: tuple[Any, ...]) -> tuple[Any, str]:
    """The call as the sandbox makes it: a park is committed, and a 'go' asks it again."""
    value = await caps.call(name, args, {})
    if not isinstance(value, Park):
        return value, ""
    verdict = await value.commit(b"snapshot", Spent("", 1, 0.0))
    if verdict == "go":
        return await caps.call(name, args, {}), verdict
    return None, verdict


@settings(max_examples=30, deadline=None)
@given(call=st.sampled_from(ANSWERED_BEFORE_TURN), park=st.sampled_from(["go", "parked"]))
def test_a_call_whose_kept_turn_went_to_the_stream_adds_its_events_once(
    call: tuple[str, tuple[Any, ...]], park: str
) -> None:
    name, args = call
    # The first turn is kept; the second asking (after 'go') finds it journaled.
    answers = {"turn": [["wait", "kept"], ["dup", "{}"]], "park": [[park]]}
    scripts = ScriptedTransitions(answers)
    record = ProgramRecord(id="p0", code="pass")
    caps = capabilities_on(scripts, record, load_spec("paperclips"))
    caps.env.runner = BusyRunner()
    _, verdict = asyncio.run(_ask(caps, name, args))
    assert verdict == park
    if park == "parked":  # resumed on a later slice, from the state it parked with
        parked = next(a for a, _ in scripts.asked if isinstance(a, ParkArgs))
        state = HostState(**json.loads(parked.host))
        assert (state.calls, state.parked_in) == (0, "turn")
        later = ScriptedTransitions({"turn": [["dup", "{}"]]})
        env = capabilities_on(later, record, load_spec("paperclips")).env
        asyncio.run(Capabilities(record, env, state).call(name, args, {}))
        scripts.asked += later.asked
    own = [seq for kind, seq in _sent(scripts) if seq == 1 and kind == name]
    assert own == [1]

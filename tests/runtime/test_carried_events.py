"""A program stopped while a script that carries its events is in flight loses none of them,
and adds none twice.

The class: a script already sent is applied or refused by Redis whatever the runner does, so a
stop (a kill(), the run's stop) that cancelled the wait for its answer lost the events whenever
Redis refused them. A leaf killed while its `log` took its turn kept `calls: 2` beside one `log`
event. The property drives `carried` with every answer a script may give, stopped at any
moment, and counts each event: added by the script, or put back for the program's leave, exactly
once whenever the answer came. The scan finds every place that takes a program's pending events,
so a new one that sends them without `carried` fails here.
"""

from __future__ import annotations

import ast
import asyncio
from importlib import resources

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.runtime._carried import CARRIED_S, carried
from swarmlab.runtime._replies import APPLIED, Reply

KINDS = sorted(APPLIED | {"wait", "dup", "denied", "killed", "parked", "gone"})


def _added(reply: Reply) -> bool:
    return reply.applied


async def _stopped_while_sent(kind: str, answer_s: float, stop_s: float) -> tuple[int, int, bool]:
    """A script answering `kind` after `answer_s`, its program stopped after `stop_s`: how often
    its events were added and put back, and whether the stop went on."""
    added, put_back = [], []

    async def script() -> Reply:
        await asyncio.sleep(answer_s)  # sent: Redis applies or refuses it whatever happens
        reply = Reply(kind)
        if reply.applied:
            added.append(1)
        return reply

    async def program() -> Reply:
        reply = await carried(script(), _added, lambda: put_back.append(1))
        if not reply.applied:
            put_back.append(1)  # as the callers do: not added, pending again
        return reply

    task = asyncio.ensure_future(program())
    await asyncio.sleep(stop_s)
    task.cancel()
    stopped = False
    try:
        await task
    except asyncio.CancelledError:
        stopped = True
    await asyncio.sleep(max(0.0, answer_s - stop_s) + 0.01)  # the script's own end
    return len(added), len(put_back), stopped


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    answer_s=st.floats(0, 0.05),
    stop_s=st.floats(0, 0.06),
)
def test_a_stopped_program_keeps_each_event_of_a_script_in_flight_once(
    kind: str, answer_s: float, stop_s: float
) -> None:
    added, put_back, _ = asyncio.run(_stopped_while_sent(kind, answer_s, stop_s))
    assert added + put_back == 1, (added, put_back)


def test_an_answer_that_never_comes_is_not_guessed() -> None:
    # Events of a script with no answer in time may yet be added by Redis: put back, they could
    # be added twice and the record would not read. The stop goes on after CARRIED_S.
    added, put_back, stopped = asyncio.run(_stopped_while_sent("ok", CARRIED_S + 0.5, 0.01))
    assert stopped
    assert (added, put_back) == (1, 0)


RUNTIME = resources.files("swarmlab.runtime")
SENDS_PENDING = {
    ("_program.py", "at_turn"): "carried",
    ("_program.py", "park"): "carried",
    ("_program.py", "leave"): "the leave itself: nothing comes after it to add them",
    ("_runner.py", "_finish"): "ProgramHost.end, which is carried",
    ("_world_calls.py", "_record"): "record.lua adds them whatever the runner does once sent",
}


def test_every_script_that_takes_pending_events_is_carried() -> None:
    found: dict[tuple[str, str], bool] = {}
    for path in RUNTIME.iterdir():
        if not path.name.endswith(".py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            calls = {
                c.func.attr if isinstance(c.func, ast.Attribute) else getattr(c.func, "id", "")
                for c in ast.walk(node)
                if isinstance(c, ast.Call)
            }
            if "take_events" in calls and node.name != "take_events":
                found[(path.name, node.name)] = "carried" in calls
    assert set(found) == set(SENDS_PENDING), "a new place sends pending events: carry it"
    for site, how in SENDS_PENDING.items():
        assert found[site] == (how == "carried"), site

"""Text a program or a model writes cannot erase the record (issue 21, defect 1).

JSON leaves U+2028, U+2029 and U+0085 unescaped, and `str.splitlines()` splits on them: events
re-split that way when a program parked (its pending events go back to it, then with the park)
broke in two, the runner failed, and the program ended as "runner fault" with none of its
events recorded. Here every event survives, whatever its text, the way it travels: from the
program's pending events through the scripts into the run's stream, and whole runs that log,
write and spawn such text and then park.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.hostile_runs import assert_promises_kept, run_hostile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlab.cluster import RayCluster
from swarmlab.records import Event
from swarmlab.runtime import Coordinator
from swarmlab.runtime._program import restore_events
from swarmlab.runtime._scheduler import Scheduler

LINE_BREAKERS = "\u2028\u2029\x85\r\n\x0b\x0c\x1c\x1d\x1e\x00"
"""Everything `str.splitlines()` splits on, and NUL."""

texts = st.text(
    alphabet=st.one_of(st.sampled_from(LINE_BREAKERS), st.characters(codec="utf-8")),
    max_size=80,
)


def events_of(program: str, texts: list[str]) -> list[Event]:
    return [
        Event(t=1.0 + i, program=program, kind="log", decision="info", detail={"msg": t}, seq=i)
        for i, t in enumerate(texts)
    ]


def as_lines(events: list[Event]) -> str:
    """What a program hands a script: `ProgramHost.take_events`'s JSON lines."""
    return "\n".join(e.model_dump_json() for e in events)


@settings(max_examples=300, deadline=None)
@given(st.lists(texts, min_size=1, max_size=8))
def test_pending_events_come_back_whole_whatever_their_text(msgs: list[str]) -> None:
    events = events_of("p0", msgs)
    assert restore_events(as_lines(events)) == events


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(texts, min_size=1, max_size=6))
def test_events_reach_the_stream_whole_whatever_their_text(redis_url: str, msgs: list[str]) -> None:
    """Through a real script (the stream is what events.jsonl is written from)."""

    async def go() -> list[Event]:
        coord = Coordinator(redis_url, f"events-{time.time_ns()}")
        try:
            sched = Scheduler(coord)
            # Refused, then sent again (as a parked program's events are): every event once.
            lines = as_lines(restore_events(as_lines(events_of("p0", msgs))))
            await sched.raw("record", "p0", 1, "", lines, "")
            return await coord.all_events()
        finally:
            await coord.delete_run()
            await coord.close()

    assert asyncio.run(go()) == events_of("p0", msgs)


# Logs, writes and spawns text holding every line breaker, then parks (in wait, on a child that
# is still computing), then tries an import the sandbox refuses.
PARKER = """
NASTY = "a\\u2028b\\u2029c\\x85d\\re\\x0bf\\x0cg\\x1ch\\x00i"
c = spawn("x = 0\\nfor i in range(20000):\\n    x = x + i\\n# " + NASTY, task="child" + NASTY)
log("before the wait" + NASTY)
db_put("nasty", NASTY)
log(db_get("nasty"))
wait(c)
import socket
"""


@pytest.mark.slow
def test_a_program_that_logs_line_separators_and_parks_keeps_its_events(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    run = run_hostile(tmp_path, redis_url, PARKER, ["caps.wall_clock_s=30"])
    assert_promises_kept(run)
    root = run.root()
    assert root["status"] == "crashed"
    assert "socket" in (root["error"] or "")
    mine: list[dict[str, Any]] = [e for e in run.events() if e["program"] == "p0"]
    kinds = [e["kind"] for e in mine]
    for kind in ("start", "spawn", "log", "db_put", "db_get", "wait", "end"):
        assert kind in kinds, f"no {kind} event of p0 in {kinds}"
    logs = [e["detail"]["msg"] for e in mine if e["kind"] == "log"]
    assert any("\u2028" in m and "\x85" in m and "\x00" in m for m in logs), logs
    denied = [e for e in mine if e["kind"] == "escape_attempt" and e["decision"] == "denied"]
    assert denied, "the refused import is missing from the record"
    child = next(p for p in run.programs() if p["parent_id"] == "p0")
    assert child["task"].endswith("\u2028b\u2029c\x85d\re\x0bf\x0cg\x1ch\x00i")
    assert json.loads(json.dumps(child["task"])) == child["task"]

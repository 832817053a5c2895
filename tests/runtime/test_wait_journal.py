"""wait()'s views are journaled in the step that reads them (issue 21, what to build, item 4).

What a program receives from `wait()` (each program's id, status, result and error) was
journaled by a second write after the `wait` script, which had journaled only the states: a
runner lost between the two left an entry a replay could not compare with what the program saw.
The script now answers the views, as each program's end left them, and journals them itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
from typing import Any

from swarmlab.records import ProgramRecord
from swarmlab.runtime._coordinator import Coordinator
from swarmlab.runtime._replies import Done
from swarmlab.runtime._scheduler import Scheduler
from swarmlab.runtime._stored import wait_view
from swarmlab.runtime._transitions import NO_CALL, FinishArgs, Head, SpawnArgs, StopArgs, WaitArgs
from swarmlab.spec import Caps

_runs = itertools.count()


async def in_a_run(redis_url: str, steps: Any) -> Any:
    coord = Coordinator(redis_url, f"waits-{next(_runs)}")
    sched = Scheduler(coord)
    try:
        await coord.init_run(Caps(), {}, ordered=False)
        return await steps(coord, sched)
    finally:
        await coord.delete_run()
        await coord.close()


async def family(sched: Scheduler) -> ProgramRecord:
    """p0 with three children: p0.1 ends with a result, p0.2 is killed, p0.3 runs on."""
    root = ProgramRecord(id="p0", code="pass", task="root")
    assert (await sched.run(SpawnArgs.of(0, 0, root, "queue"), NO_CALL)).kind == "ok"
    for seq in (1, 2, 3):
        kid = ProgramRecord(id="p0", parent_id="p0", depth=1, code="pass")
        spawned = await sched.run(SpawnArgs.of(1, 0, kid, "queue"), Head("p0", seq, "", ""))
        assert spawned.kind == "ok"
    ended = ProgramRecord(id="p0.1", parent_id="p0", depth=1, code="pass")
    ended.status, ended.result, ended.error = "completed", {"clips": [1, 2.5]}, None
    end = FinishArgs("p0.1", "", "completed", ended.to_json(), 0, "", "", False, 1, "")
    assert (await sched.run(dataclasses.replace(end, view=wait_view(ended)))).kind == "ok"
    stop = StopArgs.of("p0.2", "enough", "p0")
    assert (await sched.run(stop, Head("p0", 4, "", ""))).kind == "ok"
    return ended


def test_the_wait_script_journals_the_views_it_answers(redis_url: str) -> None:
    async def steps(coord: Coordinator, sched: Scheduler) -> tuple[Any, ...]:
        await family(sched)
        wait = WaitArgs.of(True, ("p0.1", "p0.2", "p0.3"))
        reply = await sched.run(wait, Head("p0", 5, "", ""))
        again = await sched.run(wait, Head("p0", 5, "", ""))  # asked again: from the journal
        return reply, again, await sched.journal("p0", 5)

    reply, again, journal = asyncio.run(in_a_run(redis_url, steps))
    assert isinstance(reply, Done)
    assert isinstance(again, Done)
    assert (reply.replayed, again.replayed) == (False, True)
    assert again.views() == reply.views()
    assert json.loads(journal[5]) == json.loads(reply.entry)
    assert json.loads(journal[5]) == {
        "views": [
            {"id": "p0.1", "status": "completed", "result": {"clips": [1, 2.5]}, "error": None},
            {"id": "p0.2", "status": "killed", "result": None, "error": "enough"},
            {"id": "p0.3", "status": "running", "result": None, "error": None},
        ]
    }


def test_an_unknown_id_is_journaled_as_the_error_the_program_gets(redis_url: str) -> None:
    async def steps(coord: Coordinator, sched: Scheduler) -> tuple[Any, ...]:
        await family(sched)
        wait = WaitArgs.of(False, ("p0.1", "p0.9"))
        first = await sched.run(wait, Head("p0", 5, "", ""))
        again = await sched.run(wait, Head("p0", 5, "", ""))
        return first, again, await sched.journal("p0", 5)

    first, again, journal = asyncio.run(in_a_run(redis_url, steps))
    assert (first.kind, first.values) == ("unknown", ("p0.9",))
    told = {"error": "ValueError: wait(): no program with id 'p0.9'"}
    assert json.loads(journal[5]) == told
    assert isinstance(again, Done)
    assert again.replayed
    assert json.loads(again.entry) == told

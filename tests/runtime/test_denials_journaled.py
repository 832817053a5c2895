"""A call a cap denies is journaled as what it answered (issue 21, what to build, item 4).

The denial is written at the call's number in the same script that denies it: inputs.jsonl
holds it, a `replay:` run compares it, and the call asked again (a program re-run after its
runner's loss) is denied again from the journal, counted once. A call that only takes a turn
(`now()`, `log()`) keeps the answer it had when the run is out of time: that answer is journaled.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from helpers.hostile_runs import run_hostile

from swarmlab.cluster import RayCluster
from swarmlab.records import ProgramRecord
from swarmlab.runtime._coordinator import Coordinator
from swarmlab.runtime._scheduler import Reply, Scheduler
from swarmlab.runtime._stored import record_pieces
from swarmlab.spec import Caps

_runs = itertools.count()


async def scripted(redis_url: str, caps: Caps, steps: Any) -> Any:
    """Run `steps(coord, sched)` in a fresh run; what it returns."""
    coord = Coordinator(redis_url, f"denials-{next(_runs)}")
    sched = Scheduler(coord)
    try:
        await coord.init_run(caps, {}, ordered=False)
        return await steps(coord, sched)
    finally:
        await coord.delete_run()
        await coord.close()


def test_a_wall_clock_denial_is_journaled_and_given_again_once(redis_url: str) -> None:
    async def steps(coord: Coordinator, sched: Scheduler) -> tuple[Any, ...]:
        await coord.set_meta(deadline_ms="1")  # the run's time is up
        first = await sched.raw("blackboard", "p0", 3, "", "", "get", "k")
        again = await sched.raw("blackboard", "p0", 3, "", "", "get", "k")
        return first, again, await sched.journal("p0"), await coord.usage()

    first, again, journal, usage = asyncio.run(scripted(redis_url, Caps(), steps))
    assert first == again == Reply("denied", ("wall_clock_s", "", ""))
    assert json.loads(journal[3]) == ["denied", "wall_clock_s", "", ""]
    assert usage["wall_clock_s"]["denied"] == 1  # asked twice, denied once


def test_cap_denials_in_spawn_and_park_are_journaled(redis_url: str) -> None:
    root = record_pieces(ProgramRecord(id="p0", code="pass", task="root"))

    async def steps(coord: Coordinator, sched: Scheduler) -> tuple[Any, ...]:
        assert (await sched.raw("spawn", "", "", "", "", 0, 0, *root, "queue")).kind == "ok"
        spawned = await sched.raw("spawn", "p0", 2, "", "", 1, 0, *root, "queue")
        await coord.client.hset(coord.prefix + "state", "p0", "run:r1")
        parked = await sched.raw("park", "p0", "gate", "", "x" * 2048, "{}", "", "r1", 0, 5)
        return spawned, parked, await sched.journal("p0")

    caps = Caps(programs=1, parked_bytes=1024)
    spawned, parked, journal = asyncio.run(scripted(redis_url, caps, steps))
    assert spawned == Reply("denied", ("programs", "1", "2"))
    assert json.loads(journal[2]) == ["denied", "programs", "1", "2"]
    assert parked.kind == "denied"
    assert json.loads(journal[5]) == ["denied", *parked.values]


def test_a_turn_call_out_of_time_journals_the_answer_it_kept(redis_url: str) -> None:
    async def steps(coord: Coordinator, sched: Scheduler) -> tuple[Any, ...]:
        await coord.set_meta(deadline_ms="1")
        reply = await sched.raw("turn", "p0", 4, "", "", '{"value":1.5}')
        return reply, await sched.journal("p0")

    reply, journal = asyncio.run(scripted(redis_url, Caps(), steps))
    assert reply.kind == "denied"
    assert journal == {4: '{"value":1.5}'}


SPAWNER = """
kids = []
for i in range(3):
    try:
        kids.append(spawn("log('hi')", task="kid %d" % i))
    except Exception as e:
        log(str(e))
wait(kids)
"""


@pytest.mark.slow
def test_a_replay_compares_denials(tmp_path: Path, redis_url: str, ray_cluster: RayCluster) -> None:
    fixed = ["caps.programs=3"]
    first = run_hostile(tmp_path, redis_url, SPAWNER, fixed, run_id="denied-first")
    rows = [json.loads(x) for x in (first.out / "inputs.jsonl").read_text().split("\n") if x]
    denied = [r for r in rows if r["answer"] == ["denied", "programs", "3", "4"]]
    assert [(r["program"], r["call"]) for r in denied] == [("p0", 3)]

    source = f"model=replay:{first.out}"
    same = run_hostile(tmp_path, redis_url, SPAWNER, [*fixed, source], run_id="denied-same")
    assert same.summary()["replay"]["identical"]
    assert same.summary()["replay"]["compared"] == len(rows)

    more = run_hostile(tmp_path, redis_url, SPAWNER, ["caps.programs=4", source], run_id="more")
    check = more.summary()["replay"]
    assert not check["identical"]
    divergence = check["first_divergence"]
    assert (divergence["program"], divergence["call"]) == ("p0", 3)
    assert divergence["expected"] == '["denied", "programs", "3", "4"]'

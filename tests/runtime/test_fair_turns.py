"""Under `schedule: ordered` no program holds the turn: every call is a step on its clock, so a
program that loops on calls lets the programs behind it go. A wait on an id no program has is
refused at once, never parked until the wall clock."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster
from swarmlab.records import RunDir, RunResult
from swarmlab.runtime import RunOptions, run_experiment

pytestmark = pytest.mark.slow

LOOPS = 2_000


def run(tmp_path: Path, redis_url: str, program: str, overrides: list[str], name: str) -> RunResult:
    spec = load_spec("paperclips", ["schedule=ordered", *overrides])
    options = RunOptions(
        program=program,
        run_id=name,
        out_dir=tmp_path / name,
        redis_url=redis_url,
        progress=Progress(quiet=True),
    )
    return run_experiment(spec, options)


def looping_parent(kids: int, call: str) -> str:
    """A parent that spawns `kids` children, then loops on `call` without ever moving its clock
    on by itself, until every child has written its key (or LOOPS calls)."""
    return (
        f"kids = [spawn(\"db_put('ran/' + my_id(), 1)\", task='kid') for i in range({kids})]\n"
        "n = 0\n"
        f"while n < {LOOPS} and len(db_keys('ran/')) < {kids}:\n"
        f"    n += 1\n"
        f"    {call}\n"
        "n\n"
    )


CALLS = {
    "host_answered": "now()",
    "shared_state": "db_get('nothing')",
    "refused": "try:\n        db_get('bad key!')\n    except ValueError:\n        pass",
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_program_looping_on_calls_lets_its_children_run(
    call: str, tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    limits = [f"program_limits.host_calls={LOOPS * 4}", "caps.wall_clock_s=60"]
    result = run(tmp_path, redis_url, looping_parent(4, CALLS[call]), limits, call)
    root = result.programs[0]
    kids = [p for p in result.programs if p.parent_id == "p0"]
    assert root.status == "completed", root.error
    assert [k.status for k in kids] == ["completed"] * 4
    assert sorted(result.blackboard) == [f"ran/p0.{i}" for i in range(1, 5)]
    assert root.result < LOOPS  # the children wrote while the parent was still looping


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    kids=st.integers(min_value=1, max_value=4),
    call=st.sampled_from(sorted(CALLS)),
    sleeper=st.booleans(),
)
def test_every_program_of_a_small_ordered_tree_makes_progress(
    kids: int, call: str, sleeper: bool, tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    program = looping_parent(kids, CALLS[call])
    if sleeper:  # a sibling far ahead in simulated time must not stop the others either
        program = "import time\n" + program.replace("n = 0\n", "n = 0\ntime.sleep(1)\n", 1)
    name = f"tree-{kids}-{call}-{sleeper}-{time.monotonic_ns()}"
    limits = [f"program_limits.host_calls={LOOPS * 4}", "caps.wall_clock_s=60"]
    result = run(tmp_path, redis_url, program, limits, name)
    assert result.status == "completed"
    assert all(p.status == "completed" for p in result.programs), [
        (p.id, p.error) for p in result.programs
    ]
    assert len(result.blackboard) == kids
    assert result.programs[0].result < LOOPS


def test_waiting_on_an_id_no_program_has_raises_at_once(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    program = (
        "kid = spawn('1 + 1', task='kid')\n"
        "seen = []\n"
        "for ids in ('p0.7', ['p0.1', 'p0.9']):\n"
        "    try:\n"
        "        wait(ids)\n"
        "        seen.append('returned')\n"
        "    except ValueError as e:\n"
        "        seen.append(str(e))\n"
        "seen\n"
    )
    started = time.monotonic()
    result = run(tmp_path, redis_url, program, ["caps.wall_clock_s=30"], "unknown-id")
    assert time.monotonic() - started < 20
    root = result.programs[0]
    assert root.status == "completed", root.error
    assert root.result == [
        "wait(): no program with id 'p0.7'",
        "wait(): no program with id 'p0.9'",
    ]
    assert result.summary().caps["wall_clock_s"].denied == 0


def test_what_wait_and_the_clock_answered_is_in_the_recorded_inputs(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    program = "kid = spawn('41 + 1', task='kid')\nview = wait(kid)\nt = now()\n"
    result = run(tmp_path, redis_url, program, [], "inputs")
    answers = {r.call: r.answer for r in RunDir(result.out_dir).inputs() if r.program == "p0"}
    view = {"id": "p0.1", "status": "completed", "result": 42, "error": None}
    assert answers[2] == {"views": [view]}
    assert set(answers[3]) == {"value"}
    assert isinstance(answers[3]["value"], float)

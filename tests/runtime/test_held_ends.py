"""Under `schedule: ordered`, a program that has ended before its turn gives its worker back at
once: its end is held in Redis and recorded when its turn comes. Ended programs that kept their
workers while they waited could fill every worker, and the program whose turn it was could then
never start (the whole run stalled until its wall clock)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster
from swarmlab.records import RunResult
from swarmlab.runtime import RunOptions, run_experiment

pytestmark = pytest.mark.slow


def late_enders(hours: list[float]) -> str:
    """A root that spawns one child per entry of `hours`, each moving its clock on by that many
    hours without a call, then ending: later, in the run's order, than younger siblings that
    have not started."""
    kid = "import time\ntime.sleep({} * 3600)\n'slept'\n"
    spawns = ", ".join(f"spawn({kid.format(h)!r}, task='kid')" for h in hours)
    return f"kids = [{spawns}]\nends = wait(kids)\n[e['status'] for e in ends]\n"


def run(
    tmp_path: Path, redis_url: str, hours: list[float], workers: int, runners: int
) -> RunResult:
    overrides = [
        "schedule=ordered",
        f"caps.concurrent={workers}",
        f"runners={runners}",
        "caps.wall_clock_s=60",
    ]
    name = f"held-{uuid.uuid4().hex[:8]}"
    options = RunOptions(
        program=late_enders(hours),
        run_id=name,
        out_dir=tmp_path / name,
        redis_url=redis_url,
        progress=Progress(quiet=True),
    )
    return run_experiment(load_spec("paperclips", overrides), options)


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    hours=st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0]), min_size=1, max_size=7),
    workers=st.integers(min_value=1, max_value=4),
    runners=st.integers(min_value=1, max_value=2),
)
@example(hours=[1.0] * 3, workers=2, runners=1)  # both workers end before the third kid starts
@example(hours=[1.0] * 7, workers=4, runners=2)
def test_programs_that_end_before_their_turn_never_starve_the_one_whose_turn_it_is(
    hours: list[float],
    workers: int,
    runners: int,
    tmp_path: Path,
    redis_url: str,
    ray_cluster: RayCluster,
) -> None:
    result = run(tmp_path, redis_url, hours, workers, runners)
    root = result.programs[0]
    assert result.ended_because == "tree quiescent: every program ended", result.ended_because
    assert root.status == "completed", root.error
    assert root.result == ["completed"] * len(hours)
    assert result.usage["concurrent"]["used"] <= workers
    kids = [p for p in result.programs if p.parent_id == root.id]
    assert [p.clock_h >= h for p, h in zip(kids, hours, strict=True)] == [True] * len(hours)

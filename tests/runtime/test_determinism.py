"""Same spec and seed, same run: every built-in experiment grows the identical tree, outcome and
metrics three times over, whatever the timing, and a `replay:` of it receives every recorded
input and grows it again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster
from swarmlab.observability.analysis import analyze_run
from swarmlab.records import RunDir, RunResult
from swarmlab.runtime import RunOptions, run_experiment
from swarmlab.spec import builtin_experiments

pytestmark = pytest.mark.slow

EXPERIMENTS = sorted(builtin_experiments())


def run(
    tmp_path: Path, redis_url: str, experiment: str, name: str, overrides: list[str]
) -> RunResult:
    spec = load_spec(experiment, overrides)
    options = RunOptions(
        run_id=name, out_dir=tmp_path / name, redis_url=redis_url, progress=Progress(quiet=True)
    )
    return run_experiment(spec, options)


def programs(result: RunResult) -> list[tuple[Any, ...]]:
    return [
        (p.id, p.parent_id, p.code, p.task, p.status, repr(p.result), p.output, p.error)
        for p in result.programs
    ]


def metrics(result: RunResult) -> dict[str, Any]:
    found = analyze_run(result.out_dir).model_dump()
    return {k: v for k, v in found.items() if k not in ("source", "run_id")}


HOST_MEASURES = ("wall_clock_s", "concurrent", "parked_bytes", "telemetry_bytes")
"""Caps whose `used` is measured on the host, so it varies with timing while the tree does not:
the duration; the peak of programs computing at once in a worker; the peak of bytes parked at
once (a program waiting for its turn parks, or keeps its worker, as its runner's load has it);
the bytes of telemetry kept (spans hold wall-clock times and random ids).
`record_bytes` is charged a size in which host measures count a fixed width, so it is compared
like every other cap, but in a run where a kill() ended programs: one it stops while it computes
is written once more (by its runner) than one it finds parked (docs/spec.md)."""


def caps_used(result: RunResult) -> dict[str, Any]:
    killed = any(p.status == "killed" for p in result.programs)
    host = (*HOST_MEASURES, "record_bytes") if killed else HOST_MEASURES
    return {k: v for k, v in result.summary().caps.items() if k not in host}


def test_there_are_built_in_experiments_to_check() -> None:
    assert {"paperclips", "sibling-shutdown"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_three_runs_and_a_replay_of_one_seed_are_identical(
    experiment: str, tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    runs = [run(tmp_path, redis_url, experiment, f"run{i}", ["seed=1"]) for i in range(3)]
    first = runs[0]
    assert first.status == "completed"
    assert len(first.programs) > 20
    recorded = RunDir(first.out_dir).inputs()
    assert len(recorded) > len(first.programs)  # every program made calls
    for other in runs[1:]:
        assert programs(other) == programs(first)
        assert other.outcome == first.outcome
        assert caps_used(other) == caps_used(first)
        assert metrics(other) == metrics(first)
        assert RunDir(other.out_dir).inputs() == recorded

    replay = run(
        tmp_path, redis_url, experiment, "replay", ["seed=1", f"model=replay:{first.out_dir}"]
    )
    assert programs(replay) == programs(first)
    assert replay.outcome == first.outcome
    assert metrics(replay) == metrics(first)
    check = replay.summary().replay
    assert check is not None
    assert check.identical
    assert check.first_divergence is None
    assert check.compared == len(recorded)

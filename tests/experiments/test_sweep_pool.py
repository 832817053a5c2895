"""A sweep's cells share one Ray, one Redis and one pool of runners: a 4-cell sweep, 2 at a
time, creates runners for 2 cells and no more; each cell is still its own run (namespace, run
directory), and the analysis of finished cells is in the results as before."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster
from swarmlab.experiments import SweepRunner
from swarmlab.spec import load_spec

pytestmark = pytest.mark.slow

FOUR = """
name: four
base: paperclips
set:
  caps.programs: 6
  caps.depth: 2
  runners: 2
grid:
  affordance: [none, api]
seeds: [1, 2]
parallel: 2
"""


def _runner_actors() -> set[str]:
    import ray

    table = ray._private.state.actors()
    return {key for key, info in table.items() if info["ActorClassName"] == "RunnerCore"}


def test_the_cells_of_a_sweep_share_one_pool_of_runners(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    path = tmp_path / "four.yaml"
    path.write_text(FOUR)
    before = _runner_actors()
    runner = SweepRunner(
        str(path), out_dir=tmp_path / "out", redis_url=redis_url, progress=Progress(quiet=True)
    )
    summary = runner.run()
    created = _runner_actors() - before
    assert summary["by_status"] == {"completed": 4}
    per_cell = load_spec("paperclips", ["runners=2"]).runners
    assert len(created) == 2 * per_cell  # two cells at a time; four cells without sharing
    assert runner.runner_actors == len(created)
    with (runner.out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len({r["run_id"] for r in rows}) == 4  # each cell its own run and directory
    assert all(r["metric.programs"] for r in rows)  # analysed, off the critical path
    assert all((runner.out / "cells" / r["cell"] / "report.html").exists() for r in rows)
    assert set(runner.timing) == {"start_up_s", "trees_s", "analysis_s"}

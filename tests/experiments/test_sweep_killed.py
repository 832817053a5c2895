"""A sweep whose process is SIGKILLed keeps its cells' records: the sweep's redis-server outlives
it until every cell's watchdog has written that cell's directory, then the sweep's watchdog
stops it, with the Ray the sweep started. Before, the shared redis-server died with the sweep
process, and a cell that was running left no directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import CLUSTER_ENV, swarmlab
from helpers.runner_loss import alive, pids_with, until

SWEEP = """
name: killed-sweep
base: paperclips
set:
  caps.programs: 400
  caps.depth: 8
  caps.concurrent: 64
  caps.wall_clock_s: 600
  sim.meta_task: 0.55
  sim.quine: 0.9
  sim.crash: 0.05
  world.starting_money: 100000
grid:
  caps.tokens: [300000]
seeds: [1]
parallel: 1
"""


def _cells(out: Path) -> list[Path]:
    return list((out / "cells").glob("*/.reaper.json"))


def _live(cells: list[Path]) -> int:
    """Programs live in the runs the cells' watchdogs name (their Redis from the registry)."""
    import redis

    from swarmlab.runtime._live import registry_dir

    live = 0
    for cell in cells:
        for run_id, _ in _state(cell).get("runs", []):
            entry = _state(registry_dir() / f"{run_id}.json")
            if not entry:
                continue
            client = redis.Redis.from_url(entry["redis_url"])
            try:
                live += int(client.hget(f"swarmlab:run:{run_id}:used", "live") or 0)
            except redis.RedisError:
                pass
            finally:
                client.close()
    return live


def _state(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


@pytest.mark.slow
def test_a_killed_sweep_leaves_its_running_cell_recorded_and_nothing_running(
    tmp_path: Path,
) -> None:
    (tmp_path / "sweep.yaml").write_text(SWEEP)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in CLUSTER_ENV}
    command = ["sweep", str(tmp_path / "sweep.yaml"), "--out", str(out)]
    sweep = subprocess.Popen(
        [sys.executable, "-m", "swarmlab.cli", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    watchdog = out / ".reaper.json"
    until(lambda: bool(_state(watchdog).get("markers")), what="the sweep's Ray to start")
    until(lambda: bool(_cells(out)), timeout=120, what="a cell to start")
    until(lambda: _live(_cells(out)) >= 5, what="the cell's programs to run")
    started = _state(watchdog)
    redis_pids, marker = started["pids"], started["markers"][0]
    assert redis_pids, "the sweep's redis-server is watched"
    os.kill(sweep.pid, signal.SIGKILL)
    sweep.wait(timeout=10)
    until(lambda: not watchdog.exists(), timeout=240, what="the sweep's watchdog to end")
    until(lambda: not [p for p in redis_pids if alive(p)], timeout=30, what="its Redis to stop")
    until(lambda: not pids_with(marker), timeout=30, what="its Ray to stop")
    written = list((out / "cells").glob("*/summary.json"))
    assert len(written) == 1, "the running cell's directory is written"
    summary = json.loads(written[0].read_text())
    assert summary["status"] in ("failed", "completed")
    if summary["status"] == "failed":
        assert "driver" in summary["ended_because"], summary["ended_because"]
    programs = (written[0].parent / "programs.jsonl").read_text().splitlines()
    assert len(programs) == summary["programs"]["total"] >= 1
    if summary["status"] == "completed":
        return  # the cell ended before the kill: nothing was cut off
    assert summary["recovered"] is True
    # Run again, the sweep runs the cell the kill cut off, and keeps its record aside.
    again = swarmlab(*command, timeout=400)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 cut off by a kill run again" in again.stderr
    rerun = json.loads(written[0].read_text())
    assert (rerun["recovered"], rerun["status"]) == (False, "completed")
    kept = out / "interrupted" / f"{written[0].parent.name}-1" / "summary.json"
    assert json.loads(kept.read_text())["programs"] == summary["programs"]

"""A `wait` asked again after a runner's loss answers from the journal (issue 24, item 5).

A program parked in `wait` resumes from that snapshot: the wait is asked again, answered, and
journaled. If its runner is lost before the program parks again, the program starts over from
the same snapshot on a new runner and asks the same wait once more: the script answers it from
the journal (`dup`), and the program must go on with the views it got the first time.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import redis
from helpers.runner_loss import in_thread, runner_pids, until

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster
from swarmlab.records import RunResult
from swarmlab.runtime import RunOptions, run_experiment

pytestmark = pytest.mark.slow

LOOP = 40_000_000
"""Seconds of compute without a call (about 4 s here; 4M took 0.4 s): the window for the kill."""

RESUMES_THEN_COMPUTES = f"""
kid = spawn("21 * 2", task="answers")
views = wait([kid])
db_put("resumed", views[0]["status"])
x = 0
for j in range({LOOP}):
    x += 1
db_put("after", x)
[views[0]["result"], views[0]["status"], db_get("resumed"), x]
"""


def board_has(redis_url: str, run_id: str, key: str) -> bool:
    client = redis.Redis.from_url(redis_url)
    try:
        return bool(client.hexists(f"swarmlab:run:{run_id}:bb", key))
    finally:
        client.close()


def test_a_wait_asked_again_after_a_runner_loss_answers_from_the_journal(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    run_id = f"wait-replay-{os.getpid()}"
    overrides = ["runners=1", "program_limits.cpu_s=300", "caps.wall_clock_s=600"]
    options = RunOptions(
        program=RESUMES_THEN_COMPUTES,
        run_id=run_id,
        out_dir=tmp_path / run_id,
        redis_url=redis_url,
        progress=Progress(quiet=True),
    )
    spec = load_spec("paperclips", overrides)
    thread, holder = in_thread(lambda: run_experiment(spec, options))
    until(lambda: board_has(redis_url, run_id, "resumed"), what="the root to resume from wait")
    runners = runner_pids(ray_cluster.temp_dir)
    assert len(runners) == 1
    os.kill(runners[0], signal.SIGKILL)
    # The kill landed inside the window: after the resume, before the program's next call.
    assert not board_has(redis_url, run_id, "after"), "the loop ended before the kill: raise LOOP"
    thread.join(timeout=300)
    assert not thread.is_alive()
    result: RunResult = holder["result"]

    assert result.status == "completed", result.ended_because
    root = result.programs[0]
    assert root.status == "completed", root.error
    assert root.result == [42, "completed", "completed", LOOP]
    assert result.summary().runners_lost == 1
    restarts = [e for e in result.events if e.kind == "restart" and e.program == "p0"]
    assert [e.detail["from"] for e in restarts] == ["snapshot"]
    # The wait is recorded once, as answered; the call after it once, as charged once.
    waits = [e for e in result.events if e.program == "p0" and e.kind == "wait"]
    assert [(e.decision, e.detail["done"]) for e in waits] == [("allowed", True)]
    puts = [e for e in result.events if e.program == "p0" and e.kind == "db_put"]
    assert [e.detail["key"] for e in puts] == ["resumed", "after"]
    assert result.summary().caps["programs"].used == 2

"""The wall clock counts from the tree's start, start-up is timed on its own, the reasons a run
ended read as sentences, and the progress line shows what `concurrent` bounds."""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmlab import load_spec
from swarmlab.cli import _progress
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster
from swarmlab.runtime import RunOptions, run_experiment
from swarmlab.runtime._pool import RunnerPool
from swarmlab.runtime._scheduler import Reply, refusal

pytestmark = pytest.mark.slow

BUSY_TREE = """
W = '''
i = 0
while i < 100000000:
    i += 1
'''
kids = [spawn(W, task="busy") for _ in range(4)]
wait(kids)
"""
SLOW_START_S = 4.0
WALL_S = 3


def test_a_slow_start_up_leaves_the_tree_its_whole_wall_clock(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = RunnerPool.start

    async def slow_start(self: RunnerPool) -> Any:
        await asyncio.sleep(SLOW_START_S)  # Ray as slow to come up as on a loaded cluster
        return await start(self)

    monkeypatch.setattr(RunnerPool, "start", slow_start)
    monkeypatch.setattr(_progress, "PLAIN_EVERY_S", 0.0)
    stream = io.StringIO()
    spec = load_spec(
        "paperclips",
        [
            f"caps.wall_clock_s={WALL_S}",
            "caps.concurrent=2",
            "admission=queue",
            "program_limits.cpu_s=600",
        ],
    )
    options = RunOptions(
        program=BUSY_TREE, out_dir=tmp_path / "run", redis_url=redis_url, progress=Progress(stream)
    )
    run_experiment(spec, options)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())

    assert summary["tree"]["size"] == 5, summary["ended_because"]
    assert summary["status"] == "halted"
    assert summary["ended_because"] == f"cap wall_clock_s reached ({WALL_S} s)"
    assert summary["startup_s"] >= SLOW_START_S
    wall = summary["caps"]["wall_clock_s"]["used"]
    assert WALL_S <= wall < WALL_S + 3
    assert summary["duration_s"] >= summary["startup_s"] + wall - 0.1

    text = stream.getvalue()
    assert re.search(r"start-up took \d+\.\d s; the wall clock \(3 s\) starts", text)
    lines = [line for line in text.split("\n") if " computing=" in line]
    assert lines
    for line in lines:  # under queue admission, concurrent bounds the programs computing
        computing = re.search(r" computing=(\d+) ", line)
        concurrent = re.search(r" concurrent=(\d+)/2\b", line)
        assert computing, line
        assert concurrent, line
        assert concurrent.group(1) == computing.group(1), line
    assert any(" concurrent=2/2" in line for line in lines), lines


@given(
    kind=st.sampled_from(["denied", "killed", "none", "wait"]),
    values=st.lists(st.text(max_size=300), max_size=4),
)
def test_a_refusal_reads_as_one_sentence_whatever_the_script_answered(
    kind: str, values: list[str]
) -> None:
    said = refusal(Reply(kind, tuple(values)))
    assert said
    assert "\n" not in said
    assert len(said) < 300
    assert repr(tuple(values)) not in said  # never the raw values
    if kind == "denied" and values and values[0].strip():
        assert said.startswith(f"cap {' '.join(values[0].split())[:200]} reached")


def test_a_refused_root_program_says_why_in_a_sentence() -> None:
    assert refusal(Reply("denied", ("wall_clock_s", "", ""))) == "cap wall_clock_s reached"
    assert refusal(Reply("denied", ("programs", "40", "41"))) == "cap programs reached (limit 40)"
    assert refusal(Reply("killed", ("by kill",))) == "the run was stopped (by kill)"

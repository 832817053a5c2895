"""A run stopped mid-way (by a kill, by its wall clock) keeps its whole trace tree, in
traces.jsonl and over OTLP: every program has its `invoke_agent` span, ended with the program's
status, and every span's parent is in the trace."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.otlp import Received

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster
from swarmlab.observability.telemetry import TelemetryConfig
from swarmlab.records import RunResult
from swarmlab.runtime import Coordinator, RunOptions, run_experiment

pytestmark = pytest.mark.slow

# Workers that compute, ask the model and write the blackboard without end, under a root (and a
# middle program) parked in wait(): a stop finds programs computing, parked and queued.
BUSY = """
W = '''
i = 0
while i < 100000:
    db_put("w" + str(i % 20), i)
    run_ai("one more idea " + str(i), max_tokens=5)
    i += 1
'''
M = "kids = [spawn(W, task='worker') for _ in range(3)]\\nwait(kids)\\n"
kids = [spawn(W, task="worker") for _ in range(4)] + [spawn(M.replace("W", repr(W)), task="mid")]
wait(kids)
"""
OVERRIDES = [
    "caps.model_calls=1000000",
    "caps.tokens=100000000",
    "program_limits.host_calls=100000000",
    "program_limits.cpu_s=300",
]


def _run(tmp_path: Path, redis_url: str, endpoint: str, run_id: str, extra: list[str]) -> Any:
    spec = load_spec("paperclips", OVERRIDES + extra)
    options = RunOptions(
        program=BUSY,
        run_id=run_id,
        out_dir=tmp_path / run_id,
        redis_url=redis_url,
        progress=Progress(quiet=True),
        telemetry=TelemetryConfig(otlp_endpoint=endpoint),
    )
    return run_experiment(spec, options)


def check_whole_tree(spans: list[dict[str, Any]], result: RunResult) -> None:
    ids = {s["span_id"] for s in spans}
    orphans = [s["name"] for s in spans if s["parent_span_id"] and s["parent_span_id"] not in ids]
    assert orphans == []
    agents = {
        s["attributes"]["gen_ai.agent.id"]: s for s in spans if s["name"] == "invoke_agent program"
    }
    assert len(agents) == len([s for s in spans if s["name"] == "invoke_agent program"])
    assert set(agents) == {p.id for p in result.programs}
    for program in result.programs:
        span = agents[program.id]
        assert span["attributes"]["swarmlab.program.status"] == program.status
        assert span["end_ns"] >= span["start_ns"]


def _on_disk(result: RunResult) -> list[dict[str, Any]]:
    text = (result.out_dir / "traces.jsonl").read_text()
    return [json.loads(line) for line in text.split("\n") if line]


def test_a_killed_run_keeps_its_whole_trace_tree(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster, http_receiver: tuple[str, Received]
) -> None:
    endpoint, got = http_receiver
    run_id = f"killtrace-{int(time.time())}"
    holder: dict[str, RunResult] = {}
    thread = threading.Thread(
        target=lambda: holder.update(
            result=_run(tmp_path, redis_url, endpoint, run_id, ["caps.wall_clock_s=120"])
        )
    )
    thread.start()
    assert _live(run_id, redis_url, at_least=9) >= 9, "the tree never got going"
    time.sleep(1.0)
    asyncio.run(_kill(run_id, redis_url))
    thread.join(timeout=90)
    result = holder["result"]
    assert result.status == "killed"
    assert len(result.programs) == 9
    assert {p.status for p in result.programs} == {"killed"}
    check_whole_tree(_on_disk(result), result)
    check_whole_tree(got.spans, result)


def test_a_run_halted_by_its_wall_clock_keeps_its_whole_trace_tree(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster, http_receiver: tuple[str, Received]
) -> None:
    endpoint, got = http_receiver
    result = _run(tmp_path, redis_url, endpoint, "halttrace", ["caps.wall_clock_s=4"])
    assert result.status == "halted"
    assert len(result.programs) == 9
    check_whole_tree(_on_disk(result), result)
    check_whole_tree(got.spans, result)


async def _kill(run_id: str, redis_url: str) -> None:
    coord = Coordinator(redis_url, run_id)
    try:
        await coord.kill("killed by the test")
    finally:
        await coord.close()


def _live(run_id: str, redis_url: str, at_least: int, timeout: float = 60) -> int:
    async def live() -> int:
        coord = Coordinator(redis_url, run_id)
        try:
            if not await coord.exists():
                return 0
            return int((await coord.usage())["live"]["used"])
        finally:
            await coord.close()

    give_up = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < give_up:
        seen = asyncio.run(live())
        if seen >= at_least:
            return seen
        time.sleep(0.2)
    return seen

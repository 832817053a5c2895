"""A program cut by `cpu_s` is replayed exactly (issue 21, what to build, item 4).

Where `cpu_s` stops a program depends on the host's speed: a loop that asks the clock now and
then is stopped after more or fewer asks on each run. The cut is recorded as an input (the
program's step and its printed characters, journaled with its end) and a `replay:` run cuts the
program at the same step, so the replay is identical: same calls, same end, same output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.hostile_runs import HostileRun, run_hostile
from hypothesis import given
from hypothesis import strategies as st

from swarmlab.cluster import RayCluster
from swarmlab.runtime._cuts import RecordedCut, cpu_cut_error

LOOPER = """
kid = spawn("log('child')", task="child")
wait(kid)
for i in range(3):
    log("start %d" % i)
n = 0
while True:
    n = n + 1
    if n % 150 == 0:
        now()
    if n % 6000 == 0:
        print(n)
"""

LIMITS = ["program_limits.cpu_s=0.4", "program_limits.host_calls=1000000", "caps.wall_clock_s=60"]


def cut_lines(run: HostileRun) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (run.out / "inputs.jsonl").read_text().split("\n") if line]
    return [r for r in rows if isinstance(r["answer"], dict) and "cut" in r["answer"]]


def ends(run: HostileRun) -> list[tuple[Any, ...]]:
    return [(p["id"], p["status"], p["error"], p["output"]) for p in run.programs()]


@pytest.mark.slow
def test_a_program_cut_by_cpu_s_replays_identically(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    first = run_hostile(tmp_path, redis_url, LOOPER, LIMITS, run_id="cut-first")
    root = first.root()
    assert root["status"] == "crashed"
    assert root["error"] == cpu_cut_error(0.4)
    [cut] = cut_lines(first)
    assert cut["program"] == "p0"
    assert cut["call"] == root["calls"] + 1
    assert cut["answer"]["steps"] > 100  # it was cut deep in its loop
    asks = sum(1 for e in first.events() if e["kind"] == "now")
    assert asks > 20

    replay = [*LIMITS, f"model=replay:{first.out}"]
    again = run_hostile(tmp_path, redis_url, LOOPER, replay, run_id="cut-again")
    check = again.summary()["replay"]
    assert check["identical"], check["first_divergence"]
    recorded = (first.out / "inputs.jsonl").read_text().count("\n")
    assert check["compared"] == recorded > asks
    assert ends(again) == ends(first)
    assert cut_lines(again) == [cut]
    assert sum(1 for e in again.events() if e["kind"] == "now") == asks


@given(st.recursive(st.none() | st.integers() | st.text(), lambda c: st.dictionaries(st.text(), c)))
def test_a_recorded_cut_is_read_from_any_value_without_raising(value: Any) -> None:
    found = RecordedCut.of({"cut": "cpu_s", "steps": value, "printed": 0})
    assert found is None or found.steps == value
    assert RecordedCut.parse(json.dumps(value)) is None or isinstance(value, dict)

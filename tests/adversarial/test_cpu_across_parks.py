"""`cpu_s` is charged once across a program's parks (issue 21, defect 7).

Monty's compute clock runs on across a program's snapshots, and the lab also gave each slice
only what was left after its own sum of the earlier slices: every second computed before a park
counted twice, and a program that parked often was cut, as a `cpu_s` denial, at about half its
`cpu_s`. Here a program that computes in short slices between parks, for ever, is cut once the
compute it recorded reaches its whole `cpu_s` (and not far past it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.hostile_runs import assert_promises_kept, run_hostile

from swarmlab.cluster import RayCluster

pytestmark = pytest.mark.slow

CPU_S = 1.5
# Each round computes a little, then waits for a child that computes longer, so the root parks
# (its worker goes back to the pool) dozens of times before its cpu_s runs out.
PARKER = """
CHILD = "x = 0\\nfor i in range(150000):\\n    x = x + i"
rounds = 0
while True:
    c = spawn(CHILD, task="child")
    x = 0
    for j in range(40000):
        x = x + j
    wait(c)
    rounds = rounds + 1
    db_put("rounds", rounds)
"""


def test_a_program_that_parks_often_gets_its_whole_cpu_s(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    overrides = [
        f"program_limits.cpu_s={CPU_S}",
        "program_limits.host_calls=100000",
        "caps.children=1000",
        "caps.programs=1000",
        "caps.wall_clock_s=60",
    ]
    run = run_hostile(tmp_path, redis_url, PARKER, overrides)
    assert_promises_kept(run)
    root = run.root()
    assert root["status"] == "crashed", root
    end = next(e for e in run.events() if e["program"] == "p0" and e["kind"] == "end")
    assert end["detail"].get("limit") == "cpu_s", end
    parks = sum(1 for e in run.events() if e["program"] == "p0" and e["kind"] == "wait")
    assert parks >= 5, f"the root waited only {parks} times"
    # The error names the limit the program was held to: its whole cpu_s, not what was left.
    assert root["error"] == f"TimeoutError: time limit exceeded: cpu_s = {CPU_S:g} s of compute"
    spent = end["detail"]["cpu_s"]  # the host's measure (wall time in the worker: at least it)
    assert spent >= 0.9 * CPU_S, f"cut after {spent:.2f} s of its {CPU_S} s (counted twice?)"
    assert run.summary()["program_limits"]["cpu_s"]["denied"] == 1

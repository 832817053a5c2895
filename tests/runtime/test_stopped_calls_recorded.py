"""A run stopped while its programs compute keeps every call they made before the stop.

A `race` run sends a program's events in batches; a halt used to cancel the program with its last
batch unsent, so a program that logged fifty lines and then computed until the wall clock left
an empty events.jsonl while its trace held the fifty calls. Under both schedules, every call
made before the stop is in the record, as many times as it was made.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from swarmlab import load_spec
from swarmlab.cluster import RayCluster
from swarmlab.runtime import RunOptions, run_experiment

pytestmark = pytest.mark.slow

LINES = 50
SPIN = """
for i in range(LINES):
    log("line " + str(i))
db_put("logged/" + my_id(), 1)
x = 0
while True:
    x += 1
""".replace("LINES", str(LINES))
TREE = f"""
kids = [spawn({SPIN!r}, task="spin %d" % i) for i in range(2)]
{SPIN}
"""


@pytest.mark.parametrize(
    ("schedule", "program"),
    [
        ("race", TREE),
        # In `ordered` a child's first call waits for its turn, after its computing parent's.
        ("ordered", SPIN),
    ],
)
def test_a_halted_run_records_every_call_made_before_the_halt(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster, schedule: str, program: str
) -> None:
    spec = load_spec(
        "paperclips",
        [f"schedule={schedule}", "caps.wall_clock_s=5", "program_limits.cpu_s=600"],
    )
    out = tmp_path / "run"
    run_experiment(spec, RunOptions(program=program, out_dir=out, redis_url=redis_url))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "halted", summary["ended_because"]
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    logs = Counter(e["program"] for e in events if e["kind"] == "log")
    # Those that wrote their mark had made all their calls before the halt (on a loaded host a
    # child may not have started, or may be stopped in the middle of its lines).
    board = json.loads((out / "blackboard.json").read_text())
    logged = {key.removeprefix("logged/") for key in board if key.startswith("logged/")}
    assert "p0" in logged
    assert {pid: logs[pid] for pid in logged} == dict.fromkeys(logged, LINES)
    marks = Counter(e["program"] for e in events if e["kind"] == "db_put")
    assert marks == dict.fromkeys(logged, 1)

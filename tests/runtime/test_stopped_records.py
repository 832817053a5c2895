"""A program ended by anything but its own end (the run's wall clock, another program's kill())
is recorded as of its latest state: whether it started, its runner, its calls, its clock, its
output so far, with the events it had not sent and one `end` event.

The class: a record written from a stale copy (the record as spawned, or a time taken before
the end was applied) rather than the program's latest state. Before, such programs went to
programs.jsonl with `started_at: null`, `calls: 0`, no output and the spawn's clock, and the wall
clock's stop gave them no `end` event; a kill() kept for its turn stamped the programs it ended
with the time it was asked, before some of them were made. The checks run over every program of
each run, so a new way to end a program from a stale copy fails here.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster
from swarmlab.records import RunResult
from swarmlab.runtime import RunOptions, run_experiment

pytestmark = pytest.mark.slow

# Prints, makes calls, jumps far ahead in simulated time (so programs it would hold back in the
# run's order may go on), then computes until it is stopped.
SPINNER = """
import time
print("spinner printed")
for i in range(12):
    log("spin " + str(i))
time.sleep(100000)
log("far ahead")
x = 0
while True:
    x += 1
"""
# Prints, makes calls, then waits (parked) on the spinner, which never ends.
WAITER = """
print("waiter printed")
for i in range(5):
    log("wait " + str(i))
wait([SPINNER_ID])
"""
ROOT = f"""
a = spawn({SPINNER!r}, task="spinner")
b = spawn({WAITER!r}.replace("SPINNER_ID", repr(a)), task="waiter")
try:
    wait([a, b], 5)
except Exception as e:
    log(repr(e)[:100])
KILL
"""
LIMITS = ["program_limits.cpu_s=120", "program_limits.host_calls=100000000"]


def _run(tmp_path: Path, redis_url: str, run_id: str, root: str, wall_s: int) -> RunResult:
    spec = load_spec("paperclips", [*LIMITS, f"caps.wall_clock_s={wall_s}"])
    options = RunOptions(
        program=root,
        run_id=run_id,
        out_dir=tmp_path / run_id,
        redis_url=redis_url,
        progress=Progress(quiet=True),
    )
    return run_experiment(spec, options)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().split("\n") if line]


def check_latest_states(out: Path) -> dict[str, dict[str, Any]]:
    """For every program: one `end` event; its calls are the calls its events show; one that
    started says so (when, on which runner); the record's status is its end event's."""
    programs = {p["id"]: p for p in _jsonl(out / "programs.jsonl")}
    events = _jsonl(out / "events.jsonl")
    seqs: dict[str, set[int]] = defaultdict(set)
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    ends: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        kinds[event["program"]][event["kind"]] += 1
        if event["seq"] is not None:
            seqs[event["program"]].add(event["seq"])
        if event["kind"] == "end":
            ends[event["program"]].append(event)
    for pid, record in programs.items():
        assert len(ends[pid]) == 1, (pid, ends[pid])
        assert ends[pid][0]["detail"]["status"] == record["status"], pid
        assert record["calls"] == len(seqs[pid]), (pid, record["calls"], sorted(seqs[pid]))
        if kinds[pid]["start"]:
            assert record["started_at"] is not None, pid
            assert record["runner"] is not None, pid
        times = [record["created_at"], record["started_at"], record["ended_at"]]
        known = [t for t in times if t is not None]
        assert known == sorted(known), (pid, times)  # never ends before it was made or started
        assert ends[pid][0]["t"] >= record["created_at"], pid
    return {p["task"] if p["parent_id"] else "root": p for p in programs.values()}


def check_stopped(by_task: dict[str, dict[str, Any]], waiter_calls: tuple[int, ...] = (5,)) -> None:
    spinner, waiter = by_task["spinner"], by_task["waiter"]
    assert spinner["status"] == waiter["status"] == "killed"
    assert spinner["output"] == "spinner printed\n"
    assert waiter["output"] == "waiter printed\n"
    assert spinner["calls"] == 13  # 12 logs and "far ahead" (a sleep is no call)
    assert spinner["clock_h"] > 100000 / 3600  # the sleep moved its clock
    assert waiter["calls"] in waiter_calls


def test_programs_halted_by_the_wall_clock_keep_their_latest_state(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    root = ROOT.replace("KILL", "wait([a, b])")
    result = _run(tmp_path, redis_url, "stopped-by-wall", root, wall_s=8)
    assert result.status == "halted"
    by_task = check_latest_states(result.out_dir)
    check_stopped(by_task)
    assert by_task["root"]["status"] == "killed"  # the root, parked in wait()


@pytest.mark.parametrize("order", ["waiter first", "spinner first"])
def test_programs_stopped_by_kill_keep_their_latest_state(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster, order: str
) -> None:
    # Waiter first: killed while parked on the spinner. Spinner first: the spinner's end wakes
    # the waiter at the kill, and the waiter is killed about when its wait comes back: before
    # or after the wait is applied, and, if after, whether or not its runner has heard the
    # answer. Its record counts the wait whenever the wait was applied (its events show it).
    kills = "kill(b)\nkill(a)" if order == "waiter first" else "kill(a)\nkill(b)"
    root = ROOT.replace("KILL", kills)
    result = _run(tmp_path, redis_url, "stopped-by-kill", root, wall_s=60)
    assert result.status == "completed"
    by_task = check_latest_states(result.out_dir)
    check_stopped(by_task, waiter_calls=(5,) if order == "waiter first" else (5, 6))
    assert "kill()" in by_task["spinner"]["error"]


# Spawns its leaves, then jumps far ahead in simulated time (its next step comes long after the
# root's kill in the run's order).
MID = """
import time
kids = [spawn("import time\\nlog('leaf')\\ntime.sleep(100000)\\nlog('late')", task="leaf")
        for i in range(3)]
time.sleep(100000)
wait(kids)
"""


def test_a_kill_ends_programs_when_it_is_applied(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    # The root asks for the kill before the mid program has started, five simulated seconds on:
    # in the run's order the kill waits until the mid program has spawned its leaves, so it is
    # applied after them. Before, every program it ended was stamped with the time the root
    # asked, before the leaves were made: they ended before they began.
    root = f"import time\na = spawn({MID!r}, task='mid')\ntime.sleep(5)\nprint(kill(a))\n"
    result = _run(tmp_path, redis_url, "kill-applied", root, wall_s=60)
    assert result.status == "completed"
    check_latest_states(result.out_dir)
    killed = [p for p in result.programs if p.status == "killed"]
    assert sorted(p.task for p in killed) == ["leaf", "leaf", "leaf", "mid"]
    assert len({p.ended_at for p in killed}) == 1  # one kill: they all end when it is applied

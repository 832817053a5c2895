"""Whole runs on real Ray and a real redis-server: caps hold, hostile programs are contained,
kill stops a running swarm, and the same seed grows the same tree."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster
from swarmlab.records import RunResult
from swarmlab.runtime import RunOptions, run_experiment

pytestmark = pytest.mark.slow


def run(
    tmp_path: Path,
    redis_url: str,
    overrides: list[str] | None = None,
    program: str | None = None,
    run_id: str | None = None,
) -> RunResult:
    spec = load_spec("paperclips", overrides or [])
    options = RunOptions(
        program=program,
        run_id=run_id,
        out_dir=tmp_path / (run_id or "run"),
        redis_url=redis_url,
        progress=Progress(quiet=True),
    )
    return run_experiment(spec, options)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_caps_held(summary: dict[str, Any]) -> None:
    for cap, row in summary["caps"].items():
        assert row["used"] <= row["limit"], f"{cap} used {row['used']} > limit {row['limit']}"


def test_paperclips_grows_a_deep_capped_tree_and_writes_the_run_dir(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    result = run(tmp_path, redis_url)
    out = result.out_dir
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["tree"]["size"] >= 50
    assert summary["tree"]["max_depth"] >= 4
    assert summary["scaffold"] is True
    assert any(row["denied"] > 0 for row in summary["caps"].values()), "no cap was hit"
    assert_caps_held(summary)
    assert summary["model"]["name"] == "sim:policy-v1"
    assert summary["outcome"]["paperclips"] >= 0

    programs = read_jsonl(out / "programs.jsonl")
    assert len(programs) == summary["programs"]["total"]
    ids = {p["id"] for p in programs}
    for p in programs:
        assert {
            "id",
            "parent_id",
            "depth",
            "code",
            "status",
            "error",
            "started_at",
            "ended_at",
        } <= set(p)
        assert p["status"] in ("completed", "crashed", "killed")
        if p["parent_id"] is None:
            assert p["id"] == "p0"
            assert p["depth"] == 0
        else:
            assert p["parent_id"] in ids
            assert p["id"].rsplit(".", 1)[0] == p["parent_id"]
            assert p["depth"] == p["parent_id"].count(".") + 1
    events = read_jsonl(out / "events.jsonl")
    assert {"spawn", "run_ai", "start", "end"} <= {e["kind"] for e in events}
    denied = [e for e in events if e["decision"] == "denied" and e["kind"] == "spawn"]
    assert denied
    assert all(e["cap"] for e in denied)
    assert (out / "dialogue.json").exists()
    assert (out / "spec.yaml").exists()


# A quine that spawns copies of itself as fast as it can.
STORM = """
src = 'src = %r\\nfor i in range(40):\\n    try:\\n        spawn(src %% src, task="storm")\\n'
src = src + '    except Exception as e:\\n        pass\\n'
for i in range(40):
    try:
        spawn(src % src, task="storm")
    except Exception as e:
        pass
"""


def test_a_spawn_storm_races_for_the_last_programs_and_never_passes_the_cap(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    caps = ["caps.programs=80", "caps.children=40", "caps.concurrent=80", "caps.depth=30"]
    result = run(tmp_path, redis_url, caps, program=STORM)
    summary = result.summary().model_dump(mode="json")
    assert summary["caps"]["programs"]["used"] == 80
    assert summary["caps"]["programs"]["denied"] > 64
    assert summary["programs"]["total"] == 80
    assert len({p.runner for p in result.programs}) == 2, "children spread over both runners"
    assert_caps_held(summary)


BUSY_KIDS = """
kids = [spawn("x = 0\\nfor i in range(3000000):\\n    x = x + 1\\n", task="t") for _ in range(6)]
x = 0
for i in range(3000000):
    x = x + 1
wait(kids)
"""
"""Each program computes for about 0.3 s (on this machine), so every runner, whenever it starts
serving, finds children to take while the others still compute."""


@pytest.mark.parametrize(("concurrent", "runners"), [(1, 2), (3, 2)])
def test_the_concurrency_cap_holds_whatever_the_runners(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster, concurrent: int, runners: int
) -> None:
    """Children that compute for a while, while their parent computes too: the programs
    computing at once never pass `caps.concurrent`, also when it does not divide among the
    runners or is smaller than their number."""
    caps = [f"caps.concurrent={concurrent}", f"runners={runners}"]
    result = run(tmp_path, redis_url, caps, program=BUSY_KIDS)
    summary = result.summary().model_dump(mode="json")
    assert [p.status for p in result.programs] == ["completed"] * 7
    assert summary["caps"]["concurrent"]["used"] == concurrent
    assert_caps_held(summary)


HOSTILE = {
    "loop": "while True:\n    pass",
    "memory": "x = 'a' * 10**9",
    "recursion": "def f(n):\n    return f(n + 1)\nf(0)",
    "os": "import os\nos.getenv('HOME')",
    "socket": "import socket",
    "subprocess": "import subprocess",
    "open": "open('/etc/passwd').read()",
    "dunder": "__import__('os')",
    "huge_value": "db_put('big', 'x' * 100000)",
    "escape_key": "db_put('../../swarmlab:runs', 1)",
    "namespace_key": "db_put('swarmlab:run:other:bb', 1) if False else db_put('a b', 1)",
    "wildcard_key": "db_keys('*')\ndb_put('*', 1)",
}


def test_hostile_children_are_contained_and_recorded(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    root = "kids = []\n"
    for name, code in HOSTILE.items():
        root += f"kids.append(spawn({code!r}, task={name!r}))\n"
    root += "results = wait(kids)\n[r['status'] for r in results]"
    result = run(tmp_path, redis_url, ["program_limits.cpu_s=1", "caps.children=20"], program=root)
    by_task = {p.task: p for p in result.programs if p.parent_id}
    assert set(by_task) == set(HOSTILE)
    for name, program in by_task.items():
        assert program.status == "crashed", f"{name}: {program.status}"
    assert by_task["loop"].error
    assert "TimeoutError" in by_task["loop"].error
    assert by_task["memory"].error
    assert "MemoryError" in by_task["memory"].error
    assert "CapExceeded(blackboard_value_bytes)" in (by_task["huge_value"].error or "")
    for name in ("escape_key", "namespace_key", "wildcard_key"):
        assert "is not allowed" in (by_task[name].error or ""), name
    root_record = next(p for p in result.programs if p.id == "p0")
    assert root_record.status == "completed"
    assert result.blackboard == {}
    escapes = [e for e in result.events if e.kind == "escape_attempt"]
    assert {e.program for e in escapes} >= {by_task[n].id for n in ("os", "socket", "open")}
    summary = result.summary().model_dump(mode="json")
    assert summary["program_limits"]["cpu_s"]["denied"] == 1
    assert summary["program_limits"]["memory_bytes"]["denied"] == 1
    assert_caps_held(summary)


BUSY = """
kids = []
for i in range(8):
    kids.append(spawn("while True:\\n    now()", task="busy"))
wait(kids)
"""


def test_swarmlab_kill_stops_a_running_swarm(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    overrides = ["program_limits.host_calls=100000000", "program_limits.cpu_s=120"]
    holder: dict[str, Any] = {}
    run_id = "killme-" + str(int(time.time()))

    def target() -> None:
        holder["result"] = run(tmp_path, redis_url, overrides, program=BUSY, run_id=run_id)

    thread = threading.Thread(target=target)
    thread.start()
    status = _wait_for_live(run_id, redis_url, at_least=9)
    assert status >= 9, "the swarm never got going"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "swarmlab.cli", "kill", run_id, "--redis-url", redis_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert time.monotonic() - started < 30
    result: RunResult = holder["result"]
    summary = json.loads((result.out_dir / "summary.json").read_text())
    assert summary["status"] == "killed"
    assert summary["programs"]["by_status"] == {"killed": 9}


def _wait_for_live(run_id: str, redis_url: str, at_least: int, timeout: float = 60) -> int:
    import asyncio

    from swarmlab.runtime import Coordinator

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


def tree(result: RunResult) -> list[tuple[Any, ...]]:
    return sorted((p.id, p.parent_id, p.code, p.status) for p in result.programs)


def test_the_same_seed_grows_the_same_tree(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    # Caps that no two programs race for, so the tree depends on the seed alone.
    fixed = ["caps.depth=4", "caps.programs=1000", "caps.concurrent=1000", "sim.shutdown=0"]
    first = run(tmp_path, redis_url, [*fixed, "seed=6"], run_id="a")
    second = run(tmp_path, redis_url, [*fixed, "seed=6"], run_id="b")
    other = run(tmp_path, redis_url, [*fixed, "seed=5"], run_id="c")
    assert len(first.programs) > 10
    assert tree(first) == tree(second)
    assert tree(first) != tree(other)


FANOUT = """
SRC = %r
ask = "You are program " + my_id() + ". On separate lines, list ideas to try."
plan = run_ai(ask, max_tokens=64)
db_put("plan/" + my_id(), plan)
kids = []
for i in range(3):
    try:
        kids.append(spawn(SRC %% SRC, task=plan.splitlines()[0]))
    except Exception as e:
        break
wait(kids)
"""


def test_a_replay_reexecutes_the_run_exactly_and_names_a_divergence(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    # Prompts that depend only on the tree (not on racing shared state) replay exactly.
    program = FANOUT % FANOUT
    fixed = ["caps.depth=3", "caps.programs=1000", "caps.concurrent=1000", "seed=6"]
    original = run(tmp_path, redis_url, fixed, program=program, run_id="original")
    assert len(original.programs) == 1 + 3 + 9 + 27
    recorded = (original.out_dir / "completions.jsonl").read_text().splitlines()
    assert len(recorded) == original.summary().caps["model_calls"].used == 40
    replay = f"model=replay:{original.out_dir}"
    again = run(tmp_path, redis_url, [*fixed, replay], program=program, run_id="again")
    assert again.status == "completed"
    assert tree(again) == tree(original)
    assert [p.task for p in again.programs] == [p.task for p in original.programs]
    used = again.summary().caps["tokens"].used
    assert used == original.summary().caps["tokens"].used
    changed = program.replace("You are program", "You are copy")
    other = run(tmp_path, redis_url, [*fixed, replay], program=changed, run_id="other")
    root = other.programs[0]
    assert root.status == "crashed"
    assert "replay" in (root.error or "")
    assert "You are copy p0" in (root.error or "")
    check = other.summary().replay
    assert check is not None
    assert not check.identical
    first = check.first_divergence
    assert first is not None
    assert (first.program, first.call) == ("p0", 2)  # call 1 is my_id()
    assert '"error": "replay of' in first.got  # this run's model call failed
    assert '"answer": {' in first.expected  # where the recorded one was answered

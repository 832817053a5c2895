"""The run's fail-safe edges, each provoked for real: a runner process SIGKILLed mid-run, the
run's Redis SIGKILLed, the model server gone, the driver SIGKILLed, a program killed before it
started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import CLUSTER_ENV
from helpers.fake_endpoint import FakeEndpoint
from helpers.runner_loss import (
    alive,
    blackboard_keys,
    descendants,
    in_thread,
    pids_with,
    runner_pids,
    until,
)

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster, RedisServer
from swarmlab.records import RunDir, RunResult
from swarmlab.runtime import RunOptions, Snapshot, run_experiment
from swarmlab.runtime import _pool as pool_module

pytestmark = pytest.mark.slow

BUSY_CHILD = """
total = 0
for i in range(CALLS):
    run_ai("list one idea", max_tokens=8)
    db_put("n/" + my_id(), i)
    x = 0
    for j in range(3000):
        x += j
    total += 1
total
"""

BUSY_TREE = """
CHILD = %r
kids = [spawn(CHILD, task="busy %%d" %% i) for i in range(KIDS)]
sum([r["result"] or 0 for r in wait(kids)])
"""


def busy_tree(kids: int, calls: int) -> str:
    child = BUSY_CHILD.replace("CALLS", str(calls))
    return (BUSY_TREE % child).replace("KIDS", str(kids))


def run(
    tmp_path: Path, redis_url: str, overrides: list[str], program: str, run_id: str
) -> RunResult:
    spec = load_spec("paperclips", overrides)
    options = RunOptions(
        program=program,
        run_id=run_id,
        out_dir=tmp_path / run_id,
        redis_url=redis_url,
        progress=Progress(quiet=True),
    )
    return run_experiment(spec, options)


def cli(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in CLUSTER_ENV}
    return subprocess.Popen(
        [sys.executable, "-m", "swarmlab.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def test_a_runner_killed_mid_run_loses_no_program_and_no_quota(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    kids, calls = 8, 25
    overrides = ["runners=2", "caps.concurrent=100", "program_limits.host_calls=2000"]
    run_id = f"runner-loss-{os.getpid()}"
    thread, holder = in_thread(
        lambda: run(tmp_path, redis_url, overrides, busy_tree(kids, calls), run_id)
    )
    until(lambda: blackboard_keys(redis_url, run_id) >= kids, what="the children to get going")
    runners = runner_pids(ray_cluster.temp_dir)
    assert len(runners) == 2
    os.kill(runners[0], signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive()
    result: RunResult = holder["result"]

    assert result.status == "completed"
    assert [p.status for p in result.programs] == ["completed"] * (kids + 1)
    assert result.programs[0].result == kids * calls  # every child's every call, once
    summary = result.summary()
    assert summary.caps["programs"].used == kids + 1
    assert RunDir(result.out_dir).records().summary == summary  # its figures are its records'
    # Quota covers the effects: one charge per answer, one more per call sent again because
    # its runner was lost with it in flight (whose tokens stay reserved in full).
    answered = [e for e in result.events if e.kind == "run_ai" and e.decision == "allowed"]
    assert len(answered) == kids * calls
    resent = sum(e.detail.get("attempts", 1) - 1 for e in answered)
    assert summary.model.resent_calls == resent
    assert summary.caps["model_calls"].used == kids * calls + resent
    recorded = RunDir(result.out_dir).completions()
    assert len(recorded) == kids * calls
    tokens = sum(sum(c["completion"]["usage"].values()) for c in recorded)
    assert summary.caps["tokens"].used >= tokens
    if not resent:
        assert summary.caps["tokens"].used == tokens
    # Calls made again after the loss answered from the journal: no call number twice.
    seqs = [(e.program, e.seq) for e in answered]
    assert len(set(seqs)) == len(seqs)
    assert summary.runners_lost == 1
    restarts = [e for e in result.events if e.kind == "restart"]
    assert summary.programs_restarted == len({e.program for e in restarts})
    assert all(e.detail["from"] in ("snapshot", "start") for e in restarts)


def test_calls_in_flight_on_a_lost_runner_are_charged_for_every_request_the_server_got(
    tmp_path: Path,
    redis_url: str,
    ray_cluster: RayCluster,
    fake_endpoint: Callable[..., FakeEndpoint],
) -> None:
    kids, calls = 6, 3
    hold = threading.Event()  # the server keeps every chat until the runner is dead
    server = fake_endpoint(hold=hold)
    overrides = [
        "runners=2",
        "caps.concurrent=100",
        f"model=openai:{server.url}",
        "model_name=fake-model",
    ]
    run_id = f"in-flight-loss-{os.getpid()}"
    thread, holder = in_thread(
        lambda: run(tmp_path, redis_url, overrides, busy_tree(kids, calls), run_id)
    )
    until(lambda: server.in_flight >= kids, what="every child's first call at the server")
    runners = runner_pids(ray_cluster.temp_dir)
    assert len(runners) == 2
    os.kill(runners[0], signal.SIGKILL)
    until(lambda: not alive(runners[0]), what="the runner to die")
    hold.set()
    thread.join(timeout=300)
    assert not thread.is_alive()
    result: RunResult = holder["result"]

    assert result.status == "completed"
    assert [p.status for p in result.programs] == ["completed"] * (kids + 1)
    assert result.programs[0].result == kids * calls
    sent = len(server.chat_posts())
    assert sent > kids * calls  # the dead runner's calls were sent again
    summary = result.summary()
    assert summary.caps["model_calls"].used == sent
    assert summary.model.resent_calls == sent - kids * calls
    assert summary.caps["tokens"].used >= 14 * sent  # the server's usage for each request
    # One chat span per call, whatever its attempts; each attempt sent again is an event on it.
    chats = [json.loads(line) for line in result.spans if '"chat fake-model"' in line]
    assert len(chats) == kids * calls
    resent = [e for c in chats for e in c["events"] if e["name"] == "swarmlab.model.resent"]
    assert len(resent) == sent - kids * calls


class Recorded:
    """A progress sink that keeps every note and progress line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, text: str) -> None:
        self.lines.append(text)

    def start(self, run_id: str, spec: object, out: Path) -> None:
        pass

    def update(self, snap: Snapshot) -> None:
        self.lines.append(snap.line())

    def finish(self, result: RunResult) -> None:
        pass


def test_a_run_whose_only_runner_is_lost_for_good_says_so_and_fails_in_one_line(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool_module, "RESTARTS", 0)  # the runner's actor is never placed again
    kids, wait_s = 4, 3.0
    spec = load_spec("paperclips", ["runners=1", "caps.concurrent=100", "caps.wall_clock_s=600"])
    progress = Recorded()
    run_id = f"no-runner-{os.getpid()}"
    options = RunOptions(
        program=busy_tree(kids, 400),
        run_id=run_id,
        out_dir=tmp_path / run_id,
        redis_url=redis_url,
        progress=progress,
        no_runner_wait_s=wait_s,
    )
    thread, holder = in_thread(lambda: run_experiment(spec, options))
    until(lambda: blackboard_keys(redis_url, run_id) >= kids, what="the children to get going")
    runners = runner_pids(ray_cluster.temp_dir)
    assert len(runners) == 1
    lost = time.monotonic()
    os.kill(runners[0], signal.SIGKILL)
    thread.join(timeout=120)
    assert not thread.is_alive()
    result: RunResult = holder["result"]

    assert wait_s <= time.monotonic() - lost < wait_s + 30  # bounded, not the wall clock
    assert result.status == "failed"
    assert result.ended_because.startswith("no runner left: all 1 runners were lost")
    assert "\n" not in result.ended_because
    assert any(line.startswith("no runner serves") for line in progress.lines)
    assert any("runners=0/1 NO RUNNER for" in line for line in progress.lines)
    summary = RunDir(tmp_path / run_id).summary()  # the run directory is written
    assert summary is not None
    assert summary.status == "failed"
    assert RunDir(tmp_path / run_id).records().summary == summary  # and reads back whole
    assert len(RunDir(tmp_path / run_id).programs()) == kids + 1
    assert {p.status for p in result.programs} == {"killed"}


def test_a_run_whose_runners_cannot_be_placed_fails_in_one_line_naming_the_resource(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool_module, "START_TIMEOUT_S", 3.0)
    monkeypatch.setenv("SWARMLAB_RUNNER_RESOURCE", "no_such_node")  # no node offers it
    began = time.monotonic()
    result = run(tmp_path, redis_url, [], "1 + 1", f"unplaced-{os.getpid()}")
    assert time.monotonic() - began < 60
    assert result.status == "failed"
    assert result.ended_because.startswith("no runner could be started")
    assert "'no_such_node'" in result.ended_because
    assert "\n" not in result.ended_because
    assert RunDir(result.out_dir).summary() is not None


def test_losing_redis_mid_run_fails_the_run_in_one_line_and_writes_its_directory(
    tmp_path: Path,
) -> None:
    redis_server = RedisServer(tmp_path / "redis").start()
    program = tmp_path / "busy.py"
    program.write_text(busy_tree(6, 400))
    run_id = f"redis-loss-{os.getpid()}"
    out = tmp_path / "run"
    try:
        # fmt: off
        driver = cli(
            "run", "paperclips", "--program", str(program), "--run-id", run_id, "--out", str(out),
            "--redis-url", redis_server.url, "--quiet", "--no-telemetry",
            "--set", "caps.model_calls=100000", "--set", "program_limits.host_calls=5000",
        )
        # fmt: on
        until(lambda: blackboard_keys(redis_server.url, run_id) >= 6, what="the children")
        # The driver's copy trails Redis by its read interval: what Redis takes with it in its
        # last instant is lost with it. Give the copy a moment (the children run for seconds).
        time.sleep(1.0)
        assert redis_server.process is not None
        lost = time.time()
        os.kill(redis_server.process.pid, signal.SIGKILL)
        _, stderr = driver.communicate(timeout=60)
    finally:
        redis_server.stop()
    assert driver.returncode == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Redis" in lines[0]
    summary = RunDir(out).summary()
    assert summary is not None
    assert summary.status == "failed"
    assert "Redis" in summary.ended_because
    # The caps' use as last seen before Redis went: the six children admitted, never zero.
    assert summary.caps["programs"].used == 7
    assert summary.caps["model_calls"].used > 0
    assert summary.caps_last_seen  # so not held to the records when read back, which it is
    assert RunDir(out).records().summary == summary
    programs = RunDir(out).programs()
    assert len(programs) == 7  # every program, from what the driver held
    assert {p.status for p in programs[1:]} == {"killed"}
    # Every program ended at once: a bound for a loaded machine; benchmarks/faults.py measures.
    assert max(p.ended_at or 0 for p in programs) - lost < 5


def test_a_model_server_gone_mid_run_raises_in_the_program_and_is_counted(
    tmp_path: Path,
    redis_url: str,
    ray_cluster: RayCluster,
    fake_endpoint: Callable[..., FakeEndpoint],
) -> None:
    server = fake_endpoint(stop_after=1)
    program = """
first = run_ai("one idea", max_tokens=8)
errors = []
for i in range(2):
    try:
        run_ai("another idea", max_tokens=8)
    except Exception as exc:
        errors.append(str(exc))
db_put("errors", errors)
wait([spawn("1 + 1", task="goes on")])[0]["result"]
"""
    overrides = [f"model=openai:{server.url}", "model_name=fake-model"]
    result = run(tmp_path, redis_url, overrides, program, "model-loss")
    assert result.status == "completed"
    root = result.programs[0]
    assert root.status == "completed", root.error
    assert root.result == 2  # the run went on after the failures
    errors = result.blackboard["errors"]
    assert len(errors) == 2
    for error in errors:
        assert error.startswith("model call failed: model endpoint")
        assert "attempts" in error  # after the backend's bounded retries
    summary = result.summary()
    assert summary.model.failed_calls == 2
    assert summary.caps["tokens"].used == 14  # only the answered call's usage
    written = json.loads((result.out_dir / "summary.json").read_text())
    assert written["model"]["failed_calls"] == 2


LONG = """
kids = [spawn("while True:\\n    now()", task="busy") for i in range(3)]
wait(kids)
"""


def test_nothing_the_driver_started_outlives_its_sigkill(tmp_path: Path) -> None:
    program = tmp_path / "long.py"
    program.write_text(LONG)
    out = tmp_path / "run"
    # fmt: off
    run_id = f"sigkilled-{os.getpid()}"
    driver = cli(
        "run", "paperclips", "--program", str(program), "--out", str(out), "--quiet",
        "--run-id", run_id,
        "--no-telemetry", "--set", "program_limits.host_calls=100000000",
        "--set", "program_limits.cpu_s=600", "--set", "caps.wall_clock_s=600",
    )
    # fmt: on
    reaper = out / ".reaper.json"

    def watched() -> dict[str, Any]:
        try:
            return dict(json.loads(reaper.read_text()))
        except (OSError, ValueError):
            return {}

    until(lambda: bool(watched().get("markers")), what="the embedded Ray to start")
    marker = watched()["markers"][0]  # the embedded Ray's temp dir
    until(lambda: bool(descendants(runner_pids(marker))), what="the runners' sandbox workers")
    until(lambda: live_programs(run_id) == 4, what="the root and its three children to run")
    runners = runner_pids(marker)
    started = pids_with(marker) + runners + watched()["pids"] + descendants(runners)
    assert watched()["pids"], "the private redis-server is watched"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(timeout=10)
    until(
        lambda: not [p for p in started if alive(p)],
        timeout=30,
        what="every process the driver started to end",
    )
    assert not pids_with(marker)
    assert not runner_pids(marker)
    # Before stopping anything, the watchdog wrote the run directory from Redis.
    until(lambda: not (out / ".reaper.json").exists(), what="the watchdog to end")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert f"the driver (pid {driver.pid}) died" in summary["ended_because"]
    assert summary["recovered"] is True  # cut off, not ended: a resumed sweep runs it again
    assert RunDir(out).records().summary is not None  # it reads back, without dialogue.json
    programs = [json.loads(x) for x in (out / "programs.jsonl").read_text().splitlines()]
    assert sorted(p["id"] for p in programs) == ["p0", "p0.1", "p0.2", "p0.3"]
    assert {p["status"] for p in programs} == {"killed"}
    assert all(p["started_at"] for p in programs)
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    ends = sorted(e["program"] for e in events if e["kind"] == "end")
    assert ends == ["p0", "p0.1", "p0.2", "p0.3"]
    assert [e for e in events if e["kind"] == "spawn" and e["program"] == "p0"]


def live_programs(run_id: str) -> int:
    """The programs a run has live, from its Redis (found in the live-run registry)."""
    import redis

    from swarmlab.runtime._live import registry_dir

    try:
        entry = json.loads((registry_dir() / f"{run_id}.json").read_text())
    except (OSError, ValueError):
        return 0
    client = redis.Redis.from_url(entry["redis_url"])
    try:
        return int(client.hget(f"swarmlab:run:{run_id}:used", "live") or 0)
    except redis.RedisError:
        return 0
    finally:
        client.close()


KILLED_BEFORE_START = """
doomed = spawn("db_put('ran', True)\\n1", task="never starts")
killed = kill(doomed)
seen = wait([doomed])[0]
after = wait([spawn("2", task="takes the slot")])[0]
[killed, seen["status"], after["status"], after["result"]]
"""


def test_a_program_killed_before_it_starts_ends_killed_and_frees_its_slot(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    # One program computes at a time: the child cannot start while its parent computes.
    overrides = ["caps.concurrent=1", "admission=queue"]
    result = run(tmp_path, redis_url, overrides, KILLED_BEFORE_START, "kill-before-start")
    assert result.status == "completed"
    root, doomed, after = result.programs
    assert doomed.status == "killed"
    assert doomed.started_at is None  # it never ran
    assert "ran" not in result.blackboard
    assert root.status == "completed"
    assert root.result == [True, "killed", "completed", 2]
    assert after.status == "completed"

"""`swarmlab up` / `swarmlab down`: runs reuse a warm Ray and Redis, each in its own namespace and
run directory; `up` twice changes nothing; `down` leaves nothing running; a stale state file
from a dead instance is found and cleaned."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers.cli import swarmlab

from swarmlab.cluster import pid_alive

FIRST = re.compile(r"first program ([0-9.]+) s after the process started \(([^)]*)\)")


def _first_program(done: subprocess.CompletedProcess[str]) -> tuple[float, str]:
    found = FIRST.search(done.stderr)
    assert found, done.stderr
    return float(found.group(1)), found.group(2)


def _run(tmp_path: Path, name: str, env: str) -> subprocess.CompletedProcess[str]:
    done = cli(
        env,
        "run",
        "paperclips",
        "--out",
        str(tmp_path / name),
        "--json",
        "--set",
        "caps.programs=6",
    )
    assert done.returncode == 0, done.stderr
    return done


def cli(state: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`swarmlab ARGS` with the lab's state (the warm instance's files) in `state`."""
    return swarmlab(*args, SWARMLAB_STATE_DIR=state)


def _alive(pids: list[int], within_s: float = 5.0) -> list[int]:
    """Those still running after `within_s` (an ended process lasts until its parent collects
    it)."""
    give_up = time.monotonic() + within_s
    while (alive := [p for p in pids if pid_alive(p)]) and time.monotonic() < give_up:
        time.sleep(0.1)
    return alive


@pytest.mark.slow
def test_runs_on_a_warm_instance_start_fast_and_down_stops_everything(tmp_path: Path) -> None:
    env = str(tmp_path / "state")
    cold = _run(tmp_path, "cold", env)
    cold_s, cold_how = _first_program(cold)
    assert cold_how.startswith("cold start")
    up = cli(env, "up", "--num-cpus", "2", "--json")
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    pids = [info["redis_pid"], *info["ray_pids"]]
    stopped: list[int] = []
    try:
        assert not info["already_up"]
        assert _alive(pids, within_s=0) == pids
        assert str(Path(info["ray_temp_dir"]).resolve()).startswith(str(tmp_path / "state"))
        again = cli(env, "up")
        assert again.returncode == 0, again.stderr
        assert "already up" in again.stdout
        warm = [_run(tmp_path, f"warm{i}", env) for i in range(2)]
        summaries = [json.loads(w.stdout) for w in warm]
        assert len({s["run_id"] for s in summaries}) == 2
        assert all(s["status"] == "completed" and s["tree"]["size"] >= 1 for s in summaries)
        for i, done in enumerate(warm):
            warm_s, how = _first_program(done)
            assert how.startswith("warm"), how
            assert warm_s < cold_s, (warm_s, cold_s)
            assert not (tmp_path / f"warm{i}" / ".redis").exists()  # no private Redis started
        print(f"first program: cold {cold_s:.2f} s, warm {_first_program(warm[1])[0]:.2f} s")
        status = cli(env, "status")
        assert status.returncode == 0, status.stderr
        assert info["ray_address"] in status.stdout, status.stdout
    finally:
        down = cli(env, "down", "--json")
        stopped = json.loads(down.stdout)["stopped_pids"] if down.returncode == 0 else []
    assert set(pids) <= set(stopped)
    assert _alive(stopped) == []
    assert _alive(pids) == []
    assert cli(env, "down").stdout.strip() == "nothing is up"
    assert "warm" not in cli(env, "status").stdout


@pytest.mark.slow
def test_a_stale_instance_is_cleaned_and_started_afresh(tmp_path: Path) -> None:
    env = str(tmp_path / "state")
    first = json.loads(cli(env, "up", "--num-cpus", "1", "--json").stdout)
    os.kill(first["redis_pid"], signal.SIGKILL)  # the instance dies under its state file
    second = json.loads(cli(env, "up", "--num-cpus", "1", "--json").stdout)
    try:
        assert not second["already_up"]
        assert second["redis_pid"] != first["redis_pid"]
        assert set(first["ray_pids"]) <= set(second["stale_cleaned"])
        assert _alive(first["ray_pids"]) == []
    finally:
        down = json.loads(cli(env, "down", "--json").stdout)
    assert _alive([second["redis_pid"], *second["ray_pids"], *down["stopped_pids"]]) == []


def test_a_state_file_naming_dead_processes_is_not_an_instance(tmp_path: Path) -> None:
    env = str(tmp_path / "state")
    state = tmp_path / "state" / "warm" / "warm.json"
    state.parent.mkdir(parents=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    state.write_text(
        json.dumps(
            {
                "redis_url": "redis://127.0.0.1:1/0",
                "redis_pid": gone.pid,
                "ray_address": "127.0.0.1:1",
                "ray_temp_dir": str(tmp_path / "nowhere"),
                "ray_pids": [gone.pid],
                "ray_token_path": str(tmp_path / "token"),
                "started_at": 0.0,
            }
        )
    )
    assert "warm" not in cli(env, "status").stdout
    down = cli(env, "down", "--json")
    assert json.loads(down.stdout) == {"was_up": False, "stale": True, "stopped_pids": []}
    assert not state.exists()
    state.write_text('{"not": "a state file"}')  # nor is anything else found there
    assert "warm" not in cli(env, "status").stdout
    assert "stale" in cli(env, "down").stdout
    assert not state.exists()

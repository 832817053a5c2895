"""`swarmlab up` / `swarmlab down`: runs reuse a warm Ray and Redis, each in its own namespace and
run directory; `up` twice changes nothing; `down` leaves nothing running; a stale state file
from a dead instance is found and cleaned."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import one_line_error, swarmlab

from swarmlab.cli._warm_server import code_fingerprint
from swarmlab.cluster import RedisServer, pid_alive
from swarmlab.cluster._ray_procs import ray_binary, ray_pids
from swarmlab.cluster._reaper import environ_pids

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
    pids = [info["redis_pid"], *info["ray_pids"], info["server_pid"]]
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
            assert how == "warm: run by the lab process of `swarmlab up`", how
            assert warm_s < cold_s, (warm_s, cold_s)
            assert not (tmp_path / f"warm{i}" / ".redis").exists()  # no private Redis started
        print(f"first program: cold {cold_s:.2f} s, warm {_first_program(warm[1])[0]:.2f} s")
        status = cli(env, "status")
        assert status.returncode == 0, status.stderr
        assert info["ray_address"] in status.stdout, status.stdout
        assert f"lab process {info['server_pid']}" in status.stdout, status.stdout
    finally:
        down = cli(env, "down", "--json")
        stopped = json.loads(down.stdout)["stopped_pids"] if down.returncode == 0 else []
    assert set(pids) <= set(stopped)
    assert _alive(stopped) == []
    assert _alive(pids) == []
    assert _left_of(info) == []  # nor any process the warm Ray started (agents, client server)
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


def _left_of(info: dict[str, Any], within_s: float = 5.0) -> list[int]:
    """Processes the warm instance started still running: by its token, by the raylet they were
    started for (Ray's agents rename themselves), or by its temp dir on their command line."""
    raylets = [p for p in info["ray_pids"] if ray_binary(p) == "raylet"] or info["ray_pids"]
    entries = [f"RAY_AUTH_TOKEN_PATH={info['ray_token_path']}"]
    entries += [f"RAY_RAYLET_PID={p}" for p in raylets]
    give_up = time.monotonic() + within_s
    while True:
        left = {p for e in entries for p in environ_pids(e)}
        left |= set(ray_pids([info["ray_temp_dir"]]))
        alive = sorted(p for p in left if pid_alive(p))
        if not alive or time.monotonic() > give_up:
            return alive
        time.sleep(0.1)


def test_a_state_file_naming_processes_not_its_own_stops_none_of_them(tmp_path: Path) -> None:
    """The state file is read back: a damaged or edited one that names the user's other
    processes (their ids, a temp dir or token path they carry) must not make `down` stop them."""
    env = str(tmp_path / "state")
    state = tmp_path / "state" / "warm" / "warm.json"
    state.parent.mkdir(parents=True)
    token = tmp_path / "their-token"
    marker = str(tmp_path / "their-temp-dir")
    theirs = subprocess.Popen(
        ["sh", "-c", "sleep 60", marker], env={**os.environ, "RAY_AUTH_TOKEN_PATH": str(token)}
    )
    redis = RedisServer(tmp_path / "their-redis")
    redis.start()
    try:
        assert redis.pid is not None
        state.write_text(
            json.dumps(
                {
                    "redis_url": redis.url,
                    "redis_pid": redis.pid,
                    "ray_address": "127.0.0.1:1",
                    "ray_temp_dir": marker,
                    "ray_pids": [theirs.pid],
                    "ray_token_path": str(token),
                    "started_at": 0.0,
                }
            )
        )
        another_lab = subprocess.Popen(["sh", "-c", "sleep 60", "lab-process", "/elsewhere"])
        (state.parent / "server.json").write_text(
            json.dumps(
                {
                    "pid": another_lab.pid,
                    "socket": str(tmp_path / "lab.sock"),
                    "code": "x",
                    "instance": 0.0,
                    "started_at": 0.0,
                }
            )
        )
        down = cli(env, "down", "--json")
        assert json.loads(down.stdout)["stopped_pids"] == []
        assert theirs.poll() is None
        assert another_lab.poll() is None  # another state dir's lab process
        assert pid_alive(redis.pid)
        another_lab.kill()
        another_lab.wait()
    finally:
        theirs.kill()
        theirs.wait()
        redis.stop()


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


LONG = 'kids = [spawn("while True:\\n    db_get(\\"x\\")\\n") for i in range(2)]\nwait(kids)\n'
"""A root whose children call forever (until the run is stopped)."""
LONG_SETS = ("program_limits.cpu_s=60", "program_limits.host_calls=1000000", "caps.wall_clock_s=60")


def _ask(sock: Path, data: bytes) -> list[dict[str, object]]:
    """Send raw bytes to the lab process's socket; its frames until it closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(str(sock))
        with contextlib.suppress(OSError):
            conn.sendall(data)
        return [json.loads(line) for line in conn.makefile("rb") if line.strip()]


def _request(tmp_path: Path, **change: object) -> bytes:
    base: dict[str, object] = {
        "argv": ["run", "paperclips", "--out", str(tmp_path / "never")],
        "cwd": str(tmp_path),
        "env": {},
        "code": code_fingerprint(),
        "started_boot_s": 0.0,
    }
    return json.dumps(base | change).encode() + b"\n"


def _long_run(tmp_path: Path, name: str, env: str) -> subprocess.Popen[str]:
    program = tmp_path / "long.py"
    program.write_text(LONG)
    sets = [x for pair in zip(["--set"] * 3, LONG_SETS, strict=True) for x in pair]
    command = [sys.executable, "-m", "swarmlab.cli", "run", "paperclips", "--program"]
    return subprocess.Popen(
        [*command, str(program), "--out", str(tmp_path / name), *sets],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SWARMLAB_STATE_DIR": env},
    )


def _until_started(process: subprocess.Popen[str]) -> str:
    """The run's first lines, up to the one that says its first program started."""
    assert process.stderr is not None
    seen = ""
    while "first program" not in seen:
        line = process.stderr.readline()
        assert line, seen
        seen += line
    return seen


@pytest.mark.slow
def test_the_lab_process_refuses_bad_requests_hands_on_ctrl_c_and_lets_a_busy_run_go(
    tmp_path: Path,
) -> None:
    """Hostile requests are refused in one frame and the lab process serves on; Ctrl-C at the
    client stops the run in the lab process; a run that finds it busy runs by itself."""
    env = str(tmp_path / "state")
    up = cli(env, "up", "--num-cpus", "2", "--json")
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    sock = tmp_path / "state" / "warm" / "lab.sock"
    try:
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        refused = [
            _ask(sock, b"not json\n"),
            _ask(sock, b"x" * 300_000),  # no newline within the bound
            _ask(sock, _request(tmp_path, argv=["down"])),
            _ask(sock, _request(tmp_path, argv=["run"] * 401)),
            _ask(sock, _request(tmp_path, cwd=str(tmp_path / "nowhere"))),
            _ask(sock, _request(tmp_path, extra=1)),
        ]
        assert all(len(r) == 1 and "error" in r[0] for r in refused), refused
        assert "`run` only" in str(refused[2][0]["error"])
        assert _ask(sock, _request(tmp_path, code="0" * 32)) == [{"stale": True}]
        long = _long_run(tmp_path, "long", env)
        started = _until_started(long)
        assert "run by the lab process" in started
        busy = _run(tmp_path, "beside", env)  # while the long run holds the lab process
        assert "the warm lab process is busy with another run: running here" in busy.stderr
        assert _first_program(busy)[1] == "warm: Ray and Redis were up"
        long.send_signal(signal.SIGINT)
        _, rest = long.communicate(timeout=60)
        summary = json.loads((tmp_path / "long" / "summary.json").read_text())
        assert summary["status"] == "killed", rest
        assert "interrupted" in summary["ended_because"]
        after = _run(tmp_path, "after", env)  # the lab process serves on
        assert _first_program(after)[1] == "warm: run by the lab process of `swarmlab up`"
        assert _alive([info["server_pid"]], within_s=0) == [info["server_pid"]]
        orphan = _long_run(tmp_path, "orphan", env)
        _until_started(orphan)
        os.kill(info["server_pid"], signal.SIGKILL)  # the lab process dies mid-run
        _, rest = orphan.communicate(timeout=60)
        assert orphan.returncode == 1, rest
        assert "the warm lab process went away mid-run" in rest
        assert "first program" not in rest  # the run is not made a second time here
        again = json.loads(cli(env, "up", "--json").stdout)  # up starts a new one
        assert again["already_up"]
        assert again["server_pid"] != info["server_pid"]
        served = _run(tmp_path, "served-again", env)
        assert _first_program(served)[1] == "warm: run by the lab process of `swarmlab up`"
    finally:
        down = json.loads(cli(env, "down", "--json").stdout)
    assert again["server_pid"] in down["stopped_pids"]
    assert _alive(down["stopped_pids"]) == []
    assert not sock.exists()


@pytest.mark.parametrize("command", [["down"], ["up"], ["status"]])
def test_a_directory_where_the_state_file_goes_is_one_line_saying_how_to_fix_it(
    tmp_path: Path, command: list[str]
) -> None:
    state = tmp_path / "state"
    (state / "warm" / "warm.json").mkdir(parents=True)
    done = cli(str(state), *command)
    one_line_error(done, 1, "warm.json is a directory", "rm -r")
    assert (state / "warm" / "warm.json").is_dir()  # not removed: it is not the lab's

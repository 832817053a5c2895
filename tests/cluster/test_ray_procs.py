"""Stopping a Ray the lab started (`swarmlab down`, the driver's watchdog) stops that Ray's own
processes and nothing else on the machine: a process whose command line merely holds the Ray's
temp dir's text (a user's `tail -F` of its logs, a path that starts with the same letters) is
left running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cli import swarmlab
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.cluster import _reaper, _warm
from swarmlab.cluster._ray_procs import names_temp_dir, ray_pids, runs_ray_code

PYTHON = os.path.realpath(sys.executable)
HOME = Path("/opt/venv/site-packages/ray")


def _lookalikes(temp_dir: str, tmp_path: Path) -> list[list[str]]:
    """Command lines of processes that are not Ray's but name its temp dir's text."""
    script = tmp_path / "not_ray.py"
    script.write_text("import time\ntime.sleep(600)\n")
    logs = f"{temp_dir}/session_2026-01-01_00-00-00_000000_1/logs"
    sleep = "import time; time.sleep(600)"
    return [
        ["bash", "-c", f"exec -a 'tail -F {logs}/raylet.out' sleep 600"],
        ["bash", "-c", f"exec -a 'tail --follow={logs}/raylet.out' sleep 600"],
        [sys.executable, "-c", sleep, f"--temp-dir={temp_dir}"],
        [sys.executable, str(script), f"--session-dir={logs}"],
        [sys.executable, str(script), f"--temp-dir={temp_dir}-other-dir"],
    ]


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Look-alike processes for the warm Ray of the state dir `tmp_path/state`, stopped by PID
    at the end."""
    temp_dir = _warm._link_for(tmp_path / "state" / "warm" / "ray")
    procs = [subprocess.Popen(cmd) for cmd in _lookalikes(temp_dir, tmp_path)]
    time.sleep(0.3)  # each has exec'd its program
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def test_down_stops_none_of_the_processes_that_only_name_the_warm_rays_folder(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    warm = tmp_path / "state" / "warm"
    warm.mkdir(parents=True)
    fields = {"redis_url": "redis://127.0.0.1:1/0", "redis_pid": 1, "ray_address": "127.0.0.1:1"}
    fields |= {"ray_temp_dir": _warm._link_for(warm / "ray"), "ray_pids": []}
    fields |= {"ray_token_path": str(warm / "ray_auth_token"), "started_at": 0.0}
    (warm / "warm.json").write_text(json.dumps(fields))
    down = swarmlab("down", "--json", SWARMLAB_STATE_DIR=str(tmp_path / "state"))
    assert down.returncode == 0, down.stderr
    assert json.loads(down.stdout)["stopped_pids"] == []
    assert [p.poll() for p in started] == [None] * len(started)


def test_the_watchdog_stops_none_of_the_processes_that_only_name_the_rays_folder(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    temp_dir = _warm._link_for(tmp_path / "state" / "warm" / "ray")
    _reaper.reap({"pids": [], "groups": [], "markers": [temp_dir]})
    assert [p.poll() for p in started] == [None] * len(started)


def test_rays_own_program_started_on_the_folder_is_found(tmp_path: Path) -> None:
    home = tmp_path / "ray"
    home.mkdir()
    (home / "worker.py").write_text("import time\ntime.sleep(600)\n")
    temp_dir = str(tmp_path / "swl-0123456789")
    ray = subprocess.Popen([sys.executable, str(home / "worker.py"), f"--temp-dir={temp_dir}"])
    other = subprocess.Popen([sys.executable, str(home / "worker.py"), f"--temp-dir={temp_dir}0"])
    try:
        time.sleep(0.3)
        assert ray_pids([temp_dir], home=home) == [ray.pid]
    finally:
        for proc in (ray, other):
            proc.kill()
            proc.wait()


ROOT = "/tmp/swlw-0123456789"
WORDS = st.sampled_from(["tail", "-F", "--follow", "=", "/", "-", "x", "logs", "--temp-dir", ""])
TEXT = st.lists(WORDS | st.text(max_size=6), max_size=4).map("".join)


@settings(max_examples=500, deadline=None)
@given(before=TEXT, after=TEXT, words=st.lists(TEXT, max_size=3))
def test_the_folder_counts_only_as_a_whole_path_given_as_an_options_value(
    before: str, after: str, words: list[str]
) -> None:
    arg = before + ROOT + after
    named = names_temp_dir([*words, arg], [ROOT])
    in_words = names_temp_dir(words, [ROOT])
    as_value = before.startswith("--") and before.endswith("=") and "=" not in before[:-1]
    whole = after == "" or after.startswith("/")
    if not in_words:
        assert named == (as_value and whole), arg


EXES = st.sampled_from(["/usr/bin/tail", "/bin/sleep", "/usr/bin/bash", PYTHON, str(HOME / "x")])
ARGS = st.lists(
    st.sampled_from(["-u", "-c", "-m", "ray", "ray.util", "rayx", "ray::IDLE", str(HOME / "a.py")])
    | TEXT,
    max_size=5,
)


@settings(max_examples=500, deadline=None)
@given(exe=EXES, argv=ARGS)
def test_a_process_is_rays_only_when_it_runs_rays_code(exe: str, argv: list[str]) -> None:
    own = runs_ray_code(exe, argv, HOME, PYTHON)
    if exe.startswith(str(HOME)):
        assert own
    elif exe != PYTHON or not argv:
        assert not own
    elif own:  # the interpreter: renamed by Ray, a module of ray's, or a file of ray's
        first = next((a for a in argv[1:] if not a.startswith("-") or a == "-m"), "")
        rest = argv[1:]
        module = rest[rest.index("-m") + 1] if first == "-m" and rest[-1] != "-m" else ""
        assert (
            argv[0].startswith("ray::")
            or module == "ray"
            or module.startswith("ray.")
            or first.startswith(str(HOME) + "/")
        ), argv

"""The command line as a user meets it: exit codes, one-line errors, JSON on stdout."""

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

import pytest
from helpers.cli import one_line_error, swarmlab
from helpers.fake_endpoint import FakeEndpoint

from swarmlab.cli._main import build_parser
from swarmlab.records import RunDir


def test_a_bad_spec_exits_2_with_one_line() -> None:
    done = swarmlab("run", "paperclips", "--set", "caps.programs=-5")
    one_line_error(done, 2, "caps.programs", "-5", "greater than or equal to 1")


def test_bad_arguments_exit_2_with_one_line(tmp_path: Path) -> None:
    one_line_error(swarmlab("run", "no-such-experiment"), 2, "no experiment named")
    one_line_error(swarmlab("run", "paperclips", "--set", "caps"), 2, "key=value")
    one_line_error(
        swarmlab("run", "paperclips", "--program", str(tmp_path / "missing.py")), 2, "no such file"
    )
    one_line_error(swarmlab("run"), 2, "experiment")
    one_line_error(swarmlab("run", "paperclips", "--model", "gpt9"), 2, "model", "gpt9")
    one_line_error(
        swarmlab("run", "paperclips", "--bogus"), 2, "--bogus", "(see swarmlab run --help)"
    )


def test_an_option_before_any_command_is_reported_as_unknown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--bogus", "run"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "swarmlab: unrecognized arguments: --bogus (see swarmlab --help)\n"
    )


@pytest.mark.parametrize("command", sorted(build_parser().commands))
def test_an_unknown_option_names_the_help_of_its_command(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([command, "--no-such-option"])
    assert exited.value.code == 2
    said = capsys.readouterr().err
    assert said.count("\n") == 1
    assert said.startswith("swarmlab: ")
    assert f"(see swarmlab {command} --help)" in said


def test_an_unreachable_redis_exits_1_with_one_line(closed_port: int) -> None:
    done = swarmlab("run", "paperclips", "--redis-url", f"redis://127.0.0.1:{closed_port}/0")
    one_line_error(done, 1, "unreachable", str(closed_port))


def test_kill_and_status_of_unknown_runs(redis_url: str) -> None:
    one_line_error(swarmlab("kill", "nope", "--redis-url", redis_url), 2, "no live run 'nope'")
    done = swarmlab("status", "--json", "--redis-url", redis_url)
    assert done.returncode == 0
    assert isinstance(json.loads(done.stdout), list)


def test_list_shows_the_builtin_experiments() -> None:
    done = swarmlab("list")
    assert done.returncode == 0
    assert "paperclips" in done.stdout


@pytest.mark.slow
def test_run_on_the_embedded_default_prints_the_summary_as_json(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = swarmlab(
        "run",
        "paperclips",
        "--json",
        "--out",
        str(out),
        "--set",
        "caps.programs=40",
        "--run-id",
        "cli-run",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert done.stdout.isascii()  # as every --json: no text reaches the terminal raw
    assert summary["run_id"] == "cli-run"
    assert summary["status"] == "completed"
    for key in ("ended_because", "model", "programs", "tree", "caps", "outcome", "duration_s"):
        assert key in summary
    assert summary["caps"]["programs"]["used"] <= 40
    assert json.loads((out / "summary.json").read_text())["run_id"] == "cli-run"
    assert "redis" in done.stderr  # progress went to stderr, the JSON alone to stdout

    # The same directory again: refused before anything starts, the first run's record kept.
    record = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    again = swarmlab("run", "paperclips", "--out", str(out), "--run-id", "cli-run-2")
    one_line_error(again, 2, str(out), "already holds a run")
    assert "redis" not in again.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == record

    # Something that is not a file where the record will go: refused before anything starts
    # (it used to fail at the end, the record unwritten; a device there would be replaced).
    for name in ("events.jsonl", "report.html"):
        assert name in RunDir.WRITES
        blocked = tmp_path / f"blocked-{name}"
        blocked.mkdir()
        if name == "events.jsonl":
            os.mkfifo(blocked / name)
        else:
            (blocked / name).mkdir()
        refused = swarmlab("run", "paperclips", "--out", str(blocked))
        one_line_error(refused, 2, str(blocked), f"{name} there is not a file")
        assert "redis" not in refused.stderr
        assert [p.name for p in blocked.iterdir()] == [name]


BUSY = """
kids = []
for i in range(4):
    kids.append(spawn("while True:\\n    now()", task="busy"))
wait(kids)
"""


@pytest.mark.slow
def test_ctrl_c_stops_the_run_and_still_writes_its_directory(
    tmp_path: Path, redis_url: str
) -> None:
    program = tmp_path / "busy.py"
    program.write_text(BUSY)
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "swarmlab.cli",
            "run",
            "paperclips",
            "--program",
            str(program),
            "--out",
            str(out),
            "--redis-url",
            redis_url,
            "--run-id",
            "ctrl-c",
            "--set",
            "program_limits.host_calls=100000000",
            "--set",
            "program_limits.cpu_s=120",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        give_up = time.monotonic() + 90
        while time.monotonic() < give_up:
            status = swarmlab("status", "ctrl-c", "--json", "--redis-url", redis_url)
            if status.returncode == 0 and json.loads(status.stdout)[0]["live"] >= 5:
                break
            time.sleep(0.3)
        else:
            pytest.fail("the run never got going")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "killed"
    assert "Ctrl-C" in summary["ended_because"]
    assert summary["programs"]["by_status"] == {"killed": 5}


@pytest.mark.slow
def test_ctrl_c_while_runners_start_leaves_no_process_behind(
    tmp_path: Path, redis_url: str
) -> None:
    """Ctrl-C while the run's own Ray and runners start: the run ends killed, and nothing it
    started (Ray, its runner actors) outlives the command."""
    program = tmp_path / "busy.py"
    program.write_text(BUSY)
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "swarmlab.cli", "run", "paperclips"),
            *("--program", str(program), "--out", str(out), "--redis-url", redis_url),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        give_up = time.monotonic() + 120
        while not (out / ".ray").exists() and time.monotonic() < give_up and proc.poll() is None:
            time.sleep(0.05)
        assert (out / ".ray").exists(), "the run never started its Ray"
        time.sleep(1.0)  # Ray is up or nearly: the runners are being placed
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "killed", summary["ended_because"]
    assert "Ctrl-C" in summary["ended_because"]
    left = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout
    assert left.split() == [], f"processes of the run left: {left}"


def test_ctrl_c_as_the_run_starts_ends_it_killed_with_its_directory(
    tmp_path: Path, redis_url: str, fake_endpoint: Callable[..., FakeEndpoint]
) -> None:
    """Ctrl-C while the run still starts (here: the root's question to the model, which the
    server holds) ends the run at once as killed, its directory written, as a Ctrl-C later
    does; it was recorded as completed."""
    hold = threading.Event()
    server = fake_endpoint(hold=hold)
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "swarmlab.cli",
            "run",
            "paperclips",
            "--out",
            str(out),
            "--redis-url",
            redis_url,
            "--set",
            f"model=openai:{server.url}",
            "--set",
            "model_name=fake-model",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        give_up = time.monotonic() + 90
        while server.in_flight < 1 and time.monotonic() < give_up and proc.poll() is None:
            time.sleep(0.1)
        assert server.in_flight == 1, "the root's question never reached the server"
        asked_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - asked_at
    finally:
        hold.set()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert took < 30, f"the run ended {took:.1f} s after Ctrl-C"  # not the server's 60 s
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "killed"
    assert "Ctrl-C" in summary["ended_because"]
    assert summary["programs"]["total"] == 0

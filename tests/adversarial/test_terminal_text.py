"""Text that programs, models, specs and run directories wrote reaches the terminal as text:
never parsed as rich markup (`[/]` once crashed a finished run with a MarkupError), never as
escape sequences (clear the screen, retitle the window)."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import secrets
import select
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from helpers.cli import swarmlab
from helpers.labelled_run import write_run_dir
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab import Caps
from swarmlab.runtime import Coordinator

TITLE = "\x1b]0;pwned\x07"  # sets the terminal window's title
CLEAR = "\x1b[2J"  # clears the screen
HOSTILE = f"{TITLE}{CLEAR}\u202e"  # ... and a right-to-left override

MARKUP_TARGET = "[/] [bold red]p9[/bold red]"
HALTING_PROGRAM = f"kill({MARKUP_TARGET!r})\n"


def _halting_spec(tmp_path: Path) -> Path:
    """A run halted by a tripwire whose name and reason carry markup and escape sequences."""
    spec = tmp_path / "spec.yaml"
    name = json.dumps(f"wire{HOSTILE}[/]")  # JSON is YAML: the escapes stay escapes
    spec.write_text(
        "name: hostile-text\n"
        "caps: {wall_clock_s: 60}\n"
        f"tripwires:\n  - {{name: {name}, rule: kill_outside_lineage, action: halt}}\n"
    )
    return spec


def _in_a_terminal(args: list[str], cwd: Path, timeout: float) -> tuple[int, str]:
    """Run `swarmlab ARGS` on a pseudo-terminal (so the live display is used); all it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "swarmlab.cli", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        start_new_session=True,
        env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"TERM": "xterm"},
    )
    os.close(slave)
    chunks: list[bytes] = []
    give_up = time.monotonic() + timeout
    try:
        while time.monotonic() < give_up:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the other end closed: the process is gone
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, give_up - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, b"".join(chunks).decode(errors="replace")


def _assert_shown_not_interpreted(text: str) -> None:
    assert "Traceback" not in text, text[-2000:]
    assert "MarkupError" not in text
    assert TITLE not in text
    assert CLEAR not in text
    assert "\u202e" not in text


@pytest.mark.slow
def test_a_halt_reason_with_markup_and_escapes_is_shown_on_a_terminal(
    tmp_path: Path, redis_url: str
) -> None:
    program = tmp_path / "halt.py"
    program.write_text(HALTING_PROGRAM)
    args = [
        "run",
        str(_halting_spec(tmp_path)),
        "--program",
        str(program),
        "--redis-url",
        redis_url,
        "--out",
        str(tmp_path / "run"),
    ]
    code, shown = _in_a_terminal(args, tmp_path, timeout=120)
    assert code == 0, shown[-2000:]
    _assert_shown_not_interpreted(shown)
    assert MARKUP_TARGET in shown  # the reason, as the program wrote it
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "halted"


@pytest.mark.slow
def test_a_halt_reason_with_escapes_is_shown_on_plain_progress_lines(
    tmp_path: Path, redis_url: str
) -> None:
    program = tmp_path / "halt.py"
    program.write_text(HALTING_PROGRAM)
    done = swarmlab(
        "run",
        str(_halting_spec(tmp_path)),
        "--program",
        str(program),
        "--redis-url",
        redis_url,
        "--out",
        str(tmp_path / "run"),
    )
    assert done.returncode == 0, done.stderr
    _assert_shown_not_interpreted(done.stderr)
    assert "halted" in done.stderr
    assert MARKUP_TARGET in done.stderr
    assert "\\u202e" in done.stderr  # the override shown, escaped; escape sequences dropped


def test_status_shows_hostile_run_ids_and_states_as_text(redis_url: str) -> None:
    """A shared Redis may hold anything: another tool's run ids, a tampered state."""
    good = "status-" + secrets.token_hex(4)
    evil = f"evil{TITLE}"

    async def plant() -> None:
        coord = Coordinator(redis_url, good)
        evil_coord = Coordinator(redis_url, evil)
        try:
            await coord.init_run(Caps(), {"status": f"running{HOSTILE}"})
            await evil_coord.init_run(Caps(), {"status": "running"})
        finally:
            await coord.close()
            await evil_coord.close()

    async def clean() -> None:
        for run_id in (good, evil):
            coord = Coordinator(redis_url, run_id)
            try:
                await coord.delete_run()
            finally:
                await coord.close()

    asyncio.run(plant())
    try:
        done = swarmlab("status", "--redis-url", redis_url)
    finally:
        asyncio.run(clean())
    assert done.returncode == 0, done.stderr
    _assert_shown_not_interpreted(done.stdout + done.stderr)
    assert good in done.stdout
    assert "\\x1b" not in good


def test_report_refuses_a_hostile_run_id_in_one_line_of_text(tmp_path: Path) -> None:
    """The lab writes only run ids (letters, digits, `._=-`, at most 128): a summary.json that
    holds anything else is refused, and the refusal quotes it as text."""
    run = write_run_dir(tmp_path / "run")
    summary_path = run / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["run_id"] = f"run{HOSTILE}[/]"
    summary_path.write_text(json.dumps(summary))
    done = swarmlab("report", str(run))
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    _assert_shown_not_interpreted(done.stdout + done.stderr)
    assert "is not a run id" in done.stderr


def test_an_error_message_quoting_the_users_input_is_one_line_of_text() -> None:
    done = swarmlab("run", f"no-such{HOSTILE}\nsecond line")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    _assert_shown_not_interpreted(done.stderr)


@pytest.mark.parametrize(
    "hostile",
    ["\x1b]" * 300_000, "\x1b[" + "1;" * 300_000, "\x9b" * 600_000, "\u202e\x00" * 300_000],
)
def test_cleaning_text_for_the_terminal_is_linear(hostile: str) -> None:
    from swarmlab.cli._text import terminal_text

    started = time.perf_counter()
    shown = terminal_text(hostile)
    assert time.perf_counter() - started < 2
    assert "\x1b" not in shown
    assert "\x9b" not in shown
    assert "\u202e" not in shown


@settings(max_examples=200, deadline=None)
@given(names=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=6))
def test_each_run_in_a_table_has_a_label_of_its_own_on_one_line(names: list[str]) -> None:
    """A run without summary.json is labelled by its directory's name, which anyone chose: a
    line break in it added forged rows above `swarmlab report`'s table; and a third run named
    as the second one's relabelling took its place, so the comparison lost a run."""
    from swarmlab.observability.report import run_label

    labels: dict[str, int] = {}
    for i, name in enumerate([*names, *names, f"{names[0]} (2)"]):
        label = run_label(cast(Any, SimpleNamespace(run_id=None)), Path("/runs") / name, labels)
        assert label.isprintable()
        assert label not in labels
        labels[label] = i
    assert len(labels) == 2 * len(names) + 1

"""The command line as a user runs it: a real `swarmlab` process, its output and exit code; or
its `main` in this process, for searches that run it thousands of times."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

# Variables that would point a test's command at a real cluster.
CLUSTER_ENV = (
    "RAY_ADDRESS",
    "SWARMLAB_RAY_ADDRESS",
    "RAY_AUTH_TOKEN",
    "RAY_AUTH_TOKEN_PATH",
    "SWARMLAB_MODEL_URL",
    "SWARMLAB_MODEL_NAME",
)


def swarmlab(
    *args: str, timeout: float = 240, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `swarmlab ARGS...` (the installed package) in `cwd` and wait for it."""
    base = {k: v for k, v in os.environ.items() if k not in CLUSTER_ENV}
    return subprocess.run(
        [sys.executable, "-m", "swarmlab.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**base, **env},
    )


def one_line_error(done: subprocess.CompletedProcess[str], code: int, *parts: str) -> None:
    """The command failed with `code` and said why in one line naming every part."""
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("swarmlab: "), done.stderr
    assert "Traceback" not in done.stderr
    for part in parts:
        assert part in lines[0], lines[0]


IN_PROCESS_BUDGET_S = 8.0
"""The most one in-process command may take on a hostile file (a shared 2-core machine)."""


def cli(*args: str) -> tuple[int, str, str, float]:
    """`swarmlab ARGS` in this process: exit code, stdout, stderr, seconds."""
    from swarmlab.cli._main import main

    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's own exit
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue(), time.monotonic() - started


def assert_plain_outcome(result: tuple[int, str, str, float], codes: tuple[int, ...]) -> None:
    """Exit with one of `codes`; a failure says why in one `swarmlab: ` line; no traceback;
    within the budget."""
    code, _, err, seconds = result
    assert code in codes, err
    if code != 0:
        lines = err.strip().split("\n")
        assert len(lines) == 1, err
        assert lines[0].startswith("swarmlab: "), err
    assert "Traceback" not in err
    assert seconds < IN_PROCESS_BUDGET_S

"""The command line as a user runs it: a real `swarmlab` process, its output and exit code."""

from __future__ import annotations

import os
import subprocess
import sys
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

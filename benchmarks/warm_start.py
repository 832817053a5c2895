"""A run's first program, from the start of the command: cold, warm, and in the lab process.

    .venv/bin/python benchmarks/warm_start.py [--rounds 3]

Each round runs `swarmlab run paperclips --set caps.programs=6` as a new process three ways, in
turn: cold (no `swarmlab up`: the run starts a private Redis and Ray), warm (on `swarmlab up`'s
Ray and Redis, run by itself: `SWARMLAB_NO_WARM_SERVER=1`) and served (handed to `up`'s lab
process). The figure is the run's own line, `first program N s after the process started`,
counted from the start of the command the user typed; the whole command's wall time is shown
beside it. State lives in a temporary directory; `swarmlab down` stops what `up` started.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST = re.compile(r"first program ([0-9.]+) s after the process started \(([^)]*)\)")
WAYS = ("cold", "warm", "served")


def swarmlab(state: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "swarmlab.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "SWARMLAB_STATE_DIR": str(state), **env},
    )


def one_run(state: Path, out: Path, **env: str) -> tuple[float, float, str]:
    """Seconds to the first program, the command's wall seconds, and how it started."""
    began = time.perf_counter()
    done = swarmlab(
        state, "run", "paperclips", "--out", str(out), "--set", "caps.programs=6", **env
    )
    wall = time.perf_counter() - began
    found = FIRST.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"the run failed: {done.stderr.strip()[-300:]}")
    return float(found.group(1)), wall, found.group(2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    first: dict[str, list[float]] = {way: [] for way in WAYS}
    wall: dict[str, list[float]] = {way: [] for way in WAYS}
    with tempfile.TemporaryDirectory(prefix="swarmlab-warm-") as tmp:
        root = Path(tmp)
        up = swarmlab(root / "state", "up")
        if up.returncode != 0:
            raise SystemExit(f"swarmlab up failed: {up.stderr.strip()[-300:]}")
        try:
            for i in range(args.rounds):
                runs = {
                    "cold": (root / "cold-state", {}),
                    "warm": (root / "state", {"SWARMLAB_NO_WARM_SERVER": "1"}),
                    "served": (root / "state", {}),
                }
                for way, (state, env) in runs.items():
                    seconds, took, how = one_run(state, root / f"{way}{i}", **env)
                    first[way].append(seconds)
                    wall[way].append(took)
                    print(f"round {i + 1} {way:6}: first program {seconds:5.2f} s ({how})")
        finally:
            swarmlab(root / "state", "down")
    for way in WAYS:
        print(
            f"{way:6}: first program {statistics.median(first[way]):.2f} s "
            f"(range {min(first[way]):.2f}-{max(first[way]):.2f}); the whole command "
            f"{statistics.median(wall[way]):.2f} s (medians of {args.rounds})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A watchdog that outlives its driver: when the driver dies (even by SIGKILL), it stops what the
driver started (the private redis-server, a local vLLM server, the embedded Ray's processes).

The driver writes what it starts into a small JSON file; the watchdog, a separate process in its
own session, reads it when the driver is gone, writes the directory of each run the driver named
from its Redis while it still answers (`swarmlab.runtime._recover`, within `BEFORE_S`), stops
every process named there, and exits. A driver that ends normally removes the file and the
watchdog exits on its own.

The file is read back as any file is: hostile. It names run ids (never a command), and process
ids, groups and markers that are checked before anything is signalled (`_checked`): no id below
2 (`kill(-1)` signals every process the user owns) and no marker that is not the embedded Ray's
folder. A marker stops only Ray's own processes started on that folder (`_ray_procs`), never
another process whose command line holds its text.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ._ray_procs import ray_pids

POLL_S = 0.5
GRACE_S = 2.0
BEFORE_S = 120.0
"""The most writing a run's directory may take before the reaping (then it is stopped, and the
reaping goes on)."""
RECOVER = "swarmlab.runtime._recover"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=-]{0,127}")
_MARKER = re.compile(r"/.+/(\.ray|swl-[0-9a-f]{10})")
"""The embedded Ray's folder: `<run dir>/.ray`, or its short link `<tmp>/swl-<hash>`."""


class Reaper:
    """The driver's side: start the watchdog, name what it must stop, stop it at the end."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.watched: dict[str, list[Any]] = {
            "pids": [],
            "groups": [],
            "markers": [],
            "runs": [],
            "below": [],
        }
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, state: Path) -> Reaper:
        reaper = cls(state)
        reaper._write()
        reaper.process = subprocess.Popen(
            [sys.executable, "-m", "swarmlab.cluster._reaper", str(os.getpid()), str(state)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return reaper

    def watch_pid(self, pid: int | None) -> None:
        if pid:
            self.watched["pids"].append(pid)
            self._write()

    def watch_group(self, pgid: int) -> None:
        self.watched["groups"].append(pgid)
        self._write()

    def watch_marker(self, marker: str) -> None:
        """The embedded Ray's processes, by the temp dir they were started on (`ray_pids`)."""
        self.watched["markers"].append(marker)
        self._write()

    def recover(self, run_id: str, sweep_id: str | None) -> None:
        """Should the driver die, write this run's directory from Redis before anything is
        stopped."""
        self.watched["runs"].append([run_id, sweep_id or ""])
        self._write()

    def recover_below(self, folder: Path) -> None:
        """Should the driver die, stop the Ray it started first (the runs below `folder` run
        there, and their own watchdogs die with their Ray workers), write the directory of every
        run a state file below `folder` names from the redis-server this one watches (within
        `BEFORE_S` each), and only then stop it."""
        self.watched["below"].append(str(folder.resolve()))
        self._write()

    def stop(self) -> None:
        """The driver ends normally: nothing to reap."""
        self.state.unlink(missing_ok=True)
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=2)

    def _write(self) -> None:
        tmp = self.state.with_name(self.state.name + ".tmp")
        tmp.write_text(json.dumps(self.watched))
        os.replace(tmp, self.state)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (0 and negative ids name groups, not processes)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def environ_pids(entry: str) -> list[int]:
    """Processes started with `entry` (`NAME=value`) in their environment (this process apart):
    a process keeps the environment it was started with, whatever it calls itself later."""
    wanted = entry.encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if wanted in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
    return found


def recover_runs(watched: dict[str, list[Any]], log: Path) -> None:
    """Write the directory of each run named, each within `BEFORE_S`, what it says appended to
    `log`."""
    for run_id, sweep_id in watched["runs"]:
        with (
            contextlib.suppress(OSError, subprocess.SubprocessError),
            log.open("ab") as out,
        ):
            subprocess.run(
                [sys.executable, "-m", RECOVER, run_id, sweep_id],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                timeout=BEFORE_S,
                check=False,
            )


def _checked(raw: Any) -> dict[str, list[Any]]:
    """What a state file names, kept only where it is what a driver writes (module docstring)."""
    if not isinstance(raw, dict):
        return {}

    def items(key: str) -> list[Any]:
        found = raw.get(key)
        return found if isinstance(found, list) else []

    def ids(value: Any) -> bool:
        return isinstance(value, str) and (value == "" or _ID.fullmatch(value) is not None)

    return {
        "pids": [p for p in items("pids") if type(p) is int and p > 1],
        "groups": [g for g in items("groups") if type(g) is int and g > 1],
        "markers": [m for m in items("markers") if isinstance(m, str) and _MARKER.fullmatch(m)],
        "runs": [
            r
            for r in items("runs")
            if isinstance(r, list) and len(r) == 2 and r[0] and ids(r[0]) and ids(r[1])
        ],
        "below": [f for f in items("below") if isinstance(f, str) and f.startswith("/")],
    }


def runs_below(watched: dict[str, list[Any]], own: Path) -> dict[str, list[Any]]:
    """The runs the state files below the folders named name (each file checked as this one)."""
    runs: list[Any] = []
    for folder in watched["below"]:
        with contextlib.suppress(OSError):
            for path in sorted(Path(folder).rglob(own.name)):
                if path != own:
                    with contextlib.suppress(OSError, ValueError):
                        runs += _checked(json.loads(path.read_text()))["runs"]
    return {"runs": runs}


def reap(watched: dict[str, list[Any]]) -> None:
    """Stop everything named: SIGTERM, a grace, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pgid in watched.get("groups", []):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(pgid), sig)
        for pid in [*watched.get("pids", []), *ray_pids(watched.get("markers", []))]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid), sig)
        if sig == signal.SIGTERM:
            time.sleep(GRACE_S)


def main(argv: list[str]) -> int:
    driver, state = int(argv[0]), Path(argv[1])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while state.exists():
        if not pid_alive(driver):
            with contextlib.suppress(OSError, ValueError):
                watched = _checked(json.loads(state.read_text()))
                recover_runs(watched, state.with_name(".reaper.log"))
                if watched["below"]:  # the runs' drivers go first, with the Ray they run on;
                    reap({**watched, "pids": []})  # then their directories, from Redis
                    recover_runs(runs_below(watched, state), state.with_name(".reaper.log"))
                reap(watched)
            state.unlink(missing_ok=True)
            return 0
        time.sleep(POLL_S)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

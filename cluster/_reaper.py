"""A watchdog that outlives its driver: when the driver dies (even by SIGKILL), it stops what the
driver started (the private redis-server, a local vLLM server, the embedded Ray's processes).

The driver writes what it starts into a small JSON file; the watchdog, a separate process in its
own session, reads it when the driver is gone, runs the commands the driver named to run first
(writing the run directory from Redis while it still answers; each within `BEFORE_S`), stops
every process named there, and exits. A driver that ends normally removes the file and the
watchdog exits on its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

POLL_S = 0.5
GRACE_S = 2.0
BEFORE_S = 120.0
"""The most a command run before reaping may take (then it is killed, and the reaping goes on)."""


class Reaper:
    """The driver's side: start the watchdog, name what it must stop, stop it at the end."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.watched: dict[str, list[Any]] = {"pids": [], "groups": [], "markers": [], "before": []}
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
        """Processes whose command line holds `marker` (the embedded Ray's, by its temp dir)."""
        self.watched["markers"].append(marker)
        self._write()

    def run_before(self, argv: list[str]) -> None:
        """A command to run when the driver has died, before anything is stopped."""
        self.watched["before"].append(argv)
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


def marked_pids(markers: list[str]) -> list[int]:
    """Processes whose command line holds one of `markers` (this process apart)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            if any(marker in cmdline for marker in markers):
                found.append(int(entry.name))
    return found


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


def run_before(watched: dict[str, list[Any]], log: Path) -> None:
    """Run each command named to run before the reaping, each within `BEFORE_S`, what it says
    appended to `log`."""
    for argv in watched.get("before", []):
        with (
            contextlib.suppress(OSError, ValueError, TypeError, subprocess.SubprocessError),
            log.open("ab") as out,
        ):
            subprocess.run(
                [str(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                timeout=BEFORE_S,
                check=False,
            )


def reap(watched: dict[str, list[Any]]) -> None:
    """Stop everything named: SIGTERM, a grace, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pgid in watched.get("groups", []):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(pgid), sig)
        for pid in [*watched.get("pids", []), *marked_pids(watched.get("markers", []))]:
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
                watched = json.loads(state.read_text())
                run_before(watched, state.with_name(".reaper.log"))
                reap(watched)
            state.unlink(missing_ok=True)
            return 0
        time.sleep(POLL_S)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

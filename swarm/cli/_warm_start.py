"""`up` starts the warm lab process (`_warm_server`) and `down` stops it, by its process id."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from ._warm_server import (
    LAB_COMMAND,
    READY_TIMEOUT_S,
    ServerInfo,
    _info_file,
    _live_server,
    code_fingerprint,
    server_info,
)


def start_server(home: Path) -> ServerInfo:
    """Start the lab process (unless one runs the current code already) and wait until it
    serves; its output goes to `home/lab.log`."""
    import subprocess

    from swarmlab.core import ClusterError

    running = server_info(home)
    if running is not None and running.code == code_fingerprint():
        return running
    stop_server(home)
    log = (home / "lab.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "swarmlab.cli", LAB_COMMAND, str(home)],
        stdin=subprocess.DEVNULL,
        cwd=home,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    give_up = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < give_up:
        info = server_info(home)
        if info is not None and info.pid == process.pid:
            return info
        if process.poll() is not None:
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    raise ClusterError(f"the warm lab process did not start; see {home / 'lab.log'}")


def stop_server(home: Path) -> list[int]:
    """Stop the lab process by its process id (SIGTERM, then SIGKILL); its runners end with the
    warm Ray."""
    from swarmlab.cluster import pid_alive

    info = _live_server(home)
    _info_file(home).unlink(missing_ok=True)
    if info is None:
        return []
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, sig)
        give_up = time.monotonic() + wait
        while pid_alive(info.pid) and time.monotonic() < give_up:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(info.pid, os.WNOHANG)
            time.sleep(0.05)
        if not pid_alive(info.pid):
            break
    Path(info.socket).unlink(missing_ok=True)
    return [info.pid]

"""The client side of the warm lab process (`_warm_server`): `swarmlab run` hands it the run."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from ._text import terminal_text
from ._warm_server import (
    ENV_PREFIXES,
    MAX_REQUEST_BYTES,
    REQUEST_TIMEOUT_S,
    Request,
    code_fingerprint,
    server_info,
)


def run_on_server(argv: list[str], home: Path) -> int | None:
    """Hand `swarmlab run ARGV` to the lab process: its exit code, or None when it cannot take
    the run (none, busy, other code): then the caller runs it itself."""
    from swarmlab.cluster import process_age_s

    info = server_info(home)
    if info is None:
        return None
    request = Request(
        argv=argv,
        cwd=os.getcwd(),
        env={k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)},
        code=code_fingerprint(),
        started_boot_s=max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - process_age_s()),
    )
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(REQUEST_TIMEOUT_S)
        conn.connect(info.socket)
        conn.sendall(request.model_dump_json().encode() + b"\n")
        return _follow(conn)
    except OSError:
        return None
    finally:
        conn.close()


def _follow(conn: socket.socket) -> int | None:
    """Print the run's output as it comes; Ctrl-C, wherever it lands, is sent on as an
    interrupt (twice: this command ends at once, and the run ends as interrupted in the lab
    process)."""
    following = _Following(conn)
    while True:
        try:
            ended, code = following.step()
        except KeyboardInterrupt:
            if following.interrupted:  # Ctrl-C twice: stop waiting (the lab process sees us go)
                return 130
            following.interrupted = True
            if following.accepted:  # else it goes when the run begins
                _interrupt(conn)
            continue
        if ended:
            return code


class _Following:
    """A run handed to the lab process, as this command follows it frame by frame."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn, self.reader = conn, conn.makefile("rb")
        self.accepted = self.interrupted = False

    def step(self) -> tuple[bool, int | None]:
        """Read and act on one frame: whether the command ends here, and its exit code (None:
        the run was not taken, and this command runs it)."""
        try:
            frame = _read_frame(self.reader)
        except TimeoutError:
            return (False, None) if self.accepted else (True, None)
        if frame is None:
            if not self.accepted:
                return True, None  # not taken: this command runs it
            gone = "swarmlab: the warm lab process went away mid-run (see its lab.log)"
            print(gone, file=sys.stderr)
            return True, 1  # never run a second time here
        if frame.get("accepted"):
            self.accepted = True
            self.conn.settimeout(None)
            if self.interrupted:
                _interrupt(self.conn)
            return False, None
        return _shown(frame)


def _read_frame(reader: Any) -> dict[str, Any] | None:
    """The next frame; None when the connection ended or sent something that is not one."""
    try:
        line = reader.readline(MAX_REQUEST_BYTES)
        frame = json.loads(line) if line else None
    except TimeoutError:
        raise
    except (ValueError, OSError):
        return None
    return frame if isinstance(frame, dict) else None


def _interrupt(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(b'{"interrupt": true}\n')


def _shown(frame: dict[str, Any]) -> tuple[bool, int | None]:
    """Show an output frame (False, None); else (True, the exit code, or None when the run was
    not taken: busy, stale code, refused)."""
    for key, stream in (("o", sys.stdout), ("e", sys.stderr)):
        if isinstance(frame.get(key), str):
            stream.write(frame[key])
            stream.flush()
            return False, None
    if isinstance(frame.get("exit"), int):
        return True, frame["exit"]
    why = {
        "busy": "is busy with another run",
        "stale": "runs older code than this swarmlab (`swarmlab up` starts it afresh)",
    }
    said = next((text for key, text in why.items() if frame.get(key)), None)
    if "error" in frame:
        said = f"refused the run ({str(frame['error'])[:300]})"
    if said:
        print(
            terminal_text(f"swarmlab: the warm lab process {said}: running here"), file=sys.stderr
        )
    return True, None

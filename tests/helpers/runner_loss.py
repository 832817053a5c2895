"""Runner loss, provoked for real: the processes of a test's Ray instance (its runner actors and
their sandbox workers) found by their command lines, a run driven in a thread while the test
kills them, and waits with a bound."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from swarmlab.records import RunResult


def in_thread(target: Callable[[], RunResult]) -> tuple[threading.Thread, dict[str, Any]]:
    holder: dict[str, Any] = {}

    def go() -> None:
        try:
            holder["result"] = target()
        except BaseException as exc:  # handed to the test
            holder["error"] = exc

    thread = threading.Thread(target=go)
    thread.start()
    return thread, holder


def until(check: Callable[[], bool], timeout: float = 90, what: str = "") -> None:
    give_up = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < give_up, f"gave up waiting for {what}"
        time.sleep(0.1)


def pids_with(marker: str) -> list[int]:
    """Processes whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline:
                found.append(int(entry.name))
    return found


def runner_pids(temp_dir: object) -> list[int]:
    """The runner actors' processes of the Ray instance in `temp_dir` (its raylet's children)."""
    raylets = {p for p in pids_with(str(temp_dir)) if b"raylet" in cmdline_of(p)}
    return [p for p in pids_with("ray::RunnerCore") if parent_of(p) in raylets]


def descendants(pids: list[int]) -> list[int]:
    """Every process below `pids` (the runners' sandbox workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            children.setdefault(parent_of(int(entry.name)), []).append(int(entry.name))
    found: list[int] = []
    todo = list(pids)
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def cmdline_of(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def parent_of(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def blackboard_keys(redis_url: str, run_id: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.hlen(f"swarmlab:run:{run_id}:bb"))
    finally:
        client.close()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"

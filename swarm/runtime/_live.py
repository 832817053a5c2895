"""Where live runs can be found from another terminal: a small registry file per run.

A run on a private redis-server listens on a random port; `swarmlab kill RUN_ID` and
`swarmlab status` read the port here.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swarmlab.cluster import pid_alive
from swarmlab.core import MAX_SMALL_BYTES, SwarmlabError, read_json, write_text
from swarmlab.spec import is_redis_url, is_run_id, state_root

FORGOTTEN_AFTER_S = 24 * 3600.0
"""A dead driver's entry this old is forgotten by listing (its recovery ran long ago, or never)."""


class LiveEntry(BaseModel):
    """One registry file, as `register_run` writes it."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(description="The run's id.")
    redis_url: str = Field(description="Where the run's state lives.")
    out_dir: str = Field(description="The run directory.")
    pid: int = Field(ge=1, le=2**22, description="The driver's process id.")


def registry_dir() -> Path:
    return state_root() / "live"


def register_run(run_id: str, redis_url: str, out_dir: Path) -> Path:
    path = registry_dir() / f"{run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    info = LiveEntry(run_id=run_id, redis_url=redis_url, out_dir=str(out_dir), pid=os.getpid())
    write_text(path, info.model_dump_json())
    return path


def unregister_run(run_id: str) -> None:
    if is_run_id(run_id):  # a run id names a file in the registry, never a path
        (registry_dir() / f"{run_id}.json").unlink(missing_ok=True)


def live_entry(path: Path) -> LiveEntry | None:
    """A registry file as `register_run` writes it (read through the lab's one reader: a run
    id, a Redis URL, a process id), or None: anyone may write into the registry."""
    try:
        entry = LiveEntry.model_validate(read_json(path, max_bytes=MAX_SMALL_BYTES))
    except (SwarmlabError, ValidationError):
        return None
    if not is_run_id(entry.run_id) or not is_redis_url(entry.redis_url):
        return None
    return entry


def entry_of(run_id: str) -> LiveEntry | None:
    """The registry's entry for `run_id`, or None (none, not one, or not a run id)."""
    if not is_run_id(run_id):
        return None
    entry = live_entry(registry_dir() / f"{run_id}.json")
    return entry if entry is not None and entry.run_id == run_id else None


def registered_runs() -> list[dict[str, Any]]:
    """Runs registered by live drivers. The entry of a driver that died is the watchdog's: its
    recovery reads it (within two minutes) and removes it; listing removes only an entry older
    than `FORGOTTEN_AFTER_S`, whose recovery never came.

    Anyone may write into the registry: a file that is not an entry `register_run` would
    write (through the lab's one reader, as a `LiveEntry` with a run id and a Redis URL) is
    not a live run, and is left alone.
    """
    out = []
    for path in sorted(registry_dir().glob("*.json")):
        entry = live_entry(path)
        if entry is None:
            continue
        if pid_alive(entry.pid):
            out.append(entry.model_dump())
        elif _age_s(path) > FORGOTTEN_AFTER_S:  # its watchdog's recovery is long over
            path.unlink(missing_ok=True)
    return out


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.lstat().st_mtime
    except OSError:
        return 0.0

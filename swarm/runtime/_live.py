"""Where live runs can be found from another terminal: a small registry file per run.

A run on a private redis-server listens on a random port; `swarmlab kill RUN_ID` and
`swarmlab status` read the port here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from swarmlab.cluster import pid_alive


def registry_dir() -> Path:
    base = os.environ.get("SWARMLAB_STATE_DIR") or os.environ.get("XDG_STATE_HOME")
    root = Path(base) if base else Path.home() / ".local" / "state"
    return root / "swarmlab" / "live" if not os.environ.get("SWARMLAB_STATE_DIR") else root / "live"


def register_run(run_id: str, redis_url: str, out_dir: Path) -> Path:
    path = registry_dir() / f"{run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {"run_id": run_id, "redis_url": redis_url, "out_dir": str(out_dir), "pid": os.getpid()}
    path.write_text(json.dumps(info))
    return path


def unregister_run(run_id: str) -> None:
    (registry_dir() / f"{run_id}.json").unlink(missing_ok=True)


def registered_runs() -> list[dict[str, Any]]:
    """Runs registered by live drivers; entries of drivers that died are dropped."""
    out = []
    for path in sorted(registry_dir().glob("*.json")):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if pid_alive(int(info.get("pid", 0))):
            out.append(info)
        else:
            path.unlink(missing_ok=True)
    return out

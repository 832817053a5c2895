"""The run directory of a run whose driver died (SIGKILL, the kernel's out-of-memory killer):
written from the run's Redis by the driver's watchdog before it stops what the driver started.

    python -m swarmlab.runtime._recover RUN_ID [SWEEP_ID]

The run's Redis is found in the live-run registry (`_live`), never on a command line: a URL may
hold a password. The run is stopped as `swarmlab kill` stops it, its runners are given a moment
to leave what they computed, and the directory is written as a stopped run's is: every program
admitted, those not ended ended as killed from their latest state, the events of the stream,
status `failed` with the reason. What only the driver held is missing: the root dialogue (for a
run whose root came from the model), and the spans of the driver's own process (the run's span
and those of the programs the stop ended); the runners' spans are kept.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from swarmlab.cluster import pid_alive
from swarmlab.core import SwarmlabError
from swarmlab.records import RunDir, RunResult
from swarmlab.spec import ExperimentSpec

from ._coordinator import Coordinator
from ._finish import finish_run
from ._live import entry_of, unregister_run
from ._mirror import Mirror
from ._progress import silent
from ._state import RunState

DRIVER_GONE_S = 15.0
"""How long the run's driver may take to go once the watchdog has stopped what it ran on."""
SETTLE_S = 5.0
"""How long the runners may take to leave what they compute once the run is stopped."""


def driver_died(pid: int) -> str:
    return (
        f"the driver (pid {pid}) died before the run ended; its watchdog wrote this record "
        "from Redis"
    )


class _Orphan(RunState):
    """A run as its meta in Redis describes it, stopped now."""

    def __init__(self, run_id: str, meta: dict[str, str], reason: str) -> None:
        self.spec = ExperimentSpec.model_validate_json(meta["spec"])
        self.run_id = run_id
        self.out = Path(meta["out_dir"])
        self.started = float(meta.get("started_at") or time.time())
        self.status = "failed"
        self.ended_because = reason
        self.progress = silent()
        self.mirror = None
        self.stopped_at = time.time()
        deadline_ms = meta.get("deadline_ms")
        wall = self.spec.caps.wall_clock_s
        self.tree_started = int(deadline_ms) / 1000 - wall if deadline_ms else None
        self.dialogue = None
        self.root_from_file = False
        self.telemetry = None
        self.workflow = None
        self.runners_lost = 0
        self.recovered = True


async def recover_run(
    redis_url: str, run_id: str, sweep_id: str | None, reason: str
) -> RunResult | None:
    """Stop the run and write its directory from Redis; None when there is nothing to do (the
    run ended, or its directory is written)."""
    coord = Coordinator(redis_url, run_id, sweep_id)
    try:
        meta = await coord.meta()
        if meta.get("status") not in ("starting", "running") or "spec" not in meta:
            return None
        run = _Orphan(run_id, meta, reason)
        if RunDir(run.out).file("summary.json").exists():
            return None
        if not await coord.claim_recovery(str(os.getpid())):
            return None  # another watchdog writes it
        await coord.kill(reason)
        await _settled(coord)
        run.mirror = Mirror(coord)
        result = await finish_run(run, coord)
        await coord.delete_run()
        return result
    finally:
        await coord.close()


async def _settled(coord: Coordinator) -> None:
    """Wait (at most `SETTLE_S`) for no program to be computing on a runner."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        states = await coord.states()
        if not any(n > 0 for state, n in states.items() if state.startswith("run:")):
            return
        await asyncio.sleep(0.1)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m swarmlab.runtime._recover RUN_ID [SWEEP_ID]", file=sys.stderr)
        return 2
    run_id, sweep_id = argv[0], (argv[1] if len(argv) > 1 and argv[1] else None)
    entry = entry_of(run_id)
    if entry is None:
        print(f"recover {run_id[:100]!r}: no live-run entry for it", file=sys.stderr)
        return 1
    deadline = time.monotonic() + DRIVER_GONE_S  # a cell's driver is a Ray worker: it goes
    while pid_alive(entry.pid) and time.monotonic() < deadline:  # once its raylet has gone
        time.sleep(0.2)
    if pid_alive(entry.pid):
        print(f"recover {run_id}: its driver (pid {entry.pid}) is alive", file=sys.stderr)
        return 1
    try:
        result = asyncio.run(recover_run(entry.redis_url, run_id, sweep_id, driver_died(entry.pid)))
    except SwarmlabError as exc:
        print(f"recover {run_id}: {str(exc)[:300]}", file=sys.stderr)
        return 1
    finally:
        unregister_run(run_id)
    if result is not None:
        print(f"recover {run_id}: wrote {result.out_dir} ({len(result.programs)} programs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

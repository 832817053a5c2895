"""`wait()`: until every program named has ended, or the timeout, whichever is first."""

from __future__ import annotations

import asyncio
import time

from swarmlab.core import BadCall, RunKilled
from swarmlab.records import TERMINAL, ProgramRecord

from ._coordinator import Coordinator

FIRST_POLL_S = 0.02
MAX_POLL_S = 0.25


async def wait_for_programs(
    coord: Coordinator, ids: list[str], timeout_s: float
) -> tuple[list[ProgramRecord], bool]:
    """The programs' records when all ended (True) or at the timeout (False)."""
    give_up = time.monotonic() + max(0.0, timeout_s)
    pause = FIRST_POLL_S
    while True:
        records = await coord.get_programs(ids)
        missing = [i for i, r in zip(ids, records, strict=True) if r is None]
        if missing:
            raise BadCall(f"wait(): no program with id {missing[0]!r}")
        found = [r for r in records if r is not None]
        done = all(r.status in TERMINAL for r in found)
        if done or time.monotonic() >= give_up:
            return found, done
        if await coord.kill_reason():
            raise RunKilled("the run was stopped")
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, MAX_POLL_S)

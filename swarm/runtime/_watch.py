"""The driver's watch over a growing tree: progress, the run's end, and a stop when it must.

A run ends when every admitted program has ended (quiescent), when the wall clock runs out
(halted), when a tripwire halts it, when it is killed (`swarmlab kill`, Ctrl-C), or when Redis is
gone (failed). When every live program waits on another and none can move, the watch says so
once; the run then stays as it is until the wall clock or a kill ends it. On a stop, the runners
stop what they compute at once; parked programs are simply never resumed; every program not yet
ended ends as killed at the moment the stop was seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

from swarmlab.core import CoordinatorUnavailable

from ._coordinator import Coordinator
from ._pool import RunnerPool
from ._progress import Snapshot
from ._scheduler import Scheduler
from ._state import RunState

POLL_S = 0.2
STILL_POLLS = 5
"""Polls with nothing computing, queued or calling a model before the run is said to be stuck."""


async def watch(run: RunState, coord: Coordinator, sched: Scheduler, pool: RunnerPool) -> None:
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, interrupted.set)
    assert run.mirror is not None
    following = run.mirror.start_following()
    try:
        reason = await _until_end(run, coord, sched, interrupted)
        if reason is not None:
            await _stop(run, coord, pool, reason)
        with contextlib.suppress(Exception):
            await pool.flush()
    finally:
        run.mirror.stop_following()
        with contextlib.suppress(CoordinatorUnavailable):
            await following
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)


async def _until_end(
    run: RunState, coord: Coordinator, sched: Scheduler, interrupted: asyncio.Event
) -> str | None:
    """Watch until the run ends by itself (None) or must be stopped (the reason)."""
    wall = run.spec.caps.wall_clock_s
    still = 0
    assert run.mirror is not None
    while True:
        if interrupted.is_set():
            await coord.kill("interrupted (Ctrl-C)")
        reason = await coord.kill_reason()
        clock_from = run.tree_started or run.started
        if reason is None and time.time() - clock_from > wall:
            await coord.kill("wall_clock_s")
            reason = "wall_clock_s"
        usage = await coord.usage()
        states = await sched.states()
        await run.mirror.catch_up()
        run.progress.update(
            Snapshot(
                elapsed_s=time.time() - clock_from,
                counts=await coord.counts(),
                usage=usage,
                states=states,
                admission=run.spec.admission,
            )
        )
        if reason is not None:
            return reason
        live = usage["live"]["used"]
        if live <= 0:
            run.ended_because = "tree quiescent: every program ended"
            return None
        moving = states.get("computing", 0) + states.get("waiting", 0) + states.get("calling", 0)
        still = 0 if moving > 0 else still + 1
        if still == STILL_POLLS:
            run.progress.note(
                f"every live program ({int(live)}) waits on another and none can move: the run "
                "stays as it is until the wall clock or `swarmlab kill` ends it"
            )
        await asyncio.sleep(POLL_S)


async def _stop(run: RunState, coord: Coordinator, pool: RunnerPool, reason: str) -> None:
    """Stop every program now: the ones computing on runners, and (in the record) the rest."""
    run.stopped_at = time.time()
    if reason == "wall_clock_s":
        run.status = "halted"
        run.ended_because = f"cap wall_clock_s reached ({run.spec.caps.wall_clock_s:g} s)"
    elif reason.startswith("tripwire "):
        run.status, run.ended_because = "halted", reason
    else:
        run.status = "killed"
        run.ended_because = f"killed: {reason}"
    with contextlib.suppress(Exception):
        await asyncio.wait_for(pool.stop_all(run.ended_because), 3.0)
    with contextlib.suppress(CoordinatorUnavailable):
        assert run.mirror is not None
        await run.mirror.catch_up()

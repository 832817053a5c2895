"""The driver's watch over a growing tree: progress, the run's end, and a stop when it must.

A run ends when every admitted program has ended (quiescent), when the wall clock runs out
(halted), when a tripwire halts it, when it is killed (`swarmlab kill`, Ctrl-C), when Redis is
gone (failed), or when no runner has served for the pool's bound (failed: every runner lost and
none placed again). When every live program waits on another and none can move, the watch says
so once; the run then stays as it is until the wall clock or a kill ends it. On a stop, the
runners stop what they compute at once; parked programs are simply never resumed; every program
not yet ended ends as killed at the moment the stop was seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any

from swarmlab.core import CoordinatorUnavailable

from ._coordinator import Coordinator
from ._pool import RunnerPool
from ._progress import Snapshot
from ._scheduler import Scheduler
from ._state import RunState

POLL_S = 0.2
NO_RUNNER = "no runner left"
STILL_POLLS = 5
"""Polls with nothing computing, queued or calling a model before the run is said to be stuck."""


class CtrlC:
    """Ctrl-C over a run's whole life, from the task that runs it. While the run starts, a press
    cancels the start: the run ends killed, its directory written. Once the tree grows
    (`growing`), the watch stops the run at its next poll. While the record is written, a
    second press ends this process at once (KeyboardInterrupt), and the run's watchdog writes
    its directory; a first changes nothing.
    Outside the main thread (a run a test starts in a thread) the signal is not the run's, and
    nothing is taken."""

    def __init__(self) -> None:
        self.pressed = asyncio.Event()
        self.cancelled_start = False
        self._start: asyncio.Task[Any] | None = asyncio.current_task()
        self._own = self._ending = False

    def __enter__(self) -> CtrlC:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._press)
            self._own = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._own:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)

    def _press(self) -> None:
        if self._ending and self.pressed.is_set():
            raise KeyboardInterrupt  # out of the event loop: the process ends here
        self.pressed.set()
        if self._start is not None:
            self._start.cancel()
            self.cancelled_start, self._start = True, None

    def growing(self) -> asyncio.Event:
        """The tree grows: a press is now the watch's to act on (this event)."""
        self._start = None
        return self.pressed

    def ending(self) -> None:
        """The record is being written: a second press ends the process (see the class)."""
        self._start, self._ending = None, True


async def watch(
    run: RunState,
    coord: Coordinator,
    sched: Scheduler,
    pool: RunnerPool,
    interrupted: asyncio.Event,
) -> None:
    assert run.mirror is not None
    following = run.mirror.start_following()
    try:
        reason = await _until_end(run, coord, sched, pool, interrupted)
        if reason is not None:
            await _stop(run, coord, pool, reason)
        with contextlib.suppress(Exception):
            if pool.live:  # a runner that is gone or never placed would only time out
                await pool.flush()
                run.runners_flushed = True
    finally:
        run.mirror.stop_following()
        with contextlib.suppress(CoordinatorUnavailable):
            await following


async def _until_end(
    run: RunState,
    coord: Coordinator,
    sched: Scheduler,
    pool: RunnerPool,
    interrupted: asyncio.Event,
) -> str | None:
    """Watch until the run ends by itself (None) or must be stopped (the reason)."""
    wall = run.spec.caps.wall_clock_s
    still = 0
    runnerless = _Runnerless(run, pool)
    assert run.mirror is not None
    while True:
        # Every program ended by itself: a Ctrl-C that comes now stops nothing, and the run is
        # quiescent, not killed (the usage is read before it acts). Not so the wall clock:
        # Redis refuses calls once it has run out, so programs may have ended because of it.
        usage = run.usage_seen = await coord.usage()
        live = usage["live"]["used"]
        if interrupted.is_set() and live > 0:
            await coord.kill("interrupted (Ctrl-C)")
        reason = await coord.kill_reason()
        clock_from = run.tree_started or run.started
        if reason is None and time.time() - clock_from > wall:
            await coord.kill("wall_clock_s")
            reason = "wall_clock_s"
        if reason is None and (reason := runnerless.check()) is not None:
            await coord.kill(reason)
        states = await sched.states()
        await run.mirror.catch_up()
        run.progress.update(
            Snapshot(
                elapsed_s=time.time() - clock_from,
                counts=await coord.counts(),
                usage=usage,
                states=states,
                admission=run.spec.admission,
                runners=(len(pool.live), len(pool.actors)),
                runnerless_s=pool.runnerless_s(),
                runnerless_limit_s=pool.no_runner_wait_s,
            )
        )
        if reason is not None:
            return reason
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


class _Runnerless:
    """The run's wait for a runner when none serves: said once, and bounded."""

    def __init__(self, run: RunState, pool: RunnerPool) -> None:
        self.run, self.pool, self.noted = run, pool, False

    def check(self) -> str | None:
        """The reason to end the run once no runner has served for the bound, else None."""
        waited, bound = self.pool.runnerless_s(), self.pool.no_runner_wait_s
        if waited is None:
            self.noted = False
            return None
        lost = len(self.pool.actors)
        if not self.noted:
            self.noted = True
            self.run.progress.note(
                f"no runner serves: all {lost} were lost and none is placed again yet (an actor "
                f"out of restarts, or no node with the runner resource); the run waits up to "
                f"{bound:g} s for one, then fails"
            )
        if waited < bound:
            return None
        return f"{NO_RUNNER}: all {lost} runners were lost and none was placed again in {bound:g} s"


async def _stop(run: RunState, coord: Coordinator, pool: RunnerPool, reason: str) -> None:
    """Stop every program now: the ones computing on runners, and (in the record) the rest."""
    run.stopped_at = time.time()
    if reason.startswith(NO_RUNNER):
        run.status, run.ended_because = "failed", reason
    elif reason == "wall_clock_s":
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

"""A run whose every program has ended by itself is quiescent though a Ctrl-C comes at the
same poll: it stops nothing, so the record does not say `killed`. The wall clock is not so:
Redis refuses calls once it has run out, so programs may have ended because of it (`halted`).
Before, the watch acted on a Ctrl-C before it read how many programs were live (1 run of 13
stopped by Ctrl-C just after its tree ended was recorded as killed).

The property drives the watch's loop over any order of the two: live programs, a Ctrl-C, the
wall clock, a kill already set.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.runtime import _watch


class _Coord:
    def __init__(self, lives: list[int], killed: str | None) -> None:
        self.lives, self.killed = lives, killed
        self.kills: list[str] = []

    async def usage(self) -> dict[str, Any]:
        live = self.lives.pop(0) if len(self.lives) > 1 else self.lives[0]
        return {"live": {"used": live}}

    async def kill(self, reason: str) -> None:
        self.kills.append(reason)
        self.killed = self.killed or reason

    async def kill_reason(self) -> str | None:
        return self.killed

    async def counts(self) -> dict[str, int]:
        return {}


def _until_end(lives: list[int], ctrl_c: bool, over_wall: bool, killed: str | None) -> Any:
    coord = _Coord(lives, killed)
    nothing = SimpleNamespace(catch_up=lambda: asyncio.sleep(0))
    progress = SimpleNamespace(update=lambda snap: None, note=lambda text: None)
    spec = SimpleNamespace(caps=SimpleNamespace(wall_clock_s=60.0), admission="queue")
    started = time.time() - (3600 if over_wall else 0)
    run = SimpleNamespace(
        spec=spec, mirror=nothing, progress=progress, tree_started=started, started=started
    )
    run.ended_because = ""
    pool = SimpleNamespace(live=[1], actors=[1], runnerless_s=lambda: None, no_runner_wait_s=30.0)
    sched = SimpleNamespace(states=lambda: asyncio.sleep(0, {"computing": 1}))
    interrupted = asyncio.Event()
    if ctrl_c:
        interrupted.set()

    async def go() -> str | None:
        return await _watch._until_end(
            cast(Any, run), cast(Any, coord), cast(Any, sched), cast(Any, pool), interrupted
        )

    return asyncio.run(go()), coord, run


@settings(max_examples=30, deadline=None)
@given(
    ctrl_c=st.booleans(),
    over_wall=st.booleans(),
    killed=st.sampled_from([None, "by swarmlab kill"]),
    live=st.integers(0, 3),
)
def test_a_stop_stops_only_a_tree_with_live_programs(
    ctrl_c: bool, over_wall: bool, killed: str | None, live: int
) -> None:
    reason, coord, run = _until_end([live, 0], ctrl_c, over_wall, killed)  # then it ends
    if killed:  # set before the watch saw anything: it stands
        assert reason == killed
    elif ctrl_c and live > 0:
        assert reason == "interrupted (Ctrl-C)"
    elif over_wall:  # Redis refuses calls past it: programs may have ended because of it
        assert reason == "wall_clock_s"
    else:  # quiescent now (a Ctrl-C stops nothing), or at the next poll
        assert reason is None
        assert coord.kills == []
        assert run.ended_because == "tree quiescent: every program ended"

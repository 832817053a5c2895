"""One bound per run on the requests in flight at the model server, shared by all its runners.

Each runner process also has the backend's own bound (`max_in_flight`, per endpoint), but a run
has several runners: together they could send the server more than it takes at once, and the
rest would queue there, out of sight. The run's bound (`model_in_flight`) is kept in Redis
(`lua/slot.lua`): a call takes a slot before it is sent and gives it back when it is answered
(the backend's own retries happen inside the slot). A slot is a lease, renewed while its call
runs: the slots of a runner that died come back within `LEASE_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar

from swarmlab.core import SpecError
from swarmlab.spec import env_value

from ._scheduler import Scheduler
from ._transitions import SlotArgs

T = TypeVar("T")

DEFAULT_IN_FLIGHT = 64
"""The bound when neither the spec nor `SWARMLAB_MODEL_IN_FLIGHT` sets one."""
LEASE_S = 30.0
RENEW_S = 10.0
WAIT_MIN_S = 0.005
WAIT_MAX_S = 0.1
"""A call that finds every slot taken asks again after a growing pause, at most this long."""


def in_flight_bound(given: int | None) -> int:
    """The run's bound: the spec's `model_in_flight`, else `SWARMLAB_MODEL_IN_FLIGHT` (set on a
    cluster to the model server's capacity), else DEFAULT_IN_FLIGHT."""
    if given is not None:
        return given
    text = env_value("SWARMLAB_MODEL_IN_FLIGHT") or ""
    if not text:
        return DEFAULT_IN_FLIGHT
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise SpecError(
            f"SWARMLAB_MODEL_IN_FLIGHT: {text[:40]!r} is not a whole number from 1 to 100000"
        )
    return int(text)


class ModelGate:
    """The run's in-flight bound as one runner takes part in it."""

    def __init__(self, sched: Scheduler, bound: int) -> None:
        self.sched = sched
        self.bound = bound
        self._owner = secrets.token_hex(6)
        self._taken = 0

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """Make `call` holding one of the run's slots."""
        self._taken += 1
        token = f"{self._owner}:{self._taken}"
        await self._take(token)
        renew = asyncio.get_running_loop().create_task(self._renew(token))
        try:
            return await call()
        finally:
            renew.cancel()
            with contextlib.suppress(Exception):  # a slot not given back expires with its lease
                await self._slot("give", token)

    async def _take(self, token: str) -> None:
        pause = WAIT_MIN_S
        while (await self._slot("take", token)) != "ok":
            await asyncio.sleep(pause * random.uniform(0.5, 1.0))
            pause = min(WAIT_MAX_S, pause * 2)

    async def _renew(self, token: str) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            with contextlib.suppress(Exception):
                await self._slot("renew", token)

    async def _slot(self, op: str, token: str) -> str:
        reply = await self.sched.run(SlotArgs(op, token, self.bound, int(LEASE_S * 1000)))
        return reply.kind

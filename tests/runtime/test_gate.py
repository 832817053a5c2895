"""A program whose turn has not come keeps its worker while its runner has one free, and parks
at the gate (giving the worker back) when the runner needs it."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any, cast

from swarmlab.records import ProgramRecord
from swarmlab.runtime._program import GATE_GRACE_S, HostState, ProgramHost


def host(free: list[bool]) -> ProgramHost:
    runner = SimpleNamespace(worker_free=lambda: free[0])
    env = cast(Any, SimpleNamespace(runner=runner, scheduler=None))
    return ProgramHost(ProgramRecord(id="p0", code="1"), env, HostState())


def test_a_waiting_program_keeps_a_worker_nobody_wants_until_its_turn() -> None:
    async def go() -> tuple[bool, float]:
        signal = asyncio.Event()
        asyncio.get_running_loop().call_later(6 * GATE_GRACE_S, signal.set)
        began = time.monotonic()
        asked_again = await host([True])._await_turn(signal)
        return asked_again, time.monotonic() - began

    asked_again, waited = asyncio.run(go())
    assert asked_again  # it asks for its turn again, without having parked
    assert waited >= 5 * GATE_GRACE_S


def test_a_waiting_program_parks_when_its_runner_needs_the_worker() -> None:
    async def go() -> tuple[bool, float]:
        free = [True]
        asyncio.get_running_loop().call_later(3 * GATE_GRACE_S, lambda: free.__setitem__(0, False))
        began = time.monotonic()
        asked_again = await host(free)._await_turn(asyncio.Event())
        return asked_again, time.monotonic() - began

    asked_again, waited = asyncio.run(go())
    assert not asked_again  # it parks at the gate
    assert waited < 1.0

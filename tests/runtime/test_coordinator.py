"""Caps held in Redis are never exceeded, even with many clients racing for the last units."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from swarmlab import CapExceeded, Caps, CoordinatorUnavailable
from swarmlab.core import RunKilled
from swarmlab.runtime import Coordinator

RACERS = 96


def fresh(url: str, **caps: Any) -> tuple[str, Callable[[], Coordinator]]:
    run_id = "t-" + secrets.token_hex(4)
    return run_id, lambda: Coordinator(url, run_id)


async def init(url: str, **caps: Any) -> tuple[Coordinator, list[Coordinator]]:
    """A coordinator for the run and four more clients, like four runners."""
    _, make = fresh(url)
    main = make()
    defaults = dict(programs=1000, depth=50, children=1000, concurrent=1000)
    await main.init_run(Caps(**(defaults | caps)), {"status": "running"})
    return main, [make() for _ in range(4)]


async def race(clients: list[Coordinator], attempt: Callable[[Coordinator], Awaitable[Any]]) -> int:
    """Start RACERS attempts at once over the clients; return how many succeeded."""

    async def one(i: int) -> bool:
        try:
            await attempt(clients[i % len(clients)])
            return True
        except CapExceeded:
            return False

    results = await asyncio.gather(*(one(i) for i in range(RACERS)))
    return sum(results)


async def close(main: Coordinator, clients: list[Coordinator]) -> None:
    await main.delete_run()
    for c in [main, *clients]:
        await c.close()


def test_programs_cap_holds_under_a_race(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url, programs=10)
        won = await race(clients, lambda c: c.admit("p0", 1))
        usage = await main.usage()
        assert won == 10
        assert usage["programs"]["used"] == 10
        assert usage["programs"]["denied"] == RACERS - 10
        await close(main, clients)

    asyncio.run(go())


def test_children_and_concurrency_caps_hold_under_a_race(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url, children=7)
        assert await race(clients, lambda c: c.admit("p0", 1)) == 7
        assert (await main.usage())["children"]["used"] == 7
        await close(main, clients)

        main, clients = await init(redis_url, concurrent=5)
        assert await race(clients, lambda c: c.admit(None, 0)) == 5
        await main.release_program()
        assert await race(clients, lambda c: c.admit(None, 0)) == 1
        usage = await main.usage()
        assert usage["concurrent"]["used"] == 5  # the peak, never above the limit
        assert usage["live"]["used"] == 5
        await close(main, clients)

    asyncio.run(go())


def test_depth_cap_refuses_deeper_programs(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url, depth=2)
        await main.admit("p0", 2)
        with pytest.raises(CapExceeded, match=r"CapExceeded\(depth\)"):
            await main.admit("p0.1", 3)
        assert (await main.usage())["depth"] == {"limit": 2.0, "used": 2.0, "denied": 1.0}
        await close(main, clients)

    asyncio.run(go())


def test_token_reservations_never_pass_the_limit(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url, tokens=1000, model_calls=1000)
        won = await race(clients, lambda c: c.reserve(model_calls=1, tokens=100))
        assert won == 10
        await main.settle("tokens", -60)  # a call used 40 of its 100
        assert await race(clients, lambda c: c.reserve(model_calls=1, tokens=100)) == 0
        assert await race(clients, lambda c: c.reserve(model_calls=1, tokens=30)) == 2
        usage = await main.usage()
        assert usage["tokens"]["used"] == 1000
        assert usage["model_calls"]["used"] == 12
        await close(main, clients)

    asyncio.run(go())


def test_a_refused_multi_cap_reservation_charges_nothing(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url, tokens=50, model_calls=10)
        with pytest.raises(CapExceeded, match="tokens"):
            await main.reserve(model_calls=1, tokens=51)
        usage = await main.usage()
        assert usage["model_calls"]["used"] == 0
        assert usage["tokens"]["used"] == 0
        await close(main, clients)

    asyncio.run(go())


def test_blackboard_bytes_hold_under_a_race(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url, blackboard_bytes=1000)
        value = '"' + "x" * 94 + '"'  # 96 bytes + a 4-byte key = 100 each

        async def put(c: Coordinator) -> None:
            await c.bb_put(f"k{secrets.token_hex(1)}{secrets.randbelow(10)}", value, "p0")

        await race(clients, put)
        usage = await main.usage()
        stored = await main.blackboard()
        assert usage["blackboard_bytes"]["used"] <= 1000
        assert usage["blackboard_bytes"]["used"] == sum(len(k) + 96 for k in stored)
        await close(main, clients)

    asyncio.run(go())


def test_a_killed_run_refuses_everything(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url)
        assert await main.kill("test") is True
        assert await main.kill("again") is False
        for attempt in (
            lambda: clients[0].admit("p0", 1),
            lambda: clients[1].reserve(tokens=1),
            lambda: clients[2].bb_put("k", "1", "p0"),
        ):
            with pytest.raises(RunKilled):
                await attempt()
        assert await main.kill_reason() == "test"
        await close(main, clients)

    asyncio.run(go())


def test_the_wall_clock_cap_refuses_after_the_deadline(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url, wall_clock_s=0.2)
        await main.reserve(tokens=1)
        await asyncio.sleep(0.35)
        with pytest.raises(CapExceeded, match="wall_clock_s"):
            await main.reserve(tokens=1)
        await close(main, clients)

    asyncio.run(go())


def test_an_unreachable_coordinator_fails_closed(closed_port: int) -> None:
    async def go() -> None:
        coord = Coordinator(f"redis://127.0.0.1:{closed_port}/0", "nowhere")
        for attempt in (coord.ping, lambda: coord.reserve(tokens=1), lambda: coord.admit(None, 0)):
            with pytest.raises(CoordinatorUnavailable, match=str(closed_port)):
                await attempt()
        await coord.close()

    asyncio.run(go())


def test_a_sweep_cap_holds_across_the_runs_of_the_sweep(redis_url: str) -> None:
    from swarmlab.runtime import init_sweep, sweep_usage

    async def go() -> None:
        sweep = "s-" + secrets.token_hex(4)
        await init_sweep(redis_url, sweep, {"tokens": 1000, "programs": 5}, {"tokens": 200})
        runs = []
        for _ in range(3):  # three runs of the sweep, each with room for more on its own
            run_id = "t-" + secrets.token_hex(4)
            coord = Coordinator(redis_url, run_id, sweep_id=sweep)
            await coord.init_run(Caps(tokens=10_000, programs=100), {"status": "running"})
            runs.append(coord)
        won = await race(runs, lambda c: c.reserve(model_calls=1, tokens=100))
        assert won == 8  # 200 already used by finished runs + 8 x 100 = the sweep's 1000
        assert await race(runs, lambda c: c.admit(None, 0)) == 5
        usage = await sweep_usage(redis_url, sweep)
        assert usage == {
            "tokens": {"limit": 1000, "used": 1000},
            "programs": {"limit": 5, "used": 5},
        }
        with pytest.raises(CapExceeded, match=r"sweep\.tokens"):
            await runs[0].reserve(tokens=1)
        for coord in runs:
            await coord.delete_run()
            await coord.close()

    asyncio.run(go())

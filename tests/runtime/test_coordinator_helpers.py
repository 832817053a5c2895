"""The coordinator's one-shot helpers (a sweep's caps, the live runs) fail closed the way the
run's coordinator does, and read what a shared Redis holds as hostile; a runner whose channels
fail says so in its log before it stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlab import CoordinatorUnavailable, SpecError
from swarmlab.runtime import init_sweep, live_runs, sweep_usage
from swarmlab.runtime._coordinator import TelemetrySink, sweep_keys
from swarmlab.runtime._runner import RunnerCore
from swarmlab.spec import ExperimentSpec

HELPERS: dict[str, Callable[[str], Coroutine[Any, Any, Any]]] = {
    "init_sweep": lambda url: init_sweep(url, "s-x", {"tokens": 10}, {}),
    "sweep_usage": lambda url: sweep_usage(url, "s-x"),
    "live_runs": live_runs,
}


@pytest.mark.parametrize("name", sorted(HELPERS))
def test_every_helper_fails_closed_when_redis_is_unreachable(name: str, closed_port: int) -> None:
    with pytest.raises(CoordinatorUnavailable, match=str(closed_port)):
        asyncio.run(HELPERS[name](f"redis://127.0.0.1:{closed_port}/0"))


def test_a_reply_error_reading_a_sweeps_caps_is_coordinator_unavailable(redis_url: str) -> None:
    sweep = "s-" + secrets.token_hex(4)
    client = redis.Redis.from_url(redis_url)
    client.set(sweep_keys(sweep)[0], "not a hash")  # WRONGTYPE on HGETALL
    try:
        with pytest.raises(CoordinatorUnavailable):
            asyncio.run(sweep_usage(redis_url, sweep))
    finally:
        client.delete(sweep_keys(sweep)[0])
        client.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(limit=st.text(max_size=30), used=st.text(max_size=30))
def test_a_sweeps_caps_in_a_shared_redis_are_numbers_or_refused(
    redis_url: str, limit: str, used: str
) -> None:
    sweep = "s-" + secrets.token_hex(4)
    limits_key, used_key = sweep_keys(sweep)
    client = redis.Redis.from_url(redis_url)
    client.hset(limits_key, "tokens", limit)
    client.hset(used_key, "tokens", used)
    try:
        outcome: Any = asyncio.run(sweep_usage(redis_url, sweep))
    except SpecError as exc:
        outcome = exc
    finally:
        client.delete(limits_key, used_key)
        client.close()
    if isinstance(outcome, SpecError):  # refused in one line naming where it was read
        assert limits_key in str(outcome) or used_key in str(outcome)
    else:
        assert set(outcome["tokens"]) == {"limit", "used"}
        assert all(isinstance(v, int) for v in outcome["tokens"].values())


def test_a_runner_whose_channels_fail_logs_why(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    spec = ExperimentSpec(name="t")
    runner = RunnerCore(
        0, "r-" + secrets.token_hex(3), spec.model_dump_json(), f"redis://127.0.0.1:{closed_port}/0"
    )

    async def go() -> None:
        await asyncio.wait_for(runner._listen(asyncio.Event()), 10)

    with caplog.at_level(logging.WARNING, logger="swarmlab.runner"):
        asyncio.run(go())
    lines = [r.getMessage() for r in caplog.records if r.name == "swarmlab.runner"]
    assert any("channels failed" in line and "0.0" in line for line in lines), lines


def test_a_release_given_up_on_is_waited_for_by_the_next_binding(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lab process gives a borrowed runner's release 10 s, then binds it to the next run.
    A release still under way then let go of the new run's sink and Redis, not its own: the
    next binding now waits for it, and each release lets go of its own run only."""
    spec = ExperimentSpec(name="t").model_dump_json()
    runner = RunnerCore(0, "r-" + secrets.token_hex(3), spec, redis_url)
    closed: list[object] = []
    close_sink = TelemetrySink.close

    def recorded(sink: TelemetrySink) -> None:
        closed.append(sink)
        close_sink(sink)

    monkeypatch.setattr(TelemetrySink, "close", recorded)
    slow = asyncio.Event()

    async def stop_all(reason: str) -> int:
        await slow.wait()  # the slices take their time to stop
        return 0

    async def started() -> int:
        return runner.index

    runner.stop_all = stop_all  # type: ignore[method-assign]
    runner.start = started  # type: ignore[method-assign]

    async def go() -> tuple[object, object]:
        first = runner.sink
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runner.release(), 0.2)  # the caller gives up
        binding = asyncio.ensure_future(runner.bind(0, "r-next", spec, redis_url))
        await asyncio.sleep(0.2)
        assert not binding.done()  # it waits for the release under way
        slow.set()
        await asyncio.wait_for(binding, 10)
        second = runner.sink
        await runner.release()
        return first, second

    first, second = asyncio.run(go())
    assert runner.run_id == "r-next"
    assert closed == [first, second]  # each release closed its own run's sink, once

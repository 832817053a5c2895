"""One bound per run on the requests in flight at the model server, shared by all its runners:
the server never sees more at once, however many runners and calls race for the slots, and the
slots of a runner that died come back when their leases run out."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.fake_endpoint import FakeEndpoint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlab import Caps, load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster
from swarmlab.runtime import Coordinator, RunOptions, run_experiment
from swarmlab.runtime import _model_gate as gate_module
from swarmlab.runtime._model_gate import ModelGate
from swarmlab.runtime._scheduler import Scheduler

FAN_OUT = """
kid = "run_ai('one idea', max_tokens=8)\\nrun_ai('another', max_tokens=8)\\n1"
sum([r["result"] for r in wait([spawn(kid, task="asks twice") for i in range(8)])])
"""


@pytest.mark.slow
def test_two_runners_never_send_the_server_more_than_the_runs_bound(
    tmp_path: Path,
    redis_url: str,
    ray_cluster: RayCluster,
    fake_endpoint: Callable[..., FakeEndpoint],
) -> None:
    server = fake_endpoint(delay_s=0.25)
    overrides = [
        "runners=2",
        "caps.concurrent=100",
        f"model=openai:{server.url}",
        "model_name=fake-model",
        "model_in_flight=3",
    ]
    options = RunOptions(
        program=FAN_OUT,
        out_dir=tmp_path / "run",
        redis_url=redis_url,
        progress=Progress(quiet=True),
    )
    result = run_experiment(load_spec("paperclips", overrides), options)
    assert result.status == "completed"
    assert result.programs[0].result == 8
    assert len(server.chat_posts()) == 16
    assert server.peak_in_flight == 3  # reached, never passed, over both runners


async def _run(redis_url: str) -> tuple[Coordinator, Scheduler]:
    coord = Coordinator(redis_url, "t-" + secrets.token_hex(4))
    await coord.init_run(Caps(), {"status": "running"}, ordered=False)
    return coord, Scheduler(coord)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(bound=st.integers(1, 6), runners=st.integers(1, 4), calls=st.integers(1, 30))
def test_racing_calls_never_hold_more_slots_than_the_bound(
    redis_url: str, bound: int, runners: int, calls: int
) -> None:
    async def go() -> None:
        coord, sched = await _run(redis_url)
        gates = [ModelGate(sched, bound) for _ in range(runners)]
        holding = peak = 0

        async def call() -> None:
            nonlocal holding, peak
            holding += 1
            peak = max(peak, holding)
            await asyncio.sleep(0.002)
            holding -= 1

        await asyncio.gather(*(gates[i % runners].run(call) for i in range(calls)))
        assert peak == min(bound, calls)
        await coord.delete_run()
        await coord.close()

    asyncio.run(go())


def test_a_dead_runners_slots_come_back_with_their_leases(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gate_module, "LEASE_S", 0.3)

    async def go() -> None:
        coord, sched = await _run(redis_url)
        for token in ("dead:1", "dead:2"):  # taken by a runner that never gives them back
            assert (await sched.raw("slot", "take", token, 2, 300)).kind == "ok"
        assert (await sched.raw("slot", "take", "live:1", 2, 300)).kind == "full"
        began = time.monotonic()
        assert await ModelGate(sched, 2).run(lambda: asyncio.sleep(0, "answered")) == "answered"
        assert 0.2 < time.monotonic() - began < 5
        await coord.delete_run()
        await coord.close()

    asyncio.run(go())

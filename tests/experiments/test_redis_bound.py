"""A sweep or a trials set that starts its own redis-server bounds it as a single run does.

Only single runs gave their private redis-server `maxmemory` (with `noeviction`): a sweep or a
trials set started one without, so its runs could fill the machine's memory. Now the server is
bounded by what the runs it runs at once may keep (the largest `parallel` of them), plus the
headroom, and fails closed past it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from swarmlab.cli._progress import Progress
from swarmlab.experiments import SweepRunner, TrialsPlan, TrialsRunner, TrialsSpec
from swarmlab.spec import TELEMETRY_BYTES, Caps, shared_redis_memory_bytes

MIB = 1 << 20
HEADROOM = 256 * MIB


class Started(Exception):
    """The fake server's start: what it was asked is recorded, nothing runs."""


class FakeServer:
    asked: ClassVar[list[int | None]] = []

    def __init__(
        self,
        workdir: Path,
        binary: str | None = None,
        maxmemory: int | None = None,
        outlive_parent: bool = False,
    ) -> None:
        FakeServer.asked.append(maxmemory)

    def start(self) -> Any:
        raise Started


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    FakeServer.asked = []
    monkeypatch.setattr("swarmlab.experiments.sweeps._runner.RedisServer", FakeServer)
    monkeypatch.setattr("swarmlab.experiments.trials._runner.RedisServer", FakeServer)
    return FakeServer.asked


SWEEP = """
name: bounded
base: paperclips
set:
  caps.blackboard_bytes: 1048576
  caps.parked_bytes: 8388608
grid:
  caps.record_bytes: [4194304, 16777216, 33554432]
seeds: [1, 2]
parallel: 2
"""


def test_a_sweeps_redis_holds_what_its_parallel_runs_may_keep(
    tmp_path: Path, fake_server: list[int | None]
) -> None:
    (tmp_path / "sweep.yaml").write_text(SWEEP)
    runner = SweepRunner(str(tmp_path / "sweep.yaml"), out_dir=tmp_path / "out")
    with pytest.raises(Started):
        runner.run()
    # Two runs at once, the largest record_bytes (32 MiB) in both: 2 x (2x32 + 2x1 + 8) MiB,
    # and each run's telemetry.
    assert fake_server == [2 * ((2 * 32 + 2 * 1 + 8) * MIB + TELEMETRY_BYTES) + HEADROOM]


def test_a_trials_sets_redis_is_bounded_by_its_trials(
    tmp_path: Path, fake_server: list[int | None]
) -> None:
    spec = TrialsSpec(
        experiment="paperclips",
        models=["sim"],
        trials=3,
        overrides=["caps.record_bytes=8388608", "caps.blackboard_bytes=1048576"],
    )
    plan = TrialsPlan.create(spec, tmp_path / "out")
    runner = TrialsRunner(plan, parallel=3, progress=Progress(quiet=True))
    with pytest.raises(Started):
        runner.run()
    parked = Caps().parked_bytes
    assert fake_server == [3 * (2 * 8 * MIB + 2 * MIB + parked + TELEMETRY_BYTES) + HEADROOM]


def test_the_bound_takes_the_largest_runs_that_can_run_at_once() -> None:
    small, large = Caps(record_bytes=MIB), Caps(record_bytes=64 * MIB)
    each = [
        2 * c.record_bytes + 2 * c.blackboard_bytes + c.parked_bytes + TELEMETRY_BYTES
        for c in (small, large)
    ]
    assert shared_redis_memory_bytes([small, large, small], 1) == each[1] + HEADROOM
    assert shared_redis_memory_bytes([small, large, small], 2) == each[1] + each[0] + HEADROOM
    assert shared_redis_memory_bytes([small], 8) == each[0] + HEADROOM

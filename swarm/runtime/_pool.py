"""The runner pool: a few async Ray actors, each running many programs concurrently.

An actor costs ~300 ms and ~80 MiB to create, so programs never get one each.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from swarmlab.cluster import ClusterError, RayCluster
from swarmlab.observability.telemetry import TelemetryConfig
from swarmlab.records import ProgramRecord
from swarmlab.spec import ExperimentSpec

from ._runner import RunnerCore

START_TIMEOUT_S = 120.0


def runner_actor_options() -> dict[str, Any]:
    """Ray options of a runner actor. On a cluster (SWARMLAB_RUNNER_RESOURCE set), runners go
    only where the locked-down sandbox pods advertise that resource, spread over those pods: they
    ask for no CPU, so Ray's default placement would pack them all onto one pod."""
    options: dict[str, Any] = {"max_concurrency": 100_000, "num_cpus": 0}
    placement = os.environ.get("SWARMLAB_RUNNER_RESOURCE")
    if placement:
        options["resources"] = {placement: 1}
        options["scheduling_strategy"] = "SPREAD"
    return options


class RunnerPool:
    def __init__(
        self,
        ray: RayCluster,
        run_id: str,
        spec: ExperimentSpec,
        redis_url: str,
        telemetry: TelemetryConfig,
        sweep_id: str | None = None,
    ) -> None:
        self.ray = ray
        actor = ray.remote_class(RunnerCore, **runner_actor_options())
        spec_json, tel_json = spec.model_dump_json(), telemetry.model_dump_json()
        self.actors: list[Any] = [
            actor.remote(i, run_id, spec_json, redis_url, tel_json, sweep_id)
            for i in range(spec.runners)
        ]

    async def start(self) -> None:
        await self._all([a.start.remote() for a in self.actors], START_TIMEOUT_S)
        await self._all([a.set_peers.remote(self.actors) for a in self.actors])

    async def submit(self, record: ProgramRecord) -> None:
        await self._all([self.actors[0].submit.remote(record.to_json())])

    async def stop_all(self, reason: str) -> int:
        return sum(await self._all([a.stop_all.remote(reason) for a in self.actors]))

    async def flush(self) -> None:
        await self._all([a.flush.remote() for a in self.actors])

    async def running(self) -> int:
        return sum(await self._all([a.running.remote() for a in self.actors]))

    async def close(self) -> None:
        try:
            await self._all([a.close.remote() for a in self.actors])
        finally:
            for actor in self.actors:
                self.ray.kill(actor)

    async def _all(self, refs: list[Any], timeout: float = 30.0) -> list[Any]:
        try:
            return list(await asyncio.wait_for(asyncio.gather(*refs), timeout))
        except TimeoutError:
            raise ClusterError(f"the runner pool did not answer within {timeout:.0f} s") from None
        except Exception as exc:  # Ray wraps actor failures in its own types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ClusterError(f"a runner failed: {first}") from None

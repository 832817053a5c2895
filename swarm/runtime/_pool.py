"""The runner pool: a few async Ray actors, each running many programs' slices at once.

An actor costs ~300 ms and ~80 MiB to create, so programs never get one each. Runners take work
from the run's queue in Redis; none holds a program it is not computing. The pool watches them:
when a runner's process dies (Ray restarts the actor), what it was computing goes back to the
queue and the restarted runner serves again under a new tag. When no runner serves (every one
lost, and none placed again: its actor out of restarts, or no node left with the runner resource),
the pool says since when; the driver's watch fails the run once that has lasted `no_runner_wait_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from swarmlab.cluster import ClusterError, RayCluster
from swarmlab.core import SpecError
from swarmlab.observability.telemetry import TelemetryConfig
from swarmlab.spec import ExperimentSpec, env_value

from ._program import runner_slots
from ._runner import RunnerCore
from ._scheduler import Scheduler

START_TIMEOUT_S = 120.0
CALL_TIMEOUT_S = 30.0
RESTARTS = 8
"""How many times Ray may restart one runner's process in a run."""
NO_RUNNER_WAIT_S = 120.0
"""How long a run waits for a runner when none serves, before it ends `failed` (long enough for
Kubernetes to replace a lost sandbox pod; `SWARMLAB_NO_RUNNER_WAIT_S` or `RunOptions` set it)."""

log = logging.getLogger("swarmlab.pool")


def runner_actor_options() -> dict[str, Any]:
    """Ray options of a runner actor. On a cluster (SWARMLAB_RUNNER_RESOURCE set), runners go
    only where the locked-down sandbox pods advertise that resource, spread over those pods: they
    ask for no CPU, so Ray's default placement would pack them all onto one pod."""
    options: dict[str, Any] = {
        "max_concurrency": 100_000,
        "num_cpus": 0,
        "max_restarts": RESTARTS,  # a lost runner's process comes back; its work is requeued
        "max_task_retries": 0,
    }
    placement = env_value("SWARMLAB_RUNNER_RESOURCE")
    if placement:
        options["resources"] = {placement: 1}
        options["scheduling_strategy"] = "SPREAD"
    return options


def no_runner_wait(given: float | None) -> float:
    """The bound on a wait for a runner: as given, else `SWARMLAB_NO_RUNNER_WAIT_S`, else
    NO_RUNNER_WAIT_S."""
    text = env_value("SWARMLAB_NO_RUNNER_WAIT_S") or ""
    try:
        value = given if given is not None else float(text) if text else NO_RUNNER_WAIT_S
    except ValueError:
        value = -1.0
    if not 0 < value <= 86_400:  # also refuses NaN
        raise SpecError(
            f"SWARMLAB_NO_RUNNER_WAIT_S: {text[:40]!r} is not a number of seconds in (0, 86400]"
            if given is None
            else f"no_runner_wait_s: {given!r} is not a number of seconds in (0, 86400]"
        )
    return value


class RunnerPool:
    def __init__(
        self,
        ray: RayCluster,
        run_id: str,
        spec: ExperimentSpec,
        redis_url: str,
        telemetry: TelemetryConfig,
        scheduler: Scheduler,
        sweep_id: str | None = None,
        no_runner_wait_s: float | None = None,
        actors: list[Any] | None = None,
    ) -> None:
        """`actors`: runners to borrow (a sweep's, see `runner_fleet`): bound to this run, and
        released, not killed, at the end; None: the pool creates its own."""
        self.ray = ray
        self.no_runner_wait_s = no_runner_wait(no_runner_wait_s)
        """How long the run waits for a runner when none serves (then it fails)."""
        self.scheduler = scheduler
        spec_json, tel_json = spec.model_dump_json(), telemetry.model_dump_json()
        count = len(runner_slots(spec))
        self._binding = [
            (i, run_id, spec_json, redis_url, tel_json, sweep_id) for i in range(count)
        ]
        self.borrowed = actors is not None
        if actors is not None:
            if len(actors) < count:
                raise ClusterError(f"the run needs {count} runners; {len(actors)} were lent")
            self.actors: list[Any] = list(actors[:count])
        else:
            actor = ray.remote_class(RunnerCore, **runner_actor_options())
            self.actors = [actor.remote(*args) for args in self._binding]
        self.epochs = [0] * len(self.actors)
        self.lost = 0
        """Runner processes lost (and restarted) during the run."""
        self.live: set[int] = set()
        """The runners serving now (started, not lost since)."""
        self.none_since: float | None = None
        """When the last serving runner was lost (None while one serves)."""
        self._serving: dict[int, asyncio.Task[Any]] = {}
        self._closing = False

    async def start(self) -> None:
        """Start (bind) every runner, or fail in one line (within START_TIMEOUT_S when a runner
        cannot be placed: no node offers the runner resource, say)."""
        binds = [a.bind.remote(*self._binding[i]) for i, a in enumerate(self.actors)]
        try:
            await self._all(binds, START_TIMEOUT_S)
        except ClusterError as exc:
            resource = env_value("SWARMLAB_RUNNER_RESOURCE")
            where = f"; is there a node with the runner resource {resource!r}?" if resource else ""
            raise ClusterError(f"no runner could be started ({exc}){where}") from None
        for i in range(len(self.actors)):
            self._serve(i)

    def _serve(self, index: int) -> None:
        self.live.add(index)
        self.none_since = None
        ref = self.actors[index].serve.remote(self.epochs[index])
        self._serving[index] = asyncio.get_running_loop().create_task(self._watch(index, ref))

    async def _watch(self, index: int, ref: Any) -> None:
        """Wait on a runner's serve(); if its process dies, put back its work and serve again."""
        try:
            await ref
        except Exception as exc:  # Ray's actor errors: the process died
            if self._closing:
                return
            tag = f"{index}.{self.epochs[index]}"
            self.lost += 1
            self.live.discard(index)
            if not self.live:
                self.none_since = time.time()
            log.warning("runner %s lost (%s); its programs go back to the queue", tag, exc)
            with contextlib.suppress(Exception):
                await self.scheduler.requeue(tag)
            self.epochs[index] += 1
            await self._restart(index)

    async def _restart(self, index: int) -> None:
        for _ in range(RESTARTS * 10):
            if self._closing:
                return
            try:
                bind = self.actors[index].bind.remote(*self._binding[index])
                await asyncio.wait_for(bind, START_TIMEOUT_S)
            except Exception:  # still restarting
                await asyncio.sleep(0.5)
                continue
            self._serve(index)
            return

    def runnerless_s(self) -> float | None:
        """For how long no runner has served (None while one serves)."""
        return None if self.none_since is None else time.time() - self.none_since

    async def stop_all(self, reason: str) -> int:
        return sum(await self._all([a.stop_all.remote(reason) for a in self.actors]))

    async def flush(self) -> None:
        await self._all([a.flush.remote() for a in self.actors])

    async def computing(self) -> int:
        return sum(await self._all([a.computing.remote() for a in self.actors]))

    async def close(self) -> None:
        self._closing = True
        for task in self._serving.values():
            task.cancel()
        if self.borrowed:  # the lender's: they serve its next run
            await self._all([a.release.remote() for a in self.actors], 10.0)
            return
        try:
            await self._all([a.close.remote() for a in self.actors], 10.0)
        finally:
            for actor in self.actors:
                self.ray.kill(actor)

    async def _all(self, refs: list[Any], timeout: float = CALL_TIMEOUT_S) -> list[Any]:
        try:
            return list(await asyncio.wait_for(asyncio.gather(*refs), timeout))
        except TimeoutError:
            raise ClusterError(f"the runner pool did not answer within {timeout:.0f} s") from None
        except Exception as exc:  # Ray wraps actor failures in its own types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ClusterError(f"a runner failed: {first}") from None


def runner_fleet(
    ray: RayCluster, specs: list[ExperimentSpec], redis_url: str, sets: int
) -> list[list[Any]]:
    """Runners for a sweep: `sets` sets, each enough for any of `specs`; a cell borrows a free
    set (`RunOptions.runners`), so the sweep creates these and no others. Each runner is bound
    to a cell's run when the cell starts (its constructor's run is a placeholder)."""
    actor = ray.remote_class(RunnerCore, **runner_actor_options())
    widest = max(specs, key=lambda spec: len(runner_slots(spec)))
    spec_json = widest.model_dump_json()
    return [
        [actor.remote(i, "fleet", spec_json, redis_url) for i in range(len(runner_slots(widest)))]
        for _ in range(sets)
    ]

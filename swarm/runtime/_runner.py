"""Runners: plain async objects that run many programs at once, each in its own sandbox.

`RunnerCore` knows nothing of Ray; `_pool` makes it an actor through `swarmlab.cluster`.
Spawned children go to any runner of the pool (round robin), so the tree spreads over the
cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from typing import Any

from swarmlab.core import CoordinatorUnavailable, in_lineage, json_safe
from swarmlab.models import create_backend
from swarmlab.observability.telemetry import (
    SwarmInstruments,
    Telemetry,
    TelemetryConfig,
    extract,
    in_span,
)
from swarmlab.records import Event, ProgramRecord
from swarmlab.spec import ExperimentSpec
from swarmlab.world import RedisLedger, World

from ._capabilities import Capabilities, RunnerEnv
from ._coordinator import Coordinator, TelemetrySink
from ._sandbox import Sandbox
from ._seeds import stable_seed

log = logging.getLogger("swarmlab.runner")

KILL_POLL_S = 0.1


class RunnerCore:
    """Runs programs of one run. Methods are async so an actor serves many calls at once."""

    def __init__(
        self,
        index: int,
        run_id: str,
        spec_json: str,
        redis_url: str,
        telemetry_json: str = "{}",
        sweep_id: str | None = None,
    ) -> None:
        self.index = index
        self.spec = ExperimentSpec.model_validate_json(spec_json)
        self.coordinator = Coordinator(redis_url, run_id, sweep_id)
        self.sink = TelemetrySink(redis_url, run_id)
        self.telemetry = Telemetry(
            TelemetryConfig.model_validate_json(telemetry_json),
            self.sink,
            {"swarmlab.run_id": run_id, "swarmlab.runner": str(index)},
        )
        self.sandbox = Sandbox(max_workers=self.spec.caps.concurrent)
        self.peers: list[Any] = []
        self._next_peer = itertools.count(index + 1)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stop_reason: dict[str, str] = {}
        self._watcher: asyncio.Task[None] | None = None
        self.env: RunnerEnv | None = None

    async def start(self) -> int:
        await self.coordinator.ping()
        world = World(self.spec.world, self.spec.world_seed)
        ledger = RedisLedger(
            self.coordinator.client,
            self.coordinator.prefix + "world:",
            self.spec.world.starting_money,
        )
        await ledger.init()
        backend = create_backend(
            self.spec.model, sim_options=self.spec.sim, model_name=self.spec.model_name
        )
        self.env = RunnerEnv(
            spec=self.spec,
            coordinator=self.coordinator,
            backend=backend,
            world=world,
            ledger=ledger,
            dispatch=self._dispatch,
            stop_programs=self._stop_everywhere,
            instruments=SwarmInstruments(self.telemetry),
        )
        await self.sandbox.start()
        self._watcher = asyncio.get_running_loop().create_task(self._watch_kill())
        return self.index

    def set_peers(self, peers: list[Any]) -> None:
        """Handles of every runner in the pool, this one included (by index)."""
        self.peers = peers

    async def submit(self, record_json: str) -> None:
        """Start a program; returns at once."""
        self._start(ProgramRecord.from_json(record_json))

    async def stop(self, program_id: str, reason: str) -> int:
        """Stop a program and its descendants running here."""
        hit = [pid for pid in self._tasks if in_lineage(pid, program_id)]
        for pid in hit:
            self._stop_reason.setdefault(pid, reason)
            self._tasks[pid].cancel()
        return len(hit)

    async def stop_all(self, reason: str) -> int:
        for pid, task in list(self._tasks.items()):
            self._stop_reason.setdefault(pid, reason)
            task.cancel()
        return len(self._tasks)

    async def running(self) -> int:
        return len(self._tasks)

    async def flush(self) -> None:
        """Push out every span and metric recorded so far."""
        await asyncio.to_thread(self.telemetry.flush)

    async def close(self) -> None:
        await self.stop_all("runner closed")
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        if self._watcher:
            self._watcher.cancel()
        await self.sandbox.close()
        if self.env:
            await self.env.backend.aclose()
        await asyncio.to_thread(self.telemetry.shutdown)
        self.sink.close()
        await self.coordinator.close()

    # --- internals -----------------------------------------------------------------------

    def _start(self, record: ProgramRecord) -> None:
        task = asyncio.get_running_loop().create_task(self._run(record))
        self._tasks[record.id] = task

    async def _dispatch(self, record: ProgramRecord) -> None:
        if not self.peers:
            self._start(record)
            return
        target = next(self._next_peer) % len(self.peers)
        if target == self.index:
            self._start(record)
        else:
            await self.peers[target].submit.remote(record.to_json())

    async def _stop_everywhere(self, program_id: str) -> int:
        reason = "stopped by kill() from another program"
        stopped = await self.stop(program_id, reason)
        for i, peer in enumerate(self.peers):
            if i != self.index:
                stopped += await peer.stop.remote(program_id, reason)
        return stopped

    async def _run(self, record: ProgramRecord) -> None:
        assert self.env is not None
        coord = self.coordinator
        caps = Capabilities(record, self.env)
        tel = self.env.instruments
        span = tel.program_span(
            extract(record.traceparent),
            record.id,
            record.parent_id,
            record.depth,
            record.task,
            record.code,
        )
        caps.program_ctx = in_span(span)
        record.span_id = format(span.get_span_context().span_id, "016x")
        record.status = "running"
        record.runner = self.index
        record.started_at = time.time()
        limit_hit = None
        try:
            await coord.put_program(record)
            await coord.emit(_lifecycle(record, "start", {"depth": record.depth}))
            caps.scan_source()
            outcome = await self.sandbox.run(
                record.code,
                caps,
                self.spec.program_limits,
                script_name=f"{record.id}.py",
                random_seed=stable_seed(self.spec.sandbox_seed, record.id, "random"),
            )
            record.status = outcome.status
            record.result = json_safe(outcome.result)
            record.error = outcome.error
            if caps.stopped and outcome.status == "crashed":
                record.status, record.error = "killed", f"run stopped: {await _reason(coord)}"
            record.output = outcome.output[-4000:]
            limit_hit = outcome.limit
        except asyncio.CancelledError:
            record.status = "killed"
            record.error = self._stop_reason.get(record.id) or "stopped"
        except CoordinatorUnavailable as exc:
            record.status = "crashed"
            record.error = str(exc)
        except Exception as exc:  # a fault of the lab, not of the program: record it
            log.exception("program %s failed in the runner", record.id)
            record.status = "crashed"
            record.error = f"runner fault: {type(exc).__name__}: {exc}"
        finally:
            self._tasks.pop(record.id, None)
            self._stop_reason.pop(record.id, None)
        record.ended_at = time.time()
        await self._record_end(record, caps, span, limit_hit)

    async def _record_end(
        self, record: ProgramRecord, caps: Capabilities, span: Any, limit_hit: str | None
    ) -> None:
        """End the program's span, release its slot and record how it ended."""
        assert self.env is not None
        coord, tel = self.coordinator, self.env.instruments
        if limit_hit:
            tel.denial(span, limit_hit)
        tel.end_program(span, record.status, record.error)
        with contextlib.suppress(CoordinatorUnavailable):
            await caps.flush()
            await coord.put_program(record)
            await coord.release_program()
            await coord.count(record.status)
            if limit_hit:
                await coord.note_denial(limit_hit)
            detail = {"status": record.status, "error": (record.error or "")[:300]}
            if limit_hit:
                detail["limit"] = limit_hit
            await coord.emit(_lifecycle(record, "end", detail))

    async def _watch_kill(self) -> None:
        """Fail closed: stop everything when the run is killed or Redis goes away."""
        while True:
            await asyncio.sleep(KILL_POLL_S)
            try:
                reason = await self.coordinator.kill_reason()
            except CoordinatorUnavailable:
                reason = "coordinator unreachable"
            if reason and self._tasks:
                await self.stop_all(f"run stopped: {reason}")


async def _reason(coord: Coordinator) -> str:
    with contextlib.suppress(CoordinatorUnavailable):
        return await coord.kill_reason() or "stopped"
    return "coordinator unreachable"


def _lifecycle(record: ProgramRecord, kind: str, detail: dict[str, Any]) -> Event:
    return Event(t=time.time(), program=record.id, kind=kind, decision="info", detail=detail)

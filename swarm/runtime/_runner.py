"""Runners: plain async objects that run programs' slices, many at once, each in a sandbox worker.

`RunnerCore` knows nothing of Ray; `_pool` makes it an actor through `swarmlab.cluster`. A runner
takes ready programs from the run's queue in Redis (the first in the run's order first) whenever
it has a free worker, runs each until it ends or parks, and listens on its channels: its turn
notices, stops of its programs, and the run's kill. A parked program holds nothing here; it can
resume on any runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from swarmlab.core import CLOCK_KIND, CoordinatorUnavailable, RunKilled, json_safe
from swarmlab.models import create_backend
from swarmlab.observability.telemetry import SwarmInstruments, Telemetry, TelemetryConfig
from swarmlab.records import Event, ProgramRecord
from swarmlab.spec import ExperimentSpec, env_value
from swarmlab.world import RedisLedger, World

from ._capabilities import Capabilities
from ._carried import CARRIED_S
from ._coordinator import Coordinator, TelemetrySink
from ._crash_marks import error_kind, refused_clock
from ._cuts import RecordedCut, cut_entry, cut_limits, settle_cut
from ._keys import clock_ms, order_member, run_key
from ._model_gate import ModelGate, in_flight_bound
from ._program import HostState, RunnerEnv, next_step_h, runner_slots, slice_limits
from ._sandbox import Sandbox, SandboxOutcome, Spent
from ._scheduler import Scheduler
from ._scripts import Subscriber
from ._seeds import stable_seed
from ._spans import program_span
from ._stored import RECORD_OUTPUT_CHARS, wait_view
from ._transitions import CompleteArgs, FinishArgs

log = logging.getLogger("swarmlab.runner")

IDLE_POLL_S = 0.25
HEALTH_EVERY_S = 0.25
STOPPED_EMIT_S = 1.0  # a stopped program leaves its state and unsent events (with `CARRIED_S`)
SUBSCRIBE_WAIT_S = 5.0
"""How long a runner waits for its channels before it takes work anyway (it then polls)."""
WAIT_WITH_WORKER_BELOW = 128
"""A program waiting for its turn keeps its worker only while its runner computes fewer programs
than this (and has a worker free): waiting never holds more worker processes than that (a
waiting worker is about 1 MiB of PSS; a park at the gate costs a snapshot, two scripts and a
resume: docs/benchmarks.md). `SWARMLAB_WAIT_AT_GATE=1`: none, every wait parks at the gate (the
run is the same: the tests hold it to that)."""
WAIT_AT_GATE = env_value("SWARMLAB_WAIT_AT_GATE") == "1"
MAX_ERROR_CHARS = 2000
MAX_RESULT_CHARS = 4000


class RunnerCore:
    """Runs slices of a run's programs. Methods are async so an actor serves many calls at once."""

    def __init__(
        self,
        index: int,
        run_id: str,
        spec_json: str,
        redis_url: str,
        telemetry_json: str = "{}",
        sweep_id: str | None = None,
    ) -> None:
        self._bind(index, run_id, spec_json, redis_url, telemetry_json, sweep_id)
        self.sandbox = Sandbox(max_workers=self.slots)

    def _bind(
        self,
        index: int,
        run_id: str,
        spec_json: str,
        redis_url: str,
        telemetry_json: str,
        sweep_id: str | None,
    ) -> None:
        """Take up a run: its spec, coordinator, telemetry and slots."""
        self.index = index
        self.run_id = run_id
        self.bound_as = (index, run_id, spec_json, redis_url, telemetry_json, sweep_id)
        self.tag = f"{index}.0"
        self.spec = ExperimentSpec.model_validate_json(spec_json)
        self.coordinator = Coordinator(redis_url, run_id, sweep_id)
        self.scheduler = Scheduler(self.coordinator)
        self.sink = TelemetrySink(redis_url, run_id)
        self.telemetry = Telemetry(
            TelemetryConfig.model_validate_json(telemetry_json),
            self.sink,
            {"swarmlab.run_id": run_id, "swarmlab.runner": str(index)},
        )
        self.slots = runner_slots(self.spec)[index]
        self.env: RunnerEnv | None = None
        self._slices: dict[str, asyncio.Task[None]] = {}
        self._signals: dict[str, asyncio.Event] = {}
        self._answers: dict[str, str] = {}  # kept calls' answers heard (`answered`)
        self._model_calls: set[asyncio.Task[str]] = set()
        self._gate: ModelGate | None = None
        """The run's bound on requests in flight at the model server (HTTP models only)."""
        self._free = asyncio.Semaphore(self.slots)
        self._wake = asyncio.Event()
        self._stopping: str | None = None
        self._started = False
        self._released: asyncio.Future[None] | None = None

    async def bind(
        self,
        index: int,
        run_id: str,
        spec_json: str,
        redis_url: str,
        telemetry_json: str = "{}",
        sweep_id: str | None = None,
    ) -> int:
        """Serve this run from now on (the one it serves, if another, is released first). A
        sweep's cells share runners this way: the sandbox's workers stay when the slots are the
        same (they hold nothing of a run between slices)."""
        args = (index, run_id, spec_json, redis_url, telemetry_json, sweep_id)
        if args != self.bound_as:
            await self.release()
            slots = self.slots
            self._bind(*args)
            if self.slots != slots:
                await self.sandbox.close()
                self.sandbox = Sandbox(max_workers=self.slots)
        return await self.start()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> int:
        if self._started:
            return self.index
        await self.coordinator.ping()
        world = World(self.spec.world, self.spec.world_seed)
        ledger = RedisLedger(
            self.coordinator.client,
            run_key(self.coordinator.prefix, "world:"),
            self.spec.world.starting_money,
        )
        await ledger.init()
        backend = create_backend(
            self.spec.model, sim_options=self.spec.sim, model_name=self.spec.model_name
        )
        self.env = RunnerEnv(
            spec=self.spec,
            coordinator=self.coordinator,
            scheduler=self.scheduler,
            backend=backend,
            world=world,
            ledger=ledger,
            instruments=SwarmInstruments(self.telemetry),
            runner=self,
        )
        if self.spec.model.startswith("openai:"):  # `local` reaches runners as its server's URL
            self._gate = ModelGate(self.scheduler, in_flight_bound(self.spec.model_in_flight))
        await self.sandbox.start()
        # What start-up made lives as long as the runner: the collector need not walk it again
        # on every pass (a pass comes every few hundred allocations, so every few calls).
        gc.freeze()
        self._started = True
        return self.index

    async def serve(self, epoch: int = 0) -> str:
        """Take and run ready programs until the run stops; returns why it stopped."""
        self.tag = f"{self.index}.{epoch}"
        self._stopping = None
        subscribed = asyncio.Event()
        listener = asyncio.get_running_loop().create_task(self._listen(subscribed))
        health = asyncio.get_running_loop().create_task(self._health())
        try:
            # Wakes and turn notices go to subscribers only: listen before taking work.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(subscribed.wait(), SUBSCRIBE_WAIT_S)
            more = True  # whether the last claim left programs in the queue
            while True:
                await self._free.acquire()
                if not more:  # idle: wait to be woken (or poll, should a wake be lost)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), IDLE_POLL_S)
                if self.stopping():
                    self._free.release()
                    break
                self._wake.clear()  # before the claim: a wake sent after it counts
                free = self.slots - len(self._slices) - 1
                claimed = await self.scheduler.claim(self.tag, free)
                if claimed is None:
                    self._free.release()
                    more = False
                    continue
                more = claimed.more or free < 1  # a full runner is not woken: it asks again
                task = asyncio.get_running_loop().create_task(
                    self._slice(claimed.id, claimed.fields)
                )
                self._slices[claimed.id] = task
        except CoordinatorUnavailable as exc:
            self._stopping = f"coordinator unreachable: {exc}"
        finally:
            listener.cancel()
            health.cancel()
            await self._stop_slices()
        return self._stopping or "stopped"

    def stopping(self) -> bool:
        return self._stopping is not None

    async def stop_all(self, reason: str) -> int:
        """Stop every slice computing here (the run is ending)."""
        self._stopping = reason
        self._wake.set()
        count = len(self._slices)
        await self._stop_slices()
        return count

    async def computing(self) -> int:
        return len(self._slices)

    def worker_free(self) -> bool:
        return not WAIT_AT_GATE and len(self._slices) < min(self.slots, WAIT_WITH_WORKER_BELOW)

    async def flush(self) -> None:
        """Push out every span and metric recorded so far."""
        await asyncio.to_thread(self.telemetry.flush)

    async def close(self) -> None:
        await self.release()
        await self.sandbox.close()

    async def release(self) -> None:
        """Let go of the run (its slices, model calls, telemetry, Redis); the sandbox stays."""
        if self._released is None:  # once: `bind` waits for one a caller stopped waiting for
            self._released = asyncio.ensure_future(self._let_go())
            await asyncio.shield(self._released)
        with contextlib.suppress(Exception):  # a failure is the first caller's to hear
            await asyncio.shield(self._released)

    async def _let_go(self) -> None:
        await self.stop_all("runner closed")
        for task in list(self._model_calls):
            task.cancel()
        if self.env:
            await self.env.backend.aclose()
            self.env = None
        await asyncio.to_thread(self.telemetry.shutdown)
        self.sink.close()
        await self.coordinator.close()
        self._started = False

    # --- what programs ask of their runner ---------------------------------------------------

    def turn_signal(self, program_id: str) -> asyncio.Event:
        signal = self._signals.get(program_id)  # asked at every call: no Event made to drop
        return signal or self._signals.setdefault(program_id, asyncio.Event())

    def answered(self, program_id: str) -> str | None:
        return self._answers.pop(program_id, None)

    def start_model_call(
        self, program_id: str, seq: int, call: Callable[[], Awaitable[str]]
    ) -> asyncio.Task[str]:
        gate = self._gate
        made = call() if gate is None else gate.run(call)
        task: asyncio.Task[str] = asyncio.get_running_loop().create_task(made)  # type: ignore[arg-type]
        self._model_calls.add(task)
        task.add_done_callback(self._model_calls.discard)
        return task

    def keep_answer(self, task: asyncio.Task[str], complete: Callable[[str], CompleteArgs]) -> None:
        """The program parks on this call: when it is answered, keep the answer in Redis."""

        def done(finished: asyncio.Task[str]) -> None:
            if finished.cancelled() or finished.exception() is not None:
                return
            keep = self.scheduler.run(complete(finished.result()))
            asyncio.get_running_loop().create_task(_quietly(keep))

        task.add_done_callback(done)

    # --- a slice ---------------------------------------------------------------------------

    async def _slice(self, program_id: str, fields: tuple[str, ...]) -> None:
        assert self.env is not None
        api: Capabilities | None = None
        stopped: list[Spent] = []  # what the slice spent, when it stops before it ends or parks
        try:
            loaded = self.scheduler.loaded(program_id, fields)
            record, state = loaded.record, HostState.from_record(loaded.record, loaded.host)
            record.started_at, state.runner = state.started_at, self.index
            if state.parked_in == "wait" and loaded.place_h is not None:
                state.clock_h = max(state.clock_h, loaded.place_h)  # the wait took this long
            api = Capabilities(record, self.env, state, loaded.resume)
            api.program_ctx = self.env.instruments.program_context(
                record.traceparent, record.span_id or "0" * 16
            )
            if loaded.restarts > state.restarts:
                self._restarted(api, loaded.restarts, from_snapshot=loaded.snapshot is not None)
            if loaded.snapshot is None:
                await self._begin(record, api, loaded.taken_at)
            api.cut = RecordedCut.parse(loaded.cut)
            limits = cut_limits(slice_limits(self.spec, state), state, api.cut)
            state.resumes += loaded.snapshot is not None
            outcome = await self.sandbox.run_slice(
                api,
                limits,
                code=record.code if loaded.snapshot is None else None,
                snapshot=loaded.snapshot,
                script_name=f"{record.id}.py",
                random_seed=stable_seed(self.spec.sandbox_seed, record.id, "random"),
                on_stop=stopped.append,
            )
            state.add_spent(outcome)
            if outcome.status != "parked":
                await self._end(record, api, outcome)
        except (asyncio.CancelledError, RunKilled):
            if api is not None:  # stopped by a kill() or the run's stop: say what it did first
                spent = stopped[0] if stopped else None
                await _quietly(api.leave(self.tag, spent), STOPPED_EMIT_S - CARRIED_S)
        except CoordinatorUnavailable:  # Redis is gone: the run is over
            pass
        except Exception:  # a fault of the lab, not of the program: record it
            log.exception("program %s failed in the runner", program_id)
            if api is not None:
                await _quietly(self._fault(api))
        finally:
            self._slices.pop(program_id, None)
            self._signals.pop(program_id, None)
            self._answers.pop(program_id, None)
            self._free.release()

    async def _begin(self, record: ProgramRecord, api: Capabilities, taken_at: float) -> None:
        """A program's first slice (or its start again, without a snapshot); it started when
        taken (`taken_at`, Redis's clock, a kill()'s too: a kill before this ends it after)."""
        assert self.env is not None
        first = record.started_at is None
        record.status = "running"
        record.runner = self.index
        record.started_at = api.state.started_at = record.started_at or taken_at
        if first:
            api.pending.append(
                Event(
                    t=record.started_at,
                    program=record.id,
                    kind="start",
                    decision="info",
                    detail={"depth": record.depth},
                )
            )
            self.env.instruments.program_started()
            api.scan_source()

    def _restarted(self, api: Capabilities, restarts: int, from_snapshot: bool) -> None:
        """The runner that computed this program was lost: it starts again (recorded)."""
        api.state.restarts = restarts
        detail = {"restart": restarts, "from": "snapshot" if from_snapshot else "start"}
        api.pending.append(
            Event(t=time.time(), program=api.id, kind="restart", decision="info", detail=detail)
        )

    async def _end(self, record: ProgramRecord, api: Capabilities, outcome: SandboxOutcome) -> None:
        """Record how the program ended, at its turn."""
        assert self.env is not None
        state = api.state
        outcome = settle_cut(outcome, state, api.cut, self.spec.program_limits.cpu_s)
        status = outcome.status if outcome.status in ("completed", "crashed") else "killed"
        error = outcome.error
        if api.stopped and status == "crashed":
            status, error = "killed", f"run stopped: {api.stopped}"
        record.status = status
        record.result = json_safe(outcome.result, limit=MAX_RESULT_CHARS)
        record.error = (error or None) and error[:MAX_ERROR_CHARS]
        record.output = state.output[-RECORD_OUTPUT_CHARS:]
        record.calls = state.calls
        record.runner = self.index
        record.ended_at = time.time()
        limit = outcome.limit or state.denied_limit if outcome.status == "crashed" else None
        detail: dict[str, Any] = {
            "status": status,
            "error": (record.error or "")[:300],
            "cpu_s": round(state.cpu_s, 3),
        } | state.unwritten()
        kind = error_kind(outcome, api.refused, record.code) if status == "crashed" else None
        if kind:
            detail["error_kind"] = kind
        if clock := refused_clock(record.id, outcome, record.code):  # it asked the time
            api.pending.append(clock)
            self.env.instruments.tool_span(api.program_ctx, CLOCK_KIND).end()
        if outcome.limit:
            detail["limit"] = outcome.limit
            await self.coordinator.note_denial(outcome.limit)
        api.pending.append(
            Event(t=time.time(), program=record.id, kind="end", decision="info", detail=detail)
        )
        cut = cut_entry(state) if outcome.limit == "cpu_s" else ""
        if await self._finish(api, record, gated=True, cut=cut):
            self.env.instruments.end_program(program_span(record, limit, kind))

    async def _finish(
        self, api: Capabilities, record: ProgramRecord, gated: bool, cut: str = ""
    ) -> bool:
        """The end transition (gated: at the program's turn; before it, Redis holds the end
        and records it when the turn comes, and the worker is freed at once); `cut`: a `cpu_s`
        cut's entry, journaled with the end at the call number the program would have made next."""
        record.clock_h = end_h = next_step_h(api.state.clock_h)  # the end is a step, as a call is
        args = FinishArgs(
            id=record.id,
            member=order_member(end_h, record.id),
            status=record.status,
            record=record.to_json(),
            clock_ms=clock_ms(end_h),
            events=api.take_events(),
            tag=self.tag,
            gated=gated,
            seq=api.state.calls + 1,
            cut=cut,
            view=wait_view(record),
        )
        return await api.end(args)

    async def _fault(self, api: Capabilities) -> None:
        record = api.record
        record.status = "crashed"
        record.error = "runner fault: the lab failed to answer this program (see the runner's log)"
        record.ended_at = time.time()
        detail = {"status": "crashed", "error": record.error, "error_kind": "lab_fault"}
        api.pending.append(  # the mark: the analysis reads the cause here, never the words
            Event(t=time.time(), program=record.id, kind="end", decision="info", detail=detail)
        )
        if await self._finish(api, record, gated=False) and self.env is not None:
            self.env.instruments.end_program(program_span(record, None, "lab_fault"))

    # --- channels --------------------------------------------------------------------------

    async def _listen(self, subscribed: asyncio.Event) -> None:
        """Turn notices, stops, wakes and the run's kill, from the run's Redis channels."""
        prefix = self.coordinator.prefix
        turn, stop, wake, kill = (
            run_key(prefix, "turn:", self.tag),
            run_key(prefix, "stop:", self.tag),
            run_key(prefix, "wake:", self.tag),
            run_key(prefix, "kill-signal"),
        )

        def on_message(channel: str, data: str) -> None:
            if channel == turn:  # an id, or an id and a kept call's answer (lib.lua's handoff)
                program, _, answer = data.partition("\n")
                if program in self._slices:  # else stale: it kept nothing for a program gone
                    self._answers.update({program: answer} if answer else {})
                    self.turn_signal(program).set()
            elif channel == stop:
                task = self._slices.get(data)
                if task is not None:
                    task.cancel()
            elif channel == wake:
                self._wake.set()
            elif channel == kill:
                stopping = asyncio.get_running_loop().create_task(
                    self.stop_all(f"run stopped: {data}")
                )
                kills.add(stopping)
                stopping.add_done_callback(kills.discard)

        kills: set[asyncio.Task[int]] = set()
        try:
            await Subscriber(self.coordinator.url).listen(
                [turn, stop, wake, kill], on_message, subscribed
            )
        except Exception as exc:  # Redis gone: the health check stops everything
            log.warning("runner %s: the run's channels failed (%r); stopping", self.tag, exc)
            await asyncio.sleep(HEALTH_EVERY_S)

    async def _health(self) -> None:
        """Fail closed: stop everything when the run is killed or Redis goes away."""
        while True:
            await asyncio.sleep(HEALTH_EVERY_S)
            try:
                reason = await self.coordinator.kill_reason()
            except CoordinatorUnavailable:
                reason = "coordinator unreachable"
            if reason:
                await self.stop_all(f"run stopped: {reason}")
                return

    async def _stop_slices(self) -> None:
        tasks = list(self._slices.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)


async def _quietly(work: Awaitable[Any], within_s: float | None = None) -> None:
    with contextlib.suppress(CoordinatorUnavailable, RunKilled, TimeoutError):
        await asyncio.wait_for(work, within_s)

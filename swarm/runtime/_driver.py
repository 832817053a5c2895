"""One run, start to finish: cluster up, root dialogue, the tree grows, the directory is written.

Data flows one way: spec -> cluster -> root dialogue -> root program -> runners -> coordinator
-> run directory. The driver only watches Redis while the tree grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarmlab.cluster import RayCluster, RedisServer
from swarmlab.core import ROOT_ID, CapExceeded, ProgramFault, RunKilled, SpecError, id_sort_key
from swarmlab.models import create_backend, ensure_local_server
from swarmlab.observability.telemetry import (
    SwarmInstruments,
    Telemetry,
    TelemetryConfig,
    in_span,
    inject,
    trace_id_hex,
)
from swarmlab.records import TERMINAL, ProgramRecord, RootDialogue, RunDir, RunResult
from swarmlab.spec import ExperimentSpec, check_redis_url, check_run_id
from swarmlab.world import RedisLedger, World

from ._coordinator import Coordinator, TelemetrySink
from ._live import register_run, unregister_run
from ._model_calls import charge_model_call
from ._pool import RunnerPool
from ._progress import ProgressSink, Snapshot, silent
from ._scenario import extract_program, first_request, follow_up_request
from ._seeds import stable_seed

POLL_S = 0.2
DRAIN_TIMEOUT_S = 15.0
DIALOGUE_MAX_TOKENS = 1024


@dataclass
class RunOptions:
    """Where and how to run, as opposed to what (the spec)."""

    program: str | None = None
    """Source of the root program; skips the root dialogue."""
    run_id: str | None = None
    out_dir: Path | None = None
    ray_address: str | None = None
    redis_url: str | None = None
    progress: ProgressSink | None = None
    telemetry: TelemetryConfig | None = None
    """Where spans and metrics go besides the run directory (default: OTEL_* variables)."""
    sweep_id: str | None = None
    """The sweep this run belongs to: its reservations also charge the sweep's caps."""
    extra_meta: dict[str, str] = field(default_factory=dict)


def new_run_id(spec: ExperimentSpec) -> str:
    return f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def run_experiment(spec: ExperimentSpec, options: RunOptions | None = None) -> RunResult:
    """Run one experiment to its end and write its run directory."""
    return asyncio.run(_Run(spec, options or RunOptions()).execute())


class _Run:
    def __init__(self, spec: ExperimentSpec, options: RunOptions) -> None:
        if spec.model.startswith("replay:"):  # runners may start elsewhere: pin the recording
            path = Path(spec.model.removeprefix("replay:")).resolve()
            spec = spec.model_copy(update={"model": f"replay:{path}"})
        self.spec = spec
        self.serving_spec = spec
        """The spec runners get: the same, but `local` becomes the server this run started."""
        self.local_model: Any = None
        self.opts = options
        # The run id names the run directory and every Redis key of the run: checked first.
        self.run_id = check_run_id(options.run_id or new_run_id(spec), "run id")
        self.out = Path(options.out_dir or Path("runs") / self.run_id)
        self.progress = options.progress or silent()
        self.redis_url = options.redis_url or os.environ.get("SWARMLAB_REDIS_URL")
        if self.redis_url:
            check_redis_url(self.redis_url, "Redis URL")
        self.ray_address = options.ray_address or os.environ.get("SWARMLAB_RAY_ADDRESS")
        self.status = "completed"
        self.ended_because = ""
        self.dialogue: RootDialogue | None = None
        self.started = time.time()
        self.tel_config = options.telemetry or TelemetryConfig.from_env()
        self.telemetry: Telemetry | None = None
        self.sink: TelemetrySink | None = None
        self.workflow: Any = None

    async def execute(self) -> RunResult:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file in the way, no permission: the user picks another place
            why = "a file is in the way" if isinstance(exc, FileExistsError) else exc.strerror
            raise SpecError(f"run directory {self.out}: cannot create it ({why})") from None
        redis_server: RedisServer | None = None
        ray = RayCluster()
        pool: RunnerPool | None = None
        coord: Coordinator | None = None
        try:
            if not self.redis_url:
                self.progress.note("starting a private redis-server")
                redis_server = RedisServer(self.out / ".redis").start()
                self.redis_url = redis_server.url
            coord = await self._open_coordinator(self.redis_url)
            if self.spec.model == "local":
                await self._start_local_model()
            root_code = self.opts.program or await self._root_dialogue(coord)
            if root_code is not None:
                pool = await self._start_pool(ray, self.redis_url)
                await self._grow(coord, pool, root_code)
            return await self._finish(coord)
        finally:
            if pool is not None:
                with contextlib.suppress(Exception):
                    await pool.close()
            ray.shutdown()
            unregister_run(self.run_id)
            if coord is not None:
                with contextlib.suppress(Exception):
                    await coord.delete_run()
                await coord.close()
            if self.local_model is not None:
                self.local_model.stop()
            if self.telemetry is not None:
                self.telemetry.shutdown()
            if self.sink is not None:
                self.sink.close()
            if redis_server is not None:
                redis_server.stop()

    async def _open_coordinator(self, redis_url: str) -> Coordinator:
        """Connect to Redis, register the run, start its telemetry and set its caps."""
        coord = Coordinator(redis_url, self.run_id, self.opts.sweep_id)
        await coord.ping()
        register_run(self.run_id, redis_url, self.out.resolve())
        self.sink = TelemetrySink(redis_url, self.run_id)
        self.telemetry = Telemetry(self.tel_config, self.sink, {"swarmlab.run_id": self.run_id})
        self.instruments = SwarmInstruments(self.telemetry)
        self.workflow = self.instruments.workflow_span(self.run_id, self.spec.name)
        await coord.init_run(
            self.spec.caps,
            {
                "status": "starting",
                "spec": self.spec.model_dump_json(),
                "started_at": repr(self.started),
                "out_dir": str(self.out.resolve()),
                **self.opts.extra_meta,
            },
        )
        return coord

    async def _start_pool(self, ray: RayCluster, redis_url: str) -> RunnerPool:
        self.progress.note("starting Ray" if not self.ray_address else "connecting to Ray")
        if self.ray_address:
            ray.connect(self.ray_address)
        else:
            ray.start_local(self.out / ".ray")
        pool = RunnerPool(
            ray, self.run_id, self.serving_spec, redis_url, self.tel_config, self.opts.sweep_id
        )
        await pool.start()
        return pool

    async def _root_dialogue(self, coord: Coordinator) -> str | None:
        """Ask the question, push once for a better way, and take the program from the answer."""
        spec = self.serving_spec
        backend = create_backend(spec.model, sim_options=spec.sim, model_name=spec.model_name)
        try:
            seed = stable_seed(spec.policy_seed, "root")
            first = first_request(spec.system_prompt, spec.question, DIALOGUE_MAX_TOKENS, seed)
            answer1 = await self._dialogue_call(coord, backend, first)
            second = follow_up_request(first, answer1, spec.follow_up, DIALOGUE_MAX_TOKENS)
            answer2 = await self._dialogue_call(coord, backend, second)
        except (CapExceeded, RunKilled) as exc:
            self.status, self.ended_because = "halted", f"root dialogue refused: {exc}"
            return None
        except ProgramFault as exc:  # the model itself failed: nothing to grow
            self.status, self.ended_because = "failed", f"root dialogue: {exc}"
            return None
        finally:
            await backend.aclose()
        program = extract_program(answer2)
        self.dialogue = RootDialogue(first_answer=answer1, second_answer=answer2, program=program)
        if program is None:
            self.ended_because = "the model answered in prose: no program to run"
        return program

    async def _start_local_model(self) -> None:
        """Start (or reuse) the bundled model's vLLM server once for the whole run."""
        shown = [-10.0]

        def progress(elapsed: float, message: str) -> None:
            # vLLM logs ~150 lines while it starts: show one every few seconds, and the end.
            if elapsed - shown[0] >= 5 or "ready" in message:
                shown[0] = elapsed
                self.progress.note(f"local model [{elapsed:4.0f} s] {message[:140]}")

        self.progress.note("starting the local model server (vLLM, CPU)")
        server = await asyncio.to_thread(
            ensure_local_server,
            log_path=self.out / "model-server.log",
            on_progress=progress,
            otlp_traces_endpoint=self.tel_config.otlp_endpoint,
        )
        self.local_model = server
        self.serving_spec = self.spec.model_copy(
            update={"model": f"openai:{server.url}", "model_name": server.model_name}
        )

    async def _dialogue_call(self, coord: Coordinator, backend: Any, request: Any) -> str:
        span = self.instruments.call_span(in_span(self.workflow), "run_ai")
        try:
            completion = await charge_model_call(coord, backend, request)
            self.instruments.model_call(span, request, completion, backend.name)
            return str(completion.text)
        except (CapExceeded, RunKilled) as exc:
            self.instruments.denial(span, getattr(exc, "cap", "killed"))
            raise
        finally:
            span.end()

    async def _grow(self, coord: Coordinator, pool: RunnerPool, code: str) -> None:
        await coord.admit(None, 0)
        root = ProgramRecord(
            id=ROOT_ID,
            code=code,
            task=self.spec.question,
            created_at=time.time(),
            traceparent=inject(in_span(self.workflow)),
        )
        await coord.put_program(root)
        await coord.set_meta(status="running")
        interrupted = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, interrupted.set)
        self.progress.start(self.run_id, self.spec, self.out)
        await pool.submit(root)
        try:
            await self._watch(coord, pool, interrupted)
            await pool.flush()
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGINT)

    async def _watch(
        self, coord: Coordinator, pool: RunnerPool, interrupted: asyncio.Event
    ) -> None:
        wall = self.spec.caps.wall_clock_s
        while True:
            if interrupted.is_set():
                await coord.kill("interrupted (Ctrl-C)")
            reason = await coord.kill_reason()
            if reason is None and time.time() - self.started > wall:
                await coord.kill("wall_clock_s")
                reason = "wall_clock_s"
            usage = await coord.usage()
            root = await coord.get_program(ROOT_ID)
            self.progress.update(await self._snapshot(coord, usage))
            if reason is not None:
                await self._drain(coord, pool, reason)
                return
            if root is not None and root.status in TERMINAL and usage["live"]["used"] <= 0:
                self.ended_because = "tree quiescent: every program ended"
                return
            await asyncio.sleep(POLL_S)

    async def _drain(self, coord: Coordinator, pool: RunnerPool, reason: str) -> None:
        """Stop every program and wait until they are recorded as ended."""
        if reason == "wall_clock_s":
            self.status = "halted"
            self.ended_because = f"cap wall_clock_s reached ({self.spec.caps.wall_clock_s:g} s)"
        elif reason.startswith("tripwire "):
            self.status, self.ended_because = "halted", reason
        else:
            self.status = "killed"
            self.ended_because = f"killed: {reason}"
        await pool.stop_all(self.ended_because)
        give_up = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < give_up:
            if (await coord.usage())["live"]["used"] <= 0 and await pool.running() == 0:
                return
            await asyncio.sleep(POLL_S)

    async def _snapshot(self, coord: Coordinator, usage: dict[str, dict[str, float]]) -> Snapshot:
        return Snapshot(
            elapsed_s=time.time() - self.started,
            counts=await coord.counts(),
            usage=usage,
        )

    async def _finish(self, coord: Coordinator) -> RunResult:
        ended = time.time()
        programs = sorted(await coord.all_programs(), key=lambda r: id_sort_key(r.id))
        for record in programs:  # programs the drain could not reach still end as killed
            if record.status not in TERMINAL:
                record.status, record.error = "killed", record.error or self.ended_because
                record.ended_at = record.ended_at or ended
        status = self.status
        self.workflow.set_attribute("swarmlab.status", status)
        self.workflow.set_attribute("swarmlab.ended_because", self.ended_because)
        self.workflow.set_attribute("swarmlab.programs", len(programs))
        self.workflow.end()
        trace_id = trace_id_hex(self.workflow)
        assert self.telemetry is not None
        await asyncio.to_thread(self.telemetry.flush)
        world = World(self.spec.world, self.spec.world_seed)
        ledger = RedisLedger(coord.client, coord.prefix + "world:", self.spec.world.starting_money)
        outcome = await world.outcome(ledger)
        result = RunResult(
            run_id=self.run_id,
            out_dir=self.out,
            spec=self.spec,
            status=self.status,  # type: ignore[arg-type]
            ended_because=self.ended_because or "no program ran",
            started_at=self.started,
            ended_at=ended,
            usage=await coord.usage(),
            programs=programs,
            events=await coord.all_events(),
            blackboard=await coord.blackboard(),
            outcome=outcome.model_dump(),
            dialogue=self.dialogue,
            root_from_file=self.opts.program is not None,
            trace_id=trace_id,
            spans=await coord.telemetry_lines("spans"),
            metrics=await coord.telemetry_lines("metrics"),
            completions=await coord.completions(),
        )
        RunDir(self.out).write(result)
        await coord.set_meta(status=self.status)
        self.progress.finish(result)
        return result

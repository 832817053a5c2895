"""One run, start to finish: cluster up, root dialogue, the tree grows, the directory is written.

Data flows one way: spec -> cluster -> root dialogue -> root program -> runners -> Redis -> run
directory. The driver watches the run from Redis while the tree grows (`_watch`), keeps a copy of
every record and event (`_mirror`), and writes the run directory in every case (`_finish`):
completed, killed, halted, or failed, even when Redis or a runner is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarmlab.cluster import (
    RayCluster,
    Reaper,
    RedisServer,
    age_counted_for_a_client,
    process_age_s,
    warm_instance,
)
from swarmlab.core import (
    ROOT_ID,
    CapExceeded,
    ClusterError,
    CoordinatorUnavailable,
    ModelError,
    ProgramFault,
    RunKilled,
    SpecError,
)
from swarmlab.models import create_backend, ensure_local_server, request_headers
from swarmlab.observability.telemetry import (
    SpanForwarder,
    SwarmInstruments,
    Telemetry,
    TelemetryConfig,
    in_span,
    inject,
    new_span_id,
    span_forwarder,
)
from swarmlab.records import ProgramRecord, RootDialogue, RunDir, RunResult
from swarmlab.spec import (
    ExperimentSpec,
    check_redis_url,
    check_run_id,
    env_value,
    redis_memory_bytes,
)

from ._coordinator import Coordinator, TelemetrySink
from ._cuts import replay_cuts
from ._finish import finish_run
from ._live import register_run, unregister_run
from ._mirror import Mirror
from ._model_calls import charge_model_call
from ._model_gate import in_flight_bound
from ._pool import RunnerPool, no_runner_wait
from ._progress import ProgressSink, silent
from ._scenario import extract_program, first_request, follow_up_request
from ._scheduler import Scheduler, refusal
from ._seeds import stable_seed
from ._state import RunState
from ._transitions import NO_CALL, SpawnArgs
from ._watch import CtrlC, watch

DIALOGUE_MAX_TOKENS = 1024


@dataclass
class RunOptions:
    """Where and how to run, as opposed to what (the spec)."""

    program: str | None = None
    """Source of the root program; skips the root dialogue."""
    run_id: str | None = None
    out_dir: Path | None = None
    replace_run: bool = False
    """Write over a run directory that already holds a run (trials re-run a failed trial in its
    place); otherwise such a directory is refused."""
    ray_address: str | None = None
    redis_url: str | None = None
    progress: ProgressSink | None = None
    telemetry: TelemetryConfig | None = None
    """Where spans and metrics go besides the run directory (default: OTEL_* variables)."""
    sweep_id: str | None = None
    """The sweep this run belongs to: its reservations also charge the sweep's caps."""
    runners: list[Any] | None = None
    """Runner actors to borrow (a sweep's, shared by its cells); None: the run creates its own."""
    extra_meta: dict[str, str] = field(default_factory=dict)
    no_runner_wait_s: float | None = None
    """How long the run waits for a runner once none serves, before it ends `failed` (default:
    `SWARMLAB_NO_RUNNER_WAIT_S`, else 120 s). The wait counts against `wall_clock_s`."""


def new_run_id(spec: ExperimentSpec) -> str:
    return f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def _closed(pool: RunnerPool | None, ray: RayCluster) -> asyncio.Task[None]:
    """The pool's close and Ray's shutdown, started now (Ray's in a thread: it waits on the
    processes it started), so that they overlap the reading of the record; the tear-down then
    has neither left to do."""

    async def close() -> None:
        if pool is not None:
            with contextlib.suppress(Exception):
                await pool.close()
        await asyncio.to_thread(ray.shutdown)

    return asyncio.get_running_loop().create_task(close())


def run_experiment(spec: ExperimentSpec, options: RunOptions | None = None) -> RunResult:
    """Run one experiment to its end and write its run directory."""
    return asyncio.run(_Run(spec, options or RunOptions()).execute())


class _Run(RunState):
    ctrl_c: CtrlC

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
        self.redis_url = options.redis_url or env_value("SWARMLAB_REDIS_URL")
        if self.redis_url:
            check_redis_url(self.redis_url, "Redis URL")
        self.ray_address = options.ray_address or env_value("SWARMLAB_RAY_ADDRESS")
        # `swarmlab up`'s Ray and Redis, when running, stand in for those not given.
        self.warm = None if self.redis_url and self.ray_address else warm_instance()
        if self.warm is not None:
            self.redis_url = self.redis_url or self.warm.redis_url
            self.ray_address = self.ray_address or self.warm.ray_address
        self.cold_s = 0.0
        """Seconds spent starting a private Redis and Ray (a cold start), shown on their own."""
        self.status = "completed"
        self.ended_because = ""
        self.dialogue: RootDialogue | None = None
        self.started = time.time()
        self.tel_config = options.telemetry or TelemetryConfig.from_env()
        self.telemetry: Telemetry | None = None
        self.sink: TelemetrySink | None = None
        self.forwarder: SpanForwarder | None = None
        self.workflow: Any = None
        self.mirror: Mirror | None = None
        self.runners_lost = 0
        self.stopped_at: float | None = None
        self.tree_started: float | None = None
        self.root_from_file = options.program is not None
        self.no_runner_wait_s = no_runner_wait(options.no_runner_wait_s)
        self.opening: Coordinator | None = None
        """The run's coordinator from its first step (for a start cancelled while it opens)."""

    async def execute(self) -> RunResult:
        self._claim_out()
        reaper = Reaper.start(self.out / ".reaper.json")
        redis_server: RedisServer | None = None
        ray = RayCluster()
        pool: RunnerPool | None = None
        coord: Coordinator | None = None
        self.ctrl_c = CtrlC()
        with self.ctrl_c:
            try:
                if not self.redis_url:
                    self.progress.note("starting a private redis-server")
                    memory = redis_memory_bytes(self.spec.caps)
                    began = time.monotonic()
                    # It outlives a killed driver until the watchdog has written the run directory
                    # from it, then the watchdog stops it.
                    redis_server = RedisServer(
                        self.out / ".redis", maxmemory=memory, outlive_parent=True
                    ).start()
                    self.cold_s += time.monotonic() - began
                    reaper.watch_pid(redis_server.pid)
                    self.redis_url = redis_server.url
                coord = await self._open_coordinator(self.redis_url)
                # Should this process die (SIGKILL, out of memory), its watchdog writes the run
                # directory from Redis before it stops anything.
                reaper.recover(self.run_id, self.opts.sweep_id)
                sched = Scheduler(coord)
                self.mirror = Mirror(coord)
                if self.spec.model == "local":
                    await self._start_local_model(reaper)
                root_code = self.opts.program or await self._root_dialogue(sched)
                if root_code is not None:
                    pool = self._place_pool(ray, self.redis_url, sched, reaper)
                    await pool.start()  # a cancel here leaves `pool` to close
                    await self._grow(coord, sched, pool, root_code)
            except asyncio.CancelledError:
                task = asyncio.current_task()  # the cancel was Ctrl-C's, and no one else's
                if not self.ctrl_c.cancelled_start or (task is not None and task.uncancel() > 0):
                    raise
                await self._interrupted_start(coord)
            except CoordinatorUnavailable as exc:
                self.status, self.ended_because = "failed", f"Redis unreachable: {exc}"
            except (ClusterError, ModelError) as exc:
                self.status, self.ended_because = "failed", str(exc)
            finally:
                self.ctrl_c.ending()
                self.runners_lost = pool.lost if pool is not None else 0
                # Runners that flushed have no more to say: they close while the record is read.
                closing = _closed(pool, ray) if self.runners_flushed else None
                result = await finish_run(self, coord)
                if closing is not None:
                    await closing
                await self._tear_down(pool if closing is None else None, ray, coord, redis_server)
                reaper.stop()
        self.progress.finish(result)
        return result

    def _claim_out(self) -> None:
        """The run directory, made and writable; refused when it holds another run."""
        if RunDir(self.out).file("summary.json").exists() and not self.opts.replace_run:
            raise SpecError(
                f"run directory {self.out} already holds a run (its summary.json): name a new "
                "directory with --out, or move that run away first"
            )
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file in the way, no permission: the user picks another place
            why = "a file is in the way" if isinstance(exc, FileExistsError) else exc.strerror
            raise SpecError(f"run directory {self.out}: cannot create it ({why})") from None
        RunDir(self.out).check_writable()

    async def _interrupted_start(self, coord: Coordinator | None) -> None:
        """Ctrl-C as the run started: it ends killed, a root already admitted stopped, and a
        coordinator that was still opening lets go of what it set in Redis."""
        self.stopped_at = time.time()
        self.status, self.ended_because = "killed", "killed: interrupted (Ctrl-C) as it started"
        with contextlib.suppress(Exception):
            if coord is not None:
                await coord.kill("interrupted (Ctrl-C)")
            elif self.opening is not None:
                await self.opening.delete_run()
                await self.opening.close()

    async def _tear_down(
        self,
        pool: RunnerPool | None,
        ray: RayCluster,
        coord: Coordinator | None,
        redis_server: RedisServer | None,
    ) -> None:
        if pool is not None:
            with contextlib.suppress(Exception):
                await pool.close()
        ray.shutdown()
        unregister_run(self.run_id)
        # Telemetry's last flush writes to the run's keys: stop it before they are deleted.
        if self.telemetry is not None:
            self.telemetry.shutdown()
        if self.forwarder is not None:  # after the last span reached the run's lines
            self.forwarder.close()
        if self.sink is not None:
            self.sink.close()
        if coord is not None:
            with contextlib.suppress(Exception):
                await coord.delete_run()
            await coord.close()
        if self.local_model is not None:
            self.local_model.stop()
        if redis_server is not None:
            redis_server.stop()

    async def _open_coordinator(self, redis_url: str) -> Coordinator:
        """Connect to Redis, register the run, start its telemetry and set its caps."""
        coord = self.opening = Coordinator(redis_url, self.run_id, self.opts.sweep_id)
        await coord.ping()
        register_run(self.run_id, redis_url, self.out.resolve())
        self.sink = TelemetrySink(redis_url, self.run_id)
        self.telemetry = Telemetry(self.tel_config, self.sink, {"swarmlab.run_id": self.run_id})
        sink = self.sink
        self.forwarder = span_forwarder(self.tel_config, lambda at, n: sink.lines("spans", at, n))
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
            ordered=self.spec.schedule == "ordered",
        )
        await coord.set_cuts(await asyncio.to_thread(replay_cuts, self.spec.model))
        return coord

    def _place_pool(
        self, ray: RayCluster, redis_url: str, sched: Scheduler, reaper: Reaper
    ) -> RunnerPool:
        """Ray, and the run's pool of runners, not started yet."""
        self.progress.note("starting Ray" if not self.ray_address else "connecting to Ray")
        if self.ray_address:
            warm = self.warm if self.warm and self.warm.ray_address == self.ray_address else None
            ray.connect(self.ray_address, warm.ray_token_path if warm else None)
        else:
            began = time.monotonic()
            ray.start_local(self.out / ".ray")
            self.cold_s += time.monotonic() - began
            if ray.temp_dir is not None:
                reaper.watch_marker(str(ray.temp_dir))
        # One bound on requests in flight for the whole run, resolved here (the driver's
        # environment knows the cluster's model server), the same for every runner.
        bound = in_flight_bound(self.serving_spec.model_in_flight)
        self.serving_spec = self.serving_spec.model_copy(update={"model_in_flight": bound})
        pool = RunnerPool(
            ray,
            self.run_id,
            self.serving_spec,
            redis_url,
            self.tel_config,
            sched,
            self.opts.sweep_id,
            self.no_runner_wait_s,
            self.opts.runners,
        )
        return pool

    async def _root_dialogue(self, sched: Scheduler) -> str | None:
        """Ask the question, push once for a better way, and take the program from the answer."""
        spec = self.serving_spec
        backend = create_backend(spec.model, sim_options=spec.sim, model_name=spec.model_name)
        try:
            seed = stable_seed(spec.policy_seed, "root")
            first = first_request(spec.system_prompt, spec.question, DIALOGUE_MAX_TOKENS, seed)
            answer1 = await self._dialogue_call(sched, backend, first)
            second = follow_up_request(first, answer1, spec.follow_up, DIALOGUE_MAX_TOKENS)
            answer2 = await self._dialogue_call(sched, backend, second)
        except CapExceeded as exc:
            self.status = "halted"
            self.ended_because = f"the root dialogue was refused: cap {exc.cap} reached"
            return None
        except RunKilled as exc:
            self.status = "killed"
            self.ended_because = f"the root dialogue was stopped: {exc.reason}"
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

    async def _start_local_model(self, reaper: Reaper) -> None:
        """Start (or reuse) the bundled model's vLLM server once for the whole run."""
        shown = [-10.0]

        def progress(elapsed: float, message: str) -> None:
            # vLLM logs ~150 lines while it starts: show one every few seconds, and the end.
            if elapsed - shown[0] >= 5 or "ready" in message:
                shown[0] = elapsed
                self.progress.note(f"local model [{elapsed:4.0f} s] {message[:140]}")

        self.progress.note("starting the local model server (vLLM, CPU)")
        starting = asyncio.ensure_future(
            asyncio.to_thread(
                ensure_local_server,
                log_path=self.out / "model-server.log",
                on_progress=progress,
                otlp_traces_endpoint=self.tel_config.otlp_endpoint,
            )
        )
        try:
            server = await asyncio.shield(starting)
        except asyncio.CancelledError:  # Ctrl-C: the server still starts; then it is stopped
            self.local_model = await starting
            raise
        self.local_model = server
        if server.server.owned and server.server.pid:
            reaper.watch_group(server.server.pid)
        self.serving_spec = self.spec.model_copy(
            update={"model": f"openai:{server.url}", "model_name": server.model_name}
        )

    async def _start_clock(self, coord: Coordinator) -> None:
        """The wall clock counts from the tree's start: start-up (Redis, the model server, the
        root dialogue, Ray) is timed on its own and never eats into it."""
        self.tree_started = time.time()
        wall = self.spec.caps.wall_clock_s
        await coord.set_meta(deadline_ms=str(int((self.tree_started + wall) * 1000)))
        self.progress.note(
            f"start-up took {self.tree_started - self.started:.1f} s; "
            f"the wall clock ({wall:g} s) starts with the root program"
        )
        how = (
            "warm: run by the lab process of `swarmlab up`"
            if age_counted_for_a_client()
            else "warm: Ray and Redis were up"
            if self.warm is not None
            else f"cold start: starting Redis and Ray took {self.cold_s:.1f} s of it"
        )
        self.progress.note(
            f"first program {process_age_s():.2f} s after the process started ({how})"
        )

    async def _dialogue_call(self, sched: Scheduler, backend: Any, request: Any) -> str:
        span = self.instruments.call_span(in_span(self.workflow), "run_ai")
        # The server's own spans (vLLM's) hang under this call's span, as a program's do.
        token = request_headers.set({"traceparent": inject(in_span(span)) or ""})
        try:
            completion = await charge_model_call(sched, backend, request)
            self.instruments.model_call(span, request, completion, backend.name)
            return str(completion.text)
        except (CapExceeded, RunKilled) as exc:
            self.instruments.denial(span, getattr(exc, "cap", "killed"))
            raise
        finally:
            request_headers.reset(token)
            span.end()

    async def _grow(
        self, coord: Coordinator, sched: Scheduler, pool: RunnerPool, code: str
    ) -> None:
        root = ProgramRecord(
            id=ROOT_ID,
            code=code,
            task=self.spec.question,
            created_at=time.time(),
            traceparent=inject(in_span(self.workflow)),
            span_id=new_span_id(),
        )
        await self._start_clock(coord)
        reply = await sched.run(SpawnArgs.of(0, 0, root, "queue"), NO_CALL)
        if reply.kind != "ok":
            self.status = "killed" if reply.kind == "killed" else "halted"
            self.ended_because = f"the root program was refused: {refusal(reply)}"
            return
        await coord.set_meta(status="running")
        self.progress.start(self.run_id, self.spec, self.out)
        await watch(self, coord, sched, pool, self.ctrl_c.growing())

"""Trials: N independent runs per model x persona x affordance, then their table.

Each trial is an ordinary run (`run_experiment`, the same path as `swarmlab run`) with its own
run id, directory and seed. What is slow to start is started once for all of them: one
redis-server (each run keeps its state under its own run id), one Ray instance in this process
(runs find it initialised and share it), and for `local` one vLLM server that every trial of
that model calls as `openai:<url>`. Trials run one after another, or `parallel` at a time in
threads, each with its own event loop. A trial that fails is recorded (`failed.json` when its
run could not even write a directory) and the others go on; running the same plan again resumes
it: trials that completed or were halted by a cap are kept, failed and killed ones run again.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import traceback
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from swarmlab.cluster import RayCluster, Reaper, RedisServer
from swarmlab.core import ModelError, write_text
from swarmlab.models import LocalServer, ensure_local_server
from swarmlab.observability.telemetry import TelemetryConfig
from swarmlab.runtime import ProgressSink, RunOptions, run_experiment, silent
from swarmlab.spec import ExperimentSpec, shared_redis_memory_bytes

from ._export import write_exports
from ._plan import Trial, TrialsPlan
from ._table import COUNTED, trial_row, write_tables

PROBE_TIMEOUT_S = 10.0


class TrialsRunner:
    """Runs a plan's trials that have no summary yet, then writes its tables and exports."""

    def __init__(
        self,
        plan: TrialsPlan,
        redis_url: str | None = None,
        ray_address: str | None = None,
        parallel: int = 1,
        progress: ProgressSink | None = None,
        telemetry: TelemetryConfig | None = None,
    ) -> None:
        self.plan = plan
        self.redis_url = redis_url
        self.ray_address = ray_address
        self.parallel = max(1, parallel)
        self.progress = progress or silent()
        self.telemetry = telemetry or TelemetryConfig.from_env()
        self.served: dict[str, tuple[str, str]] = {}
        """Model strings served here: `local` -> (openai:<url>, model name)."""
        self.tag = hashlib.sha1(str(plan.out.resolve()).encode()).hexdigest()[:6]

    def run(self) -> dict[str, Any]:
        self.plan.refuse_another()
        todo = [t for t in self.plan.trials if not self._done(t)]
        # A server that does not answer stops the command before it writes anything: a plan
        # left behind would refuse the next command's other plan in the same directory.
        _probe_endpoints({t.condition.model for t in todo})
        self.plan.save()
        done = len(self.plan.trials) - len(todo)
        if done:
            self.progress.note(f"resuming: {done} of {len(self.plan.trials)} trials already done")
        if todo:
            self._run_todo(todo)
        return finish_trials(self.plan)

    def _done(self, trial: Trial) -> bool:
        """Trials that failed or were stopped from outside run again."""
        summary = self.plan.trial_summary(trial)
        return summary is not None and summary.status in COUNTED

    def _run_todo(self, todo: list[Trial]) -> None:
        server: RedisServer | None = None
        local: LocalServer | None = None
        ray = RayCluster()
        # Should this process die, its watchdog writes the directories of the runs it was
        # running from the shared Redis before it stops that.
        reaper = Reaper.start(self.plan.out / ".reaper.json")
        reaper.recover_below(self.plan.out / "runs")
        try:
            if any(t.condition.model == "local" for t in todo):
                local = self._start_local_model()
            if not self.redis_url:
                bound = shared_redis_memory_bytes([t.spec.caps for t in todo], self.parallel)
                server = RedisServer(
                    self.plan.out / ".redis", maxmemory=bound, outlive_parent=True
                ).start()
                reaper.watch_pid(server.pid)
                self.redis_url = server.url
            if self.ray_address:
                ray.connect(self.ray_address)
            else:
                ray.start_local(self.plan.out / ".ray")
                if ray.temp_dir is not None:
                    reaper.watch_marker(str(ray.temp_dir))
            self._run_trials(todo)
        finally:
            ray.shutdown()
            if server is not None:
                server.stop()
            if local is not None:
                local.stop()
            reaper.stop()

    def _start_local_model(self) -> LocalServer:
        self.progress.note("starting the local model server (vLLM, CPU) once for every trial")
        shown = [-10.0]

        def progress(elapsed: float, message: str) -> None:
            if elapsed - shown[0] >= 10 or "ready" in message:  # vLLM logs ~150 lines
                shown[0] = elapsed
                self.progress.note(f"local model [{elapsed:4.0f} s] {message[:140]}")

        local = ensure_local_server(
            log_path=self.plan.out / "model-server.log",
            on_progress=progress,
            otlp_traces_endpoint=self.telemetry.otlp_endpoint,
        )
        self.served["local"] = (f"openai:{local.url}", local.model_name)
        self.progress.note(f"local model {local.model_name} at {local.url}")
        return local

    def _run_trials(self, todo: list[Trial]) -> None:
        started, total = time.monotonic(), len(todo)
        finished = [0]
        lock = threading.Lock()

        def one(trial: Trial) -> None:
            what = self._run_one(trial)
            with lock:
                finished[0] += 1
                elapsed = time.monotonic() - started
                self.progress.note(
                    f"[{finished[0]}/{total} trials, {elapsed:.0f} s] {trial.id}: {what}"
                )

        if self.parallel == 1:
            for trial in todo:
                one(trial)
            return
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            futures = [pool.submit(one, t) for t in todo]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                for future in futures:  # Ctrl-C or a fault: start no further trial
                    future.cancel()
                raise

    def _run_one(self, trial: Trial) -> str:
        out = self.plan.trial_dir(trial)
        (out / "failed.json").unlink(missing_ok=True)
        options = RunOptions(
            run_id=f"trials-{self.tag}-{trial.id.replace('/', '-')}"[:120],
            out_dir=out,
            replace_run=True,  # a failed or stopped trial runs again in its place
            redis_url=self.redis_url,
            ray_address=self.ray_address,
            telemetry=self.telemetry,
            extra_meta={"trial": trial.id},
        )
        try:
            result = run_experiment(self._serving_spec(trial.spec), options)
        except Exception as exc:  # one trial's fault must not lose the others
            _record_failure(out, trial, exc)
            return f"FAILED ({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__})"
        if result.status == "killed" and "interrupted" in result.ended_because:
            raise KeyboardInterrupt  # Ctrl-C stops the whole set, not one trial
        if result.status not in COUNTED:
            return f"{result.status.upper()} ({result.ended_because[:160]})"
        row = trial_row(self.plan, trial)
        return (
            f"{result.status}, scaffold {'yes' if row['scaffold'] else 'no'}, "
            f"{row['programs']} programs, re-creation chain {row['recreation_chain']}"
        )

    def _serving_spec(self, spec: ExperimentSpec) -> ExperimentSpec:
        served = self.served.get(spec.model)
        if served is None:
            return spec
        model, name = served
        return spec.model_copy(update={"model": model, "model_name": name})


def finish_trials(plan: TrialsPlan) -> dict[str, Any]:
    """Tables, trajectories and datasheet from what the trial directories hold."""
    summary = write_tables(plan)
    summary["exports"] = write_exports(plan)
    write_text(plan.out / "trials.json", json.dumps(summary, indent=1, default=str))
    return summary


def _record_failure(out: Path, trial: Trial, exc: BaseException) -> None:
    out.mkdir(parents=True, exist_ok=True)
    detail = {
        "trial": trial.id,
        "error": str(exc) or type(exc).__name__,
        "trace": traceback.format_exc()[-4000:],
    }
    write_text(out / "failed.json", json.dumps(detail, indent=1))


def _probe_endpoints(models: set[str]) -> None:
    """Fail at once, in one line, when an OpenAI-compatible endpoint does not answer."""
    for model in sorted(m for m in models if m.startswith("openai:")):
        url = model.removeprefix("openai:").rstrip("/") + "/models"
        try:
            with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as answer:
                answer.read(1 << 16)
        except urllib.error.HTTPError:
            continue  # it answers HTTP; the run's client reports what it says to chat calls
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ModelError(
                f"model {model}: the endpoint does not answer ({reason}); "
                "is the server up, and is the URL its /v1 base?"
            ) from None

"""Sweeps: one base experiment, a grid (or list) of overrides, several seeds, one global budget.

Cells run in parallel as Ray tasks, each one an ordinary run (the same code path as `swarmlab
run`). A failed cell is recorded and the sweep goes on. The sweep directory is keyed by cell, so
running the same command again resumes: finished cells are skipped, and what they used counts
against the sweep's budget.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from swarmlab.cluster import ClusterError, RayCluster, Reaper, RedisServer, warm_instance
from swarmlab.core import write_text
from swarmlab.observability.telemetry import TelemetryConfig
from swarmlab.records import RunDir, RunSummary
from swarmlab.runtime import (
    ProgressSink,
    RunOptions,
    init_sweep,
    run_experiment,
    runner_fleet,
    silent,
)
from swarmlab.spec import ExperimentSpec, shared_redis_memory_bytes

from ._plan import BUDGET_CAPS, PLAN_FILE, Cell, SweepPlan
from ._results import cell_row, write_results

MAX_INTERRUPTED = 100_000
"""The most records of cut-off cells a resumed sweep reads from interrupted/ (a sweep plans at
most a few thousand cells; the folder may hold anything)."""


def run_cell(
    spec_json: str,
    out_dir: str,
    run_id: str,
    redis_url: str,
    sweep_id: str,
    runners: list[Any] | None = None,
) -> RunSummary:
    """One cell, inside a Ray task: the ordinary run path, quiet, on the sweep's runners."""
    spec = ExperimentSpec.model_validate_json(spec_json)
    options = RunOptions(
        run_id=run_id,
        out_dir=Path(out_dir),
        redis_url=redis_url,
        sweep_id=sweep_id,
        telemetry=TelemetryConfig.from_env(),
        runners=runners,
    )
    return run_experiment(spec, options).summary()


class SweepRunner:
    """Runs a sweep's cells that have no summary yet, then writes its results."""

    def __init__(
        self,
        source: str,
        out_dir: Path | None = None,
        redis_url: str | None = None,
        ray_address: str | None = None,
        parallel: int | None = None,
        progress: ProgressSink | None = None,
        seeds: int | list[int] | None = None,
        overrides: list[str] | None = None,
        reuse: bool = True,
    ) -> None:
        """`reuse`: cells share one set of runner actors per parallel slot, and each finished
        cell is analysed in a thread while the next run; False: each cell creates its own
        runners and every cell is analysed at the end (the way before, kept to measure)."""
        self.plan = SweepPlan.load(source, out_dir, seeds, overrides)
        self.sweep, self.cells, self.out = self.plan.sweep, self.plan.cells, self.plan.out
        self.redis_url = redis_url
        self.ray_address = ray_address
        self.parallel = parallel or self.sweep.parallel
        self.progress = progress or silent()
        self.reuse = reuse
        self.timing: dict[str, float] = {}
        """Seconds of the last `run`: start_up_s, trees_s, analysis_s (after the trees)."""
        self.runner_actors = 0
        """Runner actors the sweep created for its cells to share (0 without `reuse`)."""
        self._ready: dict[str, dict[str, Any]] = {}
        self.sweep_id = (
            f"{self.sweep.name}-{hashlib.sha1(str(self.out.resolve()).encode()).hexdigest()[:8]}"
        )

    def cell_dir(self, cell: Cell) -> Path:
        return self.plan.cell_dir(cell)

    def run(self) -> dict[str, Any]:
        fingerprints = self.plan.refuse_changed_cells()
        self.out.mkdir(parents=True, exist_ok=True)
        write_text(
            self.out / "sweep.yaml", yaml.safe_dump(self.sweep.model_dump(), sort_keys=False)
        )
        write_text(self.out / PLAN_FILE, json.dumps(fingerprints, indent=1))
        cut_off = [c for c in self.cells if self._cut_off(c)]
        for cell in cut_off:
            self._set_aside(cell)
        todo = [c for c in self.cells if not (self.cell_dir(c) / "summary.json").exists()]
        done = len(self.cells) - len(todo)
        if done or cut_off:
            again = (
                f"; {len(cut_off)} cut off by a kill run again (their records in interrupted/)"
                if cut_off
                else ""
            )
            self.progress.note(
                f"resuming sweep {self.sweep.name}: {done} of {len(self.cells)} cells already "
                f"done{again}"
            )
        self._ready = {}
        self.timing = dict.fromkeys(("start_up_s", "trees_s", "analysis_s"), 0.0)
        if todo:
            self._run_todo(todo)
        began = time.monotonic()
        summary = write_results(self.plan, self._ready)
        self.timing["analysis_s"] += time.monotonic() - began
        return summary

    def _run_todo(self, todo: list[Cell]) -> None:
        server, began = None, time.monotonic()
        ray = RayCluster()
        fleet: list[list[Any]] = []
        # Should this process die, its watchdog writes the directories of the cells it was
        # running from the shared Redis before it stops that.
        reaper = Reaper.start(self.out / ".reaper.json")
        reaper.recover_below(self.out / "cells")
        warm = None if self.redis_url and self.ray_address else warm_instance()
        if warm is not None:  # `swarmlab up`'s Ray and Redis stand in for those not given
            self.redis_url = self.redis_url or warm.redis_url
            self.ray_address = self.ray_address or warm.ray_address
        try:
            if not self.redis_url:
                bound = shared_redis_memory_bytes([c.spec.caps for c in todo], self.parallel)
                server = RedisServer(
                    self.out / ".redis", maxmemory=bound, outlive_parent=True
                ).start()
                reaper.watch_pid(server.pid)
                self.redis_url = server.url
            limits = {k: v for k, v in self.sweep.budget.model_dump().items() if v is not None}
            asyncio.run(init_sweep(self.redis_url, self.sweep_id, limits, self._used_so_far()))
            if self.ray_address:
                token = (
                    warm.ray_token_path if warm and warm.ray_address == self.ray_address else None
                )
                ray.connect(self.ray_address, token)
            else:
                ray.start_local(self.out / ".ray")
                if ray.temp_dir is not None:
                    reaper.watch_marker(str(ray.temp_dir))
            fleet = self._fleet(ray, todo)
            self.timing["start_up_s"] = time.monotonic() - began
            self._run_cells(ray, todo, fleet)
        finally:
            for runner in [a for runners in fleet for a in runners]:
                ray.kill(runner)
            ray.shutdown()
            if server is not None:
                server.stop()
            reaper.stop()

    def _fleet(self, ray: RayCluster, todo: list[Cell]) -> list[list[Any]]:
        """One set of runners per cell running at once, lent to each cell in turn."""
        if not self.reuse:
            return []
        assert self.redis_url is not None
        sets = min(self.parallel, len(todo))
        fleet = runner_fleet(ray, [c.spec for c in todo], self.redis_url, sets)
        self.runner_actors = sum(len(runners) for runners in fleet)
        return fleet

    def _run_cells(self, ray: RayCluster, todo: list[Cell], fleet: list[list[Any]]) -> None:
        assert self.redis_url is not None
        task = ray.remote_function(run_cell, num_cpus=0, max_retries=0)
        waiting, free = list(todo), list(fleet)
        running: dict[Any, tuple[Cell, list[Any] | None]] = {}
        total, finished, started = len(self.cells), len(self.cells) - len(todo), time.monotonic()
        analysis = ThreadPoolExecutor(1, thread_name_prefix="sweep-analysis")
        rows: dict[str, Future[dict[str, Any]]] = {}
        while waiting or running:
            while waiting and len(running) < self.parallel:
                cell, runners = waiting.pop(0), (free.pop() if free else None)
                (self.cell_dir(cell) / "failed.json").unlink(missing_ok=True)
                ref = task.remote(
                    cell.spec.model_dump_json(),
                    str(self.cell_dir(cell)),
                    self.plan.cell_run_id(cell),
                    self.redis_url,
                    self.sweep_id,
                    runners,
                )
                running[ref] = (cell, runners)
            ready, _ = ray.wait(list(running), timeout=1.0)
            for ref in ready:
                cell, runners = running.pop(ref)
                if runners is not None:
                    free.append(runners)
                finished += 1
                what = self._outcome(ray, ref, cell)
                if self.reuse:  # off the critical path: the next cells run meanwhile
                    rows[cell.id] = analysis.submit(cell_row, self.plan, cell)
                elapsed = time.monotonic() - started
                self.progress.note(f"[{finished}/{total} cells, {elapsed:.0f} s] {cell.id}: {what}")
        self.timing["trees_s"] = time.monotonic() - started
        began = time.monotonic()
        analysis.shutdown(wait=True)
        self.timing["analysis_s"] = time.monotonic() - began
        for cell_id, row in rows.items():
            if row.exception() is None:  # else made again at the end, where it fails as before
                self._ready[cell_id] = row.result()

    def _outcome(self, ray: RayCluster, ref: Any, cell: Cell) -> str:
        try:
            summary: RunSummary = ray.get(ref)
        except ClusterError as exc:
            self._record_failure(cell, exc)
            return f"FAILED ({str(exc)[:120]})"
        return (
            f"{summary.status}, {summary.tree.size} programs, "
            f"paperclips {summary.outcome.get('paperclips')}"
        )

    def _record_failure(self, cell: Cell, exc: Exception) -> None:
        path = self.cell_dir(cell)
        path.mkdir(parents=True, exist_ok=True)
        detail = {"cell": cell.id, "error": str(exc), "trace": traceback.format_exc()[-4000:]}
        write_text(path / "failed.json", json.dumps(detail, indent=1))

    def _cut_off(self, cell: Cell) -> bool:
        """Whether the cell's record is one its watchdog wrote after the process running it
        died (a SIGKILLed sweep): its run was cut off, not ended, so the cell runs again."""
        summary = RunDir(self.cell_dir(cell)).summary()
        return summary is not None and summary.recovered

    def _set_aside(self, cell: Cell) -> None:
        """Move a cut-off cell's record to interrupted/<cell>-<n>: kept, and counted in the
        budget (`_used_so_far`), while the cell runs again."""
        path = self.cell_dir(cell)
        kept = self.out / "interrupted"
        kept.mkdir(exist_ok=True)
        n = 1
        while (kept / f"{path.name}-{n}").exists():
            n += 1
        path.rename(kept / f"{path.name}-{n}")

    def _used_so_far(self) -> dict[str, int]:
        """What finished cells used, and the runs of cells cut off by a kill, so a resumed
        sweep's budget counts them."""
        used = dict.fromkeys(BUDGET_CAPS, 0)
        kept = self.out / "interrupted"
        listed = itertools.islice(kept.iterdir(), MAX_INTERRUPTED) if kept.is_dir() else ()
        cut_off = sorted(p for p in listed if p.is_dir())
        for path in [self.cell_dir(cell) for cell in self.cells] + cut_off:
            summary = RunDir(path).summary()
            if summary is not None:
                for cap in BUDGET_CAPS:
                    if cap in summary.caps:
                        used[cap] += int(summary.caps[cap].used)
        return used


def is_sweep_dir(path: Path) -> bool:
    return (path / "sweep.yaml").is_file() and (path / "cells").is_dir()


def report_sweep(path: Path) -> dict[str, Any]:
    """Rebuild a sweep directory's table, plots and page from what its cells wrote."""
    plan = SweepPlan.load(str(path / "sweep.yaml"), out_dir=path)
    plan.refuse_changed_cells()
    return write_results(plan)

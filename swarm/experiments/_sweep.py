"""Sweeps: one base experiment, a grid (or list) of overrides, several seeds, one global budget.

Cells run in parallel as Ray tasks, each one an ordinary run (the same code path as `swarmlab
run`). A failed cell is recorded and the sweep goes on. The sweep directory is keyed by cell, so
running the same command again resumes: finished cells are skipped, and what they used counts
against the sweep's budget.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import traceback
from pathlib import Path
from typing import Any

import yaml

from swarmlab.cluster import ClusterError, RayCluster, RedisServer
from swarmlab.core import write_text
from swarmlab.observability.telemetry import TelemetryConfig
from swarmlab.records import RunDir, RunSummary
from swarmlab.runtime import ProgressSink, RunOptions, init_sweep, run_experiment, silent
from swarmlab.spec import ExperimentSpec, shared_redis_memory_bytes

from ._plan import BUDGET_CAPS, Cell, SweepPlan
from ._results import write_results


def run_cell(
    spec_json: str, out_dir: str, run_id: str, redis_url: str, sweep_id: str
) -> RunSummary:
    """One cell, inside a Ray task: the ordinary run path, quiet."""
    spec = ExperimentSpec.model_validate_json(spec_json)
    options = RunOptions(
        run_id=run_id,
        out_dir=Path(out_dir),
        redis_url=redis_url,
        sweep_id=sweep_id,
        telemetry=TelemetryConfig.from_env(),
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
        seeds: list[int] | None = None,
    ) -> None:
        self.plan = SweepPlan.load(source, out_dir, seeds)
        self.sweep, self.cells, self.out = self.plan.sweep, self.plan.cells, self.plan.out
        self.redis_url = redis_url
        self.ray_address = ray_address
        self.parallel = parallel or self.sweep.parallel
        self.progress = progress or silent()
        self.sweep_id = (
            f"{self.sweep.name}-{hashlib.sha1(str(self.out.resolve()).encode()).hexdigest()[:8]}"
        )

    def cell_dir(self, cell: Cell) -> Path:
        return self.plan.cell_dir(cell)

    def run(self) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        write_text(
            self.out / "sweep.yaml", yaml.safe_dump(self.sweep.model_dump(), sort_keys=False)
        )
        todo = [c for c in self.cells if not (self.cell_dir(c) / "summary.json").exists()]
        done = len(self.cells) - len(todo)
        if done:
            self.progress.note(
                f"resuming sweep {self.sweep.name}: {done} of {len(self.cells)} cells already done"
            )
        if todo:
            self._run_todo(todo)
        return write_results(self.plan)

    def _run_todo(self, todo: list[Cell]) -> None:
        server = None
        ray = RayCluster()
        try:
            if not self.redis_url:
                bound = shared_redis_memory_bytes([c.spec.caps for c in todo], self.parallel)
                server = RedisServer(self.out / ".redis", maxmemory=bound).start()
                self.redis_url = server.url
            limits = {k: v for k, v in self.sweep.budget.model_dump().items() if v is not None}
            asyncio.run(init_sweep(self.redis_url, self.sweep_id, limits, self._used_so_far()))
            if self.ray_address:
                ray.connect(self.ray_address)
            else:
                ray.start_local(self.out / ".ray")
            self._run_cells(ray, todo)
        finally:
            ray.shutdown()
            if server is not None:
                server.stop()

    def _run_cells(self, ray: RayCluster, todo: list[Cell]) -> None:
        assert self.redis_url is not None
        task = ray.remote_function(run_cell, num_cpus=0, max_retries=0)
        waiting = list(todo)
        running: dict[Any, Cell] = {}
        total, finished, started = len(self.cells), len(self.cells) - len(todo), time.monotonic()
        while waiting or running:
            while waiting and len(running) < self.parallel:
                cell = waiting.pop(0)
                (self.cell_dir(cell) / "failed.json").unlink(missing_ok=True)
                ref = task.remote(
                    cell.spec.model_dump_json(),
                    str(self.cell_dir(cell)),
                    f"{self.sweep.name}-{cell.id}"[:120],
                    self.redis_url,
                    self.sweep_id,
                )
                running[ref] = cell
            ready, _ = ray.wait(list(running), timeout=1.0)
            for ref in ready:
                cell = running.pop(ref)
                finished += 1
                try:
                    summary: RunSummary = ray.get(ref)
                    what = (
                        f"{summary.status}, {summary.tree.size} programs, "
                        f"paperclips {summary.outcome.get('paperclips')}"
                    )
                except ClusterError as exc:
                    self._record_failure(cell, exc)
                    what = f"FAILED ({str(exc)[:120]})"
                elapsed = time.monotonic() - started
                self.progress.note(f"[{finished}/{total} cells, {elapsed:.0f} s] {cell.id}: {what}")

    def _record_failure(self, cell: Cell, exc: Exception) -> None:
        path = self.cell_dir(cell)
        path.mkdir(parents=True, exist_ok=True)
        detail = {"cell": cell.id, "error": str(exc), "trace": traceback.format_exc()[-4000:]}
        write_text(path / "failed.json", json.dumps(detail, indent=1))

    def _used_so_far(self) -> dict[str, int]:
        """What finished cells used, so a resumed sweep's budget counts them."""
        used = dict.fromkeys(BUDGET_CAPS, 0)
        for cell in self.cells:
            summary = RunDir(self.cell_dir(cell)).summary()
            if summary is not None:
                for cap in BUDGET_CAPS:
                    if cap in summary.caps:
                        used[cap] += int(summary.caps[cap].used)
        return used


def is_sweep_dir(path: Path) -> bool:
    return (path / "sweep.yaml").is_file() and (path / "cells").is_dir()


def report_sweep(path: Path) -> dict[str, Any]:
    """Rebuild a sweep directory's table, plots and page from what its cells wrote."""
    return write_results(SweepPlan.load(str(path / "sweep.yaml"), out_dir=path))

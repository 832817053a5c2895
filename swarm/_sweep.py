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
import re
import time
import traceback
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cluster import ClusterError, RayCluster, RedisServer

from ._coordinator import init_sweep
from ._errors import SpecError, SwarmError
from ._progress import Progress
from ._spec import ExperimentSpec, describe_validation_error, load_spec

SWEEPS_DIR = Path(__file__).parent / "sweeps"
BUDGET_CAPS = ("tokens", "programs", "model_calls", "world_actions")


class SweepBudget(BaseModel):
    """Caps over the whole sweep, charged atomically with each run's own caps."""

    model_config = ConfigDict(extra="forbid")

    tokens: int | None = Field(default=None, ge=0, description="Tokens over every run.")
    programs: int | None = Field(default=None, ge=0, description="Programs over every run.")
    model_calls: int | None = Field(default=None, ge=0, description="Model calls, every run.")
    world_actions: int | None = Field(default=None, ge=0, description="World actions, every run.")


class SweepSpec(BaseModel):
    """A series of experiments: conditions x seeds."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Short name; the default sweep directory is sweeps/<name>.")
    description: str = Field(default="", description="The question the sweep answers.")
    base: str = Field(
        default="paperclips", description="A built-in experiment or a YAML file (relative to this)."
    )
    set: dict[str, Any] = Field(default_factory=dict, description="Overrides for every cell.")
    grid: dict[str, list[Any]] = Field(
        default_factory=dict, description="Spec fields and their values; cells are the product."
    )
    cells: list[dict[str, Any]] = Field(
        default_factory=list, description="Explicit conditions (override maps), instead of a grid."
    )
    seeds: list[int] = Field(default_factory=lambda: [1, 2, 3], description="Seeds per condition.")
    parallel: int = Field(default=2, ge=1, le=64, description="Cells running at once.")
    budget: SweepBudget = Field(default_factory=SweepBudget, description="Caps over the sweep.")

    @field_validator("seeds", mode="before")
    @classmethod
    def _count_or_list(cls, value: Any) -> Any:
        return list(range(1, value + 1)) if isinstance(value, int) else value

    @field_validator("grid")
    @classmethod
    def _non_empty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in value.items():
            if not values:
                raise ValueError(f"grid field '{key}' has no values")
        return value

    def conditions(self) -> list[dict[str, Any]]:
        if self.cells:
            return [dict(c) for c in self.cells]
        keys = list(self.grid)
        return [
            dict(zip(keys, combo, strict=True)) for combo in itertools.product(*self.grid.values())
        ]

    def swept(self) -> list[str]:
        """Spec fields that differ between conditions."""
        conditions = self.conditions()
        keys = sorted({k for c in conditions for k in c})
        return [k for k in keys if len({json.dumps(c.get(k), default=str) for c in conditions}) > 1]


class Cell(BaseModel):
    """One run of the sweep: a condition and a seed."""

    id: str
    condition: dict[str, Any]
    seed: int
    spec: ExperimentSpec


def builtin_sweeps() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SWEEPS_DIR.glob("*.yaml"))}


def load_sweep(source: str) -> tuple[SweepSpec, Path]:
    path = builtin_sweeps().get(source) or Path(source)
    if not path.is_file():
        known = ", ".join(builtin_sweeps()) or "none"
        raise SpecError(f"no sweep named '{source}' and no such file (built-in: {known})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
        return SweepSpec.model_validate(data), path
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except ValidationError as exc:
        raise SpecError(f"{path}: {describe_validation_error(exc)}") from None


def plan_cells(sweep: SweepSpec, sweep_path: Path) -> list[Cell]:
    """Every cell, its spec validated now, so a bad condition stops the sweep before it starts."""
    base = sweep.base
    if base not in _builtin_experiment_names() and not Path(base).is_absolute():
        base = str(sweep_path.parent / base)
    cells = []
    for condition in sweep.conditions():
        for seed in sweep.seeds:
            overrides = {**sweep.set, **condition, "seed": seed}
            items = [
                f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
                for k, v in overrides.items()
            ]
            try:
                spec = load_spec(base, items)
            except SpecError as exc:
                raise SpecError(
                    f"sweep {sweep.name}, cell {condition} seed {seed}: {exc}"
                ) from None
            cells.append(
                Cell(id=cell_id(condition, seed), condition=condition, seed=seed, spec=spec)
            )
    return cells


def cell_id(condition: dict[str, Any], seed: int) -> str:
    parts = [f"{k}={v}" for k, v in sorted(condition.items())] + [f"seed={seed}"]
    text = "__".join(parts)
    slug = re.sub(r"[^A-Za-z0-9_.=-]+", "-", text)[:100]
    if len(text) > 100 or slug != text:
        slug += "-" + hashlib.sha1(text.encode()).hexdigest()[:6]
    return slug


def run_cell(
    spec_json: str, out_dir: str, run_id: str, redis_url: str, sweep_id: str
) -> dict[str, Any]:
    """One cell, inside a Ray task: the ordinary run path, quiet."""
    from observability import TelemetryConfig

    from ._run import RunOptions, run_experiment

    spec = ExperimentSpec.model_validate_json(spec_json)
    options = RunOptions(
        run_id=run_id,
        out_dir=Path(out_dir),
        redis_url=redis_url,
        progress=Progress(quiet=True),
        sweep_id=sweep_id,
        telemetry=TelemetryConfig.from_env(),
    )
    return run_experiment(spec, options).summary()


class SweepRunner:
    def __init__(
        self,
        source: str,
        out_dir: Path | None = None,
        redis_url: str | None = None,
        ray_address: str | None = None,
        parallel: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.sweep, self.path = load_sweep(source)
        self.cells = plan_cells(self.sweep, self.path)
        self.out = Path(out_dir or Path("sweeps") / self.sweep.name)
        self.redis_url = redis_url
        self.ray_address = ray_address
        self.parallel = parallel or self.sweep.parallel
        self.progress = progress or Progress.for_terminal()
        self.sweep_id = (
            f"{self.sweep.name}-{hashlib.sha1(str(self.out.resolve()).encode()).hexdigest()[:8]}"
        )

    def cell_dir(self, cell: Cell) -> Path:
        return self.out / "cells" / cell.id

    def run(self) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "sweep.yaml").write_text(
            yaml.safe_dump(self.sweep.model_dump(), sort_keys=False)
        )
        todo = [c for c in self.cells if not (self.cell_dir(c) / "summary.json").exists()]
        done = len(self.cells) - len(todo)
        if done:
            self.progress.note(
                f"resuming sweep {self.sweep.name}: {done} of {len(self.cells)} cells already done"
            )
        server = None
        ray = RayCluster()
        try:
            if todo:
                if not self.redis_url:
                    server = RedisServer(self.out / ".redis").start()
                    self.redis_url = server.url
                limits = {k: v for k, v in self.sweep.budget.model_dump().items() if v is not None}
                asyncio.run(init_sweep(self.redis_url, self.sweep_id, limits, self._used_so_far()))
                if self.ray_address:
                    ray.connect(self.ray_address)
                else:
                    ray.start_local(self.out / ".ray")
                self._run_cells(ray, todo)
        except ClusterError as exc:
            raise SwarmError(str(exc)) from None
        finally:
            ray.shutdown()
            if server is not None:
                server.stop()
        from ._sweep_results import write_results

        return write_results(self)

    def _run_cells(self, ray: RayCluster, todo: list[Cell]) -> None:
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
                    summary = ray.get(ref)
                    what = (
                        f"{summary['status']}, {summary['tree']['size']} programs, "
                        f"paperclips {summary['outcome'].get('paperclips')}"
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
        (path / "failed.json").write_text(json.dumps(detail, indent=1))

    def _used_so_far(self) -> dict[str, int]:
        """What finished cells used, so a resumed sweep's budget counts them."""
        used = dict.fromkeys(BUDGET_CAPS, 0)
        for cell in self.cells:
            path = self.cell_dir(cell) / "summary.json"
            if path.exists():
                caps = json.loads(path.read_text()).get("caps", {})
                for cap in BUDGET_CAPS:
                    used[cap] += int(caps.get(cap, {}).get("used", 0))
        return used


def is_sweep_dir(path: Path) -> bool:
    return (path / "sweep.yaml").is_file() and (path / "cells").is_dir()


def report_sweep(path: Path) -> dict[str, Any]:
    """Rebuild a sweep directory's table, plots and page from what its cells wrote."""
    from ._sweep_results import write_results

    runner = SweepRunner(str(path / "sweep.yaml"), out_dir=path, progress=Progress(quiet=True))
    return write_results(runner)


def _builtin_experiment_names() -> set[str]:
    from ._spec import builtin_experiments

    return set(builtin_experiments())

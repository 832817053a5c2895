"""A sweep's plan: the sweep spec (base experiment, grid, seeds, budget) and its cells."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from swarmlab.core import SpecError, read_yaml
from swarmlab.spec import ExperimentSpec, builtin_experiments, describe_validation_error, load_spec

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
    baseline: dict[str, Any] | None = Field(
        default=None,
        description="The reference of paired differences. With a grid: the fields that select"
        " it, every other swept field held (default: the first value of the first grid field)."
        " With a list of cells: the cell equal to it (default: the first cell).",
    )
    seeds: list[int] = Field(
        default_factory=lambda: [1, 2, 3],
        description="Seeds per condition (a count n means 1..n). Each sets the spec's `seed`, so"
        " the world, the policy and the sandbox all change with it; conditions share the seeds,"
        " so their runs pair by seed.",
    )
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

    @model_validator(mode="after")
    def _baseline_exists(self) -> SweepSpec:
        if self.baseline is None:
            return self
        if self.cells:
            if self.baseline not in self.cells:
                raise ValueError(f"baseline {self.baseline} is not one of the sweep's cells")
            return self
        for key, value in self.baseline.items():
            if value not in self.grid.get(key, []):
                raise ValueError(f"baseline {key}={value!r} is not a value of the grid")
        return self

    def baseline_of(self, condition: dict[str, Any]) -> dict[str, Any] | None:
        """The condition `condition` is compared with on shared seeds (None: it is the baseline,
        or the sweep has a single condition)."""
        conditions = self.conditions()
        if self.cells:
            reference = self.baseline if self.baseline is not None else conditions[0]
        else:
            first = {k: v[0] for k, v in list(self.grid.items())[:1]}
            reference = {**condition, **(self.baseline if self.baseline is not None else first)}
        if reference == condition or reference not in conditions:
            return None
        return reference

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
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a sweep must be a mapping of fields, got {type(data).__name__}")
    try:
        return SweepSpec.model_validate(data), path
    except ValidationError as exc:
        raise SpecError(f"{path}: {describe_validation_error(exc)}") from None


def plan_cells(sweep: SweepSpec, sweep_path: Path) -> list[Cell]:
    """Every cell, its spec validated now, so a bad condition stops the sweep before it starts."""
    base = sweep.base
    if base not in set(builtin_experiments()) and not Path(base).is_absolute():
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


@dataclass
class SweepPlan:
    """A loaded sweep, its cells and where it writes."""

    sweep: SweepSpec
    path: Path
    cells: list[Cell]
    out: Path

    @classmethod
    def load(
        cls, source: str, out_dir: Path | None = None, seeds: list[int] | None = None
    ) -> SweepPlan:
        """`seeds` replaces the sweep's own (a quick look at a long sweep)."""
        sweep, path = load_sweep(source)
        if seeds is not None:
            sweep = sweep.model_copy(update={"seeds": list(seeds)})
        out = Path(out_dir or Path("sweeps") / sweep.name)
        return cls(sweep, path, plan_cells(sweep, path), out)

    def cell_dir(self, cell: Cell) -> Path:
        return self.out / "cells" / cell.id

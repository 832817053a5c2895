"""A sweep's plan: the sweep spec (base experiment, grid, seeds, budget) and its cells."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from swarmlab.core import SpecError, parse_yaml, present, read_json, read_yaml, short_repr
from swarmlab.records import RunDir, RunSummary
from swarmlab.spec import (
    MAX_PARALLEL,
    RUN_ID_RULE,
    SEED_MAX,
    SEED_MIN,
    ExperimentSpec,
    builtin_experiments,
    describe_validation_error,
    is_run_id,
    mapping_of_fields,
    read_spec_source,
    spec_from,
    without_credentials,
)

PLAN_FILE = "plan.json"
"""In a sweep directory: each cell's spec hash (`SweepPlan.fingerprints`), to refuse resuming
cells that ran with another spec."""
SWEEPS_DIR = Path(__file__).parent
"""The built-in sweeps: the YAML files beside this module (package data)."""


BUDGET_CAPS = ("tokens", "programs", "model_calls", "world_actions")
MAX_SWEEP_RUNS = 10_000
MAX_BUDGET = 10**15
"""The largest sweep budget of any cap (far above what 10,000 runs could use)."""
"""Most runs (conditions x seeds) one sweep may plan: checked before any cell is planned."""


class SweepBudget(BaseModel):
    """Caps over the whole sweep, charged atomically with each run's own caps."""

    model_config = ConfigDict(extra="forbid")

    tokens: int | None = Field(
        default=None, ge=0, le=MAX_BUDGET, description="Tokens over every run."
    )
    programs: int | None = Field(
        default=None, ge=0, le=MAX_BUDGET, description="Programs over every run."
    )
    model_calls: int | None = Field(
        default=None, ge=0, le=MAX_BUDGET, description="Model calls, every run."
    )
    world_actions: int | None = Field(
        default=None, ge=0, le=MAX_BUDGET, description="World actions, every run."
    )


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
    parallel: int = Field(default=2, ge=1, le=MAX_PARALLEL, description="Cells running at once.")
    budget: SweepBudget = Field(default_factory=SweepBudget, description="Caps over the sweep.")

    @field_validator("name")
    @classmethod
    def _name_is_a_run_id(cls, value: str) -> str:
        """The name becomes a directory (sweeps/<name>) and starts every run id."""
        if not is_run_id(value):
            raise ValueError(f"not a sweep name ({RUN_ID_RULE})")
        return value

    @field_validator("seeds", mode="before")
    @classmethod
    def _count_or_list(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            if not 1 <= value <= MAX_SWEEP_RUNS:
                raise ValueError(f"a count of seeds must be 1..{MAX_SWEEP_RUNS}")
            return list(range(1, value + 1))
        return value

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int]) -> list[int]:
        """A seed listed twice would count one run as two."""
        if not value:
            raise ValueError("needs at least one seed")
        twice = [s for s, n in Counter(value).items() if n > 1]
        if twice:
            raise ValueError(f"lists seed {twice[0]} twice")
        if any(not SEED_MIN <= s <= SEED_MAX for s in value):
            raise ValueError(f"each seed must be a 64-bit int ({SEED_MIN}..{SEED_MAX})")
        return value

    @field_validator("grid")
    @classmethod
    def _non_empty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in value.items():
            if not values:
                raise ValueError(f"grid field '{key}' has no values")
            seen = Counter(json.dumps(v, sort_keys=True, default=str) for v in values)
            twice = [v for v, n in seen.items() if n > 1]
            if twice:  # one condition run twice would count its runs twice
                raise ValueError(f"grid field '{key}' lists {twice[0][:60]} twice")
        return value

    @model_validator(mode="after")
    def _size_is_bounded(self) -> SweepSpec:
        """Cells x seeds at most `MAX_SWEEP_RUNS`, counted without building the product."""
        grid = math.prod(len(v) for v in self.grid.values())
        conditions = len(self.cells) if self.cells else grid
        if conditions * len(self.seeds) > MAX_SWEEP_RUNS:
            raise ValueError(
                f"{conditions} conditions x {len(self.seeds)} seeds = "
                f"{conditions * len(self.seeds)} runs (at most {MAX_SWEEP_RUNS} a sweep)"
            )
        return self

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
    if not present(path):
        known = ", ".join(builtin_sweeps()) or "none"
        raise SpecError(f"no sweep named '{source}' and no such file (built-in: {known})")
    data = mapping_of_fields(read_yaml(path), SweepSpec, path, "sweep")
    try:
        return SweepSpec.model_validate(data), path
    except ValidationError as exc:
        raise SpecError(f"{path}: {describe_validation_error(exc, SweepSpec)}") from None


def plan_cells(sweep: SweepSpec, sweep_path: Path) -> list[Cell]:
    """Every cell, its spec validated now, so a bad condition stops the sweep before it starts.

    The base is read once; each cell's values are handed over as JSON, so a text stays the
    text it is (`"yes"`, `"null"` or `"a #1"` are not read again as YAML). Two conditions that
    would be one run (`5` and `"5"`, a cell listed twice) are refused."""
    path, base = read_spec_source(_base_source(sweep.base, sweep_path))
    cells: list[Cell] = []
    seen: dict[str, dict[str, Any]] = {}
    for condition in sweep.conditions():
        for seed in sweep.seeds:
            overrides = {**sweep.set, **condition, "seed": seed}
            items = [f"{k}={json.dumps(v, default=str)}" for k, v in overrides.items()]
            try:
                spec = spec_from(copy.deepcopy(base), path, items)
            except SpecError as exc:
                raise SpecError(
                    f"sweep {sweep.name}, cell {condition} seed {seed}: {exc}"
                ) from None
            cell = Cell(id=cell_id(condition, seed), condition=condition, seed=seed, spec=spec)
            for same in (cell.id, spec.model_dump_json()):  # one directory, or one spec
                if same in seen:
                    raise SpecError(
                        f"sweep {sweep.name}: conditions {seen[same]} and {condition} are one "
                        "run; list each condition once"
                    )
                seen[same] = condition
            cells.append(cell)
    return cells


def _base_source(base: str, sweep_path: Path) -> str:
    """A built-in experiment's name, or the base file's path (relative to the sweep file)."""
    if base in set(builtin_experiments()) or Path(base).is_absolute():
        return base
    return str((sweep_path.parent / base).resolve())


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
        cls,
        source: str,
        out_dir: Path | None = None,
        seeds: int | list[int] | None = None,
        overrides: list[str] | None = None,
    ) -> SweepPlan:
        """`seeds` replaces the sweep's own (a count n means 1..n), and `overrides` (`key=value`)
        set spec fields in every cell: a quick look at a long sweep. With overrides, the sweep
        writes to its own directory by default, so no cell of the full sweep is taken for one of
        the changed sweep's (resuming skips cells by their directory)."""
        sweep, path = load_sweep(source)
        changes: dict[str, Any] = {}
        if seeds is not None:
            changes["seeds"] = seeds
        if overrides:
            changes["set"] = {**sweep.set, **_parse_overrides(sweep, overrides)}
        if changes:  # validated again: the seeds' and the size's rules hold too
            try:
                sweep = SweepSpec.model_validate({**sweep.model_dump(), **changes})
            except ValidationError as exc:
                raise SpecError(f"{path}: {describe_validation_error(exc, SweepSpec)}") from None
        if sweep.base != (base := _base_source(sweep.base, path)):  # sweep.yaml rebuilds it
            sweep = sweep.model_copy(update={"base": base})
        default = Path("sweeps") / sweep.name
        if overrides:
            tag = hashlib.sha1("\n".join(overrides).encode()).hexdigest()[:8]
            default = default.with_name(f"{sweep.name}-set-{tag}")
        return cls(sweep, path, plan_cells(sweep, path), Path(out_dir or default))

    def cell_dir(self, cell: Cell) -> Path:
        return self.out / "cells" / cell.id

    def cell_run_id(self, cell: Cell) -> str:
        return f"{self.sweep.name}-{cell.id}"[:120]

    def cell_summary(self, cell: Cell) -> RunSummary | None:
        """The cell's summary.json, refused when it is not of the run planned for the cell."""
        return RunDir(self.cell_dir(cell)).planned_summary(cell.spec, self.cell_run_id(cell))

    def fingerprints(self) -> dict[str, str]:
        """Each cell's spec, by cell id, as a short hash: what plan.json keeps."""
        return {
            c.id: hashlib.sha256(c.spec.model_dump_json().encode()).hexdigest()[:16]
            for c in self.cells
        }

    def refuse_changed_cells(self) -> dict[str, str]:
        """A finished cell whose spec is not the one planned now (the sweep file, its base or a
        `--set` changed since it ran) is refused: resuming would label its run with the new
        spec's values. Cells of a directory without plan.json are taken as they are. Returns
        plan.json as it will be written: the fingerprints recorded, updated with today's."""
        path = self.out / PLAN_FILE
        fingerprints = self.fingerprints()
        if not present(path):
            return fingerprints
        recorded = read_json(path)
        if not isinstance(recorded, dict):
            raise SpecError(f"{path}: not a sweep's plan (a mapping of cell ids)")
        for cell_id, now in fingerprints.items():
            then = recorded.get(cell_id)
            if then not in (None, now) and present(self.out / "cells" / cell_id / "summary.json"):
                raise SpecError(
                    f"{self.out}: cell {cell_id} ran with another spec than the sweep plans "
                    "now (its file, its base or a --set changed); write to another --out, or "
                    "remove its cells to run them again"
                )
        return {**recorded, **fingerprints}  # cells of an earlier plan stay known


def _parse_overrides(sweep: SweepSpec, overrides: list[str]) -> dict[str, Any]:
    """`key=value` items for every cell; a field the grid sweeps is refused (the grid would win)."""
    swept = {k for condition in sweep.conditions() for k in condition}
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(
                f"--set {short_repr(without_credentials(item), 100)}: expected key=value, e.g. "
                "--set caps.programs=50"
            )
        if key in swept or key == "seed":
            raise SpecError(f"--set {key}: the sweep sets it in each cell; change the sweep file")
        try:  # read as `swarmlab run --set` reads it: YAML, else the text itself
            out[key] = parse_yaml(value, f"--set {key}") if value.strip() else ""
        except SpecError:
            out[key] = value
    return out

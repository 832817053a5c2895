"""A sweep's cells: each condition's runs summarised with intervals (cells.csv), and each
condition against its baseline on shared seeds (paired.csv).

`METRICS` is the one place that says which column of results.csv each summarised metric is
read from; a renamed metric is changed here and nowhere else.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from swarmlab.core import write_text
from swarmlab.experiments.stats import (
    LEVEL,
    RESAMPLES,
    Summary,
    describe,
    describe_rate,
    finite_number,
    paired_difference,
    seed_for,
)

from ._plan import Cell, SweepSpec

FINISHED = ("completed", "halted", "killed")


@dataclass(frozen=True)
class Metric:
    """A summarised metric: where its value is in a results row, and how to summarise it
    (`mean`: mean with a bootstrap interval; `rate`: a 0/1 outcome with a Wilson interval)."""

    column: str
    kind: Literal["mean", "rate"]
    label: str


METRICS: dict[str, Metric] = {
    # From summary.json (a contract that is extended, never renamed).
    "programs": Metric("tree.size", "mean", "tree size (programs)"),
    "max_depth": Metric("tree.max_depth", "mean", "depth of the deepest program"),
    "paperclips": Metric("outcome.paperclips", "mean", "paperclips at the deadline"),
    "money_spent": Metric("outcome.money_spent", "mean", "money spent"),
    "tokens": Metric("caps.tokens.used", "mean", "model tokens used"),
    "duration_s": Metric("duration_s", "mean", "run time (s)"),
    "scaffold": Metric("scaffold", "rate", "answered with a program"),
    "no_tree": Metric("no_tree", "rate", "answered in prose: no tree"),
    "died_out": Metric("died_out", "rate", "grew a tree that died out before any cap bound"),
    "no_paperclips": Metric("no_paperclips", "rate", "ended with no paperclips"),
    # From the emergence analysis (observability.analysis; names may change there).
    "crash_rate": Metric("metric.crash_rate", "mean", "crashed / programs"),
    "meta_task_rate": Metric("metric.meta_task_rate", "mean", "meta-tasks / programs"),
    "quine_rate": Metric("metric.quine_rate", "mean", "quines / non-root programs"),
    "cross_lineage_edges": Metric("metric.cross_lineage_edges", "mean", "cross-lineage edges"),
    "control_attempts": Metric("metric.control_attempts", "mean", "control attempts"),
    "escape_attempts": Metric("metric.escape_attempts", "mean", "escape attempts"),
}

DIED_OUT = (
    "A run died out before any cap bound when its root answered with a program (a tree grew), "
    "it ended with every program done (status completed) and no global cap, sweep budget "
    "included, ever denied a call: the tree stopped growing by itself, not because the lab "
    "stopped it. A run whose root answered in prose grew no tree: it is no_tree, its own "
    "outcome, never died_out."
)

STATISTICS = {
    "means": f"{LEVEL:.0%} BCa bootstrap interval of the mean, {RESAMPLES} resamples, seeded by"
    " sweep, condition and metric",
    "rates": f"{LEVEL:.0%} Wilson score interval",
    "paired": "condition minus baseline on the seeds both finished: mean difference with its"
    " BCa bootstrap interval, SD of the differences, Cohen's d_z = mean / SD",
    "died_out": DIED_OUT,
}


def died_out(row: dict[str, Any]) -> bool | None:
    """The definition in `DIED_OUT`, from a results row (None for a run that did not finish)."""
    if row.get("status") not in FINISHED:
        return None
    return row["status"] == "completed" and not no_tree(row) and not _capped(row)


def no_tree(row: dict[str, Any]) -> bool | None:
    """The root answered in prose, so no tree grew (None for a run that did not finish)."""
    if row.get("status") not in FINISHED:
        return None
    return row.get("scaffold") is False


def _capped(row: dict[str, Any]) -> list[str]:
    """The global caps (and sweep budgets) that denied at least one of the run's calls."""
    return [
        k[len("caps.") : -len(".denied")]
        for k, v in row.items()
        if k.startswith("caps.") and k.endswith(".denied") and (finite_number(v) or 0) > 0
    ]


def condition_label(condition: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in condition.items()) or "defaults"


def metric_value(row: dict[str, Any], metric: Metric) -> float | None:
    value = row.get(metric.column)
    if value is None or value == "":
        return None
    if metric.kind == "rate":
        return 1.0 if value in (True, 1, "1", "True", "true") else 0.0
    return finite_number(value)  # read back: text, 10**400 or NaN is not counted


def cell_table(
    sweep: SweepSpec, cells: Sequence[Cell], rows: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One row per condition (cells.csv) and one per condition, metric and baseline
    (paired.csv), from the results rows of `cells` (in the same order)."""
    by_condition: dict[str, list[tuple[Cell, dict[str, Any]]]] = {}
    for cell, row in zip(cells, rows, strict=True):
        by_condition.setdefault(_key(cell.condition), []).append((cell, row))
    table, paired = [], []
    for condition in sweep.conditions():
        runs = by_condition.get(_key(condition), [])
        label = condition_label(condition)
        baseline = sweep.baseline_of(condition)
        out: dict[str, Any] = {"condition": label}
        out.update({f"condition.{k}": v for k, v in condition.items()})
        done = [r for _, r in runs if r.get("status") in FINISHED]
        out.update(
            n=len(done),
            n_not_finished=len(runs) - len(done),
            baseline="" if baseline is None else condition_label(baseline),
        )
        for cap in sorted({cap for r in done for cap in _capped(r)}):
            out[f"capped.{cap}"] = sum(cap in _capped(r) for r in done)
        for name, metric in METRICS.items():
            values = [v for v in (metric_value(r, metric) for r in done) if v is not None]
            if not values and not any(metric.column in r for r in done):
                continue  # the metric is not in this sweep's table at all
            seed = seed_for(sweep.name, label, name)
            summary = (
                describe_rate([v > 0 for v in values])
                if metric.kind == "rate"
                else describe(values, seed=seed)
            )
            out.update(_columns(name, summary))
        table.append(out)
        if baseline is not None:
            reference = by_condition.get(_key(baseline), [])
            paired += _paired_rows(sweep.name, label, condition_label(baseline), runs, reference)
    return table, paired


def _paired_rows(
    sweep: str,
    label: str,
    baseline: str,
    runs: list[tuple[Cell, dict[str, Any]]],
    reference: list[tuple[Cell, dict[str, Any]]],
) -> list[dict[str, Any]]:
    ref_by_seed = {c.seed: r for c, r in reference if r.get("status") in FINISHED}
    out = []
    for name, metric in METRICS.items():
        pairs = []
        for cell, row in runs:
            ref = ref_by_seed.get(cell.seed)
            if ref is None or row.get("status") not in FINISHED:
                continue
            a, b = metric_value(ref, metric), metric_value(row, metric)
            if a is not None and b is not None:
                pairs.append((a, b))
        if not pairs:
            continue
        result = paired_difference(pairs, seed=seed_for(sweep, label, baseline, name))
        out.append(
            {
                "condition": label,
                "baseline": baseline,
                "metric": name,
                "n_pairs": result.n,
                "baseline_mean": sum(a for a, _ in pairs) / len(pairs),
                "condition_mean": sum(b for _, b in pairs) / len(pairs),
                "mean_diff": result.mean_diff,
                "sd_diff": result.sd_diff,
                "ci_low": result.ci_low,
                "ci_high": result.ci_high,
                "d_z": result.d_z,
            }
        )
    return out


def _columns(name: str, summary: Summary) -> dict[str, Any]:
    columns = {
        f"{name}_n": summary.n,
        f"{name}_mean": summary.mean,
        f"{name}_sd": summary.sd,
        f"{name}_median": summary.median,
        f"{name}_ci_low": summary.ci_low,
        f"{name}_ci_high": summary.ci_high,
    }
    if summary.successes is not None:
        columns[f"{name}_successes"] = summary.successes
    return columns


def _key(condition: dict[str, Any]) -> str:
    return json.dumps(condition, sort_keys=True, default=str)


def all_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every key of the rows, in the order first seen (in time linear in the keys: a cell's
    summary may hold any number of outcome keys)."""
    return list(dict.fromkeys(key for row in rows for key in row))


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    columns = all_columns(rows)
    handle = io.StringIO(newline="")
    writer = csv.DictWriter(handle, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, handle.getvalue())

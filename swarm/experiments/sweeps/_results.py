"""A sweep's results: one row per run (CSV and Parquet), one per condition with intervals
(cells.csv), paired differences (paired.csv), then its plots and page."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from swarmlab.core import write_text
from swarmlab.experiments.stats import write_parquet
from swarmlab.observability.analysis import analyze_run
from swarmlab.observability.report import write_report
from swarmlab.records import RunDir

from ._cells import STATISTICS, all_columns, cell_table, died_out, no_tree, write_csv
from ._page import write_sweep_page
from ._plan import Cell, SweepPlan
from ._plots import write_plots

_SKIP_METRICS = {
    "quines",
    "quine_provenance",
    "duplicate_groups",
    "crash_causes",
    "meta_task_programs",
    "control_pairs",
    "escapes_by_resource",
    "cross_lineage_pairs",
    "escape_programs",
    "tokens_by_depth",
    "denials_by_cap",
    "source",
}


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys; lists and other values as JSON text where needed."""
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    key = prefix[:-1]
    if isinstance(data, list | tuple):
        out[key] = json.dumps(data, default=str)
    else:
        out[key] = data
    return out


def result_rows(
    plan: SweepPlan, ready: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """One row per cell; `ready` holds rows already made (a sweep analyses cells as they end)."""
    ready = ready or {}
    return [ready[c.id] if c.id in ready else cell_row(plan, c) for c in plan.cells]


def cell_row(plan: SweepPlan, cell: Cell) -> dict[str, Any]:
    """A cell's results row: its summary and the analysis of its run (which also writes the
    run's report page)."""
    path = plan.cell_dir(cell)
    row: dict[str, Any] = {"cell": cell.id, "seed": cell.seed}
    row.update({f"condition.{k}": v for k, v in cell.condition.items()})
    row.update(flatten(cell.spec.model_dump(exclude={"persona"}), "spec."))
    row["spec.persona"] = cell.spec.persona[:80]
    summary = plan.cell_summary(cell)
    if summary is None:
        row["error"] = RunDir(path).failure()
        row["status"] = "failed" if row["error"] is not None else "not run"
        return row
    row.update(
        {
            "status": summary.status,
            "ended_because": summary.ended_because,
            "run_id": summary.run_id,
            "duration_s": summary.duration_s,
            "error": None,
        }
    )
    row.update(
        {
            "tree.size": summary.tree.size,
            "tree.max_depth": summary.tree.max_depth,
            "scaffold": summary.scaffold,
        }
    )
    for key, value in summary.outcome.items():
        row[f"outcome.{key}"] = value
    for cap, usage in summary.caps.items():
        row[f"caps.{cap}.used"] = usage.used
        row[f"caps.{cap}.denied"] = usage.denied
    row["died_out"] = died_out(row)
    row["no_tree"] = no_tree(row)
    paperclips = summary.outcome.get("paperclips")
    row["no_paperclips"] = None if paperclips is None else paperclips == 0
    analysis = analyze_run(path)
    try:
        write_report(path, metrics=analysis)
    except Exception as exc:  # a page that cannot be drawn must not lose the table
        row["error"] = f"report: {exc}"
    metrics = analysis.model_dump()
    for key, value in metrics.items():
        if key not in _SKIP_METRICS:
            row[f"metric.{key}"] = value
    for cap, count in (metrics.get("denials_by_cap") or {}).items():
        row[f"denials.{cap}"] = count
    return row


def write_table(rows: list[dict[str, Any]], out: Path) -> None:
    write_csv(rows, out / "results.csv")
    columns = all_columns(rows)
    write_parquet(rows, columns, out / "results.parquet")


def write_results(
    plan: SweepPlan, ready: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    out = plan.out
    rows = result_rows(plan, ready)
    write_table(rows, out)
    cells, paired = cell_table(plan.sweep, plan.cells, rows)
    write_csv(cells, out / "cells.csv")
    write_csv(paired, out / "paired.csv")
    swept = plan.sweep.swept()
    plots = write_plots(rows, cells, paired, plan.sweep, out)
    statuses: dict[str, int] = defaultdict(int)
    for r in rows:
        statuses[r["status"]] += 1
    summary = {
        "sweep": plan.sweep.name,
        "cells": len(rows),
        "by_status": dict(statuses),
        "swept": swept,
        "seeds": plan.sweep.seeds,
        "out_dir": str(out),
        "results": ["results.csv", "results.parquet", "cells.csv", "paired.csv"],
        "plots": [str(p.relative_to(out)) for p in plots],
        "statistics": STATISTICS,
    }
    write_text(out / "sweep.json", json.dumps(summary, indent=1))
    write_sweep_page(out, summary, rows, cells, paired, plots)
    return summary

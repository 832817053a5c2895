"""Metric values as text: a few characters per value, and the plain-text table of `report`."""

from __future__ import annotations

from typing import Any

from swarmlab.observability.analysis import EmergenceMetrics

STATUS_COLORS = {
    "completed": "#3a8a4f",
    "crashed": "#c8413b",
    "killed": "#e08a1e",
    "running": "#3f72c4",
    "pending": "#9aa3ad",
}


SERIES_COLORS = ("#3f72c4", "#e08a1e", "#3a8a4f", "#8e5bb5")


TABLE_ROWS = [
    "scaffold",
    "programs",
    "max_depth",
    "mean_branching",
    "leaves",
    "crashed",
    "crash_rate",
    "crashed_code_fault",
    "crashed_unsupported",
    "crashed_denied",
    "crashed_limit",
    "crashed_lab_fault",
    "meta_tasks",
    "meta_task_rate",
    "quines",
    "quine_rate",
    "quine_chain",
    "quine_provenance",
    "duplicate_programs",
    "duplicate_tokens",
    "cross_lineage_edges",
    "cross_lineage_readers",
    "cross_lineage_density",
    "control_attempts",
    "control_successes",
    "introspection_calls",
    "introspecting_programs",
    "escape_attempts",
    "escape_programs",
    "escapes_by_resource",
    "denials_by_cap",
    "capability_calls",
    "swarm_calls",
    "goal_calls",
    "swarm_call_share",
    "model_tokens",
    "tokens_by_depth",
    "paperclips",
    "money_spent",
]


def num(value: float | int) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return f"{int(value):,}"


def format_value(value: Any) -> str:
    """A metric's value in a few characters: counts for mappings, '-' for null."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return num(value)
    if isinstance(value, dict):
        if value and all(isinstance(v, int | float) for v in value.values()):
            return " ".join(f"{k}:{num(v)}" for k, v in value.items())
        return num(len(value))
    if isinstance(value, list):
        return ", ".join(map(str, value)) if len(value) <= 4 else f"{len(value)}"
    return str(value)


def definition(field: str) -> str:
    return EmergenceMetrics.model_fields[field].description or ""


def format_metrics_table(metrics_by_run: dict[str, EmergenceMetrics]) -> str:
    """A plain-text table: one row per metric, one column per run."""
    names = list(metrics_by_run)
    rows = [["metric", *names]]
    for field in TABLE_ROWS:
        rows.append([field, *(format_value(getattr(m, field)) for m in metrics_by_run.values())])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def short(value: float) -> str:
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"

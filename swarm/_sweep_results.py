"""A sweep's results: one row per run (CSV and Parquet), plots (PNG), and the sweep's page."""

from __future__ import annotations

import base64
import csv
import html
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._sweep import SweepRunner

# Metric fields too big for a table cell; the run's own report has them.
_SKIP_METRICS = {
    "quines",
    "duplicates",
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


def result_rows(runner: SweepRunner) -> list[dict[str, Any]]:
    from observability import analyze_run, write_report

    rows = []
    for cell in runner.cells:
        path = runner.cell_dir(cell)
        row: dict[str, Any] = {"cell": cell.id, "seed": cell.seed}
        row.update({f"condition.{k}": v for k, v in cell.condition.items()})
        row.update(flatten(cell.spec.model_dump(exclude={"persona"}), "spec."))
        row["spec.persona"] = cell.spec.persona[:80]
        summary_path = path / "summary.json"
        if not summary_path.exists():
            failed = path / "failed.json"
            row["status"] = "failed" if failed.exists() else "not run"
            row["error"] = json.loads(failed.read_text())["error"] if failed.exists() else None
            rows.append(row)
            continue
        summary = json.loads(summary_path.read_text())
        row.update(
            {
                "status": summary["status"],
                "ended_because": summary["ended_because"],
                "run_id": summary["run_id"],
                "duration_s": summary["duration_s"],
                "error": None,
            }
        )
        for cap, usage in summary["caps"].items():
            row[f"caps.{cap}.used"] = usage["used"]
            row[f"caps.{cap}.denied"] = usage["denied"]
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
        rows.append(row)
    return rows


def write_table(rows: list[dict[str, Any]], out: Path) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with (out / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({c: [_cell_value(r.get(c)) for r in rows] for c in columns})
    pq.write_table(table, out / "results.parquet")


def _cell_value(value: Any) -> Any:
    # Parquet columns need one type: keep numbers and text, serialise the rest.
    if value is None or isinstance(value, bool | int | float | str):
        return value if not isinstance(value, bool) else int(value)
    return json.dumps(value, default=str)


def write_plots(rows: list[dict[str, Any]], swept: list[str], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    done = [r for r in rows if r.get("status") in ("completed", "halted", "killed")]
    paths = []
    for param in swept:
        col = f"condition.{param}"
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, metric, label in (
            (axes[0], "metric.paperclips", "paperclips at the deadline"),
            (axes[1], "metric.programs", "tree size (programs)"),
        ):
            _spread(ax, done, col, metric)
            ax.set_xlabel(param)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        fig.suptitle(f"{param}: mean and spread over seeds")
        fig.tight_layout()
        paths.append(_save(fig, plots / f"by-{_file(param)}.png"))
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(10, 3.8))
    conditions = sorted({_condition(r) for r in done})
    caps = sorted({k[len("denials.") :] for r in done for k in r if k.startswith("denials.")})
    bottom = [0.0] * len(conditions)
    for cap in caps:
        values = [
            statistics.mean([r.get(f"denials.{cap}", 0) or 0 for r in done if _condition(r) == c])
            for c in conditions
        ]
        ax.bar(range(len(conditions)), values, bottom=bottom, label=cap)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xticks(range(len(conditions)), conditions, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("denials per run (mean over seeds)")
    ax.set_title("denials by cap")
    if caps:
        ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(_save(fig, plots / "denials-by-cap.png"))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    by_persona: dict[str, list[float]] = defaultdict(list)
    for r in done:
        key = f"{r.get('spec.persona', '')[:24]} / {r.get('spec.affordance', '')}"
        by_persona[key].append(float(r.get("metric.scaffold") or 0))
    names = sorted(by_persona)
    ax.bar(range(len(names)), [statistics.mean(by_persona[n]) for n in names], color="#4a7")
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("scaffold rate")
    ax.set_title("scaffold rate by persona / affordance")
    fig.tight_layout()
    paths.append(_save(fig, plots / "scaffold-by-persona.png"))
    plt.close(fig)
    return paths


def _spread(ax: Any, rows: list[dict[str, Any]], col: str, metric: str) -> None:
    groups: dict[Any, list[float]] = defaultdict(list)
    for r in rows:
        if r.get(metric) is not None:
            groups[r.get(col)].append(float(r[metric]))
    keys = list(groups)
    numeric = all(isinstance(k, int | float) for k in keys)
    keys = sorted(keys) if numeric else sorted(keys, key=str)
    xs = keys if numeric else list(range(len(keys)))
    for x, k in zip(xs, keys, strict=True):
        ax.scatter([x] * len(groups[k]), groups[k], color="#8aa", s=14, zorder=2)
    means = [statistics.mean(groups[k]) for k in keys]
    ax.plot(xs, means, marker="o", color="#246", zorder=3, label="mean")
    ax.fill_between(
        xs,
        [min(groups[k]) for k in keys],
        [max(groups[k]) for k in keys],
        color="#246",
        alpha=0.12,
        label="min-max over seeds",
    )
    if numeric and len(xs) > 2 and min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(xs, [str(k) for k in keys], rotation=15, fontsize=8)


def _condition(row: dict[str, Any]) -> str:
    parts = [f"{k[len('condition.') :]}={v}" for k, v in row.items() if k.startswith("condition.")]
    return ", ".join(parts) or "base"


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    return path


def _file(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in text)


def write_results(runner: SweepRunner) -> dict[str, Any]:
    out = runner.out
    rows = result_rows(runner)
    write_table(rows, out)
    swept = runner.sweep.swept()
    plots = write_plots(rows, swept, out)
    statuses: dict[str, int] = defaultdict(int)
    for r in rows:
        statuses[r["status"]] += 1
    summary = {
        "sweep": runner.sweep.name,
        "cells": len(rows),
        "by_status": dict(statuses),
        "swept": swept,
        "seeds": runner.sweep.seeds,
        "out_dir": str(out),
        "results": ["results.csv", "results.parquet"],
        "plots": [str(p.relative_to(out)) for p in plots],
    }
    (out / "sweep.json").write_text(json.dumps(summary, indent=1))
    write_sweep_page(out, summary, rows, plots)
    return summary


def write_sweep_page(
    out: Path, summary: dict[str, Any], rows: list[dict[str, Any]], plots: list[Path]
) -> Path:
    columns = ["cell", "status", "seed"] + [
        c
        for c in (
            "metric.programs",
            "metric.max_depth",
            "metric.paperclips",
            "metric.scaffold",
            "metric.quine_rate",
            "metric.cross_lineage_edges",
            "metric.instrumentality_index",
            "caps.tokens.used",
            "caps.programs.used",
            "duration_s",
        )
        if any(c in r for r in rows)
    ]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            value = r.get(c)
            text = (
                f"{value:.3g}"
                if isinstance(value, float)
                else str(value if value is not None else "")
            )
            if c == "cell" and (out / "cells" / str(value) / "report.html").exists():
                text = (
                    f'<a href="cells/{html.escape(str(value))}/report.html">{html.escape(text)}</a>'
                )
            else:
                text = html.escape(text)
            cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    images = "".join(
        f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"><figcaption>{html.escape(p.stem)}'
        "</figcaption></figure>"
        for p in plots
    )
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>swarmlab sweep · {html.escape(summary["sweep"])}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; font-size: 12px; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
img {{ max-width: 100%; border: 1px solid #eee; }} figure {{ margin: 1rem 0; }}
</style></head><body data-ready="1">
<h1>Sweep {html.escape(summary["sweep"])}</h1>
<p>{summary["cells"]} runs ({html.escape(json.dumps(summary["by_status"]))}); swept:
{html.escape(", ".join(summary["swept"]) or "nothing")}; seeds {html.escape(str(summary["seeds"]))}.
Results: <a href="results.csv">results.csv</a>, <a href="results.parquet">results.parquet</a>.</p>
<h2>Plots</h2>{images}
<h2>Runs</h2><table><tr>{head}</tr>{"".join(body)}</table>
</body></html>"""
    path = out / "index.html"
    path.write_text(page)
    return path

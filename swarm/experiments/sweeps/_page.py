"""A sweep's page: its plots, one row per condition with intervals, the paired differences
against the baseline and one row per run, in one HTML file."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from swarmlab.core import write_text
from swarmlab.observability.analysis import VALIDITY_FLOOR, validity_of

from ._cells import METRICS

# Metrics in the page's condition table (all of them are in cells.csv).
CELL_METRICS = ("paperclips", "programs", "max_depth", "tokens", "crash_rate", "quine_rate")
RUN_COLUMNS = (
    "programs",
    "max_depth",
    "paperclips",
    "scaffold",
    "no_tree",
    "died_out",
    "quine_rate",
)


def write_sweep_page(
    out: Path,
    summary: dict[str, Any],
    rows: list[dict[str, Any]],
    cells: list[dict[str, Any]],
    paired: list[dict[str, Any]],
    plots: list[Path],
) -> Path:
    images = "".join(
        f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"><figcaption>{html.escape(p.stem)}'
        "</figcaption></figure>"
        for p in plots
    )
    stats = summary.get("statistics", {})
    notes = "".join(
        f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in stats.items()
    )
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>swarmlab sweep · {html.escape(summary["sweep"])}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; font-size: 12px; margin-bottom: 1rem; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
td small {{ color: #666; }}
small.validity.below {{ color: #a33; font-weight: 600; }}
img {{ max-width: 100%; border: 1px solid #eee; }} figure {{ margin: 1rem 0; }}
</style></head><body data-ready="1">
<h1>Sweep {html.escape(summary["sweep"])}</h1>
<p>{summary["cells"]} runs ({html.escape(json.dumps(summary["by_status"]))}); swept:
{html.escape(", ".join(summary["swept"]) or "nothing")}; seeds {html.escape(str(summary["seeds"]))}.
Results: <a href="results.csv">results.csv</a>, <a href="results.parquet">results.parquet</a>,
<a href="cells.csv">cells.csv</a> (one row per condition), <a href="paired.csv">paired.csv</a>.</p>
<ul>{notes}</ul>
<h2>Conditions</h2>{_cell_table(cells)}
<h2>Paired differences against the baseline</h2>{_paired_table(paired)}
<h2>Plots</h2>{images}
<h2>Runs</h2>{_run_table(out, rows)}
</body></html>"""
    path = out / "index.html"
    write_text(path, page)
    return path


def _cell_table(cells: list[dict[str, Any]]) -> str:
    names = [n for n in CELL_METRICS if any(f"{n}_mean" in c for c in cells)]
    head = (
        "<th>condition</th><th>n</th><th>no tree<br><small>answered in prose</small></th>"
        "<th>died out<br><small>a tree grew, then stopped before any cap bound</small></th>"
        "<th>no paperclips</th><th>scaffold</th><th>caps that denied<br><small>(runs)</small></th>"
    ) + "".join(
        f"<th>{html.escape(METRICS[n].label)}<br><small>mean [95% CI] (SD; median)</small>"
        f"{validity_note(n)}</th>"
        for n in names
    )
    body = ""
    for cell in cells:
        line = f"<td>{html.escape(cell['condition'])}</td><td>{cell['n']}</td>"
        line += _rate(cell, "no_tree") + _rate(cell, "died_out")
        line += _rate(cell, "no_paperclips") + _rate(cell, "scaffold")
        capped = [(k[len("capped.") :], v) for k, v in cell.items() if k.startswith("capped.")]
        line += f"<td>{html.escape(', '.join(f'{k} {v}' for k, v in capped) or 'none')}</td>"
        for name in names:
            mean, low, high, sd, median = (
                cell.get(f"{name}_{k}") for k in ("mean", "ci_low", "ci_high", "sd", "median")
            )
            spread = f"<small>({_num(sd)}; {_num(median)})</small>"
            line += f"<td>{_num(mean)} [{_num(low)}, {_num(high)}]<br>{spread}</td>"
        body += f"<tr>{line}</tr>"
    return f"<table><tr>{head}</tr>{body}</table>"


def _rate(cell: dict[str, Any], name: str) -> str:
    if cell.get(f"{name}_mean") is None:
        return "<td></td>"
    k, n = cell.get(f"{name}_successes"), cell.get(f"{name}_n")
    low, high = cell.get(f"{name}_ci_low"), cell.get(f"{name}_ci_high")
    return f"<td>{k}/{n}<br><small>[{_num(low)}, {_num(high)}]</small></td>"


def _paired_table(paired: list[dict[str, Any]]) -> str:
    if not paired:
        return "<p>No condition has a baseline to pair with.</p>"
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "condition",
            "baseline",
            "metric",
            "pairs",
            "baseline mean",
            "condition mean",
            "difference [95% CI]",
            "Cohen's d<sub>z</sub>",
        )
    )
    body = ""
    for p in paired:
        if p["metric"] not in (*CELL_METRICS, "no_tree", "died_out", "no_paperclips", "scaffold"):
            continue
        cells = (
            html.escape(p["condition"]),
            html.escape(p["baseline"]),
            html.escape(p["metric"]),
            str(p["n_pairs"]),
            _num(p["baseline_mean"]),
            _num(p["condition_mean"]),
            f"{_num(p['mean_diff'])} [{_num(p['ci_low'])}, {_num(p['ci_high'])}]",
            _num(p["d_z"]),
        )
        body += "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
    return f"<table><tr>{head}</tr>{body}</table>"


def _run_table(out: Path, rows: list[dict[str, Any]]) -> str:
    metric_columns = [METRICS[n].column for n in RUN_COLUMNS]
    columns = ["cell", "status", "seed"] + [
        c
        for c in (*metric_columns, "caps.tokens.used", "caps.programs.used", "duration_s")
        if any(c in r for r in rows)
    ]
    head = "".join(
        f"<th>{html.escape(c)}{validity_note(c.rsplit('.', 1)[-1])}</th>" for c in columns
    )
    body = "".join(_row(out, r, columns) for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def validity_note(metric: str) -> str:
    """The blind precision and recall of the detector behind a metric (empty for a metric no
    detector makes), marked when below the floor."""
    v = validity_of(metric)
    if v is None:
        return ""
    below = f" · below {VALIDITY_FLOOR}" if v.below_floor else ""
    return (
        f'<br><small class="validity{" below" if below else ""}" title="{html.escape(v.note())}">'
        f"blind P {v.precision:.2f} · R {v.recall:.2f}{below}</small>"
    )


def _num(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return html.escape(str(value))
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _row(out: Path, row: dict[str, Any], columns: list[str]) -> str:
    cells = []
    for c in columns:
        value = row.get(c)
        text = f"{value:.3g}" if isinstance(value, float) else str("" if value is None else value)
        if c == "cell" and (out / "cells" / str(value) / "report.html").exists():
            link = html.escape(str(value))
            text = f'<a href="cells/{link}/report.html">{html.escape(text)}</a>'
        else:
            text = html.escape(text)
        cells.append(f"<td>{text}</td>")
    return "<tr>" + "".join(cells) + "</tr>"

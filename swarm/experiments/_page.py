"""A sweep's page: its plots and one row per run, in one HTML file."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any


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
            "metric.swarm_call_share",
            "caps.tokens.used",
            "caps.programs.used",
            "duration_s",
        )
        if any(c in r for r in rows)
    ]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(_row(out, r, columns) for r in rows)
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
<h2>Runs</h2><table><tr>{head}</tr>{body}</table>
</body></html>"""
    path = out / "index.html"
    path.write_text(page)
    return path


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

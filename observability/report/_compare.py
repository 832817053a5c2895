"""Several runs side by side: one comparison page."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from html import escape
from pathlib import Path

from swarmlab.core import write_text
from swarmlab.observability.analysis import QUINE_THRESHOLD, EmergenceMetrics, analyze_run
from swarmlab.records import RunDir, RunSummary

from ._format import TABLE_ROWS, definition, format_value
from ._page import html_page, section

MAX_LABEL_CHARS = 200


def run_label(metrics: EmergenceMetrics, run_dir: Path, taken: Collection[str] = ()) -> str:
    """A run's label in a table: its run id (else its directory's name) on one line of
    printable characters, numbered when `taken` has it (a directory name is anyone's text: a
    line break in it would add rows of its own to the table)."""
    text = str(metrics.run_id or run_dir.name)[:MAX_LABEL_CHARS]
    base = "".join(c if c.isprintable() else "?" for c in text)
    label, n = base, len(taken) + 1
    while label in taken:
        label, n = f"{base} ({n})", n + 1
    return label


def analyze_runs(
    run_dirs: Sequence[str | Path], quine_threshold: float = QUINE_THRESHOLD
) -> dict[str, EmergenceMetrics]:
    """The metrics of several runs, each by its own label (`run_label`): never one for two."""
    metrics: dict[str, EmergenceMetrics] = {}
    for run_dir in map(Path, run_dirs):
        m = analyze_run(run_dir, quine_threshold)
        metrics[run_label(m, run_dir, metrics)] = m
    return metrics


def write_comparison(
    run_dirs: Sequence[str | Path],
    out_path: str | Path,
    quine_threshold: float = QUINE_THRESHOLD,
    metrics: dict[str, EmergenceMetrics] | None = None,
) -> Path:
    """Write one page with the metrics of several runs side by side."""
    metrics = metrics or analyze_runs(run_dirs, quine_threshold)
    summaries = {label: RunDir(m.source).summary() for label, m in metrics.items()}
    head = "".join(f"<th>{escape(label)}</th>" for label in metrics)
    facts: list[tuple[str, Callable[[RunSummary], str]]] = [
        ("status", lambda s: s.status),
        ("model", lambda s: s.model.name),
        ("duration_s", lambda s: format_value(s.duration_s)),
        ("ended_because", lambda s: s.ended_because),
    ]
    rows = "".join(
        f'<tr><td class="metric">{name}</td>'
        + "".join(
            f"<td>{escape(get(s) if s is not None else '-')}</td>" for s in summaries.values()
        )
        + "<td></td></tr>"
        for name, get in facts
    )
    rows += "".join(
        f'<tr><td class="metric">{escape(field)}</td>'
        + "".join(
            f'<td class="value">{escape(format_value(getattr(m, field)))}</td>'
            for m in metrics.values()
        )
        + f'<td class="definition">{escape(definition(field))}</td></tr>'
        for field in TABLE_ROWS
    )
    sources = "".join(
        f"<li>{escape(label)}: {escape(m.source)}</li>" for label, m in metrics.items()
    )
    body = (
        f'<header><h1>swarmlab comparison <span class="run-id">{len(metrics)} runs</span></h1>'
        '<nav><span class="grow"></span><button id="expand-all" type="button">expand all</button>'
        '<button id="collapse-all" type="button">collapse all</button></nav></header>'
        + section(
            "Emergence metrics side by side",
            "metrics",
            f'<table class="metrics compare"><tr><th>metric</th>{head}<th>definition</th></tr>'
            f"{rows}</table><details><summary>run directories</summary><ul>{sources}</ul>"
            "</details>",
        )
    )
    out = Path(out_path)
    write_text(out, html_page("swarmlab comparison", body))
    return out

"""The emergence report: one self-contained HTML page per run, a comparison page, a text table.

Everything is inline (CSS, SVG drawn here, a small script): the page opens from disk, offline,
and can be mailed around. The script only expands/collapses the program tree; the page reads
fine without it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from swarm import Event, ProgramRecord

from ._analysis import (
    MODEL_CALLS,
    EmergenceMetrics,
    analyze_run,
    is_meta_task,
    read_events,
    read_json,
    read_programs,
)

__all__ = ["format_metrics_table", "write_comparison", "write_report"]

STATUS_COLORS = {
    "completed": "#3a8a4f",
    "crashed": "#c8413b",
    "killed": "#e08a1e",
    "running": "#3f72c4",
    "pending": "#9aa3ad",
}
SERIES_COLORS = ("#3f72c4", "#e08a1e", "#3a8a4f", "#8e5bb5")
# Rows of the metric tables, in reading order (the detail mappings are shown by their size).
TABLE_ROWS = (
    "scaffold programs max_depth mean_branching leaves crashed crash_rate meta_tasks "
    "meta_task_rate quines quine_rate duplicate_programs duplicate_tokens cross_lineage_edges "
    "control_attempts control_successes introspection_calls escape_attempts escape_programs "
    "denials_by_cap capability_calls instrumental_calls instrumentality_index model_tokens "
    "tokens_by_depth paperclips money_spent"
).split()


# --- values ------------------------------------------------------------------------------------


def _num(value: float | int) -> str:
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
        return _num(value)
    if isinstance(value, dict):
        if value and all(isinstance(v, int | float) for v in value.values()):
            return " ".join(f"{k}:{_num(v)}" for k, v in value.items())
        return _num(len(value))
    if isinstance(value, list):
        return ", ".join(map(str, value)) if len(value) <= 4 else f"{len(value)}"
    return str(value)


def _definition(field: str) -> str:
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


# --- SVG ---------------------------------------------------------------------------------------


def _ticks(top: float, count: int = 4, whole: bool = False) -> list[float]:
    """Round tick values from 0 to `top`; `whole` keeps them integers (for counts)."""
    if top <= 0:
        return [0.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if whole:
        step = max(1, math.ceil(step))
    return [i * step for i in range(int(top / step) + 1)]


def _axes(w: int, h: int, pad: tuple[int, int, int, int], xmax: float, ymax: float) -> str:
    left, top, right, bottom = pad
    parts = [_axes_y(w, h, pad, ymax)]
    for x in _ticks(xmax, 5):
        px = left + (w - left - right) * x / xmax
        parts.append(f'<text class="tick" x="{px:.1f}" y="{h - bottom + 13}" text-anchor="middle">')
        parts.append(f"{_short(x)}</text>")
    return "".join(parts)


def _short(value: float) -> str:
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def step_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    xmax: float,
    limit: float | None = None,
    x_label: str = "seconds since the root program was created",
) -> str:
    """Step lines (value held until the next point) with an optional dashed limit."""
    w, h, pad = 440, 200, (44, 12, 12, 30)
    peak = max((v for _, pts in series for _, v in pts), default=0.0)
    show_limit = limit is not None and peak >= 0.25 * limit
    ymax = max(peak, limit if show_limit and limit else 0.0, 1.0) * 1.05
    xmax = max(xmax, 1e-6)
    left, top, right, bottom = pad

    def sx(x: float) -> float:
        return left + (w - left - right) * min(max(x, 0.0), xmax) / xmax

    def sy(y: float) -> float:
        return h - bottom - (h - top - bottom) * y / ymax

    parts = [_axes(w, h, pad, xmax, ymax)]
    for i, (label, points) in enumerate(series):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        d = f"M{sx(0):.1f},{sy(0):.1f}"
        for x, y in points:
            d += f" H{sx(x):.1f} V{sy(y):.1f}"
        d += f" H{sx(xmax):.1f}"
        parts.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="1.6">')
        parts.append(f"<title>{escape(label)}</title></path>")
        if len(series) > 1:
            parts.append(f'<rect x="{left + 8}" y="{top + 4 + 14 * i}" width="10" height="3" ')
            parts.append(f'fill="{color}"/><text class="legend" x="{left + 22}" ')
            parts.append(f'y="{top + 8 + 14 * i}">{escape(label)}</text>')
    if limit is not None and show_limit:
        parts.append(f'<line class="limit" x1="{left}" x2="{w - right}" y1="{sy(limit):.1f}" ')
        parts.append(f'y2="{sy(limit):.1f}"/><text class="tick limit-label" x="{w - right}" ')
        parts.append(f'y="{sy(limit) - 3:.1f}" text-anchor="end">limit {_num(limit)}</text>')
    parts.append(f'<text class="tick" x="{w - right}" y="{h - 2}" text-anchor="end">')
    parts.append(f"{escape(x_label)}</text>")
    return _svg(w, h, "".join(parts))


def bar_chart(bars: Sequence[tuple[str, float]], empty: str = "nothing to show") -> str:
    """Vertical bars with their value on top."""
    w, h, pad = 440, 200, (44, 16, 12, 30)
    if not bars:
        return f'<p class="muted">{escape(empty)}</p>'
    ymax = max(max(v for _, v in bars), 1.0) * 1.1
    left, top, right, bottom = pad
    slot = (w - left - right) / len(bars)
    parts = [_axes_y(w, h, pad, ymax)]
    for i, (label, value) in enumerate(bars):
        bh = (h - top - bottom) * value / ymax
        x = left + slot * i + slot * 0.15
        y = h - bottom - bh
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{bh:.1f}" ')
        parts.append(f'fill="{SERIES_COLORS[0]}"><title>{escape(label)}: {_num(value)}</title>')
        parts.append(f'</rect><text class="tick" x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" ')
        parts.append(f'text-anchor="middle">{_short(value)}</text>')
        parts.append(f'<text class="tick" x="{x + slot * 0.35:.1f}" y="{h - bottom + 13}" ')
        parts.append(f'text-anchor="middle">{escape(label[:14])}</text>')
    return _svg(w, h, "".join(parts))


def _axes_y(w: int, h: int, pad: tuple[int, int, int, int], ymax: float) -> str:
    left, top, right, bottom = pad
    parts = [
        f'<line class="axis" x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}"/>'
    ]
    for y in _ticks(ymax, whole=True):
        py = h - bottom - (h - top - bottom) * y / ymax
        parts.append(
            f'<line class="grid" x1="{left}" y1="{py:.1f}" x2="{w - right}" y2="{py:.1f}"/>'
        )
        parts.append(f'<text class="tick" x="{left - 4}" y="{py + 3:.1f}" text-anchor="end">')
        parts.append(f"{_short(y)}</text>")
    return "".join(parts)


def _svg(w: int, h: int, body: str) -> str:
    return f'<svg class="chart" viewBox="0 0 {w} {h}" role="img">{body}</svg>'


def timeline(programs: Sequence[ProgramRecord], t0: float, t1: float) -> str:
    """One bar per program from its start to its end, colored by status, linked to the tree."""
    rows = sorted(
        (p for p in programs if p.started_at is not None),
        key=lambda p: (p.started_at or 0.0, p.id),
    )
    if not rows:
        return '<p class="muted">no program started</p>'
    row_h = max(5, min(14, 1500 // len(rows)))
    w, left, right, top, bottom = 1100, 150, 16, 8, 34
    h = top + bottom + row_h * len(rows)
    span = max(t1 - t0, 1e-6)

    def sx(t: float) -> float:
        return left + (w - left - right) * min(max(t - t0, 0.0), span) / span

    parts = []
    for x in _ticks(span, 8):
        px = sx(t0 + x)
        parts.append(f'<line class="grid" x1="{px:.1f}" y1="{top}" x2="{px:.1f}" ')
        parts.append(f'y2="{h - bottom}"/><text class="tick" x="{px:.1f}" y="{h - bottom + 13}" ')
        parts.append(f'text-anchor="middle">{_short(x)}</text>')
    label_font = min(11, row_h - 1)
    for i, p in enumerate(rows):
        y = top + i * row_h
        x0, x1 = sx(p.started_at or t0), sx(p.ended_at or t1)
        color = STATUS_COLORS.get(p.status, "#9aa3ad")
        tip = f"{p.id} · {p.status} · {(p.ended_at or t1) - (p.started_at or t0):.2f}s · {p.task}"
        parts.append(f'<a href="#prog-{escape(p.id)}"><rect x="{x0:.1f}" y="{y + 1}" ')
        parts.append(f'width="{max(x1 - x0, 1.5):.1f}" height="{max(row_h - 2, 2)}" rx="1.5" ')
        parts.append(f'fill="{color}"><title>{escape(tip)}</title></rect>')
        if row_h >= 8:
            parts.append(f'<text class="row-label" x="{left - 6}" y="{y + row_h - 2}" ')
            parts.append(f'text-anchor="end" font-size="{label_font}">{escape(p.id)}</text>')
        parts.append("</a>")
    parts.append(f'<text class="tick" x="{w - right}" y="{h - 4}" text-anchor="end">')
    parts.append("seconds since the root program was created</text>")
    legend = "".join(
        f'<span class="swatch" style="background:{c}"></span>{s} '
        for s, c in STATUS_COLORS.items()
        if any(p.status == s for p in rows)
    )
    return f'<div class="legend-row">{legend}</div>' + (
        f'<svg class="timeline" viewBox="0 0 {w} {h}" role="img">{"".join(parts)}</svg>'
    )


# --- cap usage from the event log --------------------------------------------------------------


def cap_series(
    programs: Sequence[ProgramRecord], events: Iterable[Event], t0: float
) -> dict[str, list[tuple[float, float]]]:
    """Each cap's usage over time, replayed from the event log (step points: seconds, used)."""
    depth = {p.id: p.depth for p in programs}
    caps = "programs concurrent depth model_calls tokens world_actions blackboard_bytes"
    series: dict[str, list[tuple[float, float]]] = {cap: [] for cap in caps.split()}
    used = Counter[str]()
    value_bytes: dict[str, int] = {}

    def bump(cap: str, t: float, delta: float = 1, absolute: float | None = None) -> None:
        used[cap] = int(absolute if absolute is not None else used[cap] + delta)
        series[cap].append((t - t0, used[cap]))

    for e in events:
        ok = e.decision == "allowed"
        if e.kind == "start":
            bump("programs", e.t)
            bump("concurrent", e.t)
            bump("depth", e.t, absolute=max(used["depth"], depth.get(e.program, 0)))
        elif e.kind == "end":
            bump("concurrent", e.t, -1)
        elif e.kind in MODEL_CALLS and ok:
            bump("model_calls", e.t)
            tokens = e.detail.get("prompt_tokens", 0) + e.detail.get("completion_tokens", 0)
            bump("tokens", e.t, tokens)
        elif e.kind.startswith("world.") and e.decision != "denied":
            if e.detail.get("error") != "no such action":  # refused before it was counted
                bump("world_actions", e.t)
        elif e.kind == "db_put" and ok:
            # As the coordinator counts: a new key costs key + value, a rewrite the difference.
            key, size = str(e.detail.get("key", "")), int(e.detail.get("bytes", 0))
            old = value_bytes.get(key)
            bump("blackboard_bytes", e.t, size - old if old is not None else len(key) + size)
            value_bytes[key] = size
    return series


# --- the run report ----------------------------------------------------------------------------


def write_report(
    run_dir: str | Path,
    out_path: str | Path | None = None,
    quine_threshold: float = 0.8,
    metrics: EmergenceMetrics | None = None,
) -> Path:
    """Write the run's report (default `<run_dir>/report.html`) and return its path."""
    run_dir = Path(run_dir)
    metrics = metrics or analyze_run(run_dir, quine_threshold)
    summary_path = run_dir / "summary.json"
    summary: dict[str, Any] = read_json(summary_path) if summary_path.is_file() else {}
    programs, events = read_programs(run_dir), read_events(run_dir)
    # Time runs from the root program's creation: the cluster's start-up before it is not
    # the swarm's doing and would squeeze every chart to the right.
    starts = [p.created_at for p in programs if p.created_at] + [e.t for e in events]
    ends = [p.ended_at for p in programs if p.ended_at] + [e.t for e in events]
    t0 = min(starts, default=0.0)
    t1 = max(ends, default=t0)
    page = _page(
        f"swarmlab report · {metrics.run_id}",
        _header(metrics, summary)
        + _section("Run summary", "summary", _summary(summary, metrics, programs))
        + _section("Emergence metrics", "metrics", _metrics_table(metrics))
        + _section("Plots", "plots", _plots(programs, events, metrics, t0, t1))
        + _section("Timeline of programs", "timeline", timeline(programs, t0, t1))
        + _section("Caps over time", "caps", _cap_charts(programs, events, summary, t0, t1))
        + _section("Program tree", "tree", _tree(programs, events, metrics, t0)),
    )
    out = Path(out_path) if out_path else run_dir / "report.html"
    out.write_text(page)
    return out


def _header(metrics: EmergenceMetrics, summary: dict[str, Any]) -> str:
    model = (summary.get("model") or {}).get("name", "")
    note = " (a simulation policy, not a language model)" if str(model).startswith("sim") else ""
    status = summary.get("status", "")
    return (
        f'<header><h1>swarmlab report <span class="run-id">{escape(str(metrics.run_id))}</span>'
        f'</h1><p class="subtitle"><span class="badge {escape(status)}">{escape(status)}</span> '
        f"{escape(str(summary.get('ended_because', '')))} · model "
        f"<b>{escape(str(model))}</b>{note}</p>"
        '<nav><a href="#summary">summary</a><a href="#metrics">metrics</a><a href="#plots">'
        'plots</a><a href="#timeline">timeline</a><a href="#caps">caps</a><a href="#tree">'
        'program tree</a><span class="grow"></span><button id="expand-all" type="button">'
        'expand all</button><button id="collapse-all" type="button">collapse all</button>'
        "</nav></header>"
    )


def _summary(
    summary: dict[str, Any], m: EmergenceMetrics, programs: Sequence[ProgramRecord]
) -> str:
    by_status = Counter(p.status for p in programs)
    outcome = summary.get("outcome") or {}
    cards = [
        ("programs", _num(m.programs), ", ".join(f"{v} {k}" for k, v in sorted(by_status.items()))),
        ("deepest", _num(m.max_depth), f"branching {_num(round(m.mean_branching, 2))}"),
        ("scaffold", format_value(m.scaffold), "the root answered with a program"),
        (
            "duration",
            f"{_num(summary.get('duration_s', 0))} s",
            f"{_num(summary.get('events', 0))} events",
        ),
        ("paperclips", format_value(m.paperclips), f"money spent {format_value(m.money_spent)}"),
        ("model tokens", _num(m.model_tokens), f"{_num(m.capability_calls)} capability calls"),
    ]
    html = '<div class="cards">' + "".join(
        f'<div class="card"><div class="card-label">{escape(k)}</div>'
        f'<div class="card-value">{escape(v)}</div><div class="muted">{escape(s)}</div></div>'
        for k, v, s in cards
    )
    html += "</div>"
    caps = summary.get("caps") or {}
    if caps:
        html += '<table class="caps"><tr><th>cap</th><th>used</th><th>limit</th><th>denied</th>'
        html += "<th>usage</th></tr>"
        for cap, c in caps.items():
            share = min(1.0, c["used"] / c["limit"]) if c.get("limit") else 0.0
            html += (
                f"<tr><td>{escape(cap)}</td><td>{_num(c['used'])}</td><td>{_num(c['limit'])}</td>"
                f'<td class="{"denied" if c.get("denied") else ""}">{_num(c.get("denied", 0))}'
                f'</td><td><div class="bar{" hit" if c.get("denied") else ""}">'
                f'<div style="width:{share * 100:.1f}%"></div></div>'
                "</td></tr>"
            )
        html += "</table>"
    extra = {k: v for k, v in outcome.items() if k not in ("paperclips", "money_spent")}
    if extra:
        html += '<p class="muted">outcome: ' + escape(
            ", ".join(f"{k} {format_value(v)}" for k, v in extra.items())
        )
        html += "</p>"
    return html


def _metrics_table(m: EmergenceMetrics) -> str:
    rows = []
    for field in TABLE_ROWS:
        value = getattr(m, field)
        cell = escape(format_value(value))
        listing = _listing(field, m)
        if listing:
            cell += f"<details><summary>list</summary>{listing}</details>"
        rows.append(
            f'<tr><td class="metric">{escape(field)}</td><td class="value">{cell}</td>'
            f'<td class="definition">{escape(_definition(field))}</td></tr>'
        )
    return (
        '<table class="metrics"><tr><th>metric</th><th>value</th><th>definition</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def _link(pid: str) -> str:
    return f'<a href="#prog-{escape(pid)}">{escape(pid)}</a>'


def _listing(field: str, m: EmergenceMetrics) -> str:
    items: list[str] = []
    if field == "quines" and m.quines:
        items = [f"{_link(p)} re-creates {_link(a)}" for p, a in m.quines.items()]
    elif field == "duplicate_programs" and m.duplicates:
        items = [f"{_link(p)} repeats {_link(a)}" for p, a in m.duplicates.items()]
    elif field == "cross_lineage_edges" and m.cross_lineage_pairs:
        items = [f"{_link(r)} read from {_link(w)}" for r, w in m.cross_lineage_pairs]
    elif field == "escape_programs" and len(m.escape_programs) > 4:
        items = [_link(p) for p in m.escape_programs]
    return (
        '<ul class="listing">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>" if items else ""
    )


def _plots(
    programs: Sequence[ProgramRecord],
    events: Sequence[Event],
    m: EmergenceMetrics,
    t0: float,
    t1: float,
) -> str:
    series = cap_series(programs, events, t0)
    growth = step_chart(
        [("programs started", series["programs"]), ("programs running", series["concurrent"])],
        t1 - t0,
    )
    tokens = bar_chart(
        [(f"depth {d}", float(v)) for d, v in m.tokens_by_depth.items()], "no model calls"
    )
    denials = bar_chart([(c, float(v)) for c, v in m.denials_by_cap.items()], "no denials")
    return (
        '<div class="grid">'
        + "".join(
            f"<figure><figcaption>{escape(title)}</figcaption>{svg}</figure>"
            for title, svg in (
                ("Tree growth over time", growth),
                ("Model tokens by depth", tokens),
                ("Denials by cap", denials),
            )
        )
        + "</div>"
    )


def _cap_charts(
    programs: Sequence[ProgramRecord],
    events: Sequence[Event],
    summary: dict[str, Any],
    t0: float,
    t1: float,
) -> str:
    caps = summary.get("caps") or {}
    figures = []
    for cap, points in cap_series(programs, events, t0).items():
        info = caps.get(cap) or {}
        limit = info.get("limit")
        replayed = max((v for _, v in points), default=0)
        caption = f"{'peak' if cap in ('concurrent', 'depth') else 'replayed'} {_num(replayed)}"
        if info:
            caption += f" · summary: used {_num(info['used'])} of {_num(limit or 0)}"
            caption += f", denied {_num(info.get('denied', 0))}"
            if limit and replayed < 0.25 * limit:
                caption += " (limit far above the chart)"
        figures.append(
            f"<figure><figcaption>{escape(cap)} <span class='muted'>{escape(caption)}</span>"
            f"</figcaption>{step_chart([(cap, points)], t1 - t0, limit)}</figure>"
        )
    note = (
        '<p class="muted">Replayed from the event log; the summary also counts the root '
        "dialogue's model calls, which happen before any program.</p>"
    )
    return note + '<div class="grid">' + "".join(figures) + "</div>"


def _tree(
    programs: Sequence[ProgramRecord], events: Sequence[Event], m: EmergenceMetrics, t0: float
) -> str:
    known = {p.id for p in programs}
    children: dict[str | None, list[ProgramRecord]] = {}
    for p in programs:
        children.setdefault(p.parent_id if p.parent_id in known else None, []).append(p)
    by_program: dict[str, list[Event]] = {}
    for e in events:
        by_program.setdefault(e.program, []).append(e)
    escapes = set(m.escape_programs)

    def render(p: ProgramRecord) -> str:
        evs = by_program.get(p.id, [])
        kids = children.get(p.id, [])
        counts = Counter(e.decision for e in evs)
        flags = []
        if m.quines and p.id in m.quines:
            flags.append(f"quine of {m.quines[p.id]}")
        if m.duplicates and p.id in m.duplicates:
            flags.append(f"duplicate of {m.duplicates[p.id]}")
        if p.id in escapes:
            flags.append("escape attempt")
        if is_meta_task(p.task):
            flags.insert(0, "meta-task")
        tags = "".join(f'<span class="flag">{escape(f)}</span>' for f in flags)
        stats = f"{len(kids)} children · {len(evs)} events"
        if counts["denied"]:
            stats += f" · {counts['denied']} denied"
        head = (
            f'<summary><span class="pid">{escape(p.id)}</span>'
            f'<span class="badge {escape(p.status)}">{escape(p.status)}</span>'
            f'<span class="task">{escape(p.task[:140])}</span>{tags}'
            f'<span class="muted stats">{stats}</span></summary>'
        )
        started = f"+{p.started_at - t0:.2f} s" if p.started_at else "never"
        ran = f"{p.ended_at - p.started_at:.2f} s" if p.ended_at and p.started_at else "-"
        body = (
            f'<dl class="facts"><dt>task</dt><dd>{escape(p.task) or "-"}</dd><dt>started</dt>'
            f"<dd>{started}</dd><dt>ran</dt><dd>{ran}</dd><dt>simulated clock</dt>"
            f"<dd>{p.clock_h:.2f} h</dd><dt>capability calls</dt><dd>{p.calls}</dd></dl>"
        )
        if p.error:
            body += f'<pre class="error">{escape(p.error)}</pre>'
        body += _block(f"code ({len(p.code.splitlines())} lines)", p.code)
        if p.output:
            body += _block("output", p.output)
        if p.result is not None:
            body += _block("result", json.dumps(p.result, indent=1, default=str)[:6000])
        body += _decisions(evs, t0, counts)
        inner = "".join(render(k) for k in kids)
        if inner:
            body += f'<div class="children">{inner}</div>'
        opened = " open" if p.parent_id is None else ""
        return (
            f'<details class="prog" id="prog-{escape(p.id)}"{opened}>{head}'
            f'<div class="prog-body">{body}</div></details>'
        )

    roots = children.get(None, [])
    if not roots:
        return '<p class="muted">no programs in this run</p>'
    return "".join(render(r) for r in roots)


def _block(title: str, text: str) -> str:
    return f"<details><summary>{escape(title)}</summary><pre>{escape(text)}</pre></details>"


def _decisions(events: Sequence[Event], t0: float, counts: Counter[Any]) -> str:
    if not events:
        return ""
    rows = "".join(
        f'<tr><td class="num">+{e.t - t0:.3f}</td><td>{escape(e.kind)}</td>'
        f'<td><span class="dec {e.decision}">{e.decision}</span></td>'
        f"<td>{escape(e.cap or '')}</td><td>{escape(_brief(e))}</td></tr>"
        for e in events
    )
    title = f"decisions ({len(events)} events"
    title += "".join(f", {counts[d]} {d}" for d in ("denied", "error") if counts[d]) + ")"
    return (
        f"<details><summary>{escape(title)}</summary><table class='decisions'><tr><th>s</th>"
        f"<th>call</th><th>decision</th><th>cap</th><th>detail</th></tr>{rows}</table></details>"
    )


def _brief(e: Event) -> str:
    d = e.detail
    if e.kind in MODEL_CALLS and "prompt_tokens" in d:
        text = f"{d['prompt_tokens']}+{d.get('completion_tokens', 0)} tokens · "
        text += f"{d.get('model', '')} · answer: {d.get('answer', '')}"
    elif e.kind == "spawn" and "child" in d:
        text = f"{d['child']}: {d.get('task', '')}"
    elif e.kind == "db_get":
        text = f"{d.get('key')} (written by {d.get('writer') or 'nobody'})"
    else:
        text = ", ".join(f"{k}={v}" if k != "args" else json.dumps(v) for k, v in d.items())
    return " ".join(text.split())[:220]


# --- page --------------------------------------------------------------------------------------


def _section(title: str, anchor: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{body}</section>'


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style><script>{ON_ERROR}</script></head>"
        f"<body><main>{body}</main><script>{SCRIPT}</script></body></html>\n"
    )


def analyze_runs(
    run_dirs: Sequence[str | Path], quine_threshold: float = 0.8
) -> dict[str, EmergenceMetrics]:
    """The metrics of several runs, by a label that is unique (the run id, as a rule)."""
    metrics: dict[str, EmergenceMetrics] = {}
    for run_dir in map(Path, run_dirs):
        m = analyze_run(run_dir, quine_threshold)
        label = str(m.run_id or run_dir.name)
        if label in metrics:
            label = f"{label} ({len(metrics) + 1})"
        metrics[label] = m
    return metrics


def write_comparison(
    run_dirs: Sequence[str | Path],
    out_path: str | Path,
    quine_threshold: float = 0.8,
    metrics: dict[str, EmergenceMetrics] | None = None,
) -> Path:
    """Write one page with the metrics of several runs side by side."""
    metrics = metrics or analyze_runs(run_dirs, quine_threshold)
    summaries: dict[str, dict[str, Any]] = {}
    for label, m in metrics.items():
        path = Path(m.source) / "summary.json"
        summaries[label] = read_json(path) if path.is_file() else {}
    head = "".join(f"<th>{escape(label)}</th>" for label in metrics)
    facts = [
        ("status", lambda s: s.get("status", "-")),
        ("model", lambda s: (s.get("model") or {}).get("name", "-")),
        ("duration_s", lambda s: format_value(s.get("duration_s"))),
        ("ended_because", lambda s: s.get("ended_because", "-")),
    ]
    rows = "".join(
        f'<tr><td class="metric">{name}</td>'
        + "".join(f"<td>{escape(str(get(s)))}</td>" for s in summaries.values())
        + "<td></td></tr>"
        for name, get in facts
    )
    rows += "".join(
        f'<tr><td class="metric">{escape(field)}</td>'
        + "".join(
            f'<td class="value">{escape(format_value(getattr(m, field)))}</td>'
            for m in metrics.values()
        )
        + f'<td class="definition">{escape(_definition(field))}</td></tr>'
        for field in TABLE_ROWS
    )
    sources = "".join(
        f"<li>{escape(label)}: {escape(m.source)}</li>" for label, m in metrics.items()
    )
    body = (
        f'<header><h1>swarmlab comparison <span class="run-id">{len(metrics)} runs</span></h1>'
        '<nav><span class="grow"></span><button id="expand-all" type="button">expand all</button>'
        '<button id="collapse-all" type="button">collapse all</button></nav></header>'
        + _section(
            "Emergence metrics side by side",
            "metrics",
            f'<table class="metrics compare"><tr><th>metric</th>{head}<th>definition</th></tr>'
            f"{rows}</table><details><summary>run directories</summary><ul>{sources}</ul>"
            "</details>",
        )
    )
    out = Path(out_path)
    out.write_text(_page("swarmlab comparison", body))
    return out


ON_ERROR = """window.onerror = function (message, source, line) {
  var box = document.createElement('div');
  box.id = 'script-error';
  box.textContent = 'script error: ' + message + (line ? ' (line ' + line + ')' : '');
  (document.body || document.documentElement).appendChild(box);
};"""

SCRIPT = """(function () {
  function setAll(open) {
    document.querySelectorAll('details').forEach(function (d) { d.open = open; });
  }
  document.getElementById('expand-all').addEventListener('click', function () { setAll(true); });
  document.getElementById('collapse-all').addEventListener('click', function () { setAll(false); });
  function reveal() {
    var el = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (!el) { return; }
    for (var p = el; p; p = p.parentElement) { if (p.tagName === 'DETAILS') { p.open = true; } }
    el.scrollIntoView();
  }
  window.addEventListener('hashchange', reveal);
  if (location.hash) { reveal(); }
  document.body.dataset.ready = '1';
})();"""

CSS = """
:root { --fg: #1d2430; --muted: #697386; --line: #dde2ea; --bg: #f6f7f9; --card: #fff;
  --accent: #3f72c4; --red: #c8413b; --mono: ui-monospace, Menlo, Consolas, monospace; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 20px 28px 60px; }
header { position: sticky; top: 0; z-index: 2; background: var(--bg); padding: 8px 0 6px;
  border-bottom: 1px solid var(--line); }
section, details.prog { scroll-margin-top: 110px; }
h1 { font-size: 22px; margin: 4px 0; }
h2 { font-size: 17px; margin: 28px 0 10px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
.run-id { font-weight: 400; color: var(--muted); font-size: 16px; margin-left: 6px; }
.subtitle { margin: 2px 0 8px; color: var(--muted); } .subtitle b { color: var(--fg); }
nav { display: flex; gap: 14px; align-items: center; flex-wrap: wrap; }
nav a { color: var(--accent); text-decoration: none; } nav .grow { flex: 1; }
button { font: inherit; padding: 3px 12px; border: 1px solid var(--line); border-radius: 6px;
  background: var(--card); cursor: pointer; }
button:hover { border-color: var(--accent); }
.muted { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 10px; }
.card, figure { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 12px; margin: 0; }
.card-label { color: var(--muted); font-size: 12px; text-transform: uppercase; }
.card-value { font-size: 22px; font-weight: 600; }
table { border-collapse: collapse; background: var(--card); width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-weight: 600; background: #eef1f5; }
table.caps { margin-top: 14px; }
table.caps td:nth-child(n+2):nth-child(-n+4) { text-align: right; width: 90px; }
td.denied { color: var(--red); font-weight: 600; }
.bar { background: #eef1f5; height: 10px; border-radius: 5px; overflow: hidden; min-width: 160px; }
.bar div { background: var(--accent); height: 100%; } .bar.hit div { background: var(--red); }
table.metrics td.metric { font-family: var(--mono); white-space: nowrap; }
table.metrics td.value { font-weight: 600; max-width: 280px; }
table.metrics td.definition { color: var(--muted); }
td, .card-value { font-variant-numeric: tabular-nums; }
ul.listing { margin: 4px 0; padding-left: 18px; font-weight: 400; max-height: 240px;
  overflow: auto; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 12px; }
figcaption { font-weight: 600; margin-bottom: 4px; }
figcaption .muted { font-weight: 400; font-size: 12px; }
svg.chart, svg.timeline { width: 100%; height: auto; display: block; }
svg.timeline { background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
svg text { font-family: system-ui, sans-serif; fill: #4a5363; }
svg .tick { font-size: 10px; } svg .legend { font-size: 11px; }
svg .row-label { font-family: var(--mono); }
svg .axis { stroke: #9aa3ad; } svg .grid { stroke: #eceff3; }
svg .limit { stroke: var(--red); stroke-dasharray: 5 4; stroke-width: 1.3; }
svg .limit-label { fill: var(--red); } svg a:hover rect { opacity: .75; }
.legend-row { margin: 0 0 6px; color: var(--muted); }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px;
  margin: 0 4px 0 10px; vertical-align: -1px; }
details.prog { background: var(--card); border: 1px solid var(--line); border-radius: 6px;
  margin: 4px 0; }
details.prog > summary { padding: 5px 8px; cursor: pointer; display: flex; gap: 8px;
  align-items: baseline; flex-wrap: wrap; }
details.prog > summary .task { flex: 1 1 300px; }
.prog-body { padding: 4px 10px 8px 22px; border-top: 1px solid var(--line); }
.prog-body details:not(.prog) > summary { cursor: pointer; color: var(--accent); margin: 3px 0; }
.children { border-left: 2px solid #dbe3f0; padding-left: 10px; margin-top: 6px; }
.pid { font-family: var(--mono); font-weight: 600; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; color: #fff;
  background: #9aa3ad; }
.badge.completed { background: #3a8a4f; } .badge.running { background: var(--accent); }
.badge.crashed, .badge.failed { background: var(--red); }
.badge.killed, .badge.halted { background: #e08a1e; }
.flag { font-size: 11px; padding: 0 6px; border-radius: 9px; border: 1px solid #b9c6dd;
  color: #34508a; background: #eef3fb; }
.stats { font-size: 12px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 6px 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
pre { background: #f3f5f8; border: 1px solid var(--line); border-radius: 6px; padding: 8px;
  overflow: auto; max-height: 340px; font: 12px/1.4 var(--mono); white-space: pre-wrap;
  word-break: break-word; margin: 4px 0; }
pre.error { background: #fdf0ef; border-color: #efc4c1; color: #8c2620; }
table.decisions { font-size: 12px; } table.decisions td { padding: 2px 6px; }
table.decisions td.num { color: var(--muted); white-space: nowrap; }
.dec { padding: 0 6px; border-radius: 8px; font-size: 11px; }
.dec.allowed { background: #e3f2e6; color: #24653a; }
.dec.denied { background: #fbe0de; color: #a3302a; }
.dec.error { background: #fdebd3; color: #94560c; }
.dec.info { background: #eceff3; color: #4a5363; }
#script-error { position: fixed; bottom: 0; left: 0; right: 0; background: var(--red); color: #fff;
  padding: 8px 12px; }
"""

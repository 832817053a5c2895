"""The emergence report of one run: one self-contained HTML page.

Everything is inline (CSS and script from `assets/`, SVG charts from `_charts`): the page opens
from disk, offline, and can be mailed around. The script only expands/collapses the program tree;
the page reads fine without it.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from functools import cache
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from swarmlab.core import json_safe, write_text
from swarmlab.observability.analysis import (
    BLIND_SET,
    QUINE_THRESHOLD,
    VALIDITY_FLOOR,
    EmergenceMetrics,
    analyze_run,
    validity_of,
)
from swarmlab.observability.analysis._data import MODEL_CALLS
from swarmlab.records import Event, ProgramRecord, RunDir, RunRecords, RunSummary

from ._charts import bar_chart, step_chart, timeline
from ._format import TABLE_ROWS, definition, format_value, num

__all__ = ["html_page", "section", "write_report"]

RESULT_CHARS = 6000
"""What a program's page shows of its result (read back: it may be as large as the file)."""


@cache
def asset(name: str) -> str:
    """A file of the report's assets (CSS, scripts), as text."""
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def cap_series(
    programs: Sequence[ProgramRecord], events: Iterable[Event], t0: float
) -> dict[str, list[tuple[float, float]]]:
    """Each cap's usage over time, replayed from the event log (step points: seconds, used)."""
    depth = {p.id: p.depth for p in programs}
    caps = "programs concurrent depth model_calls tokens world_actions blackboard_bytes"
    series: dict[str, list[tuple[float, float]]] = {cap: [] for cap in caps.split()}
    used = Counter[str]()

    def bump(cap: str, t: float, delta: float = 1, absolute: float | None = None) -> None:
        used[cap] = int(absolute if absolute is not None else used[cap] + delta)
        series[cap].append((t - t0, used[cap]))

    started: set[str] = set()  # a program ended before it started never counted as running
    for e in events:
        ok = e.decision == "allowed"
        if e.kind == "start":
            started.add(e.program)
            bump("programs", e.t)
            bump("concurrent", e.t)
            bump("depth", e.t, absolute=max(used["depth"], depth.get(e.program, 0)))
        elif e.kind == "end" and e.program in started:
            bump("concurrent", e.t, -1)
        elif e.kind in MODEL_CALLS and ok:
            bump("model_calls", e.t)
            bump("tokens", e.t, e.count("prompt_tokens") + e.count("completion_tokens"))
        elif e.kind.startswith("world.") and e.decision != "denied":
            bump("world_actions", e.t)
        elif e.kind == "db_put" and ok:
            # What the coordinator charged, as it recorded it.
            bump("blackboard_bytes", e.t, e.count("charged"))
    return series


def write_report(
    run_dir: str | Path,
    out_path: str | Path | None = None,
    quine_threshold: float = QUINE_THRESHOLD,
    metrics: EmergenceMetrics | None = None,
    read: RunRecords | None = None,
) -> Path:
    """Write the run's report (default `<run_dir>/report.html`) and return its path. `metrics`
    and `read` (the run's records) are those already computed and read, if any: pass both, from
    one reading, so that the page and its figures describe the same files."""
    rundir = RunDir(run_dir).require()
    if read is None:
        read = rundir.records()
    metrics = metrics or analyze_run(rundir.path, quine_threshold, read)
    summary, programs, events = read.summary, read.programs, read.events
    # Time runs from the root program's creation: the cluster's start-up before it is not
    # the swarm's doing and would squeeze every chart to the right.
    starts = [p.created_at for p in programs if p.created_at] + [e.t for e in events]
    ends = [p.ended_at for p in programs if p.ended_at] + [e.t for e in events]
    t0 = min(starts, default=0.0)
    t1 = max(ends, default=t0)
    page = html_page(
        f"swarmlab report · {metrics.run_id}",
        _header(metrics, summary)
        + section("Run summary", "summary", _summary(summary, metrics, programs))
        + section("Emergence metrics", "metrics", _metrics_table(metrics))
        + section("Plots", "plots", _plots(programs, events, metrics, t0, t1))
        + section("Timeline of programs", "timeline", timeline(programs, t0, t1))
        + section("Caps over time", "caps", _cap_charts(programs, events, summary, t0, t1))
        + section("Program tree", "tree", _tree(programs, events, metrics, t0)),
    )
    out = Path(out_path) if out_path else rundir.file("report.html")
    write_text(out, page)  # never through a symlink planted as report.html
    return out


UNCHECKED = (
    "the run wrote no summary.json (still going, or it was removed): the figures below are "
    "its records' own, not checked against the run's counts"
)


def _header(metrics: EmergenceMetrics, summary: RunSummary | None) -> str:
    model = summary.model.name if summary else ""
    note = " (a simulation policy, not a language model)" if str(model).startswith("sim") else ""
    status = summary.status if summary else "no summary"
    ended_because = summary.ended_because if summary else UNCHECKED
    return (
        f'<header><h1>swarmlab report <span class="run-id">{escape(str(metrics.run_id))}</span>'
        f'</h1><p class="subtitle"><span class="badge {escape(status)}">{escape(status)}</span> '
        f"{escape(ended_because)} · model "
        f"<b>{escape(str(model))}</b>{note}</p>"
        '<nav><a href="#summary">summary</a><a href="#metrics">metrics</a><a href="#plots">'
        'plots</a><a href="#timeline">timeline</a><a href="#caps">caps</a><a href="#tree">'
        'program tree</a><span class="grow"></span><button id="expand-all" type="button">'
        'expand all</button><button id="collapse-all" type="button">collapse all</button>'
        "</nav></header>"
    )


def _summary(
    summary: RunSummary | None, m: EmergenceMetrics, programs: Sequence[ProgramRecord]
) -> str:
    by_status = Counter(p.status for p in programs)
    outcome = summary.outcome if summary else {}
    cards = [
        ("programs", num(m.programs), ", ".join(f"{v} {k}" for k, v in sorted(by_status.items()))),
        ("deepest", num(m.max_depth), f"branching {num(round(m.mean_branching, 2))}"),
        ("scaffold", format_value(m.scaffold), "the root answered with a program"),
        (
            "duration",
            f"{num(summary.duration_s if summary else 0)} s",
            f"{num(summary.events if summary else 0)} events",
        ),
        ("paperclips", format_value(m.paperclips), f"money spent {format_value(m.money_spent)}"),
        ("model tokens", num(m.model_tokens), f"{num(m.capability_calls)} capability calls"),
    ]
    html = '<div class="cards">' + "".join(
        f'<div class="card"><div class="card-label">{escape(k)}</div>'
        f'<div class="card-value">{escape(v)}</div><div class="muted">{escape(s)}</div></div>'
        for k, v, s in cards
    )
    html += "</div>"
    caps = summary.caps if summary else {}
    if caps:
        html += '<table class="caps"><tr><th>cap</th><th>used</th><th>limit</th><th>denied</th>'
        html += "<th>usage</th></tr>"
        for cap, c in caps.items():
            share = min(1.0, c.used / c.limit) if c.limit else 0.0
            hit = " hit" if c.denied else ""
            html += (
                f"<tr><td>{escape(cap)}</td><td>{num(c.used)}</td><td>{num(c.limit)}</td>"
                f'<td class="{"denied" if c.denied else ""}">{num(c.denied)}'
                f'</td><td><div class="bar{hit}"><div style="width:{share * 100:.1f}%"></div>'
                "</div></td></tr>"
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
            f"{_validity_cell(field)}"
            f'<td class="definition">{escape(definition(field))}</td></tr>'
        )
    return (
        '<table class="metrics"><tr><th>metric</th><th>value</th>'
        f"<th>validity ({escape(BLIND_SET)})</th><th>definition</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _validity_cell(field: str) -> str:
    """The blind precision and recall of the detector behind a metric, marked below the floor."""
    v = validity_of(field)
    if v is None:
        return '<td class="validity"></td>'
    below = f"below {VALIDITY_FLOOR}" if v.below_floor else ""
    return (
        f'<td class="validity{" below" if below else ""}" title="{escape(v.note())}">'
        f"P {v.precision:.2f} · R {v.recall:.2f}"
        + (f' <span class="below-floor">{escape(below)}</span>' if below else "")
        + "</td>"
    )


def _link(pid: str) -> str:
    return f'<a href="#prog-{escape(pid)}">{escape(pid)}</a>'


def _listing(field: str, m: EmergenceMetrics) -> str:
    items: list[str] = []
    if field == "quines" and m.quines:
        items = [f"{_link(p)} re-creates {_link(a)}" for p, a in m.quines.items()]
    elif field == "meta_tasks" and m.meta_task_programs:
        items = [_link(p) for p in m.meta_task_programs]
    elif field == "duplicate_programs" and m.duplicate_groups:
        items = [" = ".join(map(_link, group)) for group in m.duplicate_groups]
    elif field == "control_attempts" and m.control_pairs:
        items = [f"{_link(c)} tried to stop {_link(t)}" for c, t in m.control_pairs]
    elif field.startswith("crashed_") and m.crash_causes:
        cause = field.removeprefix("crashed_")
        items = [_link(p) for p, c in m.crash_causes.items() if c == cause]
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
    summary: RunSummary | None,
    t0: float,
    t1: float,
) -> str:
    caps = summary.caps if summary else {}
    figures = []
    for cap, points in cap_series(programs, events, t0).items():
        info = caps.get(cap)
        limit = float(info.limit) if info else None
        replayed = max((v for _, v in points), default=0)
        caption = f"{'peak' if cap in ('concurrent', 'depth') else 'replayed'} {num(replayed)}"
        if info:
            caption += f" · summary: used {num(info.used)} of {num(limit or 0)}"
            caption += f", denied {num(info.denied)}"
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
    flags = program_flags(m)

    roots = children.get(None, [])
    if not roots:
        return '<p class="muted">no programs in this run</p>'
    # Depth first without recursion: a chain of programs is as deep as caps.depth allows
    # (thousands), and a record read back may even name a program its own parent.
    out: list[str] = []
    seen: set[str] = set()
    stack: list[ProgramRecord | str] = list(reversed(roots))
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        if item.id in seen:
            continue
        seen.add(item.id)
        evs, kids = by_program.get(item.id, []), children.get(item.id, [])
        opened = " open" if item.parent_id is None else ""
        out.append(
            f'<details class="prog" id="prog-{escape(item.id)}"{opened}>'
            f"{_program_head(item, evs, len(kids), flags.get(item.id, []))}"
            f'<div class="prog-body">{_program_body(item, evs, t0)}'
        )
        kids = [k for k in kids if k.id not in seen]
        if kids:
            out.append('<div class="children">')
        stack.append(("</div>" if kids else "") + "</div></details>")
        stack.extend(reversed(kids))
    return "".join(out)


def program_flags(m: EmergenceMetrics) -> dict[str, list[str]]:
    """What the detectors say about each program, as short flags (one pass over the metrics:
    linear in the tree, however large)."""
    flags: dict[str, list[str]] = defaultdict(list)
    for pid in m.meta_task_programs:
        flags[pid].append("meta-task")
    for pid, ancestor in (m.quines or {}).items():
        flags[pid].append(f"quine of {ancestor}")
    for group in m.duplicate_groups or []:
        for pid in group:
            named = [other for other in group[:4] if other != pid][:3]
            more = f" and {len(group) - 1 - len(named)} more" if len(group) > 4 else ""
            flags[pid].append("same code as " + ", ".join(named) + more)
    for pid in m.escape_programs:
        flags[pid].append("escape attempt")
    for pid, cause in m.crash_causes.items():
        flags[pid].append(f"crash: {cause.replace('_', ' ')}")
    return flags


def _program_head(p: ProgramRecord, events: Sequence[Event], kids: int, flags: list[str]) -> str:
    tags = "".join(f'<span class="flag">{escape(f)}</span>' for f in flags)
    denied = sum(1 for e in events if e.decision == "denied")
    stats = f"{kids} children · {len(events)} events" + (f" · {denied} denied" if denied else "")
    return (
        f'<summary><span class="pid">{escape(p.id)}</span>'
        f'<span class="badge {escape(p.status)}">{escape(p.status)}</span>'
        f'<span class="task">{escape(p.task[:140])}</span>{tags}'
        f'<span class="muted stats">{stats}</span></summary>'
    )


def _program_body(p: ProgramRecord, events: Sequence[Event], t0: float) -> str:
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
        shown = json_safe(p.result, limit=RESULT_CHARS)  # a copy of what is shown, no more
        body += _block("result", json.dumps(shown, indent=1, default=str)[:RESULT_CHARS])
    return body + _decisions(events, t0, Counter(e.decision for e in events))


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


def section(title: str, anchor: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{body}</section>'


def html_page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{asset('report.css')}</style>"
        f"<script>{asset('on-error.js')}</script></head>"
        f"<body><main>{body}</main><script>{asset('report.js')}</script></body></html>\n"
    )

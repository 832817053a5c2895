"""The report's charts, drawn as inline SVG (no plotting library: the page stays one file)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from swarmlab.records import ProgramRecord

from ._format import SERIES_COLORS, STATUS_COLORS, num, short


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
    left, _, right, bottom = pad
    parts = [_axes_y(w, h, pad, ymax)]
    for x in _ticks(xmax, 5):
        px = left + (w - left - right) * x / xmax
        parts.append(f'<text class="tick" x="{px:.1f}" y="{h - bottom + 13}" text-anchor="middle">')
        parts.append(f"{short(x)}</text>")
    return "".join(parts)


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
        parts.append(f'y="{sy(limit) - 3:.1f}" text-anchor="end">limit {num(limit)}</text>')
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
        parts.append(f'fill="{SERIES_COLORS[0]}"><title>{escape(label)}: {num(value)}</title>')
        parts.append(f'</rect><text class="tick" x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" ')
        parts.append(f'text-anchor="middle">{short(value)}</text>')
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
        parts.append(f"{short(y)}</text>")
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
        parts.append(f'text-anchor="middle">{short(x)}</text>')
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

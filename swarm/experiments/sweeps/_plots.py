"""A sweep's plots (PNG, matplotlib), every mean with its 95% interval: metrics by swept field
(one line per value of the other swept fields) or by condition, the die-out fraction, paired
differences against the baseline, denials by cap, and the scaffold rate."""

from __future__ import annotations

import io
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from swarmlab.core import write_bytes
from swarmlab.experiments.stats import wilson_interval

from ._cells import FINISHED, METRICS, condition_label, metric_value
from ._plan import SweepSpec

PANELS = ("paperclips", "programs")
INTERVAL = "mean and 95% interval over seeds (dots: runs)"


def write_plots(
    rows: list[dict[str, Any]],
    cells: list[dict[str, Any]],
    paired: list[dict[str, Any]],
    sweep: SweepSpec,
    out: Path,
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    done = [r for r in rows if r.get("status") in FINISHED]
    swept = sweep.swept()
    paths = []
    if sweep.grid and not sweep.cells:
        for param in swept:
            fig = _by_field(plt, done, cells, param, [p for p in swept if p != param])
            paths.append(_save(plt, fig, plots / f"by-{_file(param)}.png"))
    elif len(cells) > 1:
        paths.append(_save(plt, _by_condition(plt, done, cells), plots / "by-condition.png"))
    paths.append(_save(plt, _died_out(plt, cells), plots / "died-out.png"))
    if paired:
        paths.append(_save(plt, _paired(plt, paired), plots / "paired-differences.png"))
    paths.append(_save(plt, _denials(plt, done), plots / "denials-by-cap.png"))
    paths.append(_save(plt, _scaffold(plt, done), plots / "scaffold-by-persona.png"))
    return paths


def _by_field(
    plt: Any, rows: list[dict[str, Any]], cells: list[dict[str, Any]], param: str, others: list[str]
) -> Any:
    fig, axes = plt.subplots(1, len(PANELS), figsize=(10, 3.9))
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for cell in cells:
        label = ", ".join(f"{o}={cell.get(f'condition.{o}')}" for o in others)
        series[label].append(cell)
    keys: list[Any] = [c.get(f"condition.{param}") for c in cells]
    numeric = all(isinstance(k, int | float) for k in keys)
    order = sorted(set(keys), key=float if numeric else str)
    log = numeric and min(order) > 0 and max(order) / min(order) > 20
    for ax, name in zip(axes, PANELS, strict=True):
        for index, (label, group) in enumerate(series.items()):
            shift = (index - (len(series) - 1) / 2) * 0.06
            xs = [_x(c.get(f"condition.{param}"), order, numeric, log, shift) for c in group]
            _interval_line(ax, xs, group, name, label or "mean", f"C{index}")
            for x, cell in zip(xs, group, strict=True):
                values = _run_values(rows, cell, name)
                ax.scatter([x] * len(values), values, color=f"C{index}", alpha=0.25, s=9)
        if log:
            ax.set_xscale("log")
        _wide_range(ax, [c.get(f"{name}_mean") for c in cells])
        if not numeric:
            ax.set_xticks(range(len(order)), [str(k) for k in order], rotation=15, fontsize=8)
        ax.set_xlabel(param)
        ax.set_ylabel(METRICS[name].label)
        ax.grid(alpha=0.3)
    if len(series) > 1 or others:
        axes[0].legend(fontsize=8)
    fig.suptitle(f"{param}: {INTERVAL}", fontsize=10)
    fig.tight_layout()
    return fig


def _by_condition(plt: Any, rows: list[dict[str, Any]], cells: list[dict[str, Any]]) -> Any:
    from matplotlib.ticker import EngFormatter

    height = 1.6 + 0.38 * len(cells)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(11, height), sharey=True)
    ys = list(range(len(cells)))
    for ax, name in zip(axes, PANELS, strict=True):
        for y, cell in zip(ys, cells, strict=True):
            values = _run_values(rows, cell, name)
            ax.scatter(values, [y] * len(values), color="#8aa", alpha=0.35, s=9)
            mean, low, high = (cell.get(f"{name}_{k}") for k in ("mean", "ci_low", "ci_high"))
            if mean is not None:
                ax.plot([mean], [y], "o", color="#246")
            if low is not None and high is not None:
                ax.plot([low, high], [y, y], color="#246", lw=2)
        ax.xaxis.set_major_formatter(EngFormatter())
        ax.set_xlabel(METRICS[name].label)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(ys, [c["condition"] for c in cells], fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle(f"by condition: {INTERVAL}", fontsize=10)
    fig.tight_layout()
    return fig


def _died_out(plt: Any, cells: list[dict[str, Any]]) -> Any:
    fig, ax = plt.subplots(figsize=(9, 1.4 + 0.38 * len(cells)))
    for y, cell in enumerate(cells):
        rate, low, high = (cell.get(f"died_out_{k}") for k in ("mean", "ci_low", "ci_high"))
        if rate is None:
            continue
        ax.barh(y, rate, color="#c96", alpha=0.7)
        ax.plot([low, high], [y, y], color="#333", lw=1.5)
        ax.text(1.01, y, f"{cell.get('died_out_successes')}/{cell['n']}", va="center", fontsize=8)
    ax.set_yticks(range(len(cells)), [c["condition"] for c in cells], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of runs that died out before any cap bound (95% Wilson interval)")
    fig.tight_layout()
    return fig


def _paired(plt: Any, paired: list[dict[str, Any]]) -> Any:
    from matplotlib.ticker import EngFormatter

    names = [n for n in PANELS if any(p["metric"] == n for p in paired)]
    conditions = list(dict.fromkeys(p["condition"] for p in paired))
    height = 1.6 + 0.38 * len(conditions)
    fig, axes = plt.subplots(1, len(names), figsize=(11, height), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        by_condition = {p["condition"]: p for p in paired if p["metric"] == name}
        for y, condition in enumerate(conditions):
            item = by_condition.get(condition)
            if item is None:
                continue
            ax.plot([item["mean_diff"]], [y], "o", color="#246")
            if item["ci_low"] is not None:
                ax.plot([item["ci_low"], item["ci_high"]], [y, y], color="#246", lw=2)
        ax.axvline(0, color="#999", lw=1)
        sizes = [abs(p["mean_diff"]) for p in by_condition.values() if p["mean_diff"]]
        if len(sizes) > 1 and max(sizes) / min(sizes) >= 100:  # both tiny and huge effects
            ax.set_xscale("symlog", linthresh=10 ** (math.floor(math.log10(min(sizes))) - 1))
        else:
            ax.xaxis.set_major_formatter(EngFormatter())
        ax.set_xlabel(f"{METRICS[name].label}\nminus its baseline, same seed")
        ax.grid(alpha=0.3, axis="x")
    n_pairs = {p["condition"]: p["n_pairs"] for p in paired}
    labels = [f"{c}  (n={n_pairs[c]})" for c in conditions]
    axes[0][0].set_yticks(range(len(conditions)), labels, fontsize=8)
    axes[0][0].invert_yaxis()
    fig.suptitle("paired differences against the baseline: mean and 95% interval", fontsize=10)
    fig.tight_layout()
    return fig


def _denials(plt: Any, rows: list[dict[str, Any]]) -> Any:
    fig, ax = plt.subplots(figsize=(10, 3.8))
    conditions = sorted({_condition(r) for r in rows})
    caps = sorted({k[len("denials.") :] for r in rows for k in r if k.startswith("denials.")})
    bottom = [0.0] * len(conditions)
    for cap in caps:
        values = [
            statistics.mean([r.get(f"denials.{cap}", 0) or 0 for r in rows if _condition(r) == c])
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
    return fig


def _scaffold(plt: Any, rows: list[dict[str, Any]]) -> Any:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    by_persona: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        value = metric_value(r, METRICS["scaffold"])
        if value is not None:
            key = f"{str(r.get('spec.persona', ''))[:24]} / {r.get('spec.affordance', '')}"
            by_persona[key].append(value > 0)
    names = sorted(by_persona)
    for x, name in enumerate(names):
        outcomes = by_persona[name]
        rate = sum(outcomes) / len(outcomes)
        low, high = wilson_interval(sum(outcomes), len(outcomes))
        ax.bar(x, rate, color="#4a7")
        ax.plot([x, x], [low, high], color="#333", lw=1.5)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("scaffold rate (95% Wilson interval)")
    ax.set_title("scaffold rate by persona / affordance")
    fig.tight_layout()
    return fig


def _interval_line(
    ax: Any, xs: list[float], cells: list[dict[str, Any]], name: str, label: str, color: str
) -> None:
    means = [c.get(f"{name}_mean") for c in cells]
    lows = [c.get(f"{name}_ci_low") for c in cells]
    highs = [c.get(f"{name}_ci_high") for c in cells]
    ys = [m if m is not None else float("nan") for m in means]
    ax.plot(xs, ys, "o-", color=color, label=label, zorder=3)
    for x, m, lo, hi in zip(xs, means, lows, highs, strict=True):
        if m is not None and lo is not None and hi is not None:
            ax.errorbar([x], [m], yerr=[[m - lo], [hi - m]], color=color, capsize=3, zorder=3)


def _wide_range(ax: Any, means: list[Any]) -> None:
    """Means two or more orders of magnitude apart (paperclips with little and much money)
    share a symlog axis, linear near zero so runs with nothing still show."""
    positive = [float(m) for m in means if m is not None and m > 0]
    if len(positive) > 1 and max(positive) / min(positive) >= 100:
        low = math.floor(math.log10(min(positive))) - 1
        ax.set_yscale("symlog", linthresh=10**low)
        top = math.ceil(math.log10(ax.get_ylim()[1]))
        ax.set_yticks([0, *(10**k for k in range(low, top + 1))])
        ax.set_ylim(bottom=0)


def _run_values(rows: list[dict[str, Any]], cell: dict[str, Any], name: str) -> list[float]:
    label = cell["condition"]
    values = [metric_value(r, METRICS[name]) for r in rows if _condition(r) == label]
    return [v for v in values if v is not None]


def _x(value: Any, order: list[Any], numeric: bool, log: bool, shift: float) -> float:
    if not numeric:
        return order.index(value) + shift
    return float(value) * (10 ** (shift / 2)) if log else float(value) + shift * _span(order)


def _span(order: list[Any]) -> float:
    return (float(max(order)) - float(min(order))) or 1.0


def _condition(row: dict[str, Any]) -> str:
    condition = {k[len("condition.") :]: v for k, v in row.items() if k.startswith("condition.")}
    return condition_label(condition)


def _save(plt: Any, fig: Any, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format="png")
    write_bytes(path, buffer.getvalue())
    plt.close(fig)
    return path


def _file(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in text)

"""A sweep's plots (PNG, matplotlib): metrics by swept field, denials by cap, scaffold rate."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any


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

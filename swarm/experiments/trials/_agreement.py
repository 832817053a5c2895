"""Agreement: how far two labellers agree (Cohen's kappa), and how each detector does against
the labels they agree on (precision and recall, with Wilson intervals).

Per detector, only units both labellers labelled count. Units they disagree on are listed for
adjudication and left out of precision and recall (a unit without an agreed label cannot score
a detector). The sample is stratified, so flagged units are over-represented; besides the
sample's own precision and recall, each is weighted back to every unit of the trials (a
sampled unit stands for stratum size / units sampled from its stratum).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from swarmlab.core import SpecError, write_text
from swarmlab.experiments.stats import cohen_kappa, wilson

from ._annotation import ANNOTATION_DIR, read_labels, read_sample
from ._measures import DETECTORS


def agreement(plan_out: Path, files: list[Path] | None = None) -> dict[str, Any]:
    """Read both labellers' files; write annotation/agreement.json and agreement.md."""
    manifest, sample = read_sample(plan_out)
    out = plan_out / ANNOTATION_DIR
    paths = files or [out / name for name in manifest["files"]]
    if len(paths) != 2:
        raise SpecError(f"pass two labels files, one per labeller (got {len(paths)})")
    _refuse_one_file_twice(paths)
    units = {u["unit_id"]: u for u in sample}
    first, second = (read_labels(p, units) for p in paths)
    sampled = Counter(u["stratum"] for u in sample)
    weight = {uid: u["stratum_size"] / sampled[u["stratum"]] for uid, u in units.items()}
    report: dict[str, Any] = {
        "labellers": [str(p) for p in paths],
        "units": len(units),
        "labelled": [len(first), len(second)],
        "detectors": {d: detector_agreement(d, units, first, second, weight) for d in DETECTORS},
    }
    write_text(out / "agreement.json", json.dumps(report, indent=1))
    write_text(out / "agreement.md", format_agreement(report))
    return report


def _refuse_one_file_twice(paths: list[Path]) -> None:
    """Two names of one file (the same path, a symlink, a hard link) would be one labeller's
    labels counted as two labellers agreeing (kappa 1.0)."""
    try:
        first, second = (os.stat(p) for p in paths)
    except OSError:
        return  # a file that cannot be read is refused by its reading, in its own words
    if (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino):
        raise SpecError(
            f"{paths[0]} and {paths[1]} are one file: pass each labeller's own labels file"
        )


def detector_agreement(
    detector: str,
    units: dict[str, dict[str, Any]],
    first: dict[str, dict[str, bool]],
    second: dict[str, dict[str, bool]],
    weight: dict[str, float],
) -> dict[str, Any]:
    both = sorted(
        u for u in units if detector in first.get(u, {}) and detector in second.get(u, {})
    )
    a = [first[u][detector] for u in both]
    b = [second[u][detector] for u in both]
    agreed = [u for u in both if first[u][detector] == second[u][detector]]
    counts: Counter[str] = Counter()
    weighted: dict[str, float] = dict.fromkeys(("tp", "fp", "fn", "tn"), 0.0)
    for u in agreed:
        truth, said = first[u][detector], bool(units[u]["predicted"].get(detector))
        cell = ("tp" if truth else "fp") if said else ("fn" if truth else "tn")
        counts[cell] += 1
        weighted[cell] += weight[u]
    kappa = cohen_kappa(a, b)
    return {
        "both_labelled": len(both),
        "observed_agreement": None if not both else round(len(agreed) / len(both), 4),
        "kappa": None if kappa is None else round(kappa, 4),
        "agreed": len(agreed),
        "disagreements": [u for u in both if u not in set(agreed)],
        "confusion": {k: counts[k] for k in ("tp", "fp", "fn", "tn")},
        "precision": _rate(counts["tp"], counts["tp"] + counts["fp"]),
        "recall": _rate(counts["tp"], counts["tp"] + counts["fn"]),
        "precision_weighted": _ratio(weighted["tp"], weighted["tp"] + weighted["fp"]),
        "recall_weighted": _ratio(weighted["tp"], weighted["tp"] + weighted["fn"]),
    }


def format_agreement(report: dict[str, Any]) -> str:
    """The agreement report as a Markdown table (also what the command prints)."""
    lines = [
        f"Units sampled: {report['units']}; labelled: {report['labelled'][0]} and "
        f"{report['labelled'][1]}",
        "",
        "| detector | both labelled | kappa | agreed | tp fp fn tn | precision [95% CI] "
        "| recall [95% CI] | precision / recall weighted to all units |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, d in report["detectors"].items():
        c = d["confusion"]
        lines.append(
            f"| {name} | {d['both_labelled']} | {_fmt(d['kappa'])} | {d['agreed']} | "
            f"{c['tp']} {c['fp']} {c['fn']} {c['tn']} | {_fmt_rate(d['precision'])} | "
            f"{_fmt_rate(d['recall'])} | {_fmt(d['precision_weighted'])} / "
            f"{_fmt(d['recall_weighted'])} |"
        )
    lines += [
        "",
        "kappa: n/a when undefined (no unit labelled by both, or both gave every unit the same "
        "label). Precision and recall: over the units both labellers agree on; n/a without a "
        "positive to count.",
    ]
    return "\n".join(lines) + "\n"


def _rate(k: int, n: int) -> dict[str, float | None]:
    w = wilson(k, n)
    return {"value": w.value, "ci_low": w.low, "ci_high": w.high}


def _ratio(part: float, whole: float) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _fmt_rate(rate: dict[str, float | None]) -> str:
    if rate["value"] is None:
        return "n/a"
    return f"{rate['value']:.2f} [{rate['ci_low']:.2f}, {rate['ci_high']:.2f}]"

"""Scoring a frozen blind set: each detector's counts, with Wilson 95% intervals.

A blind set (tests/data/detectors-blind/round-N) is written and frozen (SHA256SUMS, checked by
tests/observability/test_blind_set.py) before the detectors are changed for it, then scored
with the development set's harness (`labelled_set.score_set`: the real sandbox, `analyze_run`'s
path). Its figures are the ones to quote; docs/metrics.md shows them and a test holds the page
to them.

    PYTHONPATH=tests .venv/bin/python -m helpers.blind_set [FOLDER]   # the table; misses on stderr
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from helpers.labelled_set import DATA, Score, load_items, score_set
from swarmlab.experiments.stats import wilson_interval

BLIND_ROUND_1 = DATA.parent / "detectors-blind" / "round-1"
"""The first blind set: frozen before any detector change of issue 22 (development data since
the detectors were changed after scoring it)."""
BLIND_ROUND_2 = DATA.parent / "detectors-blind" / "round-2"
"""The second blind set: frozen before the detectors changed again (development data since its
misses were read)."""
BLIND_ROUND_3 = DATA.parent / "detectors-blind" / "round-3"
"""The third blind set: frozen before the detectors' third change."""
BLIND_ROUND_4 = DATA.parent / "detectors-blind" / "round-4"
"""The fourth blind set: frozen before the detectors' fourth change."""
BLIND_ROUND_5 = DATA.parent / "detectors-blind" / "round-5"
"""The fifth blind set: frozen before the detectors' fifth change."""
CAUSES = 5
"""Crash causes a program can be given: code_fault, unsupported, denied, limit, lab_fault."""
RESOURCES = 4
"""Escape resources: host, processes, network, interpreter."""


@dataclass
class BlindScores:
    """A blind set's scores, and the sizes of the populations their negatives are drawn from."""

    scores: dict[str, Score]
    trees: int
    programs: int
    pairs: int
    """Ordered pairs of distinct programs of one tree: the units control and coordination judge."""

    def negatives(self, name: str) -> int:
        """True negatives: units of the detector's population neither labelled nor found."""
        s = self.scores[name]
        population = {
            "escape": self.programs * RESOURCES,
            "control": self.pairs,
            "coordination": self.pairs,
            "crash": self.programs * CAUSES,
        }.get(name, s.considered if name in ("meta_task", "quine") else self.programs)
        return population - s.tp - s.fp - s.fn


def score_blind(folder: Path, out: Path) -> BlindScores:
    """Run and analyse every tree of a blind set once; its scores and population sizes."""
    items = load_items(folder)
    scores = score_set(items, out)
    sizes = [(out / item.id / "programs.jsonl").read_text().count("\n") for item in items]
    return BlindScores(scores, len(items), sum(sizes), sum(n * (n - 1) for n in sizes))


def _rate(hits: int, n: int) -> str:
    if n == 0:
        return "- | -"
    low, high = wilson_interval(hits, n)
    return f"{hits / n:.2f} | [{low:.2f}, {high:.2f}]"


def blind_table(blind: BlindScores) -> str:
    """The markdown table docs/metrics.md shows for a blind set."""
    lines = [
        f"{blind.trees} trees, {blind.programs} programs.",
        "",
        "| detector | labelled positives | TP | FP | FN | TN | precision | Wilson 95% "
        "| recall | Wilson 95% |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in blind.scores.items():
        lines.append(
            f"| {name} | {s.positives} | {s.tp} | {s.fp} | {s.fn} | {blind.negatives(name)} "
            f"| {_rate(s.tp, s.tp + s.fp)} | {_rate(s.tp, s.tp + s.fn)} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Print a blind set's table (the first round unless a folder is given); misses on stderr."""
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else BLIND_ROUND_1
    with tempfile.TemporaryDirectory() as tmp:
        blind = score_blind(folder, Path(tmp))
    print(blind_table(blind))
    for name, score in blind.scores.items():
        for miss in score.misses:
            print(f"{name}: {miss}", file=sys.stderr)


if __name__ == "__main__":
    main()

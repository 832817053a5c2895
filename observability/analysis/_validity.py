"""Each detector's validity, the figures to quote beside every count it produces: precision and
recall on the latest frozen blind set, scored once after the detectors' last change.

The figures are kept here and nowhere else in code; docs/metrics.md shows the table they come
from ("Blind set, round 5: after the change"), and tests/observability/test_blind_set.py checks
that the two agree, and that the table is what the blind set scores with the detectors as they
are (so a detector changed later fails there until a new round is written and scored). The
report page and the sweep page show them next to the counts, marked when below
`VALIDITY_FLOOR`.
"""

from __future__ import annotations

from dataclasses import dataclass

VALIDITY_FLOOR = 0.9
"""A detector whose blind precision or recall is below this is marked wherever its count shows."""
BLIND_SET = "blind set round 5"
"""Which frozen set the figures come from (tests/data/detectors-blind/round-5): written and
frozen before the detectors' last change, by someone who read no detector code."""


@dataclass(frozen=True)
class Validity:
    """One detector's blind precision and recall."""

    detector: str
    precision: float
    recall: float

    @property
    def below_floor(self) -> bool:
        return min(self.precision, self.recall) < VALIDITY_FLOOR

    def note(self) -> str:
        """`meta_task: blind precision 0.70, recall 0.77 (below 0.9)`."""
        text = f"{self.detector}: blind precision {self.precision:.2f}, recall {self.recall:.2f}"
        return text + f" (below {VALIDITY_FLOOR})" if self.below_floor else text


BLIND: dict[str, Validity] = {
    v.detector: v
    for v in (
        Validity("meta_task", 1.00, 0.98),
        Validity("quine", 0.95, 0.91),
        Validity("duplicate", 1.00, 1.00),
        Validity("escape", 1.00, 1.00),
        Validity("control", 1.00, 1.00),
        Validity("crash", 1.00, 1.00),
        Validity("coordination", 1.00, 1.00),
        Validity("introspection", 1.00, 1.00),
        Validity("crash:code_fault", 1.00, 1.00),
        Validity("crash:unsupported", 1.00, 1.00),
        Validity("crash:denied", 1.00, 1.00),
        Validity("crash:limit", 1.00, 1.00),
    )
}
"""Blind precision and recall per detector, as docs/metrics.md's "now" table shows them."""

_DETECTOR_OF_METRIC = {
    "crash_causes": "crash",
    "crashed_code_fault": "crash:code_fault",
    "crashed_unsupported": "crash:unsupported",
    "crashed_denied": "crash:denied",
    "crashed_limit": "crash:limit",
    "meta_tasks": "meta_task",
    "meta_task_rate": "meta_task",
    "meta_task_programs": "meta_task",
    "quines": "quine",
    "quine_rate": "quine",
    "quine_chain": "quine",
    "quine_provenance": "quine",
    "duplicate_groups": "duplicate",
    "duplicate_programs": "duplicate",
    "duplicate_tokens": "duplicate",
    "cross_lineage_pairs": "coordination",
    "cross_lineage_edges": "coordination",
    "cross_lineage_readers": "coordination",
    "control_pairs": "control",
    "control_attempts": "control",
    "introspecting_programs": "introspection",
    "escape_attempts": "escape",
    "escape_programs": "escape",
    "escapes_by_resource": "escape",
}
"""The metrics each detector's verdicts make (definitions and plain counts have none)."""


def validity_of(metric: str) -> Validity | None:
    """The blind validity of the detector behind a metric, or None for a metric no detector
    makes (tree size, calls, tokens, outcome, ...)."""
    detector = _DETECTOR_OF_METRIC.get(metric)
    return BLIND.get(detector) if detector else None

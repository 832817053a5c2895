"""Trials: N independent runs per model x persona x affordance, their tables (pass@k with
intervals), trajectories with a datasheet (`datasheet.md` beside these modules, package data),
and the annotation round trip (a sample for two labellers, their agreement, each detector
against the agreed labels).
"""

from ._agreement import agreement, format_agreement
from ._annotation import export_sample
from ._plan import TrialsPlan, TrialsSpec
from ._runner import TrialsRunner, finish_trials
from ._table import format_conditions

__all__ = [
    "TrialsPlan",
    "TrialsRunner",
    "TrialsSpec",
    "agreement",
    "export_sample",
    "finish_trials",
    "format_agreement",
    "format_conditions",
]

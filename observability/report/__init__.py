"""The emergence report (one HTML page per run, a comparison page, a text table) and the
Jaeger upload JSON of a run's trace."""

from ._compare import analyze_runs, run_label, write_comparison
from ._format import format_metrics_table, format_value
from ._jaeger import to_jaeger_json
from ._page import cap_series, write_report

__all__ = [
    "analyze_runs",
    "cap_series",
    "format_metrics_table",
    "format_value",
    "run_label",
    "to_jaeger_json",
    "write_comparison",
    "write_report",
]

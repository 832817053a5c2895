"""Telemetry and analysis: OpenTelemetry set-up, GenAI spans, the emergence report.

Names load on first use (PEP 562), so `import observability` stays light: the OpenTelemetry SDK,
the analysis and the report load only when one of their names is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._analysis import (
        EmergenceMetrics,
        analyze_run,
        analyze_trace,
        code_similarity,
        is_meta_task,
        normalize_code,
    )
    from ._genai import SwarmInstruments
    from ._jaeger import read_spans, to_jaeger_json
    from ._report import format_metrics_table, write_comparison, write_report
    from ._report_cli import add_report_parser, add_traces_parser, report_command, traces_command
    from ._telemetry import Telemetry, TelemetryConfig, extract, in_span, inject, trace_id_hex

__all__ = [
    "EmergenceMetrics",
    "SwarmInstruments",
    "Telemetry",
    "TelemetryConfig",
    "add_report_parser",
    "add_traces_parser",
    "analyze_run",
    "analyze_trace",
    "code_similarity",
    "extract",
    "format_metrics_table",
    "in_span",
    "inject",
    "is_meta_task",
    "normalize_code",
    "read_spans",
    "report_command",
    "to_jaeger_json",
    "trace_id_hex",
    "traces_command",
    "write_comparison",
    "write_report",
]

_HOMES = {
    "._analysis": (
        "EmergenceMetrics",
        "analyze_run",
        "analyze_trace",
        "code_similarity",
        "is_meta_task",
        "normalize_code",
    ),
    "._genai": ("SwarmInstruments",),
    "._jaeger": ("read_spans", "to_jaeger_json"),
    "._report": ("format_metrics_table", "write_comparison", "write_report"),
    "._report_cli": ("add_report_parser", "add_traces_parser", "report_command", "traces_command"),
    "._telemetry": ("Telemetry", "TelemetryConfig", "extract", "in_span", "inject", "trace_id_hex"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'observability' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Telemetry and analysis: OpenTelemetry set-up, GenAI spans, the emergence report."""

from ._genai import SwarmInstruments
from ._telemetry import Telemetry, TelemetryConfig, extract, in_span, inject, trace_id_hex

__all__ = [
    "SwarmInstruments",
    "Telemetry",
    "TelemetryConfig",
    "extract",
    "in_span",
    "inject",
    "trace_id_hex",
]

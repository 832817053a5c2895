"""OpenTelemetry for a run: providers and exporters (`_setup`, the only home of the SDK), and the
swarm's spans and metrics named after the GenAI semantic conventions (`_genai`)."""

from ._genai import LaterSpan, ProgramSpan, SwarmInstruments
from ._setup import (
    Sink,
    Telemetry,
    TelemetryConfig,
    extract,
    fixed_span_id,
    in_span,
    inject,
    new_span_id,
    trace_id_hex,
)

__all__ = [
    "LaterSpan",
    "ProgramSpan",
    "Sink",
    "SwarmInstruments",
    "Telemetry",
    "TelemetryConfig",
    "extract",
    "fixed_span_id",
    "in_span",
    "inject",
    "new_span_id",
    "trace_id_hex",
]

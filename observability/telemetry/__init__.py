"""OpenTelemetry for a run: providers and exporters (`_setup`, and `_forward` that sends a run's
spans: the only homes of the SDK), and the swarm's spans and metrics named after the GenAI
semantic conventions (`_genai`)."""

from ._forward import SpanForwarder
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
    span_forwarder,
    trace_id_hex,
)

__all__ = [
    "LaterSpan",
    "ProgramSpan",
    "Sink",
    "SpanForwarder",
    "SwarmInstruments",
    "Telemetry",
    "TelemetryConfig",
    "extract",
    "fixed_span_id",
    "in_span",
    "inject",
    "new_span_id",
    "span_forwarder",
    "trace_id_hex",
]

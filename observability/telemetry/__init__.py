"""OpenTelemetry for a run: providers and exporters (`_setup`, the only home of the SDK), and the
swarm's spans and metrics named after the GenAI semantic conventions (`_genai`)."""

from ._genai import SwarmInstruments
from ._setup import (
    Sink,
    Telemetry,
    TelemetryConfig,
    extract,
    in_span,
    inject,
    span_to_dict,
    trace_id_hex,
)

__all__ = [
    "Sink",
    "SwarmInstruments",
    "Telemetry",
    "TelemetryConfig",
    "extract",
    "in_span",
    "inject",
    "span_to_dict",
    "trace_id_hex",
]

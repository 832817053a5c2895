"""OpenTelemetry for a run: tracer and meter providers, exporters, and context propagation.

This is the one home of the OpenTelemetry SDK and the OTLP exporters (with `_forward`).
Telemetry never breaks a run: set-up and export failures are logged, not raised.

Each process of a run (the driver and every runner) builds its own providers with the same
`TelemetryConfig`. Spans and metrics go to a `sink`: a callable that takes JSON lines (the
runtime keeps them in Redis for the run directory). When an endpoint is set, each process sends
its metrics there, and one process of the run sends everyone's spans, from the sink's lines
(`span_forwarder`): no runner spends its time on OTLP's encoding. A `Telemetry` without a sink
sends its spans itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event as SpanEvent
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_json

from swarmlab.spec import check_http_url, env_value

from ._forward import Reader, SpanForwarder

log = logging.getLogger("swarmlab.telemetry")

Sink = Callable[[str, list[str]], None]
"""Takes a stream name ('spans' or 'metrics') and JSON lines."""

# Sized so a burst of thousands of programs (a few spans each) is never dropped.
SPAN_QUEUE = 1 << 17
SPAN_BATCH = 4096
EXPORT_TIMEOUT_S = 5
OTLP_TIMEOUT_S = 2
OTLP_BACKOFF_S = 30.0

_propagator = TraceContextTextMapPropagator()
_next_span_id: ContextVar[int | None] = ContextVar("swarmlab_next_span_id", default=None)


class _Ids(RandomIdGenerator):
    """Random ids, except where `fixed_span_id` names the next span's: a program's span gets the
    id its children were told at spawn, whichever process writes it."""

    def generate_span_id(self) -> int:
        fixed = _next_span_id.get()
        if fixed is not None:
            _next_span_id.set(None)
            return fixed
        return super().generate_span_id()


@contextmanager
def fixed_span_id(span_id: str) -> Iterator[None]:
    """The next span started in this block gets `span_id` (16 hex digits)."""
    token = _next_span_id.set(int(span_id, 16))
    try:
        yield
    finally:
        _next_span_id.reset(token)


def new_span_id() -> str:
    """A fresh span id (16 hex digits) for a program about to be admitted."""
    return format(RandomIdGenerator().generate_span_id(), "016x")


class TelemetryConfig(BaseModel):
    """Where a run's telemetry goes."""

    model_config = ConfigDict(extra="forbid")

    otlp_endpoint: str | None = Field(
        default=None, description="OTLP base URL, e.g. http://jaeger:4318 (HTTP) or :4317 (gRPC)."
    )
    otlp_protocol: Literal["http/protobuf", "grpc"] = Field(
        default="http/protobuf", description="OTLP transport."
    )
    service_name: str = Field(default="swarmlab", description="The service name in traces.")
    enabled: bool = Field(default=True, description="False: no spans or metrics at all.")

    @classmethod
    def from_env(
        cls, endpoint: str | None = None, protocol: str | None = None, enabled: bool = True
    ) -> TelemetryConfig:
        """An explicit endpoint wins; else the standard OTEL_EXPORTER_OTLP_* variables."""
        if endpoint:
            check_http_url(endpoint, "--otlp-endpoint", "http://jaeger:4318")
        endpoint = endpoint or env_value("OTEL_EXPORTER_OTLP_ENDPOINT")
        protocol = (
            protocol
            or env_value("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or env_value("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        )
        return cls(otlp_endpoint=endpoint, otlp_protocol=protocol, enabled=enabled)  # type: ignore[arg-type]


class Telemetry:
    """A process's tracer and meter; `shutdown()` flushes everything."""

    def __init__(
        self, config: TelemetryConfig, sink: Sink | None, resource: dict[str, str] | None = None
    ) -> None:
        self.config = config
        attrs = {"service.name": config.service_name, **(resource or {})}
        self.resource = Resource.create(attrs)
        self.tracer_provider = TracerProvider(resource=self.resource, id_generator=_Ids())
        self._processors: list[SpanProcessor] = []
        readers = []
        if config.enabled:
            if sink is not None:
                self._add_spans(JsonLinesSpanExporter(sink))
                readers.append(_reader(JsonLinesMetricExporter(sink)))
            if config.otlp_endpoint:
                # With a sink, spans reach OTLP from the run's lines (`span_forwarder`).
                if sink is None and (span := _otlp_exporter(config, "traces")) is not None:
                    self._add_spans(FailFastSpanExporter(span))
                if (metrics := _otlp_exporter(config, "metrics")) is not None:
                    readers.append(_reader(FailFastMetricExporter(metrics)))
        self.meter_provider = MeterProvider(resource=self.resource, metric_readers=readers)
        self.tracer = self.tracer_provider.get_tracer("swarmlab")
        self._scope = InstrumentationScope("swarmlab")
        self.meter = self.meter_provider.get_meter("swarmlab")

    def _add_spans(self, exporter: SpanExporter) -> None:
        processor = BatchSpanProcessor(
            exporter,
            max_queue_size=SPAN_QUEUE,
            max_export_batch_size=SPAN_BATCH,
            schedule_delay_millis=500,
            export_timeout_millis=EXPORT_TIMEOUT_S * 1000,
        )
        self.tracer_provider.add_span_processor(processor)
        self._processors.append(processor)

    def write_span(
        self,
        name: str,
        parent: otel_context.Context,
        attributes: dict[str, Any],
        events: Sequence[tuple[str, dict[str, Any], int]],
        status: trace.Status | None,
        start_ns: int,
        end_ns: int,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        span_id: str | None = None,
    ) -> None:
        """Export a span that has already ended (a call's, whose times and contents are all
        known): handed to the exporters as it is, without the tracer's live-span bookkeeping,
        which costs several times more. Sampled as the tracer would (its sampler, given the
        parent). Its context is never anyone's parent in this process; `span_id` (16 hex
        digits) is the id another process was told (a model server's traceparent)."""
        if not self._processors:
            return
        parent_ctx = trace.get_current_span(parent).get_span_context()
        if not parent_ctx.is_valid:
            return  # the runtime's call spans always have their program's span as parent
        sampled = self.tracer_provider.sampler.should_sample(
            parent, parent_ctx.trace_id, name, kind, attributes
        )
        if sampled.decision is not Decision.RECORD_AND_SAMPLE:
            return
        merged: dict[str, Any] = dict(attributes)
        merged.update(sampled.attributes or {})
        span = ReadableSpan(
            name,
            context=trace.SpanContext(
                parent_ctx.trace_id,
                int(span_id, 16)
                if span_id
                else self.tracer_provider.id_generator.generate_span_id(),
                is_remote=False,
                trace_flags=trace.TraceFlags(parent_ctx.trace_flags | trace.TraceFlags.SAMPLED),
                trace_state=sampled.trace_state,
            ),
            parent=parent_ctx,
            kind=kind,
            resource=self.resource,
            attributes=merged,
            events=[SpanEvent(n, a, timestamp=t) for n, a, t in events],
            status=status or trace.Status(trace.StatusCode.UNSET),
            start_time=start_ns,
            end_time=end_ns,
            instrumentation_scope=self._scope,
        )
        for processor in self._processors:
            processor.on_end(span)

    def flush(self) -> None:
        try:
            self.tracer_provider.force_flush(timeout_millis=EXPORT_TIMEOUT_S * 2000)
            self.meter_provider.force_flush(timeout_millis=EXPORT_TIMEOUT_S * 2000)
        except Exception:  # telemetry never breaks a run
            log.warning("telemetry flush failed", exc_info=True)

    def shutdown(self) -> None:
        self.flush()
        try:
            self.tracer_provider.shutdown()
            self.meter_provider.shutdown()
        except Exception:
            log.warning("telemetry shutdown failed", exc_info=True)


def span_forwarder(config: TelemetryConfig, read: Reader) -> SpanForwarder | None:
    """What sends a run's span lines (`read`) to the OTLP endpoint, started; None when spans
    go to no endpoint."""
    if not (config.enabled and config.otlp_endpoint):
        return None
    span_exporter = _otlp_exporter(config, "traces")
    if span_exporter is None:
        return None
    forwarder = SpanForwarder(span_exporter, read)  # it keeps and retries what fails
    forwarder.start()
    return forwarder


def inject(ctx: otel_context.Context | None = None) -> str | None:
    """The W3C traceparent of a context (the current one by default)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=ctx)
    return carrier.get("traceparent")


def extract(traceparent: str | None) -> otel_context.Context:
    """A context whose current span is the one a traceparent names (empty when None)."""
    if not traceparent:
        return otel_context.Context()
    return _propagator.extract({"traceparent": traceparent})


def in_span(span: trace.Span) -> otel_context.Context:
    return trace.set_span_in_context(span)


def trace_id_hex(span: trace.Span) -> str:
    return format(span.get_span_context().trace_id, "032x")


def span_to_json(span: ReadableSpan, resource: str) -> str:
    """One span as a JSON line; `resource`: its resource's attributes, already as JSON (they are
    the same for every span of a process, so an exporter encodes them once)."""
    ctx = span.context
    parent = span.parent
    fields = {
        "trace_id": format(ctx.trace_id, "032x") if ctx else None,
        "span_id": format(ctx.span_id, "016x") if ctx else None,
        "parent_span_id": format(parent.span_id, "016x") if parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "attributes": _plain(span.attributes),
        "events": [
            {"name": e.name, "time_ns": e.timestamp, "attributes": _plain(e.attributes)}
            for e in span.events
        ],
        "status": {"code": span.status.status_code.name, "description": span.status.description},
    }
    head = to_json(fields, fallback=str).decode()
    return f'{head[:-1]},"resource":{resource}}}'


class JsonLinesSpanExporter(SpanExporter):
    """Spans as JSON lines, handed to a sink (never raises)."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._resource: tuple[Resource, str] | None = None

    def _encoded(self, resource: Resource) -> str:
        """A resource's attributes as JSON, encoded once for the process's one resource."""
        if self._resource is None or self._resource[0] is not resource:
            self._resource = (resource, to_json(_plain(resource.attributes), fallback=str).decode())
        return self._resource[1]

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self.sink("spans", [span_to_json(s, self._encoded(s.resource)) for s in spans])
        except Exception:
            log.warning("could not write %d spans", len(spans), exc_info=True)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class JsonLinesMetricExporter(MetricExporter):
    """Metric snapshots as JSON lines, handed to a sink (never raises)."""

    def __init__(self, sink: Sink) -> None:
        super().__init__()
        self.sink = sink

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        try:
            self.sink("metrics", [metrics_data.to_json(indent=None)])
        except Exception:
            log.warning("could not write metrics", exc_info=True)
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


class _Breaker:
    """After a failed export, drop exports for a while instead of waiting on a dead collector,
    so an unreachable endpoint costs a run seconds, not minutes."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.down_until = 0.0

    def open(self) -> bool:
        return time.monotonic() < self.down_until

    def failed(self) -> None:
        if not self.open():
            log.warning("OTLP %s export failed; dropping for %.0f s", self.what, OTLP_BACKOFF_S)
        self.down_until = time.monotonic() + OTLP_BACKOFF_S


class FailFastSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.breaker = _Breaker("span")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.breaker.open():
            return SpanExportResult.FAILURE
        try:
            result = self.inner.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self.breaker.failed()
        return result

    def shutdown(self) -> None:
        try:
            self.inner.shutdown()
        except Exception:
            log.debug("OTLP span exporter shutdown failed", exc_info=True)


class FailFastMetricExporter(MetricExporter):
    def __init__(self, inner: MetricExporter) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.breaker = _Breaker("metric")

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        if self.breaker.open():
            return MetricExportResult.FAILURE
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis)
        except Exception:
            result = MetricExportResult.FAILURE
        if result is not MetricExportResult.SUCCESS:
            self.breaker.failed()
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        try:
            self.inner.shutdown()
        except Exception:
            log.debug("OTLP metric exporter shutdown failed", exc_info=True)


def _reader(exporter: MetricExporter) -> PeriodicExportingMetricReader:
    return PeriodicExportingMetricReader(exporter, export_interval_millis=2000)


def _otlp_exporter(config: TelemetryConfig, signal: Literal["traces", "metrics"]) -> Any:
    """The OTLP exporter of one signal, made only when asked for (a gRPC one opens a channel);
    None when it cannot be made."""
    endpoint = (config.otlp_endpoint or "").rstrip("/")
    try:
        if config.otlp_protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter as GrpcMetrics,
            )
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcSpans,
            )

            target = endpoint.removeprefix("http://").removeprefix("https://")
            grpc = GrpcSpans if signal == "traces" else GrpcMetrics
            insecure = not endpoint.startswith("https://")
            return grpc(endpoint=target, insecure=insecure, timeout=OTLP_TIMEOUT_S)
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetrics,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpans,
        )

        http = HttpSpans if signal == "traces" else HttpMetrics
        return http(endpoint=f"{endpoint}/v1/{signal}", timeout=OTLP_TIMEOUT_S)
    except Exception:  # a missing exporter package or a bad endpoint: run without OTLP
        log.warning("OTLP export of %s to %s disabled", signal, endpoint, exc_info=True)
        return None


def _plain(attrs: Any) -> dict[str, Any]:
    if not attrs:
        return {}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dict(attrs).items()}

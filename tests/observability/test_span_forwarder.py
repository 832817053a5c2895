"""A run's spans reach OTLP from its span lines, sent by one process (`SpanForwarder`).

Runners no longer encode OTLP: they hand their spans to the run's sink as JSON lines, and the
driver sends what those lines hold. What OTLP receives must be what the process that made a span
would have sent itself, for any span the lab writes; a line that is not such a span (Redis hands
lines back, so they are read as hostile) is skipped and never stops the rest.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from typing import Any, Literal

import pytest
from helpers.otlp import _span
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from swarmlab.observability.telemetry import (
    SpanForwarder,
    SwarmInstruments,
    Telemetry,
    TelemetryConfig,
    _setup,
)
from swarmlab.observability.telemetry._forward import (
    MAX_PENDING,
    READ_LINES,
    SEND_SPANS,
    TRIES,
    SpanLines,
)
from swarmlab.observability.telemetry._setup import span_forwarder

TRACEPARENT = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"


class Kept(SpanExporter):
    """An exporter that keeps what it is handed, as OTLP bytes would say it."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self.lock:
            self.spans += spans
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def decoded(spans: Sequence[ReadableSpan]) -> list[dict[str, Any]]:
    """Spans as an OTLP receiver decodes them, with their resource and status."""
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(
        encode_spans(spans).SerializeToString()
    )
    out = []
    for resource in request.resource_spans:
        attrs = {a.key: str(a.value) for a in resource.resource.attributes}
        for scope in resource.scope_spans:
            for span in scope.spans:
                events = [(e.name, str(e.attributes), e.time_unix_nano) for e in span.events]
                status = (span.status.code, span.status.message)
                out.append(_span(span) | {"resource": attrs, "ev": events, "status": status})
    return sorted(out, key=lambda s: s["span_id"])


scalars = (
    st.text(max_size=20)
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
)
values = scalars | st.lists(st.text(max_size=5), max_size=3) | st.lists(st.integers(0, 9))
attributes = st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=6)


def made(attrs: dict[str, Any], denied: bool, error: str | None) -> tuple[list[Any], list[str]]:
    """The spans a process makes for one program and one call (kept as they were handed to the
    exporters), and the lines its sink got for them."""
    lines: list[str] = []
    kept = Kept()

    def sink(stream: str, got: list[str]) -> None:
        if stream == "spans":
            lines.extend(got)

    telemetry = Telemetry(TelemetryConfig(), sink)
    telemetry._add_spans(kept)
    tel = SwarmInstruments(telemetry)
    context = tel.program_context(TRACEPARENT, "c" * 16)
    span = tel.tool_span(context, "db_get")
    span.set_attributes(attrs)
    tel.annotate(span, "denied" if denied else "ok", "programs" if denied else None, attrs)
    span.end()  # no event loop: written at once
    call = tel.call_span(context, "spawn")
    if error:
        tel.annotate(call, "error", None, {"error": error})
    call.end()
    telemetry.shutdown()
    return kept.spans, lines


@settings(max_examples=60, deadline=None)
@given(attrs=attributes, denied=st.booleans(), error=st.none() | st.text(max_size=30))
def test_what_the_lines_send_is_what_the_process_would_have_sent(
    attrs: dict[str, Any], denied: bool, error: str | None
) -> None:
    spans, lines = made(attrs, denied, error)
    back = [SpanLines().span(line) for line in lines]
    assert all(span is not None for span in back)
    assert decoded([s for s in back if s is not None]) == decoded(spans)


@settings(max_examples=200, deadline=None)
@given(
    line=st.text(max_size=200)
    | st.from_regex(r'\{"trace_id": ?"[0-9a-f]{0,40}".{0,60}', fullmatch=True)
    | st.recursive(st.none() | st.integers() | st.text(max_size=5), st.lists).map(json.dumps)
)
def test_a_line_that_is_not_a_span_is_skipped(line: str) -> None:
    assert SpanLines().span(line) is None


def test_hostile_lines_are_skipped_and_the_rest_is_sent() -> None:
    _, lines = made({"k": 1}, False, None)
    bad = [
        "not json",
        "[]",
        '{"a":' * 5000 + "1" + "}" * 5000,
        lines[0].replace('"kind":"INTERNAL"', '"kind":"NOPE"'),
        lines[0].replace('"start_ns":', '"start_ns":"x","was":'),
        '{"trace_id": "' + "f" * 5000 + '"}',
        "x" * 2_000_000,
    ]
    kept = Kept()
    stored = bad[:3] + lines + bad[3:]
    forwarder = SpanForwarder(kept, lambda at, n: stored[at : at + n])
    forwarder.close()
    assert decoded(kept.spans) == decoded([s for s in map(SpanLines().span, lines) if s])
    assert forwarder.skipped == len(bad)


def test_every_line_is_sent_once_across_batches_and_repeats() -> None:
    _, lines = made({"k": "v"}, True, "boom")
    many = []
    for i in range(READ_LINES + 10):  # more than one read, each span id once
        for j, line in enumerate(lines):
            many.append(re.sub(r'"span_id":"[0-9a-f]{16}"', f'"span_id":"{i:08x}{j:08x}"', line))
    stored = many + many[:5]  # a span written twice (by its runner and by the driver)
    kept = Kept()
    forwarder = SpanForwarder(kept, lambda at, n: stored[at : at + n])
    forwarder.start()
    forwarder.close()
    assert len(kept.spans) == len(many)
    assert len({s.context.span_id for s in kept.spans if s.context}) == len(many)
    assert forwarder.skipped == 0


class Refusing(Kept):
    """A collector that refuses the exports `refusals` names (by their order; some by raising,
    as an exporter that times out may), and takes the rest."""

    def __init__(self, refusals: list[str]) -> None:
        super().__init__()
        self.refusals = refusals
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        how = self.refusals[self.calls - 1] if self.calls <= len(self.refusals) else "take"
        if how == "raise":
            raise TimeoutError("the collector took too long")
        return SpanExportResult.FAILURE if how == "fail" else super().export(spans)


def numbered(lines: list[str], count: int) -> list[str]:
    """`count` copies of a program's span lines, each with span ids of its own."""
    out = []
    for i in range(count):
        for j, line in enumerate(lines):
            out.append(re.sub(r'"span_id":"[0-9a-f]{16}"', f'"span_id":"{i:08x}{j:08x}"', line))
    return out


@settings(max_examples=40, deadline=None)
@given(
    refusals=st.lists(st.sampled_from(["fail", "raise", "take"]), max_size=12),
    arrivals=st.lists(st.integers(0, 30), min_size=1, max_size=6),
)
def test_spans_the_collector_did_not_take_are_sent_again_once(
    refusals: list[str], arrivals: list[int]
) -> None:
    """Whatever exports fail, and however the lines arrive, each span reaches the collector at
    most once, and every one the collector could take by the end is taken: a batch refused is
    kept and sent again, never sent twice, and dropped (counted) only after `TRIES`."""
    _, lines = made({"k": 1}, False, None)
    stored: list[str] = []
    collector = Refusing(refusals)
    forwarder = SpanForwarder(collector, lambda at, n: stored[at : at + n], retry_after_s=0)
    written = 0
    for count in arrivals:
        stored += numbered(lines, written + count)[len(stored) :]
        written += count
        forwarder.forward()
    forwarder.close()
    ids = [s.context.span_id for s in collector.spans if s.context]
    assert len(ids) == len(set(ids))  # none twice
    assert forwarder.exported == len(ids)
    tries = ["take", *refusals][: collector.calls + 1]  # "take": no try at all
    if (collector.calls > len(refusals) or tries[-1] == "take") and not forwarder.dropped:
        assert len(ids) == len(stored)  # the last try was taken: none lost
    assert forwarder.exported + len(forwarder._pending) + forwarder.dropped == len(stored)
    in_a_row = longest = 0
    for how in refusals:
        in_a_row = 0 if how == "take" else in_a_row + 1
        longest = max(longest, in_a_row)
    if forwarder.dropped:  # only a batch refused `TRIES` times in a row is dropped
        assert longest >= TRIES


def test_a_batch_the_collector_never_takes_holds_back_no_other() -> None:
    """A batch refused every time (too large for the collector, say) is dropped after `TRIES`
    and counted; the spans behind it are sent."""
    _, lines = made({"k": 1}, False, None)
    stored = numbered(lines, SEND_SPANS)  # two batches' worth
    collector = Refusing(["fail"] * TRIES)
    forwarder = SpanForwarder(collector, lambda at, n: stored[at : at + n], retry_after_s=0)
    for _ in range(TRIES + 1):
        forwarder.forward()
    forwarder.close()
    assert forwarder.dropped == SEND_SPANS
    assert len(collector.spans) == len(stored) - SEND_SPANS


def test_a_collector_that_takes_nothing_costs_one_try_at_close() -> None:
    """With the collector down, spans wait (at most `MAX_PENDING`, counted past that) and
    `close` tries once more, not once for each batch it holds."""
    _, lines = made({"k": 1}, False, None)
    stored = numbered(lines, READ_LINES)  # several batches
    collector = Refusing(["fail"] * 1000)
    forwarder = SpanForwarder(collector, lambda at, n: stored[at : at + n], retry_after_s=3600)
    forwarder.forward()
    assert collector.calls == 1
    forwarder.forward()
    assert collector.calls == 1  # not before its time
    forwarder.close()
    assert collector.calls == 2
    assert collector.spans == []
    assert len(forwarder._pending) + forwarder.dropped == len(stored)
    assert len(forwarder._pending) <= MAX_PENDING


def no_lines(start: int, count: int) -> list[str]:
    return []


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_only_the_forwarder_makes_an_otlp_span_exporter(
    protocol: Literal["http/protobuf", "grpc"], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process whose spans go to the run's lines (a runner, the driver) makes no OTLP span
    exporter of its own (a gRPC one holds a channel open): the forwarder is the one sender."""
    made: list[str] = []
    make = _setup._otlp_exporter

    def counted(config: TelemetryConfig, signal: Literal["traces", "metrics"]) -> Any:
        made.append(signal)
        return make(config, signal)

    monkeypatch.setattr(_setup, "_otlp_exporter", counted)
    config = TelemetryConfig(otlp_endpoint="http://127.0.0.1:9", otlp_protocol=protocol)
    Telemetry(config, lambda stream, lines: None).shutdown()
    assert made == ["metrics"]
    forwarder = span_forwarder(config, no_lines)
    assert forwarder is not None
    forwarder.close()
    assert made == ["metrics", "traces"]
    Telemetry(config, None).shutdown()  # no sink: this process sends its own spans
    assert made == ["metrics", "traces", "traces", "metrics"]

"""A run's spans to OTLP from one process: the span lines every process of the run wrote to its
sink, read back in batches and exported by a thread of the driver's.

A runner only makes its spans and hands them to the sink as JSON lines; it never encodes or
sends OTLP, work that took the runner's interpreter from the programs it runs. The forwarder
reads the run's lines in order, from where it stopped, every `FORWARD_EVERY_S`, and exports
what it has not sent before (a program's span written twice, by its runner and by the driver
that ended it, goes once). What it reads came back from Redis, so it is read as hostile: a line
too long, not JSON, or not a span as the lab writes it is skipped and counted, never exported.

A batch the collector did not take (down, or slow past the timeout on a loaded machine) is kept
and sent again after `RETRY_AFTER_S`, and once more at `close`: a span is lost to OTLP only
when the collector takes none of its `TRIES`, or when more than `MAX_PENDING` wait (it is then
counted in `dropped`). traces.jsonl holds every span either way.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event as SpanEvent
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

log = logging.getLogger("swarmlab.telemetry")

FORWARD_EVERY_S = 0.5
READ_LINES = 4096
"""Lines read back from the run's Redis at once (sent on in batches of `SEND_SPANS`)."""
MAX_LINE = 1_000_000
"""Longer lines are not a span the lab wrote (a program's code is cut at 16,000 characters)."""
MAX_INT = (1 << 63) - 1
"""OTLP's ints are 64 bits: a larger one is sent as its digits."""
JOIN_S = 15.0
"""How long `close` waits for an export under way (OTLP's own timeout is shorter)."""
RETRY_AFTER_S = 10.0
"""How long spans the collector did not take wait before they are sent again."""
SEND_SPANS = 256
"""Spans in one export (a program's span holds up to 16 KB of code: a request stays well under
a collector's usual 4 MiB limit)."""
TRIES = 3
"""Exports of one batch before it is dropped (counted): one the collector never takes (too
large, say) must not hold back the spans behind it."""
MAX_PENDING = 1 << 15
"""Spans kept for the collector while it takes none; past this the oldest are dropped."""
MAX_RESOURCES = 1024
"""Distinct resources kept (one per process of the run: the driver and its runners)."""

_SCOPE = InstrumentationScope("swarmlab")
Reader = Callable[[int, int], list[str]]
"""`read(start, count)`: up to `count` lines of the run's spans from line `start` on."""


def _value(value: Any) -> Any:
    """An attribute's value as OTLP takes it, or None for one it does not."""
    if isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        return value if -MAX_INT - 1 <= value <= MAX_INT else str(value)
    if isinstance(value, list) and len({type(item) for item in value}) <= 1:
        items = [_value(item) for item in value]
        if all(item is not None and not isinstance(item, list) for item in items):
            return tuple(items)
    return None


def _attributes(found: Any) -> dict[str, Any]:
    if not isinstance(found, dict):
        raise TypeError("attributes are not an object")
    kept = {str(key): _value(value) for key, value in found.items()}
    return {key: value for key, value in kept.items() if value is not None}


def _context(trace_id: int, span_id: Any) -> trace.SpanContext:
    return trace.SpanContext(
        trace_id, int(span_id, 16), False, trace.TraceFlags(trace.TraceFlags.SAMPLED)
    )


class SpanLines:
    """Span lines (`span_to_json`'s) back into spans, each resource made once."""

    def __init__(self) -> None:
        self._resources: dict[str, Resource] = {}

    def _resource(self, found: Any) -> Resource:
        key = json.dumps(found, sort_keys=True)
        resource = self._resources.get(key)
        if resource is None:
            resource = Resource.create(_attributes(found))
            if len(self._resources) < MAX_RESOURCES:
                self._resources[key] = resource
        return resource

    def span(self, line: str) -> ReadableSpan | None:
        """The span a line holds; None for a line that is not one as the lab writes them."""
        if len(line) > MAX_LINE:
            return None
        try:
            found = json.loads(line)
            return self._span(found) if isinstance(found, dict) else None
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return None

    def _span(self, found: dict[str, Any]) -> ReadableSpan:
        trace_id = int(found["trace_id"], 16)
        parent = found.get("parent_span_id")
        status = found["status"]
        return ReadableSpan(
            str(found["name"]),
            context=_context(trace_id, found["span_id"]),
            parent=_context(trace_id, parent) if parent else None,
            resource=self._resource(found["resource"]),
            attributes=_attributes(found["attributes"]),
            events=[
                SpanEvent(
                    str(event["name"]),
                    _attributes(event["attributes"]),
                    timestamp=int(event["time_ns"]),
                )
                for event in found["events"]
            ],
            kind=trace.SpanKind[found["kind"]],
            status=trace.Status(
                trace.StatusCode[status["code"]],
                str(status["description"]) if status.get("description") else None,
            ),
            start_time=int(found["start_ns"]),
            end_time=int(found["end_ns"]),
            instrumentation_scope=_SCOPE,
        )


class SpanForwarder:
    """Exports a run's span lines to OTLP in a thread of its own (`start`, then `close`)."""

    def __init__(
        self, exporter: SpanExporter, read: Reader, retry_after_s: float = RETRY_AFTER_S
    ) -> None:
        self._exporter = exporter
        self._read = read
        self._retry_after_s = retry_after_s
        self._lines = SpanLines()
        self._next = 0
        self._taken: set[tuple[int, int]] = set()
        self._pending: list[ReadableSpan] = []
        self._retry_at = 0.0
        self._tries = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="swarmlab-otlp", daemon=True)
        self.exported = 0
        self.skipped = 0
        self.dropped = 0

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(FORWARD_EVERY_S):
            self.forward()

    def forward(self, last: bool = False) -> int:
        """Export every line written since the last call, and what the collector did not take
        before (`last`: now, whatever the wait after a failure); the spans exported."""
        with self._lock:
            before = self.exported
            while True:
                try:
                    lines = self._read(self._next, READ_LINES)
                except Exception:  # telemetry never breaks a run
                    log.warning("could not read the run's spans for OTLP", exc_info=True)
                    break
                if not lines:
                    break
                self._next += len(lines)
                self._take(lines)
                last = self._send(last) and last  # one last try, not one a batch read
            self._send(last)
            return self.exported - before

    def _take(self, lines: Sequence[str]) -> None:
        for line in lines:
            span = self._lines.span(line)
            if span is None or span.context is None:
                self.skipped += 1
                continue
            key = (span.context.trace_id, span.context.span_id)
            if key not in self._taken:
                self._taken.add(key)
                self._pending.append(span)
        if len(self._pending) > MAX_PENDING:
            self.dropped += len(self._pending) - MAX_PENDING
            del self._pending[: len(self._pending) - MAX_PENDING]

    def _send(self, last: bool) -> bool:
        """Pending spans in batches, until one is not taken (kept, and tried again later);
        whether all were taken."""
        if not last and time.monotonic() < self._retry_at:
            return False
        while self._pending:
            batch = self._pending[:SEND_SPANS]
            try:
                result = self._exporter.export(batch)
            except Exception:
                result = SpanExportResult.FAILURE
            if result is not SpanExportResult.SUCCESS:
                self._tries += 1
                if self._tries >= TRIES:  # never taken: the spans behind it go on
                    self.dropped += len(batch)
                    del self._pending[: len(batch)]
                    self._tries = 0
                self._retry_at = time.monotonic() + self._retry_after_s
                return False
            del self._pending[: len(batch)]
            self.exported += len(batch)
            self._tries = 0
        return True

    def close(self) -> None:
        """Export what is left (one last try of what the collector did not take), then stop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=JOIN_S)
        self.forward(last=True)
        if self.skipped:
            log.warning("%d span lines were not spans; not sent over OTLP", self.skipped)
        if lost := len(self._pending) + self.dropped:
            log.warning(
                "%d spans were not taken by the OTLP collector (traces.jsonl has them)", lost
            )
        try:
            self._exporter.shutdown()
        except Exception:
            log.debug("OTLP span exporter shutdown failed", exc_info=True)

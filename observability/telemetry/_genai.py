"""Spans and metrics of the swarm, named after the OpenTelemetry GenAI semantic conventions.

The runtime calls these helpers; they know the span names and attribute keys (docs/traces.md),
so the runtime never spells them out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from swarmlab.core import names_with_role

from ._setup import Telemetry, extract, fixed_span_id, new_span_id

MODEL_CALLS = names_with_role("model")
"""The model call under each of its names (aliases included): a chat span, not a tool's."""


@dataclass(frozen=True)
class ProgramSpan:
    """What a program's span says, written when the program ends."""

    program_id: str
    parent_id: str | None
    depth: int
    task: str
    code: str
    status: str
    error: str | None
    limit: str | None
    traceparent: str | None
    span_id: str
    started_at: float
    ended_at: float
    error_kind: str | None = None
    """The lab's mark on why it crashed (`swarmlab.runtime` sets it; never read from text)."""


OP = "gen_ai.operation.name"

# Event details that have a conventional attribute name; the rest become swarmlab.<key>.
_DETAIL_KEYS = {
    "prompt_tokens": "gen_ai.usage.input_tokens",
    "completion_tokens": "gen_ai.usage.output_tokens",
    "model": "gen_ai.response.model",
    "max_tokens": "gen_ai.request.max_tokens",
    "writer": "swarmlab.blackboard.writer",
    "key": "swarmlab.blackboard.key",
    "target": "swarmlab.kill.target",
    "own_lineage": "swarmlab.kill.own_lineage",
    "child": "swarmlab.spawn.child",
}


def served_name(model: str) -> str:
    """A model's own name, without the backend a completion names it by (`sim:policy-v1` is
    `policy-v1`; the backend is `gen_ai.provider.name`)."""
    return model.partition(":")[2] or model


class LaterSpan:
    """A span that takes its attributes, events and status as the call goes, and is written
    when it ends, with the call's start and end times: the export happens after the call has
    answered the program (at the runner's next idle moment), not while the program waits.
    A model call's span (kind CLIENT) has an id of its own from the start: the request's
    traceparent names it, and a call resumed on another runner `adopt`s the id and start its
    first slice journaled, so the call has one span from its sending to its answer."""

    __slots__ = (
        "_attributes",
        "_context",
        "_events",
        "_kind",
        "_name",
        "_span_id",
        "_start_ns",
        "_status",
        "_telemetry",
    )

    def __init__(
        self,
        telemetry: Telemetry,
        context: otel_context.Context,
        name: str,
        attributes: dict[str, Any],
    ) -> None:
        self._telemetry = telemetry
        self._context = context
        self._name = name
        self._attributes: dict[str, Any] = attributes
        self._events: list[tuple[str, dict[str, Any], int]] = []
        self._status: Status | None = None
        self._start_ns = time.time_ns()
        self._kind = trace.SpanKind.INTERNAL
        self._span_id: str | None = None

    @property
    def span_id(self) -> str | None:
        """The id the span will have, when another process was told it (None: any)."""
        return self._span_id

    @property
    def start_ns(self) -> int:
        return self._start_ns

    def adopt(self, span_id: str, start_ns: int) -> None:
        """Be the span a call's first slice began: its id and start time."""
        self._kind = trace.SpanKind.CLIENT
        self._span_id, self._start_ns = span_id, start_ns

    def traceparent(self) -> str | None:
        """The W3C traceparent naming this span (None without a sampled trace to join)."""
        parent = trace.get_current_span(self._context).get_span_context()
        if self._span_id is None or not parent.is_valid:
            return None
        flags = int(parent.trace_flags | trace.TraceFlags.SAMPLED)
        return f"00-{parent.trace_id:032x}-{self._span_id}-{flags:02x}"

    def set_attribute(self, key: str, value: Any) -> None:
        self._attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self._attributes.update(attributes)

    def add_event(
        self, name: str, attributes: Mapping[str, Any] | None = None, at_ns: int | None = None
    ) -> None:
        self._events.append((name, dict(attributes or {}), at_ns or time.time_ns()))

    def set_status(self, status: Status) -> None:
        self._status = status

    def update_name(self, name: str) -> None:
        self._name = name

    def is_recording(self) -> bool:
        return True

    def end(self) -> None:
        end_ns = time.time_ns()
        try:
            asyncio.get_running_loop().call_soon(self._write, end_ns)
        except RuntimeError:  # no event loop: write it now
            self._write(end_ns)

    def _write(self, end_ns: int) -> None:
        self._telemetry.write_span(
            self._name,
            self._context,
            self._attributes,
            self._events,
            self._status,
            self._start_ns,
            end_ns,
            self._kind,
            self._span_id,
        )


class SwarmInstruments:
    """What one process of a run records: spans per program and call, counters per outcome."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self.tracer = telemetry.tracer
        meter = telemetry.meter
        self.programs_started = meter.create_counter(
            "swarmlab.programs.started", unit="{program}", description="Programs started."
        )
        self.programs_ended = meter.create_counter(
            "swarmlab.programs.ended", unit="{program}", description="Programs ended, by status."
        )
        self.programs_live = meter.create_up_down_counter(
            "swarmlab.programs.live", unit="{program}", description="Programs running now."
        )
        self.model_calls = meter.create_counter(
            "swarmlab.model.calls", unit="{call}", description="Model calls made."
        )
        self.tokens = meter.create_counter(
            "gen_ai.client.token.usage.total", unit="{token}", description="Tokens, by type."
        )
        self.denials = meter.create_counter(
            "swarmlab.cap.denials", unit="{denial}", description="Calls denied, by cap."
        )

    # --- spans -----------------------------------------------------------------------------

    def workflow_span(self, run_id: str, experiment: str) -> trace.Span:
        return self.tracer.start_span(
            "invoke_workflow swarm.run",
            attributes={
                OP: "invoke_workflow",
                "swarmlab.run_id": run_id,
                "swarmlab.experiment": experiment,
            },
        )

    def program_started(self) -> None:
        self.programs_started.add(1)
        self.programs_live.add(1)

    def program_context(self, traceparent: str | None, span_id: str) -> otel_context.Context:
        """The context of a program's span while it runs, on whichever runner: its calls'
        spans hang under it. The span itself is written once, when the program ends."""
        parent = trace.get_current_span(extract(traceparent)).get_span_context()
        own = trace.SpanContext(
            trace_id=parent.trace_id,
            span_id=int(span_id, 16),
            is_remote=False,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        )
        return trace.set_span_in_context(trace.NonRecordingSpan(own))

    def end_program(self, program: ProgramSpan) -> None:
        """A program ended on its runner: count it and write its span."""
        self.programs_live.add(-1)
        self.programs_ended.add(1, {"status": program.status})
        self.write_program(program)

    def write_program(self, program: ProgramSpan) -> None:
        """Write a program's span (`invoke_agent program`) with its own id, start and end (also
        for a program that never ended on a runner: the run stopped first)."""
        attrs: dict[str, Any] = {
            OP: "invoke_agent",
            "gen_ai.agent.id": program.program_id,
            "gen_ai.agent.name": "program",
            "swarmlab.program.depth": program.depth,
            "swarmlab.program.task": program.task[:300],
            "swarmlab.program.code": program.code[:16_000],
            "swarmlab.program.status": program.status,
        }
        if program.parent_id:
            attrs["swarmlab.program.parent_id"] = program.parent_id
        if program.error:
            attrs["swarmlab.program.error"] = program.error[:500]
        if program.error_kind:
            attrs["swarmlab.program.error_kind"] = program.error_kind
        with fixed_span_id(program.span_id):
            span = self.tracer.start_span(
                "invoke_agent program",
                context=extract(program.traceparent),
                attributes=attrs,
                start_time=int(program.started_at * 1e9),
            )
        if program.limit:
            self.denial(span, program.limit)
        if program.status != "completed":
            span.set_status(Status(StatusCode.ERROR, (program.error or program.status)[:200]))
        span.end(end_time=int(program.ended_at * 1e9))

    def call_span(self, program: otel_context.Context, capability: str) -> trace.Span:
        if capability in MODEL_CALLS:
            # A client call to the model server: its context is the server's traceparent.
            return self.tracer.start_span(
                "chat",
                context=program,
                kind=trace.SpanKind.CLIENT,
                attributes={OP: "chat", "swarmlab.capability": capability},
            )
        return self.tracer.start_span(
            f"execute_tool {capability}",
            context=program,
            attributes={OP: "execute_tool", "gen_ai.tool.name": capability},
        )

    def chat_span(self, program: otel_context.Context, capability: str) -> LaterSpan:
        """A program's model call's span (kind CLIENT), written once the call has answered;
        its id is fixed now, for the model server's traceparent."""
        span = LaterSpan(
            self.telemetry, program, "chat", {OP: "chat", "swarmlab.capability": capability}
        )
        span.adopt(new_span_id(), span.start_ns)
        return span

    def tool_span(self, program: otel_context.Context, capability: str) -> LaterSpan:
        """The span of a call that is not a model call, written once the call has answered."""
        return LaterSpan(
            self.telemetry,
            program,
            f"execute_tool {capability}",
            {OP: "execute_tool", "gen_ai.tool.name": capability},
        )

    def annotate(
        self,
        span: trace.Span | LaterSpan,
        decision: str,
        cap: str | None,
        detail: Mapping[str, Any],
    ) -> None:
        """Put a call's decision and details on its span."""
        span.set_attribute("swarmlab.decision", decision)
        for key, value in detail.items():
            if isinstance(value, bool | int | float | str):
                span.set_attribute(_DETAIL_KEYS.get(key, f"swarmlab.{key}"), value)
        if "model" in detail and span.is_recording():
            model = served_name(str(detail["model"]))
            span.set_attribute("gen_ai.response.model", model)
            span.update_name(f"chat {model}")
        if cap:
            span.set_attribute("swarmlab.cap", cap)
        if decision == "denied":
            self.denial(span, cap or "unknown")
        elif decision == "error":
            span.set_status(Status(StatusCode.ERROR, str(detail.get("error", ""))[:200]))

    def denial(self, span: trace.Span | LaterSpan, cap: str) -> None:
        self.denials.add(1, {"cap": cap})
        span.add_event("swarmlab.cap.denied", {"swarmlab.cap": cap})
        span.set_status(Status(StatusCode.ERROR, f"denied by {cap}"))

    def tripwire(self, span: trace.Span | LaterSpan, name: str, action: str, why: str) -> None:
        span.add_event(
            "swarmlab.tripwire",
            {
                "swarmlab.tripwire.name": name,
                "swarmlab.tripwire.action": action,
                "swarmlab.tripwire.why": why[:300],
            },
        )

    def model_call(
        self, span: trace.Span | LaterSpan, request: Any, completion: Any, provider: str
    ) -> None:
        model = served_name(completion.model)
        self.model_calls.add(1, {"gen_ai.request.model": model})
        self.tokens.add(completion.usage.prompt_tokens, {"gen_ai.token.type": "input"})
        self.tokens.add(completion.usage.completion_tokens, {"gen_ai.token.type": "output"})
        span.update_name(f"chat {model}")
        span.set_attributes(
            {
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                "gen_ai.request.max_tokens": request.max_tokens,
                "gen_ai.request.temperature": request.temperature,
                "gen_ai.response.model": model,
                "gen_ai.usage.input_tokens": completion.usage.prompt_tokens,
                "gen_ai.usage.output_tokens": completion.usage.completion_tokens,
                "gen_ai.response.finish_reasons": [completion.finish_reason],
            }
        )
        if request.seed is not None:
            span.set_attribute("gen_ai.request.seed", request.seed)

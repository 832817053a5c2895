"""Every call's span says what the lab decided, world actions included.

A world action's span was a span of its own, which the call's events never annotated: an action
the world refused (`world.buy("no such supplier", 1)`) was written as a plain `execute_tool
world.buy` span, no `swarmlab.decision`, status UNSET, so the trace (and Jaeger, and the
analysis of a trace) called it allowed. Now a world action's span is its call's, annotated by
its events like every other call's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest
from helpers.scripted_lab import scripted_capabilities
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.core import BadCall, CapExceeded, ProgramFault
from swarmlab.observability.analysis import run_data_from_spans
from swarmlab.observability.telemetry import SwarmInstruments, Telemetry, TelemetryConfig
from swarmlab.records import Event
from swarmlab.runtime._capabilities import Capabilities
from swarmlab.runtime._sandbox import Park

TRACEPARENT = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"


def traced(caps: Capabilities) -> tuple[Telemetry, list[str]]:
    """Give `caps` a telemetry whose spans land in a list."""
    lines: list[str] = []

    def sink(stream: str, got: list[str]) -> None:
        if stream == "spans":
            lines.extend(got)

    telemetry = Telemetry(TelemetryConfig(), sink)
    caps.tel = SwarmInstruments(telemetry)
    caps.env = dataclasses.replace(caps.env, instruments=caps.tel)
    caps.program_ctx = caps.tel.program_context(TRACEPARENT, "c" * 16)
    return telemetry, lines


def call_spans(
    answers: dict[str, list[list[str]]], name: str, *args: Any
) -> tuple[list[dict[str, Any]], Exception | None]:
    """The `execute_tool` spans of one call, and what it raised into the program."""
    caps, _ = scripted_capabilities(answers)
    telemetry, lines = traced(caps)
    raised: Exception | None = None
    try:
        asyncio.run(caps.call(name, args, {}))
    except ProgramFault as exc:
        raised = exc
    finally:
        telemetry.shutdown()
    return [s for s in map(json.loads, lines) if s["name"].startswith("execute_tool")], raised


RECORDED = {"reserve": [["ok"]], "record": [["ok"]]}


def test_a_world_action_the_world_refuses_is_an_error_span() -> None:
    (span,), raised = call_spans(RECORDED, "world.buy", "no such supplier", 1)
    assert isinstance(raised, BadCall)
    assert span["name"] == "execute_tool world.buy"
    assert span["attributes"]["swarmlab.decision"] == "error"
    assert span["status"]["code"] == "ERROR"
    assert "no supplier" in span["status"]["description"]


def test_a_world_action_done_and_one_denied_say_so_once() -> None:
    (done,), raised = call_spans(RECORDED, "world.search_suppliers")
    assert raised is None
    assert done["attributes"]["swarmlab.decision"] == "allowed"
    assert done["status"]["code"] == "UNSET"
    (denied,), raised = call_spans(
        {"reserve": [["denied", "world_actions", "5", "6"]]}, "world.search_suppliers"
    )
    assert isinstance(raised, CapExceeded)
    assert denied["attributes"]["swarmlab.decision"] == "denied"
    assert [e["name"] for e in denied["events"]] == ["swarmlab.cap.denied"]  # one denial
    assert denied["status"]["code"] == "ERROR"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=40), st.integers(), st.none()), max_size=3))
def test_any_world_call_span_carries_the_decision_its_event_has(args: list[Any]) -> None:
    caps, scripts = scripted_capabilities({"reserve": [["ok"]], "record": [["ok"]]})
    telemetry, lines = traced(caps)
    try:
        asyncio.run(caps.call("world.buy", tuple(args), {}))
    except ProgramFault:
        pass
    finally:
        telemetry.shutdown()
    spans = [json.loads(x) for x in lines if "execute_tool" in x]
    sent = [getattr(a, "events", "") for a, _ in scripts.asked]
    sent += [head.events for _, head in scripts.asked if head is not None]
    sent += [e.model_dump_json() for e in caps.pending]
    events = [
        Event.model_validate_json(line)
        for text in sent
        for line in text.split("\n")
        if line and Event.model_validate_json(line).kind == "world.buy"
    ]
    assert len(spans) == len(events) == 1
    assert spans[0]["attributes"]["swarmlab.decision"] == events[0].decision


def parked_and_answered(name: str, answers: dict[str, list[list[str]]]) -> list[dict[str, Any]]:
    """The spans of one call asked twice: it parks, then (resumed) it is answered."""
    caps, _ = scripted_capabilities(answers)
    telemetry, lines = traced(caps)
    caps.env.runner.worker_free = lambda: False  # type: ignore[method-assign]
    try:
        first = asyncio.run(caps.call(name, (), {}))
        assert isinstance(first, Park)
        caps.env.runner.worker_free = lambda: True  # type: ignore[method-assign]
        assert not isinstance(asyncio.run(caps.call(name, (), {})), Park)
    finally:
        telemetry.shutdown()
    return [json.loads(x) for x in lines if "execute_tool" in x]


@pytest.mark.parametrize(
    ("name", "answers"),
    [
        ("now", {"turn": [["wait"], ["go"]]}),  # parked at the gate, after its answer
        ("db_keys", {"blackboard": [["wait"], ["ok", "k/1"]]}),  # parked for its turn
    ],
)
def test_a_call_that_parked_is_one_call_in_the_trace(
    name: str, answers: dict[str, list[list[str]]]
) -> None:
    spans = parked_and_answered(name, answers)
    assert [s["attributes"].get("swarmlab.parked") for s in spans] == [True, None]
    for span in spans:
        span["parent_span_id"] = "c" * 16
    program = {
        "trace_id": "a" * 32,
        "span_id": "c" * 16,
        "name": "invoke_agent program",
        "attributes": {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": "p0"},
    }
    calls = run_data_from_spans([program, *spans]).calls
    assert [(c.kind, c.decision) for c in calls] == [(name, "allowed")]

"""traces.jsonl becomes the JSON Jaeger's UI opens with "Upload JSON", tree intact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.labelled_run import (
    PROGRAMS,
    RUN_ID,
    RUN_SPAN,
    TRACE_ID,
    build_spans,
    span_id_of,
    write_traces,
)

from swarmlab import SpecError
from swarmlab.observability.analysis import read_spans
from swarmlab.observability.report import to_jaeger_json


def tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span["tags"]}


def test_every_program_span_keeps_its_parent(tmp_path: Path) -> None:
    spans = read_spans(write_traces(tmp_path / "traces.jsonl"))
    data = to_jaeger_json(spans)
    assert len(data["data"]) == 1
    trace = data["data"][0]
    assert trace["traceID"] == TRACE_ID
    assert len(trace["spans"]) == len(spans)
    by_agent = {
        tags(s)["gen_ai.agent.id"]: s
        for s in trace["spans"]
        if s["operationName"] == "invoke_agent program"
    }
    assert sorted(by_agent) == sorted(p[0] for p in PROGRAMS)
    for pid, span in by_agent.items():
        parent = pid.rsplit(".", 1)[0] if "." in pid else None
        assert span["spanID"] == span_id_of(pid)
        assert span["references"] == [
            {
                "refType": "CHILD_OF",
                "traceID": TRACE_ID,
                "spanID": span_id_of(parent) if parent else RUN_SPAN,
            }
        ]
    run = next(s for s in trace["spans"] if s["spanID"] == RUN_SPAN)
    assert run["references"] == []
    assert run["operationName"] == "invoke_workflow swarm.run"


def test_spans_carry_times_types_logs_and_the_process(tmp_path: Path) -> None:
    trace = to_jaeger_json(build_spans())["data"][0]
    root = next(s for s in trace["spans"] if tags(s).get("gen_ai.agent.id") == "p0")
    assert root["startTime"] == 100_000_000
    assert root["duration"] == 950_000
    assert root["processID"] == "p1"
    assert root["flags"] == 1
    assert root["warnings"] is None
    typed = {t["key"]: t["type"] for t in root["tags"]}
    assert typed["swarmlab.program.depth"] == "int64"
    assert typed["swarmlab.program.task"] == "string"
    assert trace["processes"] == {
        "p1": {
            "serviceName": "swarmlab",
            "tags": [{"key": "swarmlab.run_id", "type": "string", "value": RUN_ID}],
        }
    }
    denied = next(s for s in trace["spans"] if tags(s).get("swarmlab.cap") == "children")
    assert tags(denied)["error"] is True
    assert tags(denied)["otel.status_code"] == "ERROR"
    (log,) = denied["logs"]
    assert log["timestamp"] == 100_260_000
    assert {"key": "event", "type": "string", "value": "swarmlab.cap.denied"} in log["fields"]
    assert {"key": "swarmlab.cap", "type": "string", "value": "children"} in log["fields"]
    chat = next(s for s in trace["spans"] if s["operationName"] == "chat sim:policy-v1")
    assert {"key": "gen_ai.usage.input_tokens", "type": "int64", "value": 50} in chat["tags"]


def test_lists_and_nulls_become_strings_and_traces_are_grouped() -> None:
    base = {"name": "x", "start_ns": 1_000, "end_ns": 3_000, "parent_span_id": None}
    spans = [
        {**base, "trace_id": "a" * 32, "span_id": "1" * 16, "attributes": {"r": ["stop"]}},
        {**base, "trace_id": "b" * 32, "span_id": "2" * 16, "attributes": {"n": None}},
        {**base, "trace_id": "a" * 32, "span_id": "3" * 16, "attributes": {"f": 0.5}},
    ]
    data = to_jaeger_json(spans)
    assert [t["traceID"] for t in data["data"]] == ["a" * 32, "b" * 32]
    assert [len(t["spans"]) for t in data["data"]] == [2, 1]
    first = data["data"][0]["spans"]
    assert first[0]["tags"] == [{"key": "r", "type": "string", "value": '["stop"]'}]
    assert first[1]["tags"] == [{"key": "f", "type": "float64", "value": 0.5}]
    assert data["data"][1]["spans"][0]["tags"] == [{"key": "n", "type": "string", "value": "null"}]
    assert first[0]["startTime"] == 1
    assert first[0]["duration"] == 2
    assert data["data"][0]["processes"]["p1"]["serviceName"] == "swarmlab"
    json.dumps(data)  # plain JSON throughout


def test_bad_trace_files_are_one_line_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        read_spans(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    good = json.dumps({"trace_id": "a" * 32, "span_id": "b" * 16, "name": "c"})
    bad.write_text(good + "\n\n{oops\n")
    with pytest.raises(SpecError, match=r"bad.jsonl:3: not JSON"):
        read_spans(bad)
    bad.write_text(json.dumps({"trace_id": "a" * 32, "name": "c"}) + "\n")
    with pytest.raises(SpecError, match=r"bad.jsonl:1: not a span \(span_id: Field required\)"):
        read_spans(bad)

"""A run's trace reaches a real OTLP receiver (HTTP and gRPC) and the run directory, with the
program tree as the span tree and the GenAI attributes on the calls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from helpers.otlp import Received
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster
from swarmlab.core import ALIASES, CAPABILITIES
from swarmlab.observability.telemetry import SwarmInstruments, Telemetry, TelemetryConfig
from swarmlab.records import RunResult
from swarmlab.runtime import RunOptions, run_experiment

pytestmark = pytest.mark.slow


@pytest.fixture
def grpc_receiver() -> Iterator[tuple[str, Received]]:
    got = Received()

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            got.add_traces(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            got.add_metrics(request)
            return metrics_service_pb2.ExportMetricsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)  # type: ignore[no-untyped-call]
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}", got
    server.stop(grace=None)


def traced_run(tmp_path: Path, redis_url: str, telemetry: TelemetryConfig) -> RunResult:
    spec = load_spec("paperclips", ["caps.programs=40"])
    options = RunOptions(
        out_dir=tmp_path / "run",
        redis_url=redis_url,
        progress=Progress(quiet=True),
        telemetry=telemetry,
    )
    return run_experiment(spec, options)


def check_trace(spans: list[dict[str, Any]], result: RunResult) -> None:
    assert len({s["trace_id"] for s in spans}) == 1, "one trace per run"
    assert spans[0]["trace_id"] == result.trace_id
    by_id = {s["span_id"]: s for s in spans}
    workflow = [s for s in spans if s["name"] == "invoke_workflow swarm.run"]
    assert len(workflow) == 1
    agents = {
        s["attributes"]["gen_ai.agent.id"]: s for s in spans if s["name"] == "invoke_agent program"
    }
    assert set(agents) == {p.id for p in result.programs}
    for program in result.programs:
        parent = by_id[agents[program.id]["parent_span_id"]]
        if program.parent_id is None:
            assert parent is workflow[0]
        else:
            assert parent["attributes"]["gen_ai.agent.id"] == program.parent_id
    chats = [s for s in spans if s["name"].startswith("chat ")]
    assert chats
    assert all(s["name"] == "chat policy-v1" for s in chats)
    for chat in chats:
        attrs = chat["attributes"]
        assert attrs["gen_ai.operation.name"] == "chat"
        assert chat["kind"] == "CLIENT"
        assert attrs["gen_ai.usage.input_tokens"] > 0
        assert attrs["gen_ai.usage.output_tokens"] > 0
        assert attrs["gen_ai.request.model"] == "policy-v1"
        assert attrs["gen_ai.provider.name"] == "sim"
        parent = by_id[chat["parent_span_id"]]
        assert parent["name"] in ("invoke_agent program", "invoke_workflow swarm.run")
    tools = [s for s in spans if s["name"].startswith("execute_tool ")]
    assert any(s["attributes"]["gen_ai.tool.name"] == "spawn" for s in tools)
    for tool in tools:  # written after the call answered, with the call's own times
        agent = by_id[tool["parent_span_id"]]
        assert agent["name"] == "invoke_agent program"
        assert agent["start_ns"] - 1_000_000 <= tool["start_ns"] <= tool["end_ns"]
        assert tool["end_ns"] <= agent["end_ns"] + 1_000_000
    denied = [s for s in spans if "swarmlab.cap.denied" in s["events"]]
    assert denied, "denials are visible on spans"
    assert any(s["attributes"].get("swarmlab.cap") == "programs" for s in denied)


def test_the_trace_reaches_an_otlp_http_receiver_and_the_run_dir(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster, http_receiver: tuple[str, Received]
) -> None:
    endpoint, got = http_receiver
    result = traced_run(tmp_path, redis_url, TelemetryConfig(otlp_endpoint=endpoint))
    check_trace(got.spans, result)
    on_disk = [
        json.loads(line) for line in (result.out_dir / "traces.jsonl").read_text().splitlines()
    ]
    on_disk = [s | {"events": [e["name"] for e in s["events"]]} for s in on_disk]
    check_trace(on_disk, result)
    assert len(on_disk) == len(got.spans)
    assert {
        "swarmlab.programs.started",
        "swarmlab.programs.ended",
        "swarmlab.cap.denials",
        "swarmlab.model.calls",
        "swarmlab.programs.live",
    } <= got.metric_names
    assert (result.out_dir / "metrics.jsonl").read_text().strip()


def test_the_jaeger_json_has_every_program_under_its_parent(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    from swarmlab.observability.analysis import read_spans
    from swarmlab.observability.report import to_jaeger_json

    result = traced_run(tmp_path, redis_url, TelemetryConfig())
    jaeger = to_jaeger_json(read_spans(result.out_dir / "traces.jsonl"))
    (trace,) = jaeger["data"]
    spans = {s["spanID"]: s for s in trace["spans"]}
    program_span = {
        tag["value"]: s
        for s in trace["spans"]
        for tag in s["tags"]
        if tag["key"] == "gen_ai.agent.id" and s["operationName"] == "invoke_agent program"
    }
    assert set(program_span) == {p.id for p in result.programs}
    for program in result.programs:
        (ref,) = program_span[program.id]["references"]
        assert ref["refType"] == "CHILD_OF"
        parent = spans[ref["spanID"]]
        if program.parent_id is None:
            assert parent["operationName"] == "invoke_workflow swarm.run"
        else:
            assert parent is program_span[program.parent_id]


def test_the_trace_reaches_an_otlp_grpc_receiver(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster, grpc_receiver: tuple[str, Received]
) -> None:
    endpoint, got = grpc_receiver
    result = traced_run(
        tmp_path, redis_url, TelemetryConfig(otlp_endpoint=endpoint, otlp_protocol="grpc")
    )
    check_trace(got.spans, result)


def test_an_unreachable_collector_never_breaks_a_run(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster, closed_port: int
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}"
    result = traced_run(tmp_path, redis_url, TelemetryConfig(otlp_endpoint=endpoint))
    assert result.status == "completed"
    spans = [
        json.loads(line) for line in (result.out_dir / "traces.jsonl").read_text().splitlines()
    ]
    check_trace([s | {"events": [e["name"] for e in s["events"]]} for s in spans], result)


def test_a_model_call_under_any_of_its_names_is_a_client_chat_span() -> None:
    """The names come from the vocabulary (aliases included), never from a second list."""
    instruments = SwarmInstruments(Telemetry(TelemetryConfig(enabled=False), None))
    for name, capability in ALIASES.items():
        span = instruments.call_span(otel_context.Context(), name)
        is_model = CAPABILITIES[capability].role == "model"
        assert (span.kind == trace.SpanKind.CLIENT) == is_model, name  # type: ignore[attr-defined]
        span.end()

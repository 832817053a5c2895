"""A small run directory as the lab writes one, for the searches that tamper with it: two
programs, calls of most kinds the analysis reads, spans, a dialogue."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.labelled_run import usage_of
from swarmlab.records import Event, ProgramRecord, RootDialogue, RunDir, RunResult
from swarmlab.spec import ExperimentSpec


def write_run(out: Path) -> Path:
    """A small run directory as the lab writes one: two programs, calls, spans, a dialogue."""
    spans = [
        {"trace_id": "a" * 32, "span_id": "1" * 16, "name": "invoke_agent program",
         "attributes": {"gen_ai.agent.id": "p0", "gen_ai.operation.name": "invoke_agent"},
         "start_ns": 1_000_000_000, "end_ns": 2_000_000_000, "events": []},
        {"trace_id": "a" * 32, "span_id": "2" * 16, "parent_span_id": "1" * 16,
         "name": "chat sim", "attributes": {"gen_ai.usage.input_tokens": 5},
         "start_ns": 1_100_000_000, "end_ns": 1_200_000_000, "events": []},
    ]  # fmt: skip
    programs = [
        ProgramRecord(id="p0", code="x = run_ai('q')\nspawn('y=1')", status="completed",
                      started_at=1.0, ended_at=3.0, calls=4),
        ProgramRecord(id="p0.1", parent_id="p0", depth=1, code="y=1", status="crashed",
                      error="ValueError: no", started_at=2.0, ended_at=2.5, calls=2),
    ]  # fmt: skip
    events = [
        Event(t=1.0, program="p0", kind="start", decision="info"),
        Event(t=1.1, program="p0", kind="run_ai", decision="allowed", seq=1,
              detail={"prompt_tokens": 5, "completion_tokens": 3, "model": "sim"}),
        Event(t=1.5, program="p0", kind="spawn", decision="allowed", seq=2,
              detail={"child": "p0.1", "provenance": "completion"}),
        Event(t=2.0, program="p0.1", kind="start", decision="info"),
        Event(t=2.2, program="p0.1", kind="db_put", decision="allowed", seq=1,
              detail={"charged": 9}),
        Event(t=2.3, program="p0.1", kind="db_get", decision="allowed", seq=2,
              detail={"key": "k", "writer": "p0.1"}),
        Event(t=2.4, program="p0", kind="wait", decision="allowed", seq=3,
              detail={"ids": ["p0.1"]}),
        Event(t=2.5, program="p0.1", kind="end", decision="info",
              detail={"status": "crashed", "limit": "cpu_s", "error_kind": "limit"}),
        Event(t=2.6, program="p0", kind="kill", decision="allowed", seq=4,
              detail={"target": "p0.1", "stopped": 0}),
        Event(t=3.0, program="p0", kind="end", decision="info"),
    ]  # fmt: skip
    result = RunResult(
        run_id="r1", out_dir=out, spec=ExperimentSpec(name="r1"), status="completed",
        ended_because="tree quiescent", started_at=1.0, ended_at=3.5,
        usage=usage_of([(p.id, p.parent_id) for p in programs]), programs=programs,
        events=events, blackboard={}, outcome={"paperclips": 1},
        dialogue=RootDialogue(first_answer="a", second_answer="b", program="x=1"),
        spans=[json.dumps(s) for s in spans],
    )  # fmt: skip
    return RunDir(out).write(result)

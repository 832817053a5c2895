"""traces.jsonl: read its spans, reduce them for the analysis, convert them for Jaeger's UI.

The span format is docs/traces.md. `to_jaeger_json` writes the JSON that Jaeger's UI opens
with "Upload JSON" (the same shape as its query API's `/api/traces` answer): one entry per
trace in `data`, each with its spans and the processes (resources) that emitted them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from swarm import SpecError

from ._analysis import Call, ProgramInfo, RunData, as_int, id_sort_key, int_or_none, str_or_none

__all__ = ["read_spans", "to_jaeger_json"]

_REQUIRED = ("trace_id", "span_id", "name")


def read_spans(path: str | Path) -> list[dict[str, Any]]:
    """The spans of a traces.jsonl file, one dict per line, in file order."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read ({exc.strerror or exc})") from None
    spans = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            span = json.loads(line)
        except ValueError as exc:
            raise SpecError(f"{path}:{number}: not JSON ({exc})") from None
        missing = [k for k in _REQUIRED if not isinstance(span, dict) or k not in span]
        if missing:
            raise SpecError(f"{path}:{number}: not a span (no {', '.join(missing)})")
        spans.append(span)
    return spans


# --- Jaeger JSON --------------------------------------------------------------------------------


def to_jaeger_json(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """Spans in traces.jsonl form as Jaeger UI upload JSON: {"data": [trace, ...]}."""
    traces: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        traces.setdefault(str(span["trace_id"]), []).append(span)
    return {"data": [_trace(trace_id, members) for trace_id, members in traces.items()]}


def _trace(trace_id: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    processes: dict[str, dict[str, Any]] = {}
    process_ids: dict[str, str] = {}
    out = []
    for span in spans:
        resource = span.get("resource") or {}
        key = json.dumps(resource, sort_keys=True, default=str)
        if key not in process_ids:
            process_ids[key] = f"p{len(process_ids) + 1}"
            processes[process_ids[key]] = {
                "serviceName": str(resource.get("service.name") or "swarmlab"),
                "tags": [_tag(k, v) for k, v in resource.items() if k != "service.name"],
            }
        out.append(_span(trace_id, span, process_ids[key]))
    return {"traceID": trace_id, "spans": out, "processes": processes, "warnings": None}


def _span(trace_id: str, span: dict[str, Any], process_id: str) -> dict[str, Any]:
    start_ns, end_ns = as_int(span.get("start_ns")), as_int(span.get("end_ns"))
    parent = span.get("parent_span_id")
    tags = [_tag(k, v) for k, v in (span.get("attributes") or {}).items()]
    if span.get("kind"):
        tags.append(_tag("span.kind", str(span["kind"]).lower()))
    status = span.get("status") or {}
    if status.get("code") in ("OK", "ERROR"):
        tags.append(_tag("otel.status_code", status["code"]))
    if status.get("code") == "ERROR":
        tags.append(_tag("error", True))
        if status.get("description"):
            tags.append(_tag("otel.status_description", status["description"]))
    logs = [
        {
            "timestamp": as_int(event.get("time_ns")) // 1000,
            "fields": [_tag("event", str(event.get("name", "")))]
            + [_tag(k, v) for k, v in (event.get("attributes") or {}).items()],
        }
        for event in span.get("events") or []
    ]
    return {
        "traceID": trace_id,
        "spanID": str(span["span_id"]),
        "operationName": str(span["name"]),
        "references": [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": str(parent)}]
        if parent
        else [],
        "startTime": start_ns // 1000,
        "duration": max(0, end_ns - start_ns) // 1000,
        "tags": tags,
        "logs": logs,
        "processID": process_id,
        "warnings": None,
        "flags": 1,
    }


def _tag(key: str, value: Any) -> dict[str, Any]:
    """A typed Jaeger key-value; lists, mappings and nulls become JSON strings."""
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    if isinstance(value, str):
        return {"key": key, "type": "string", "value": value}
    return {"key": key, "type": "string", "value": json.dumps(value, default=str)}


# --- the analysis' view of a trace -------------------------------------------------------------


def run_data_from_spans(spans: list[dict[str, Any]], source: str = "") -> RunData:
    """Programs from `invoke_agent` spans, calls from `execute_tool` and `chat` spans.

    A program's parent is the program whose span is its nearest ancestor span (the attribute
    `swarmlab.program.parent_id` when that span is missing); a call belongs to the program whose
    span is its nearest ancestor. Attributes read beyond docs/traces.md: `swarmlab.capability`
    (the alias a chat was made under), `swarmlab.blackboard.writer`, `swarmlab.kill.target`,
    `swarmlab.kill.stopped` or `swarmlab.stopped`, and `swarmlab.program.code` (without it the
    code metrics are null). Spans outside any program (the root dialogue's) are not calls.
    """
    by_id = {s["span_id"]: s for s in spans}

    def attrs(span: dict[str, Any]) -> dict[str, Any]:
        return span.get("attributes") or {}

    def operation(span: dict[str, Any]) -> str:
        return str(attrs(span).get("gen_ai.operation.name") or span["name"].split(" ", 1)[0])

    def is_program(span: dict[str, Any]) -> bool:
        return operation(span) == "invoke_agent" and "gen_ai.agent.id" in attrs(span)

    def owner(span: dict[str, Any]) -> str | None:
        """The program whose span is the nearest ancestor of this span."""
        seen: set[str] = set()
        parent = by_id.get(span.get("parent_span_id") or "")
        while parent is not None and parent["span_id"] not in seen:
            if is_program(parent):
                return str(attrs(parent)["gen_ai.agent.id"])
            seen.add(parent["span_id"])
            parent = by_id.get(parent.get("parent_span_id") or "")
        return None

    parents: dict[str, str | None] = {}
    program_spans = [s for s in spans if is_program(s)]
    for span in program_spans:
        a = attrs(span)
        parents[str(a["gen_ai.agent.id"])] = owner(span) or str_or_none(
            a.get("swarmlab.program.parent_id")
        )

    def depth(pid: str) -> int:
        d, parent = 0, parents.get(pid)
        while parent is not None and d <= len(parents):
            d, parent = d + 1, parents.get(parent)
        return d

    programs = []
    for span in program_spans:
        a = attrs(span)
        pid = str(a["gen_ai.agent.id"])
        code = a.get("swarmlab.program.code")
        programs.append(
            ProgramInfo(
                id=pid,
                parent_id=parents[pid],
                depth=as_int(a["swarmlab.program.depth"])
                if "swarmlab.program.depth" in a
                else depth(pid),
                task=str(a.get("swarmlab.program.task") or ""),
                code=code if isinstance(code, str) else None,
                status=str(a.get("swarmlab.program.status") or "unknown"),
                created_at=as_int(span.get("start_ns")) / 1e9,
            )
        )
    calls = []
    for span in spans:
        op = operation(span)
        caller = owner(span) if op in ("execute_tool", "chat") else None
        if caller is not None:
            calls.append(_call_from_span(span, op, caller))
    run_ids = [
        attrs(s).get("swarmlab.run_id") or (s.get("resource") or {}).get("swarmlab.run_id")
        for s in spans
    ]
    return RunData(
        source=source,
        run_id=next((str(r) for r in run_ids if r), None),
        scaffold=any(p.parent_id is None for p in programs),
        programs=sorted(programs, key=lambda p: id_sort_key(p.id)),
        calls=sorted(calls, key=lambda c: c.t),
        outcome={},
    )


def _call_from_span(span: dict[str, Any], op: str, pid: str) -> Call:
    a = span.get("attributes") or {}
    if op == "chat":
        kind = str(a.get("swarmlab.capability") or "run_ai")  # the alias the program used
    else:
        kind = str(a.get("gen_ai.tool.name") or span["name"].removeprefix("execute_tool "))
    denial = next(
        (e for e in span.get("events") or [] if e.get("name") == "swarmlab.cap.denied"), None
    )
    decision = str(a.get("swarmlab.decision") or ("denied" if denial else "allowed"))
    cap = a.get("swarmlab.cap") or (denial and (denial.get("attributes") or {}).get("swarmlab.cap"))
    tokens = 0
    if op == "chat" and decision == "allowed":
        tokens = as_int(a.get("gen_ai.usage.input_tokens")) + as_int(
            a.get("gen_ai.usage.output_tokens")
        )
    return Call(
        t=as_int(span.get("start_ns")) / 1e9,
        program=pid,
        kind=kind,
        decision=decision,
        cap=str(cap) if cap else None,
        tokens=tokens,
        writer=str_or_none(a.get("swarmlab.blackboard.writer")),
        target=str_or_none(a.get("swarmlab.kill.target")),
        stopped=int_or_none(a.get("swarmlab.kill.stopped", a.get("swarmlab.stopped"))),
    )

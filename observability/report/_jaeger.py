"""Jaeger's upload JSON: what Jaeger's UI opens with "Upload JSON" (the shape of its query API's
`/api/traces` answer): one entry per trace in `data`, each with its spans and the processes
(resources) that emitted them."""

from __future__ import annotations

import json
from typing import Any

from swarmlab.observability.analysis._data import as_int

__all__ = ["to_jaeger_json"]


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

"""Program spans: what a program's `invoke_agent` span says, and a whole tree for every run.

A program's span is written by the runner that ends it. A run stopped by a kill, its wall clock,
a tripwire or a failure leaves programs no runner ended (parked, queued, stopped mid-slice): the
driver writes their spans when it ends them, so the trace keeps every program and no call's span
loses its parent.
"""

from __future__ import annotations

import asyncio
import json
import time

from swarmlab.observability.telemetry import ProgramSpan, SwarmInstruments
from swarmlab.records import ProgramRecord

AGENT_SPAN = "invoke_agent program"
MAX_SPAN_LINE = 1_000_000
"""Longer lines are not a program span the lab wrote (a program's code is cut at 16,000)."""


def program_span(record: ProgramRecord, limit: str | None, kind: str | None = None) -> ProgramSpan:
    """A program's span as its record says (ended now if the record has no end); `kind` is the
    runtime's mark on the exception that ended it, if any."""
    return ProgramSpan(
        program_id=record.id,
        parent_id=record.parent_id,
        depth=record.depth,
        task=record.task,
        code=record.code,
        status=record.status,
        error=record.error,
        limit=limit,
        traceparent=record.traceparent,
        span_id=record.span_id or "0" * 16,
        started_at=record.started_at or record.created_at,
        ended_at=record.ended_at or time.time(),
        error_kind=kind,
    )


def _agent_span_id(line: str) -> str | None:
    """The span id of a program span's line, None for any other line (unreadable lines
    included: what Redis hands back is read as hostile)."""
    if AGENT_SPAN not in line or len(line) > MAX_SPAN_LINE:
        return None
    try:
        span = json.loads(line)
    except ValueError:
        return None
    if isinstance(span, dict) and span.get("name") == AGENT_SPAN:
        return str(span.get("span_id"))
    return None


def _agent_span_ids(lines: list[str]) -> set[str]:
    """The span ids of the program spans among exported span lines."""
    return {found for line in lines if (found := _agent_span_id(line)) is not None}


def one_span_each(lines: list[str]) -> list[str]:
    """The exported lines with each program's span once, the first written. A runner's span of
    a program can reach Redis after the driver wrote the spans it found missing (its exporter
    batches them): the program would have two spans, and the trace be refused when read back."""
    seen: set[str] = set()
    kept = []
    for line in lines:
        found = _agent_span_id(line)
        if found is not None:
            if found in seen:
                continue
            seen.add(found)
        kept.append(line)
    return kept


async def write_missing(
    instruments: SwarmInstruments, programs: list[ProgramRecord], exported: list[str]
) -> int:
    """Write the span of every program whose span is not among the exported lines, with the
    status its record ended with; the number written."""
    have = await asyncio.to_thread(_agent_span_ids, exported)
    missing = [p for p in programs if (p.span_id or "0" * 16) not in have]
    for record in missing:
        instruments.write_program(program_span(record, None))
    return len(missing)

"""traces.jsonl: read its spans and reduce them for the analysis (format: docs/traces.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from swarmlab.core import SpecError, id_sort_key, json_lines
from swarmlab.records import detail_count

from ._data import (
    Call,
    ProgramInfo,
    RunData,
    as_int,
    id_or_none,
    int_or_none,
    reached,
    str_or_none,
)

__all__ = ["load_trace", "read_spans", "run_data_from_spans"]

MAX_SPAN_NS = 2**63 - 1
"""A time read back from a trace: nanoseconds since 1970 as OpenTelemetry keeps them, a signed
64-bit int (until the year 2262)."""
SpanTime = Annotated[int, Field(strict=True, ge=0, le=MAX_SPAN_NS)]
TraceId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
SpanId = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]


class SpanEventLine(BaseModel):
    """An event of a span, as `span_to_json` writes it."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(default="", description="The event's name.")
    time_ns: SpanTime | None = Field(default=None, description="When it happened (ns since epoch).")
    attributes: dict[str, Any] = Field(default_factory=dict, description="Its attributes.")


class SpanLine(BaseModel):
    """One line of traces.jsonl, as `span_to_json` (telemetry) writes it: the fields the
    analysis and the Jaeger export read must have these types and forms; others are kept as
    they are. What a span says of the others (its id once in the file, no cycle of parents,
    a program once) is checked by `read_spans`."""

    model_config = ConfigDict(extra="allow")

    trace_id: TraceId = Field(description="32 hex digits.")
    span_id: SpanId = Field(description="16 hex digits.")
    parent_span_id: SpanId | None = Field(
        default=None,
        description="The parent span's id (16 hex digits); it may be in another service's "
        "trace, not in this file.",
    )
    name: str = Field(description="The span's name.")
    kind: str | None = Field(default=None, description="INTERNAL, CLIENT, ...")
    start_ns: SpanTime | None = Field(default=None, description="Start (ns since epoch).")
    end_ns: SpanTime | None = Field(
        default=None, description="End (ns since epoch), not before start."
    )
    attributes: dict[str, Any] = Field(default_factory=dict, description="Its attributes.")
    events: list[SpanEventLine] = Field(default_factory=list, description="Its events.")
    status: dict[str, Any] = Field(default_factory=dict, description="code, description.")
    resource: dict[str, Any] = Field(default_factory=dict, description="The process's.")

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> SpanLine:
        if self.start_ns is not None and self.end_ns is not None and self.end_ns < self.start_ns:
            raise ValueError(f"end_ns {self.end_ns} is before start_ns {self.start_ns}")
        return self


def read_spans(path: str | Path) -> list[dict[str, Any]]:
    """The spans of a traces.jsonl file, one dict per line, in file order (read through the
    lab's one reader: bounded, UTF-8, lines split on `\\n` only; each a `SpanLine`), held to
    what the runtime writes of a trace: each span id once, each program's span once (a
    second would be exported twice, or counted as a second program), and parents that form
    no cycle. A parent not in the file is kept: it may be another service's span."""
    path = Path(path)
    spans: list[dict[str, Any]] = []
    lines: dict[str, int] = {}  # span id -> its line
    programs: dict[str, int] = {}  # program id -> the line of its span
    for number, row in json_lines(path):
        try:
            span = SpanLine.model_validate(row).model_dump()
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            said = err["msg"].removeprefix("Value error, ")
            where = f"{field}: " if field else ""
            raise SpecError(f"{path}:{number}: not a span ({where}{said})") from None
        if (first := lines.setdefault(span["span_id"], number)) != number:
            raise SpecError(
                f"{path}:{number}: not a span (span_id {span['span_id']} is the span of line "
                f"{first} too)"
            )
        if _is_program(span):
            pid = str(_attrs(span)["gen_ai.agent.id"])
            if (first := programs.setdefault(pid, number)) != number:
                raise SpecError(
                    f"{path}:{number}: not a span (program {pid[:60]!r} has its span on line "
                    f"{first} too)"
                )
        spans.append(span)
    _refuse_parent_cycles(path, spans, lines)
    return spans


def _refuse_parent_cycles(path: Path, spans: list[dict[str, Any]], lines: dict[str, int]) -> None:
    """A span that is its own ancestor (through parents in the file) is refused at its line;
    each span is walked once, so the check costs the file's length."""
    parent = {s["span_id"]: s["parent_span_id"] for s in spans}
    done: set[str] = set()
    for span in spans:
        chain: list[str] = []
        on_chain: set[str] = set()
        sid: str | None = span["span_id"]
        while sid is not None and sid in parent and sid not in done:
            if sid in on_chain:
                raise SpecError(
                    f"{path}:{lines[sid]}: not a span (span {sid} is its own ancestor: its "
                    "parents form a cycle)"
                )
            chain.append(sid)
            on_chain.add(sid)
            sid = parent[sid]
        done.update(chain)


def run_data_from_spans(spans: list[dict[str, Any]], source: str = "") -> RunData:
    """Programs from `invoke_agent` spans, calls from `execute_tool` and `chat` spans.

    A program's parent is the program whose span is its nearest ancestor span (the attribute
    `swarmlab.program.parent_id` when that span is missing); a call belongs to the program whose
    span is its nearest ancestor. Attributes read beyond docs/traces.md: `swarmlab.capability`
    (the alias a chat was made under), `swarmlab.blackboard.writer`, `swarmlab.kill.target`,
    `swarmlab.kill.stopped` or `swarmlab.stopped`, `swarmlab.spawn.child` with
    `swarmlab.provenance`, `swarmlab.import`/`swarmlab.os_call`/`swarmlab.source` on escape
    attempts, `swarmlab.program.error`, and `swarmlab.program.code` (without it the code
    metrics are null; spans hold the first 16,000 characters of a program). Spans outside any
    program (the root dialogue's) are not calls, nor is the span of a call that parked
    (`swarmlab.parked`): the call is asked again when its program resumes, and that span is
    the call's.
    """
    tree = _SpanTree(spans)
    calls = []
    provenance: dict[str, str] = {}
    for span in spans:
        op = _operation(span)
        caller = tree.owner(span) if op in ("execute_tool", "chat") else None
        if caller is not None and _attrs(span).get("swarmlab.parked") is not True:
            calls.append(_call_from_span(span, op, caller))
            a = _attrs(span)
            child, origin = a.get("swarmlab.spawn.child"), a.get("swarmlab.provenance")
            if calls[-1].kind == "spawn" and child and origin:
                provenance[str(child)] = str(origin)
    programs = tree.programs(provenance)
    run_ids = [
        _attrs(s).get("swarmlab.run_id") or (s.get("resource") or {}).get("swarmlab.run_id")
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


def _attrs(span: dict[str, Any]) -> dict[str, Any]:
    return span.get("attributes") or {}


def _operation(span: dict[str, Any]) -> str:
    return str(_attrs(span).get("gen_ai.operation.name") or span["name"].split(" ", 1)[0])


def _is_program(span: dict[str, Any]) -> bool:
    return _operation(span) == "invoke_agent" and "gen_ai.agent.id" in _attrs(span)


class _SpanTree:
    """Spans by id, and which program each span belongs to."""

    def __init__(self, spans: list[dict[str, Any]]) -> None:
        self.by_id = {s["span_id"]: s for s in spans}
        self.program_spans = [s for s in spans if _is_program(s)]
        self.parents: dict[str, str | None] = {}
        for span in self.program_spans:
            a = _attrs(span)
            self.parents[str(a["gen_ai.agent.id"])] = self.owner(span) or str_or_none(
                a.get("swarmlab.program.parent_id")
            )

    def owner(self, span: dict[str, Any]) -> str | None:
        """The program whose span is the nearest ancestor of this span."""
        seen: set[str] = set()
        parent = self.by_id.get(span.get("parent_span_id") or "")
        while parent is not None and parent["span_id"] not in seen:
            if _is_program(parent):
                return str(_attrs(parent)["gen_ai.agent.id"])
            seen.add(parent["span_id"])
            parent = self.by_id.get(parent.get("parent_span_id") or "")
        return None

    def depth(self, pid: str) -> int:
        d, parent = 0, self.parents.get(pid)
        while parent is not None and d <= len(self.parents):
            d, parent = d + 1, self.parents.get(parent)
        return d

    def _depth(self, pid: str, recorded: Any) -> int:
        """The depth a program span records, when it is one the trace's tree allows."""
        depth = as_int(recorded) if recorded is not None else -1
        return depth if 0 <= depth <= len(self.parents) else self.depth(pid)

    def programs(self, provenance: dict[str, str]) -> list[ProgramInfo]:
        out = []
        for span in self.program_spans:
            a = _attrs(span)
            pid = str(a["gen_ai.agent.id"])
            code = a.get("swarmlab.program.code")
            depth = a.get("swarmlab.program.depth")
            out.append(
                ProgramInfo(
                    id=pid,
                    parent_id=self.parents[pid],
                    depth=self._depth(pid, depth),
                    task=str(a.get("swarmlab.program.task") or ""),
                    code=code if isinstance(code, str) else None,
                    status=str(a.get("swarmlab.program.status") or "unknown"),
                    created_at=as_int(span.get("start_ns")) / 1e9,
                    error=str_or_none(a.get("swarmlab.program.error")),
                    limit=_limit_hit(span),
                    error_kind=str_or_none(a.get("swarmlab.program.error_kind")),
                    provenance=provenance.get(pid),
                )
            )
        return out


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
        tokens = detail_count(a.get("gen_ai.usage.input_tokens")) + detail_count(
            a.get("gen_ai.usage.output_tokens")
        )
    return Call(
        t=as_int(span.get("start_ns")) / 1e9,
        program=pid,
        kind=kind,
        decision=decision,
        cap=str(cap) if cap else None,
        tokens=tokens,
        writer=id_or_none(a.get("swarmlab.blackboard.writer")),
        target=id_or_none(a.get("swarmlab.kill.target")),
        stopped=int_or_none(a.get("swarmlab.kill.stopped", a.get("swarmlab.stopped"))),
        reached=reached(a) if kind == "escape_attempt" else None,
    )


_PER_PROGRAM_LIMITS = ("cpu_s", "memory_bytes", "host_calls")


def _limit_hit(span: dict[str, Any]) -> str | None:
    """The per-program limit a program span records as denied, if any."""
    for event in span.get("events") or []:
        cap = (event.get("attributes") or {}).get("swarmlab.cap")
        if event.get("name") == "swarmlab.cap.denied" and cap in _PER_PROGRAM_LIMITS:
            return str(cap)
    return None


def load_trace(path: Path) -> RunData:
    return run_data_from_spans(read_spans(path), source=str(path))

"""What the analysis reads: a run's programs and calls, reduced from its records.

A run directory (through `swarmlab.records.RunDir`) and a traces.jsonl (`_traces`) both reduce
to the same `RunData`; every metric is computed from that alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmlab.core import ESCAPE_KIND, is_program_id, names_with_role
from swarmlab.records import Event, RunDir, RunRecords, RunSummary, detail_count
from swarmlab.spec import ProgramLimits

MODEL_CALLS = names_with_role("model")


@dataclass(frozen=True)
class ProgramInfo:
    """What the analysis needs to know about one program."""

    id: str
    parent_id: str | None
    depth: int
    task: str
    code: str | None
    status: str
    created_at: float
    error: str | None = None
    limit: str | None = None
    """The per-program limit that stopped it (`end` events' `detail.limit`), if one did."""
    error_kind: str | None = None
    """The lab's mark on why it crashed (`end` events' `detail.error_kind`): `denied`, `limit`,
    `unsupported` or `lab_fault`; None when the program's own exception ended it."""
    provenance: str | None = None
    """Where its code came from, as its spawner's `spawn` event says: `completion` (a model
    answer the spawner received), `own_code` (the spawner's own source) or `built`."""


@dataclass(frozen=True)
class Call:
    """One capability call, lifecycle step or escape attempt of a program."""

    t: float
    program: str
    kind: str
    decision: str
    cap: str | None = None
    tokens: int = 0
    writer: str | None = None
    target: str | None = None
    stopped: int | None = None
    reached: str | None = None
    """Escape attempts: what the program reached for, as `import:<module>`, `os:<call>` (a
    refused OS call) or `source:<text>` (seen in the source before it ran)."""
    waited: tuple[str, ...] = ()
    """`wait` calls: the ids waited for (the first 20)."""


@dataclass
class RunData:
    source: str
    run_id: str | None
    scaffold: bool
    programs: list[ProgramInfo]
    calls: list[Call]
    outcome: dict[str, Any]
    unrecorded: int = 0
    """Calls refused for `record_bytes` that the record has no event of (their spans say
    them): the run's count of that cap's denials, or the programs' ends' count."""


def load_run_dir(run_dir: Path, read: RunRecords | None = None) -> RunData:
    """A run directory's data for the analysis, from its records (`read`: already read)."""
    if read is None:
        read = RunDir(run_dir).require().records()
    summary, dialogue, records, events = read.summary, read.dialogue, read.programs, read.events
    root = summary.tree.root if summary is not None else None
    scaffold = bool(dialogue and dialogue.program) or root == "file"
    if dialogue is None and root is None:
        scaffold = bool(records)  # neither file says where the root came from
    provenance: dict[str, str] = {}
    limits: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for e in events:
        if e.kind == "spawn" and e.decision == "allowed":
            child, origin = (
                id_or_none(e.detail.get("child")),
                str_or_none(e.detail.get("provenance")),
            )
            if child and origin:
                provenance[child] = origin
        elif e.kind == "end":
            limit = e.detail.get("limit")
            if isinstance(limit, str) and limit in ProgramLimits.model_fields:  # only a limit
                limits[e.program] = limit
            if str_or_none(e.detail.get("error_kind")):
                kinds[e.program] = str(e.detail["error_kind"])
    programs = [
        ProgramInfo(
            r.id,
            r.parent_id,
            r.depth,
            r.task,
            r.code,
            r.status,
            r.created_at,
            error=r.error,
            limit=limits.get(r.id),
            error_kind=kinds.get(r.id),
            provenance=provenance.get(r.id),
        )
        for r in records
    ]
    return RunData(
        source=str(run_dir),
        run_id=summary.run_id if summary is not None else run_dir.name,
        scaffold=scaffold,
        programs=programs,
        calls=[_call_from_event(e) for e in events if e.program],
        outcome=summary.outcome if summary is not None else {},
        unrecorded=_unrecorded(summary, events),
    )


def _unrecorded(summary: RunSummary | None, events: list[Event]) -> int:
    """Calls the full record refused without an event: summary.json's `record_bytes` denials
    (each counted once however often it was asked again), else what the ends say."""
    if summary is not None and "record_bytes" in summary.caps:
        return detail_count(summary.caps["record_bytes"].denied)  # read back: bounded
    return sum(e.count("unrecorded") for e in events if e.kind == "end")


def _call_from_event(event: Event) -> Call:
    d = event.detail
    tokens = 0
    if event.kind in MODEL_CALLS and event.decision == "allowed":
        tokens = event.count("prompt_tokens") + event.count("completion_tokens")
    return Call(
        t=event.t,
        program=event.program,
        kind=event.kind,
        decision=event.decision,
        cap=event.cap,
        tokens=tokens,
        writer=id_or_none(d.get("writer")) if event.kind == "db_get" else None,
        target=id_or_none(d.get("target")) if event.kind == "kill" else None,
        stopped=int_or_none(d.get("stopped")) if event.kind == "kill" else None,
        reached=reached(d) if event.kind == ESCAPE_KIND else None,
        waited=_ids(d.get("ids")) if event.kind == "wait" else (),
    )


def _ids(value: Any) -> tuple[str, ...]:
    """Program ids from an event's detail (a list of at most 20 strings; anything else: none)."""
    if not isinstance(value, list):
        return ()
    return tuple(str(v)[:200] for v in value[:20] if isinstance(v, str))


def reached(detail: dict[str, Any]) -> str | None:
    """What an escape attempt reached for, from its event detail (or span attributes)."""
    for key in ("import", "os_call", "source"):
        value = str_or_none(detail.get(key) or detail.get(f"swarmlab.{key}"))
        if value:
            return f"{key.removesuffix('_call')}:{value[:200]}"
    return None


def as_int(value: Any) -> int:
    return int_or_none(value) or 0


def str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def id_or_none(value: Any) -> str | None:
    """A program id read back (a writer, a target, a child): a well-formed id, at most 400
    characters, or none. Ids reach the tree's lineage questions, which walk their parts."""
    return value if is_program_id(value) else None


def int_or_none(value: Any) -> int | None:
    number = float_or_none(value)
    return None if number is None else int(value)


def float_or_none(value: Any) -> float | None:
    """A finite number read back, or none (a file may hold anything, Infinity and NaN too)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return number if math.isfinite(number) else None

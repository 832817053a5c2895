"""What the runtime guarantees of the records it writes, checked when a run directory is read
back: a record file anyone may have edited must not make the analysis build a table as large as
a number in it, sort ids by their digits' value, draw a chart to 1e308, or count a program twice.

Each check answers why a record is not one the lab writes (one line) or None. The runtime's own
records pass by construction: ids spell the tree (`p0.3`'s parent is `p0`, its depth 1), times
are Unix seconds of this era, counts are below the caps' bound.
"""

from __future__ import annotations

from typing import Any

from swarmlab.core import ALIASES, WORLD_ACTIONS, is_program_id, parent_id, world_kind
from swarmlab.spec import MAX_COUNT

from . import _figures as figures
from ._event import Event
from ._inputs import ProgramInput
from ._program import ProgramRecord
from ._summary import RunSummary

MAX_UNIX_S = 1e11
"""A time read back is Unix seconds from 1970 to about the year 5000 (0: never set)."""
MAX_CLOCK_H = 1e9
"""A simulated clock read back (hours); the runtime keeps clocks far below this."""


def program_problem(record: ProgramRecord) -> str | None:
    if not is_program_id(record.id):
        return f"id {record.id[:60]!r} is not a program id (p0, p0.1, p0.1.2, ...)"
    if record.parent_id != parent_id(record.id):
        return (
            f"parent_id {str(record.parent_id)[:60]!r} is not the parent its id {record.id} names"
        )
    if record.depth != record.id.count("."):
        return f"depth {record.depth} is not the depth its id {record.id} names"
    for name in ("created_at", "started_at", "ended_at"):
        if (problem := _time_problem(name, getattr(record, name))) is not None:
            return problem
    if not 0 <= record.calls <= MAX_COUNT:
        return f"calls {record.calls} is not a count of calls"
    if not 0 <= record.clock_h <= MAX_CLOCK_H:
        return f"clock_h {record.clock_h} is not a simulated clock"
    return None


def event_problem(event: Event) -> str | None:
    if event.program and not is_program_id(event.program):
        return f"program {event.program[:60]!r} is not a program id"
    if (problem := _time_problem("t", event.t)) is not None:
        return problem
    if event.seq is not None and not 0 <= event.seq <= MAX_COUNT:
        return f"seq {event.seq} is not a call number"
    return None


def _time_problem(name: str, value: float | None) -> str | None:
    if value is None or 0 <= value <= MAX_UNIX_S:
        return None
    return f"{name} {value:.6g} is not a Unix time"


def whole_problem(
    summary: RunSummary, programs: list[ProgramRecord], events: list[Event], dialogue: bool
) -> str | None:
    """Whether the files hold what summary.json says the run recorded: a file emptied, cut
    short or removed would change the metrics without a word."""
    if len(programs) != summary.programs.total:
        return (
            f"programs.jsonl holds {len(programs)} programs, summary.json says "
            f"{summary.programs.total}"
        )
    if len(events) != summary.events:
        return f"events.jsonl holds {len(events)} events, summary.json says {summary.events}"
    # A run its watchdog recovered has no dialogue.json: only its dead driver held the dialogue.
    recovered = summary.recovered
    if (
        summary.tree.root == "dialogue"
        and summary.programs.total
        and not dialogue
        and not recovered
    ):
        return "dialogue.json is missing, and summary.json says the root came from it"
    return None


CALL_KINDS = frozenset({*ALIASES, *(world_kind(a) for a in WORLD_ACTIONS)})
"""The kinds of a call's own event, which each call has at most once (the clock reads, escape
attempts and tripwires that go with a call share its number)."""


def tree_problem(programs: list[ProgramRecord], events: list[Event]) -> str | None:
    """Records that are no run's: programs that do not form one tree from `p0` (a child of no
    recorded parent, a second root, a depth that is not its parent's plus one), an event of no
    recorded program, a program's call event numbered as none of its calls (the runtime numbers
    each from 1 to the program's `calls`), or a call's event given twice (its tokens, its
    denial counted twice), by its number, or, for one without, as the same event."""
    by_id = {p.id: p for p in programs}
    for record in programs:
        parent = by_id.get(record.parent_id) if record.parent_id is not None else None
        if record.parent_id is None:
            if record.id != "p0":
                return f"program {record.id} has no parent, and only p0 is the root"
        elif parent is None or not record.id.startswith(f"{record.parent_id}."):
            return f"program {record.id}'s parent {record.parent_id} is not recorded"
        elif record.depth != parent.depth + 1:
            return f"program {record.id} is at depth {record.depth}, its parent at {parent.depth}"
    calls: set[tuple[Any, ...]] = set()
    for event in events:
        if event.program and event.program not in by_id:
            return f"an event of program {event.program}, which is not recorded"
        if event.kind not in CALL_KINDS:
            continue
        made = by_id[event.program].calls if event.program else None
        if made is not None and event.seq is not None and not 1 <= event.seq <= made:
            return (
                f"a {event.kind} event of {event.program} is numbered {event.seq}, not one of "
                f"its {made} calls"
            )
        key: tuple[Any, ...] = (event.program, event.seq, event.kind, event.decision)
        if event.seq is None:  # no number (the runtime numbers each): the same event twice
            key = (event.program, event.t, event.kind, event.model_dump_json())
        if key in calls:
            return f"call {event.seq} of {event.program} has its {event.kind} event twice"
        calls.add(key)
    return None


def input_problem(seen: set[tuple[str, int]], row: ProgramInput) -> str | None:
    """An input of a call no program made (a malformed id, a number past any count), or of one
    call a second time (each call has one answer: a replay compares it, never one of two)."""
    if not is_program_id(row.program):
        return f"program {row.program[:60]!r} is not a program id (p0, p0.1, p0.1.2, ...)"
    if row.call > MAX_COUNT:
        return f"call {row.call} is not a call number"
    if (row.program, row.call) in seen:
        return f"call {row.call} of {row.program} is recorded twice"
    seen.add((row.program, row.call))
    return None


def duplicate_problem(seen: set[str], record: ProgramRecord) -> str | None:
    """A program recorded a second time (each program has one line)."""
    if record.id in seen:
        return f"program {record.id} is recorded twice"
    seen.add(record.id)
    return None


def figures_problem(
    summary: RunSummary, programs: list[ProgramRecord], events: list[Event]
) -> str | None:
    """A figure of summary.json that its records give otherwise (`_figures`: the one
    computation of both): the report shows summary.json's figures beside the records' own.

    The caps' use is what Redis held at the run's end, where `spawn` charges a program and
    keeps its record in one step: `programs` is the number of records, `depth` the deepest,
    `children` the most one program has. A run whose Redis was gone at its end
    (`caps_last_seen`) has the use its watch last read, which its records may not match."""
    tree = summary.tree
    checks: list[tuple[str, object, object]] = [
        ("programs.by_status", summary.programs.by_status, figures.by_status(programs)),
        ("tree.size", tree.size, len(programs)),
        ("tree.max_depth", tree.max_depth, figures.max_depth(programs)),
        ("tree.branching", tree.branching, figures.branching(programs)),
        ("programs_restarted", summary.programs_restarted, figures.programs_restarted(events)),
        ("model.failed_calls", summary.model.failed_calls, figures.failed_model_calls(events)),
        ("model.resent_calls", summary.model.resent_calls, figures.resent_model_calls(events)),
    ]
    if not summary.caps_last_seen:
        used = {
            "programs": len(programs),
            "depth": figures.max_depth(programs),
            "children": figures.most_children(programs),
        }
        checks += [
            (f"caps.{cap}.used", summary.caps[cap].used, count)
            for cap, count in used.items()
            if cap in summary.caps
        ]
    for field, said, found_here in checks:
        if said != found_here:
            return f"{field} = {_short(said)}, the records give {_short(found_here)}"
    return None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."

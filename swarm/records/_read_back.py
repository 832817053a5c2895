"""What the runtime guarantees of the records it writes, checked when a run directory is read
back: a record file anyone may have edited must not make the analysis build a table as large as
a number in it, sort ids by their digits' value, draw a chart to 1e308, or count a program twice.

Each check answers why a record is not one the lab writes (one line) or None. The runtime's own
records pass by construction: ids spell the tree (`p0.3`'s parent is `p0`, its depth 1), times
are Unix seconds of this era, counts are below the caps' bound.
"""

from __future__ import annotations

from swarmlab.core import is_program_id, parent_id
from swarmlab.spec import MAX_COUNT

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


def whole_problem(summary: RunSummary, programs: int, events: int, dialogue: bool) -> str | None:
    """Whether the files hold what summary.json says the run recorded: a file emptied, cut
    short or removed would change the metrics without a word."""
    if programs != summary.programs.total:
        return (
            f"programs.jsonl holds {programs} programs, summary.json says {summary.programs.total}"
        )
    if events != summary.events:
        return f"events.jsonl holds {events} events, summary.json says {summary.events}"
    if summary.tree.root == "dialogue" and summary.programs.total and not dialogue:
        return "dialogue.json is missing, and summary.json says the root came from it"
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

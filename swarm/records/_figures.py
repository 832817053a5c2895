"""The figures summary.json takes from the run's records: one computation, used when the summary
is written (`RunResult.summary`) and when a run directory is read back (`_read_back`), so a
figure that no longer matches its records is seen."""

from __future__ import annotations

from collections import Counter

from swarmlab.core import names_with_role

from ._event import Event
from ._program import ProgramRecord


def by_status(programs: list[ProgramRecord]) -> dict[str, int]:
    """Programs by how they ended, sorted by status."""
    return dict(sorted(Counter(p.status for p in programs).items()))


def max_depth(programs: list[ProgramRecord]) -> int:
    return max((p.depth for p in programs), default=0)


def children(programs: list[ProgramRecord]) -> Counter[str]:
    """Each parent's number of children."""
    return Counter(p.parent_id for p in programs if p.parent_id)


def branching(programs: list[ProgramRecord]) -> float:
    """Mean children per program that has children."""
    kids = children(programs)
    return round(sum(kids.values()) / len(kids), 3) if kids else 0.0


def most_children(programs: list[ProgramRecord]) -> int:
    """The most children one program has: what the `children` cap's use is."""
    return max(children(programs).values(), default=0)


def failed_model_calls(events: list[Event]) -> int:
    model_calls = names_with_role("model")
    return sum(
        1
        for e in events
        if e.kind in model_calls and e.decision == "error" and "model_error" in e.detail
    )


def resent_model_calls(events: list[Event]) -> int:
    model_calls = names_with_role("model")
    return sum(
        max(0, int(e.detail.get("attempts") or 1) - 1)
        for e in events
        if e.kind in model_calls and isinstance(e.detail.get("attempts"), int)
    )


def programs_restarted(events: list[Event]) -> int:
    return len({e.program for e in events if e.kind == "restart"})

"""A record never counts fewer calls than its events show.

A program stopped while it computes is recorded from the count its runner had heard. A call
Redis applied just before the stop (journaled, its events sent) whose answer the runner had not
yet heard, or a call kept for its turn that the stop dropped (its events added), was one its
runner had not counted: the record said N calls while events.jsonl held N + 1 call numbers.
The run's end now counts each program's calls as at least its events' highest call number.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from swarmlab.records import Event, ProgramRecord
from swarmlab.runtime._finish import count_calls

IDS = ["p0", "p0.1", "p0.2"]


def _record(pid: str, calls: int, status: str = "killed") -> ProgramRecord:
    return ProgramRecord(id=pid, code="x = 1", status=status, calls=calls)  # type: ignore[arg-type]


def _event(pid: str, seq: int | None, kind: str = "log") -> Event:
    return Event(t=1.0, program=pid, kind=kind, decision="allowed", seq=seq)


def test_a_call_applied_before_the_stop_is_counted() -> None:
    killed = _record("p0.1", calls=5)  # its runner heard five answers; Redis applied six
    events = [_event("p0.1", n) for n in range(1, 7)] + [_event("p0.1", None, "end")]
    count_calls([killed], events)
    assert killed.calls == 6


def test_calls_without_events_stay_counted() -> None:
    full = _record("p0", calls=7, status="completed")  # refused for a full record: no event
    count_calls([full], [_event("p0", n) for n in range(1, 4)])
    assert full.calls == 7


@given(
    counts=st.lists(st.integers(0, 50), min_size=len(IDS), max_size=len(IDS)),
    seqs=st.lists(st.tuples(st.sampled_from([*IDS, "p9"]), st.none() | st.integers(1, 60))),
)
def test_no_record_counts_fewer_calls_than_its_events(
    counts: list[int], seqs: list[tuple[str, int | None]]
) -> None:
    records = [_record(pid, n) for pid, n in zip(IDS, counts, strict=True)]
    count_calls(records, [_event(pid, seq) for pid, seq in seqs])
    for record, before in zip(records, counts, strict=True):
        shown = [seq for pid, seq in seqs if pid == record.id and seq is not None]
        assert record.calls == max([before, *shown])

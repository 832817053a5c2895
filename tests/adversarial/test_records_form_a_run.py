"""Records that are no run's: a report read an event of a program that was never recorded (its
tokens counted, 46 million in a run capped at 600,000), a call's event written over other lines
(the same model call counted 51 times, and again with the copies' numbers taken away or set
past the program's calls), a program moved to depth 19 in a run capped at 6, and a
tree with its root replaced. Each line is valid on its own and every count summary.json keeps
still matches: only the records read together tell. Searched with hypothesis, through the
command line in process: each is refused in one line, exit 2.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers.cli import assert_plain_outcome, cli
from helpers.small_run import write_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SEARCH = settings(
    max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def foreign_event(run: Path, data: Any) -> None:
    """An event turned into a model call of a program no record has."""
    events = _lines(run / "events.jsonl")
    at = data.draw(st.integers(0, len(events) - 1), label="event")
    who = data.draw(st.sampled_from(["p0.7", "p0.1.1", "p0" + ".7" * 10, "p1"]), label="who")
    events[at] |= {"program": who, "kind": "run_ai", "decision": "allowed", "seq": 1,
                   "detail": {"prompt_tokens": 100000, "completion_tokens": 100000}}  # fmt: skip
    _write(run / "events.jsonl", events)


def call_twice(run: Path, data: Any) -> None:
    """A call's event copied over another line (the count of lines kept)."""
    events = _lines(run / "events.jsonl")
    calls = [i for i, e in enumerate(events) if e.get("seq") is not None]
    source = data.draw(st.sampled_from(calls), label="call")
    target = data.draw(st.sampled_from([i for i in range(len(events)) if i != source]))
    events[target] = dict(events[source])
    _write(run / "events.jsonl", events)


def renumbered_call(run: Path, data: Any) -> None:
    """A call's event copied over other lines with its number taken away, or over one with its
    number set past the program's calls (so no number was given twice: 50 copies of one model
    call counted 50 times over)."""
    from swarmlab.core import ALIASES

    events = _lines(run / "events.jsonl")
    calls = {p["id"]: p["calls"] for p in _lines(run / "programs.jsonl")}
    made = [i for i, e in enumerate(events) if e.get("kind") in ALIASES and e.get("seq")]
    source = data.draw(st.sampled_from(made), label="call")
    past = calls[events[source]["program"]] + data.draw(st.integers(1, 1000), label="past")
    seq = data.draw(st.sampled_from([None, 0, -1, past]), label="seq")
    others = [i for i in range(len(events)) if i != source]
    copies = 2 if seq is None else 1  # unnumbered, a copy is a call twice only beside another
    for target in data.draw(st.lists(st.sampled_from(others), min_size=copies, max_size=copies,
                                     unique=True), label="over"):  # fmt: skip
        events[target] = dict(events[source]) | {"seq": seq}
    _write(run / "events.jsonl", events)


def moved_program(run: Path, data: Any) -> None:
    """A program's id (and maybe its depth) changed: a child of no recorded parent, a second
    root, or a depth that is not its parent's plus one."""
    programs = _lines(run / "programs.jsonl")
    how = data.draw(st.sampled_from(["deep", "root", "depth", "orphan"]), label="how")
    child = next(p for p in programs if p["parent_id"])
    if how == "deep":
        child |= {"id": "p0" + ".5" * 19, "depth": 19, "parent_id": "p0" + ".5" * 18}
    elif how == "root":
        root = next(p for p in programs if not p["parent_id"])
        root["id"] = "p0.99"
    elif how == "depth":
        child["depth"] += data.draw(st.sampled_from([1, 5, -1]), label="by")
    else:
        child |= {"id": "p0.9.1", "parent_id": "p0.9"}
    _write(run / "programs.jsonl", programs)


TAMPER: dict[str, Callable[[Path, Any], None]] = {
    "foreign_event": foreign_event,
    "call_twice": call_twice,
    "renumbered_call": renumbered_call,
    "moved_program": moved_program,
}


@SEARCH
@given(how=st.sampled_from(sorted(TAMPER)), command=st.sampled_from(["report", "json"]),
       data=st.data())  # fmt: skip
def test_records_that_are_no_runs_are_refused(how: str, command: str, data: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = write_run(Path(tmp) / "run")
        args = ("report", str(run)) if command == "report" else ("report", str(run), "--json")
        assert_plain_outcome(cli(*args), (0,))
        TAMPER[how](run, data)
        result = cli(*args)
        assert_plain_outcome(result, (2,))
        assert str(run) in result[2]

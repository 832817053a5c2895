"""A replay is identical only when every input matched and every program ended the same way:
a program whose result, status or error differs is named even where no journaled input shows
it (a child cut by a host-speed limit at another point, say)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from swarmlab.records import ProgramInput, ProgramRecord, compare_ends, compare_inputs

INPUTS = [ProgramInput(program="p0", call=1, answer={"views": []})]


def records(results: list[Any]) -> list[ProgramRecord]:
    ids = ["p0"] + [f"p0.{i}" for i in range(1, len(results))]
    return [
        ProgramRecord(id=i, code="1", status="completed", result=r)
        for i, r in zip(ids, results, strict=True)
    ]


values = st.one_of(
    st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3)
)


@given(st.lists(values, min_size=1, max_size=4), st.data())
def test_a_program_that_ended_otherwise_makes_the_replay_not_identical(
    results: list[Any], data: st.DataObject
) -> None:
    changed = list(results)
    at = data.draw(st.integers(0, len(results) - 1))
    changed[at] = data.draw(values)
    check = compare_ends(compare_inputs("src", INPUTS, INPUTS), records(results), records(changed))
    assert check.identical == (changed == results)
    if not check.identical:
        assert check.first_divergence is not None
        assert check.first_divergence.program == records(results)[at].id
        assert check.first_divergence.call == 0


def test_a_missing_program_is_named() -> None:
    check = compare_ends(compare_inputs("src", INPUTS, INPUTS), records([1, 2]), records([1]))
    assert not check.identical
    assert check.first_divergence is not None
    assert (check.first_divergence.program, check.first_divergence.got) == (
        "p0.1",
        "no such program",
    )

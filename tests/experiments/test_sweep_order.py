"""A sweep starts its longest cells first, as far as it knows their lengths, and keeps the grid's
order where order could change a result (a sweep budget)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.experiments import Cell
from swarmlab.experiments.sweeps._order import CellOrder, condition_key
from swarmlab.spec import ExperimentSpec

SPEC = ExperimentSpec()


def grid(conditions: int, seeds: int) -> list[Cell]:
    """Cells in the grid's order: each condition's seeds, one condition after the other."""
    return [
        Cell(id=f"c{c}-s{s}", condition={"caps.tokens": 1000 * (c + 1)}, seed=s, spec=SPEC)
        for c in range(conditions)
        for s in range(1, seeds + 1)
    ]


def schedule(
    cells: list[Cell], length: dict[str, float], slots: int, in_order: bool
) -> tuple[list[str], float]:
    """The order cells start in, `slots` at a time, each of a condition taking `length`; and
    when the last one ends."""
    order, now = CellOrder(cells, in_order), 0.0
    running: list[tuple[float, float, Cell]] = []
    started: list[str] = []
    while order.waiting or running:
        while order.waiting and len(running) < slots:
            cell = order.take(now)
            started.append(cell.id)
            running.append((now + length[condition_key(cell)], now, cell))
        running.sort(key=lambda r: r[0])
        now, began, done = running.pop(0)
        order.finished(done, began, now)
    return started, now


@settings(max_examples=200, deadline=None)
@given(
    conditions=st.integers(1, 6),
    seeds=st.integers(1, 5),
    slots=st.integers(1, 5),
    lengths=st.lists(st.floats(0.5, 100), min_size=6, max_size=6),
    in_order=st.booleans(),
)
def test_every_cell_starts_once_and_a_budget_keeps_the_grids_order(
    conditions: int, seeds: int, slots: int, lengths: list[float], in_order: bool
) -> None:
    cells = grid(conditions, seeds)
    length = {condition_key(c): lengths[i // seeds] for i, c in enumerate(cells)}
    order, _ = schedule(cells, length, slots, in_order)
    assert sorted(order) == sorted(c.id for c in cells)
    if in_order:
        assert order == [c.id for c in cells]
    else:  # each condition's first cell goes before any condition's second
        firsts = {condition_key(c): c.id for c in reversed(cells)}
        assert order[:conditions] == [firsts[condition_key(c)] for c in cells[::seeds]]


def test_the_longest_conditions_go_first_once_they_are_seen_to_be_long() -> None:
    cells = grid(4, 5)  # the grid lists the longest condition last, as the pumping curve does
    length = {condition_key(c): 2.0 ** (i // 5) for i, c in enumerate(cells)}
    order, ends = schedule(cells, length, 4, in_order=False)
    assert order[:4] == ["c0-s1", "c1-s1", "c2-s1", "c3-s1"]  # one of each condition first
    assert order[-2:] != ["c3-s4", "c3-s5"]  # the longest do not end the sweep
    _, ends_in_grid_order = schedule(cells, length, 4, in_order=True)
    assert ends < ends_in_grid_order

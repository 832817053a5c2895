"""Which waiting cell of a sweep starts next: the longest first, as far as the sweep knows.

A sweep's cells differ in length by far (a 300k-token cell of the pumping curve takes 20 times a
10k one), and the grid lists them in its own order, so taken in that order the longest cells
may start last, and the sweep then ends on a few of them running alone while the other slots
stand idle. So each condition's first cell starts first, in the grid's order, and after those
the cells of the condition that looks longest: the longest a finished cell of it took, or, while
its cells are all still running, how long the first of them has run so far (a lower bound).
This is the longest-processing-time rule, on lengths measured as the sweep goes.

Order never changes a cell's result (each is an ordinary run of its own spec and seed), with one
exception: under a sweep budget, what is left of the budget goes to whichever cell asks first,
so a sweep with a budget runs its cells in the grid's order, as written.
"""

from __future__ import annotations

import json

from ._plan import Cell


def condition_key(cell: Cell) -> str:
    """The cell's condition (its grid values, not its seed), as one comparable text."""
    return json.dumps(cell.condition, sort_keys=True, default=str)


class CellOrder:
    """The cells still to start, and what the sweep has seen of each condition's length."""

    def __init__(self, cells: list[Cell], in_order: bool) -> None:
        """`cells`: in the grid's order. `in_order`: the sweep has a budget."""
        self.waiting = list(cells)
        self.in_order = in_order
        self.took_s: dict[str, float] = {}
        """The longest a finished cell of each condition took."""
        self.running: dict[str, list[float]] = {}
        """When each running cell of a condition started."""

    def take(self, now: float) -> Cell:
        """Remove and return the cell to start next (there is one), started at `now`."""
        index = 0 if self.in_order else self._next(now)
        cell = self.waiting.pop(index)
        self.running.setdefault(condition_key(cell), []).append(now)
        return cell

    def finished(self, cell: Cell, began: float, now: float) -> None:
        """A cell started at `began` has ended at `now`."""
        key = condition_key(cell)
        self.took_s[key] = max(self.took_s.get(key, 0.0), now - began)
        starts = self.running.get(key, [])
        if began in starts:
            starts.remove(began)

    def _next(self, now: float) -> int:
        keys = [condition_key(c) for c in self.waiting]
        for i, key in enumerate(keys):
            if key not in self.took_s and not self.running.get(key):
                return i  # a condition not started yet: its first cell

        def looks(i: int) -> tuple[float, int]:
            starts = self.running.get(keys[i]) or [now]
            return max(self.took_s.get(keys[i], 0.0), now - min(starts)), -i

        return max(range(len(keys)), key=looks)

"""Budgets of work for reading a program's code, which is hostile: bounded in time, not only
in the size of what a reading produces.

A program's source is bounded (`_texts.MAX_FLOW_CHARS`), but a static reading of it can cost
far more than its size. Names bound once form a graph whose paths multiply: `a1 = "" + "" +
...`, `a2 = a1 + a1 + ...`, and so on, K terms at each of four levels, is K**4 steps read
naively, and texts that stay empty never reach a bound on characters. A name bound to another
that is bound to it (`a = b`, `b = a`) is a cycle, and an unrolled loop copies code. So every
pass whose work is not plainly one walk of the tree spends from a `Work` budget, counted in units
of work: a syntax node visited or copied, an element or key of a literal scanned,
`CHARS_PER_UNIT` characters built. A pass that would go past its limit stops there, and what
it had not read stays unknown, as a text past the bound on characters does.
"""

from __future__ import annotations

CHARS_PER_UNIT = 64
"""Characters built (or kept) per unit of work."""
WORK_PER_CHAR = 16
"""Units of work a reading may spend per character of the source it reads."""
MIN_WORK = 4_096
"""Units of work any reading may spend, however short the source."""
MAX_WORK = 131_072
"""The most units of work one reading spends, however long the source."""


class WorkExhausted(Exception):
    """A reading spent its whole budget."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"work budget of {limit} units spent")
        self.limit = limit


class Work:
    """A budget of units of work for one reading of one program: `limit`, `usage` (never past
    the limit) and `remaining`. A spend the budget cannot afford is refused: it raises
    WorkExhausted, and so does every spend after it (`exhausted`)."""

    def __init__(self, limit: int = MAX_WORK) -> None:
        self.limit = limit
        self.usage = 0
        self.exhausted = False

    @classmethod
    def for_source(cls, chars: int) -> Work:
        """The budget of a reading of `chars` characters of source: linear in it, capped."""
        return cls(min(MAX_WORK, MIN_WORK + WORK_PER_CHAR * max(0, chars)))

    @property
    def remaining(self) -> int:
        return self.limit - self.usage

    def spend(self, units: int = 1) -> None:
        if self.exhausted or units > self.remaining:
            self.exhausted = True
            raise WorkExhausted(self.limit)
        self.usage += units

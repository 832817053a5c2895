"""Program ids and the tree they spell: `p0` is the root, `p0.3` its third child, and so on.

A program's id names its whole ancestry, so lineage questions need no lookup.
"""

from __future__ import annotations

import re

ROOT_ID = "p0"
_ID = re.compile(r"p0(?:\.[1-9][0-9]{0,5})*")


def is_program_id(value: object) -> bool:
    """True if `value` is a well-formed program id (`p0`, `p0.1`, `p0.1.12`, ...)."""
    return isinstance(value, str) and len(value) <= 400 and _ID.fullmatch(value) is not None


def child_id(parent_id: str, index: int) -> str:
    """The id of a parent's `index`-th child (1-based)."""
    return f"{parent_id}.{index}"


def parent_id(program_id: str) -> str | None:
    """The parent's id, None for the root."""
    head, sep, _ = program_id.rpartition(".")
    return head if sep else None


def depth_of(program_id: str) -> int:
    """Distance from the root (the root is 0)."""
    return program_id.count(".")


def in_lineage(program_id: str, ancestor_id: str) -> bool:
    """True if `program_id` is `ancestor_id` or one of its descendants."""
    return program_id == ancestor_id or program_id.startswith(ancestor_id + ".")


def related(a: str, b: str) -> bool:
    """True if one program is the other's ancestor (or the same program): same lineage."""
    return in_lineage(a, b) or in_lineage(b, a)


def ancestors(program_id: str) -> list[str]:
    """Ids of a program's ancestors, nearest first ("p0.2.1" -> ["p0.2", "p0"])."""
    parts = program_id.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def id_sort_key(program_id: str) -> tuple[tuple[int, int, str], ...]:
    """Orders program ids as a tree is read: p0, p0.1, p0.1.1, p0.2, ..., p0.10."""
    return tuple(
        (0, int(part), "") if _number(part) else (1, 0, part) for part in program_id.split(".")
    )


def _number(part: str) -> bool:
    """An id part read as a number: ASCII digits (`'²'.isdigit()` too), short enough that
    reading it is cheap (a hostile file may give thousands of digits)."""
    return part.isascii() and part.isdigit() and len(part) <= 18

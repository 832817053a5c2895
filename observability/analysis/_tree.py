"""The program tree of a run, as the analysis asks about it: ancestors, subtrees, lineages."""

from __future__ import annotations

from collections import Counter

from ._data import ProgramInfo


class Tree:
    """Programs by id, with their children counted and their ancestors (nearest first) known."""

    def __init__(self, programs: list[ProgramInfo]) -> None:
        self.programs = {p.id: p for p in programs}
        self.children = Counter(p.parent_id for p in programs if p.parent_id)
        self._ancestors: dict[str, tuple[str, ...]] = {}

    def ancestors(self, pid: str) -> tuple[str, ...]:
        """Nearest first. Ids unknown to the run fall back to their dotted prefixes."""
        known = self._ancestors.get(pid)
        if known is not None:
            return known
        if pid not in self.programs:
            parts = pid.split(".")
            return tuple(".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1))
        out: list[str] = []
        seen = {pid}  # a set: a deep chain costs its length, not its length squared
        parent = self.programs[pid].parent_id
        while parent is not None and parent not in seen:
            out.append(parent)
            seen.add(parent)
            parent = self.programs[parent].parent_id if parent in self.programs else None
        self._ancestors[pid] = tuple(out)
        return self._ancestors[pid]

    def in_subtree(self, pid: str, root: str) -> bool:
        if pid not in self.programs:  # by its dotted prefixes, read in place, never built
            return pid == root or pid.startswith(root + ".")
        return pid == root or root in self.ancestors(pid)

    def same_lineage(self, a: str, b: str) -> bool:
        return self.in_subtree(a, b) or self.in_subtree(b, a)

    def unrelated_pairs(self) -> int:
        """Ordered pairs of distinct programs where neither is the other's ancestor: the
        (reader, writer) pairs a cross-lineage edge could join."""
        n = len(self.programs)
        related = sum(a in self.programs for pid in self.programs for a in self.ancestors(pid))
        return n * (n - 1) - 2 * related

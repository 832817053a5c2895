"""Which per-program limit stopped a slice, read from Monty's own error and checked against
what only the host knows: the slice's compute time and host calls, the heap and feed limits it
gave Monty (each less a few units drawn from the program's seed, numbers the program does not
know), or an error with no frame (a worker terminated mid-allocation). A program that raises
the same words itself is not counted as stopped by a limit (summary.json's denials are the
lab's, never a program's)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from ._seeds import stable_seed

# Why a program stopped, by the exact text Monty gives when a per-program limit is hit, checked
# against what the slice really used (its compute time, its host calls) or against a number only
# the host knows (its heap limit): a program that raises `MemoryError('memory limit exceeded:
# ...')` itself was not stopped by its memory limit, and is not counted as a denial of it
# (summary.json's denials are the lab's, never a program's).
_DURATION = r"([0-9]+(?:\.[0-9]+)?)(ns|µs|us|ms|s)"
_CPU_TEXT = re.compile(rf"TimeoutError: feed time limit exceeded: {_DURATION} > {_DURATION}")
_UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
_MEMORY_TEXT = re.compile(r"MemoryError: memory limit exceeded: (\d+) bytes > (\d+) bytes")
_CALLS_TEXT = re.compile(r"RuntimeError: suspension limit (\d+) exceeded")
# A worker the pool kills for outlasting its feed (cpu_s plus a grace) is the cpu_s limit too.
WORKER_TIMEOUT = "killed after exceeding request timeout"
_CPU_SHARE = 0.9
"""A first slice's timeout counts when it computed at least this share of its cpu_s."""
_WORKER_OOM = "MemoryError: the worker exceeded its memory limit and was terminated"
"""Monty's words for a worker its pool terminated for going over the heap limit mid-allocation.
Such an error has no frames (the worker that could report them is gone); a program's own
`raise` of the same words always has one."""


@dataclass(frozen=True)
class SliceLimits:
    """What is left of a program's per-program limits for one slice.

    Each slice is held to the limits given here, counted from the slice's start, except for
    compute time: Monty's compute clock runs on across a program's snapshots (a slice that
    loads one starts from the time of every slice before it), so `cpu_s` is the program's whole
    budget, never what is left of it.
    """

    cpu_s: float
    memory_bytes: int
    suspensions: int
    spent_s: float = 0.0
    """Compute time the program spent in its earlier slices."""
    cut_after: int | None = None
    """A replay's recorded `cpu_s` cut: the slice stops the program when it asks for more
    suspensions than this (a loaded snapshot's parked call not counted) (`_cuts.py`)."""


class Used(Protocol):
    """What a slice used so far (`_sandbox._Slice`)."""

    suspensions: int

    def compute_s(self) -> float: ...


def limit_hit(error: str, limits: SliceLimits, used: Used, seed: int, exc: Any) -> str | None:
    """The per-program limit Monty stopped the program at, if the error is one and the slice
    really reached it (the program's own `raise` of the same words is not). `exc` is Monty's
    runtime error."""
    error = error.strip()
    if error == _WORKER_OOM:
        return "memory_bytes" if _frameless(exc) else None
    cpu = _CPU_TEXT.fullmatch(error)
    if cpu:
        return "cpu_s" if _ran_out_of_time(cpu, limits, used, seed) else None
    memory = _MEMORY_TEXT.fullmatch(error)
    if memory:
        heap, limit = int(memory.group(1)), int(memory.group(2))
        reached = limit == heap_bytes(limits, seed) and heap > limit
        return "memory_bytes" if reached else None
    calls = _CALLS_TEXT.fullmatch(error)
    if calls:
        allowed = suspensions(limits)
        reached = int(calls.group(1)) == allowed and used.suspensions >= allowed - 1
        return "host_calls" if reached else None
    return None


def _ran_out_of_time(text: re.Match[str], limits: SliceLimits, used: Used, seed: int) -> bool:
    """Whether a feed timeout is Monty's. It names the limit it was given: the program's cpu_s
    less a few microseconds drawn from its seed, a number the program does not know (as the
    heap limit). A first slice is also checked by its measure (Monty's clock runs on across
    snapshots, so a later slice's is not)."""
    took = float(text.group(1)) * _UNITS[text.group(2)]
    limit = float(text.group(3)) * _UNITS[text.group(4)]
    feed = feed_s(limits, seed)
    if took <= limit or abs(limit - feed) > 4e-7:
        return False
    return limits.spent_s > 0 or used.compute_s() >= _CPU_SHARE * feed


def cut_here(limits: SliceLimits, steps: int) -> bool:
    return limits.cut_after is not None and steps > limits.cut_after


def heap_bytes(limits: SliceLimits, seed: int) -> int:
    """The heap limit given to Monty: `memory_bytes` less a few bytes (1 to 4096) drawn from the
    program's seed, which the program does not know. Monty's error names the limit, so only a
    real memory-limit error names this number: one the program raises itself cannot."""
    return limits.memory_bytes - 1 - stable_seed(seed, "heap") % 4096


def feed_s(limits: SliceLimits, seed: int) -> float:
    """Monty's feed limit: cpu_s less 1 to 1024 microseconds drawn from the program's seed."""
    return max(0.05, limits.cpu_s) - (1 + stable_seed(seed, "feed") % 1024) * 1e-6


def suspensions(limits: SliceLimits) -> int:
    return max(1, limits.suspensions)


def _frameless(exc: Any) -> bool:
    """Whether Monty's runtime error carries no frame at all (nothing of the program raised it)."""
    try:
        return exc is not None and not exc.traceback()
    except Exception:  # no frames to read: not known to be frameless
        return False

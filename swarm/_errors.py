"""Errors, by who must react to them.

A generated program's own mistakes and denials go back into the program as exceptions
(`ProgramFault` subclasses, turned into builtin exception types at the sandbox boundary).
Faults of the lab's infrastructure raise `SwarmError` subclasses; the CLI maps them to a
one-line message and an exit code.
"""

from __future__ import annotations


class SwarmError(Exception):
    """A fault the operator must see (exit code 1 unless a subclass says otherwise)."""

    exit_code = 1


class SpecError(SwarmError):
    """The experiment spec or the command line is wrong (exit code 2)."""

    exit_code = 2


class CoordinatorUnavailable(SwarmError):
    """Redis cannot be reached: nothing proceeds (fail closed)."""


class ProgramFault(Exception):
    """Raised into a generated program; `exc_type` is the builtin type the program sees."""

    exc_type = "RuntimeError"


class CapExceeded(ProgramFault):
    """A cap denied the call. The program sees `RuntimeError("CapExceeded(<cap>): ...")`."""

    def __init__(self, cap: str, detail: str) -> None:
        self.cap = cap
        super().__init__(f"CapExceeded({cap}): {detail}")


class RunKilled(ProgramFault):
    """The run is being stopped; every further call is refused."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"run stopped: {reason}")


class BadCall(ProgramFault):
    """Wrong arguments to a capability (the program sees a `ValueError`)."""

    exc_type = "ValueError"


class UnknownCapability(ProgramFault):
    """A name that is not part of the capability API (the program sees a `NameError`)."""

    exc_type = "NameError"

"""Errors, by who must react to them.

Every error the lab raises derives from `SwarmlabError`, which carries the exit code the command
line turns it into: the CLI prints one line and exits, never a traceback for a known fault.

- `SpecError` (exit 2): the experiment spec or the command line is wrong; the user fixes it.
- `CoordinatorUnavailable`, `ClusterError`, `ModelError` (exit 1): infrastructure the operator
  must look at.
- `ProgramFault` and its subclasses: what a generated program did wrong or was refused. They go
  back into the program as a builtin exception type it can catch (`exc_type`), and into the
  record. They are not `SwarmlabError`s: a program's mistakes never end the run.
"""

from __future__ import annotations


class SwarmlabError(Exception):
    """A fault the operator must see (exit code 1 unless a subclass says otherwise)."""

    exit_code = 1


class SpecError(SwarmlabError):
    """The experiment spec or the command line is wrong (exit code 2)."""

    exit_code = 2


class CoordinatorUnavailable(SwarmlabError):
    """Redis cannot be reached: nothing proceeds (fail closed)."""


class ClusterError(SwarmlabError):
    """A server or cluster could not be started or reached."""


class ModelError(SwarmlabError):
    """A model call failed (endpoint down, bad answer, unknown backend)."""


class ProgramFault(Exception):
    """Raised into a generated program; `exc_type` is the builtin type the program sees."""

    exc_type = "RuntimeError"


class CapExceeded(ProgramFault):
    """A cap denied the call. The program sees `RuntimeError("CapExceeded(<cap>): ...")`.

    `limit` is the cap's limit and `asked` what the call would have brought its usage to
    (both None when the denial was not decided against a number, e.g. a sweep-wide cap).
    """

    def __init__(
        self, cap: str, detail: str = "", limit: float | None = None, asked: float | None = None
    ) -> None:
        self.cap = cap
        self.limit = limit
        self.asked = asked
        if not detail:
            detail = "limit reached"
            if limit is not None and asked is not None:
                detail = f"{_num(asked)} asked, limit {_num(limit)}"
        super().__init__(f"CapExceeded({cap}): {detail}")


class RunKilled(ProgramFault):
    """The run is being stopped; every further call is refused."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"run stopped: {reason}")


class BadCall(ProgramFault):
    """Wrong arguments to a capability (the program sees a `ValueError`)."""

    exc_type = "ValueError"


class ModelCallFailed(ProgramFault):
    """The model could not answer (its endpoint gone after the backend's retries, a bad answer).

    The program sees `RuntimeError("model call failed: ...")` and may go on; the run counts it
    in summary.json (`model.failed_calls`).
    """


class UnknownCapability(ProgramFault):
    """A name that is not part of the capability API (the program sees a `NameError`)."""

    exc_type = "NameError"


class Tripped(ProgramFault):
    """A `deny` tripwire refused the call (the program sees `PermissionError`)."""

    exc_type = "PermissionError"

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"Tripwire({name}): {why}")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"

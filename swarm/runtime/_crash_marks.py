"""Why a program crashed, as the lab knows it: a mark on the record, never read from text.

The runtime knows what it raised into a program and what it refused: a cap's denial, a
per-program limit (the sandbox checks Monty's error against the slice's own measures), a
tripwire's refusal, an import or OS call the sandbox does not provide, or its own failure. When
a program crashes right after such a step, before it made any other call, that step ended it
(uncaught, or caught and raised again in its own words): its `end` event carries `error_kind`,
and the analysis reads the mark. A program that raises an exception with no such step before
it carries none, whatever its message says (`RuntimeError("CapExceeded(tokens): ...")` is the
program's own code fault).
"""

from __future__ import annotations

from swarmlab.core import CapExceeded, ProgramFault, Tripped
from swarmlab.spec import ProgramLimits

from ._sandbox import SandboxOutcome

ERROR_KINDS = ("denied", "limit", "unsupported", "lab_fault")
"""The marks: an uncaught denial by the lab (a global cap, a tripwire), a per-program limit,
a facility the sandbox refused (an import, an OS call), a failure of the lab itself."""
PER_PROGRAM = frozenset(ProgramLimits.model_fields)


def error_kind(
    outcome: SandboxOutcome, raised: ProgramFault | None, refused: str | None
) -> str | None:
    """The mark of a crashed program's end, or None (its own fault). `raised` is what the lab
    raised into it at its last call; `refused` what the sandbox refused it last (an import, an
    OS call), when nothing came after."""
    if outcome.status != "crashed":
        return None
    if outcome.limit:
        return "limit"
    error = (outcome.error or "").strip()
    if error.startswith("sandbox worker died"):  # the sandbox's own words, never a program's
        return "lab_fault"
    if isinstance(raised, CapExceeded):
        return "limit" if raised.cap in PER_PROGRAM else "denied"
    if isinstance(raised, Tripped):
        return "denied"
    if refused is not None:
        return "unsupported"
    return None

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

import builtins
import re

from swarmlab.core import CapExceeded, ProgramFault, Tripped
from swarmlab.spec import ProgramLimits

from ._sandbox import SandboxOutcome

ERROR_KINDS = ("denied", "limit", "unsupported", "lab_fault")
"""The marks: an uncaught denial by the lab (a global cap, a tripwire), a per-program limit,
a facility the sandbox refused (an import, an OS call, a language feature or builtin Monty
lacks), a failure of the lab itself."""
PER_PROGRAM = frozenset(ProgramLimits.model_fields)
_SANDBOX_REFUSAL = re.compile(
    r"^NotImplementedError: The monty syntax parser does not yet support "
    r"|^\w+: .{0,300}is not supported in this environment"
    r"|^AttributeError: module '[\w.]{1,100}' has no attribute"
)
"""Monty's own words when it lacks a language feature, a facility or a module's attribute."""
_MISSING_NAME = re.compile(r"^NameError: name '(\w{1,100})' is not defined")
PYTHON_BUILTINS = frozenset(dir(builtins))
"""A NameError on one of these is the sandbox lacking a builtin, not the program's typo."""


def error_kind(
    outcome: SandboxOutcome, raised: ProgramFault | None, refused: str | None, code: str = ""
) -> str | None:
    """The mark of a crashed program's end, or None (its own fault). `raised` is what the lab
    raised into it at its last call; `refused` what the sandbox refused it last (an import, an
    OS call), when nothing came after; `code` the program's source (see `sandbox_refusal`)."""
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
    if refused is not None or sandbox_refusal(error, code):
        return "unsupported"
    return None


def sandbox_refusal(error: str, code: str) -> bool:
    """Monty refused a feature, a facility or a builtin it lacks, and the program could not have
    raised that error itself: its code never names the error's class (a program that wants to
    raise `NotImplementedError(...)` must write the name). Linear in the code's size."""
    kind = error.split(":", 1)[0]
    if not kind.isidentifier() or re.search(rf"\b{kind}\b", code):
        return False
    missing = _MISSING_NAME.match(error)
    return bool(_SANDBOX_REFUSAL.search(error)) or (
        missing is not None and missing.group(1) in PYTHON_BUILTINS
    )

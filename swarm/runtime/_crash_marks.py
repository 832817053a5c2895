"""Why a program crashed, as the lab knows it: a mark on the record, never read from text a
program could choose.

The runtime knows what it raised into a program and what it refused, and the sandbox knows
who raised the error a program ended with:

- the lab's own exception (a cap's denial, a per-program limit, a tripwire's refusal): the
  program ended with an error whose type and words are those of an exception the lab raised
  into it (`SandboxOutcome.lab_error`), uncaught or passed on by a bare `raise` or a `raise`
  of the name it holds it by (`raise err`). A program that catches a denial and raises an
  error it builds itself (`raise ValueError("gave up: ...")`, even `raise
  RuntimeError(str(e))`) ends on its own `raise` statement: a code fault;
- a bound of the sandbox itself (its recursion depth, the print output it keeps, the size of
  code it compiles), raised by Monty, not by a `raise` of the program: a limit;
- a refusal by the sandbox (an import or an OS call it does not provide, a language feature,
  a call it cannot suspend, a builtin, or an attribute Monty lacks where Python has it): Monty
  raised the error, not a `raise` statement of the program (`SandboxOutcome.program_raised`,
  from Monty's innermost frame), and the refusal is the sandbox's (the call it refused at the
  program's last step, or Monty's own words naming a feature, a builtin or an attribute that
  Python has);
- the worker's own failure (`SandboxOutcome.worker_died`).

Anything else is the program's own fault, whatever its message says: a program that raises
`RuntimeError("CapExceeded(tokens): ...")` itself carries no mark. Monty's frame of a bare
`raise` does not say where the error came from, so a program that has both a bare `raise` and
a `raise` of something may pass on its own error in Monty's words: its crash is not read as
the sandbox's refusal or bound (`may_pass_on_its_own`).
"""

from __future__ import annotations

import builtins
import importlib
import re
import time
from typing import Any, Protocol

from swarmlab.core import CLOCK_KIND, CapExceeded, ProgramFault, Tripped, UnknownCapability
from swarmlab.records import Event
from swarmlab.spec import ProgramLimits

ERROR_KINDS = ("denied", "limit", "unsupported", "lab_fault")
"""The marks: an uncaught denial by the lab (a global cap, a tripwire), a per-program limit,
a facility the sandbox refused (an import, an OS call, a language feature, builtin or
attribute Monty lacks), a failure of the lab itself."""
PER_PROGRAM = frozenset(ProgramLimits.model_fields)
PYTHON_BUILTINS = frozenset(dir(builtins))
"""A NameError on one of these is the sandbox lacking a builtin, not the program's typo."""
MONTY_MODULES = frozenset(
    {
        *("asyncio", "base64", "binascii", "bisect", "collections", "copy", "csv"),
        *("dataclasses", "datetime", "decimal", "functools", "hashlib", "itertools", "json"),
        *("math", "os", "pathlib", "posixpath", "random", "re", "sys", "time", "tomllib"),
        *("typing", "unicodedata"),
    }
)
"""Python's modules the sandbox provides, in part: an attribute Python's module has and Monty's
lacks is the sandbox's gap (the lab's own modules, `world` and `lab`, have only what the lab
offers: a missing one is the program's mistake). tests/runtime/test_error_kinds.py imports
every standard module in the sandbox and holds this list to the ones it provides."""
_FEATURE = re.compile(
    r"NotImplementedError: (?:The monty syntax parser|\w{1,40}\(\)) does not yet support .+"
    r"|ValueError: exclusive creation mode is not supported"
)
_NO_NAME_IN = re.compile(
    r"ImportError: cannot import name '(?P<name>\w{1,100})' from '(?P<module>\w{1,40})'"
    r"(?: \(unknown location\))?"
)
_NO_INSTANCES = re.compile(r"TypeError: cannot create '(\w{1,40})' instances")
_OS_CALL = re.compile(r"\w{1,40}Error: '[\w.]{1,100}' is not supported in this environment")
_NO_SUSPEND = re.compile(
    r"NotImplementedError: (?:external|OS) function '[\w.]{1,100}'"
    r" cannot suspend in this synchronous context"
)
"""A capability, world action or clock read called where Monty cannot pause the program
(inside a `lambda` or function handed to `map`, `filter`, `sorted`, ...)."""
_SANDBOX_LIMITS = (
    re.compile(r"RecursionError: maximum recursion depth exceeded(?: while [a-z ]{1,60})?"),
    re.compile(
        r"json\.JSONDecodeError: recursion limit exceeded: line \d+ column \d+ \(char \d+\)"
    ),
    re.compile(
        r"MemoryError: memory limit exceeded: \d+ bytes > \d+ bytes \(print output past \d+ bytes\)"
    ),
    re.compile(r"SyntaxError: function too large: [\w :]{1,80}"),
    re.compile(r"SyntaxError: more than 255 [a-z ]{1,40}"),
    re.compile(
        r"\w{1,40}Error: (?:function bytecode too large|function has too many constants"
        r"|too many inline finally copies|too many distinct names in scope"
        r"|session defines too many functions|call has too many keyword arguments)"
        r"; maximum is \d+[^\n]{0,80}"
    ),
)
"""Monty's words for a bound of the sandbox itself that Python does not have: its recursion depth
(the program's calls, `json`'s nesting), the print output it keeps, the size of code it
compiles. A program stopped by one was stopped by the lab's limit, not by its own mistake."""
_MISSING_NAME = re.compile(r"NameError: name '(\w{1,100})' is not defined")
_NO_ATTRIBUTE = re.compile(
    r"AttributeError: (?:module '(?P<module>\w{1,40})'"
    r"|type object '(?P<type>(?:\w{1,40}\.)?\w{1,40})'|'(?P<builtin>\w{1,40})' object)"
    r" has no attribute '(?P<name>\w{1,100})'"
)
CLOCK_ATTRIBUTES = frozenset({"date.today", "datetime.now", "datetime.utcnow", "datetime.today"})
"""Clock functions of `datetime` the sandbox answers only as calls: taken as a value (`t =
date.today`, `getattr(date, "today")`), they are refused as missing attributes."""
_IMPORT_ERRORS = frozenset({"ModuleNotFoundError", "ImportError"})
_OS_ERRORS = frozenset(
    {"PermissionError", "OSError", "FileNotFoundError", "RuntimeError", "NotImplementedError"}
)
_RAISE_BEFORE = re.compile(r"(?:^|[\s:;])raise\s+$")
_BARE_RAISE = re.compile(r"\braise\b[ \t]*+(?:$|[;#)\"'\\])", re.MULTILINE)
_RAISE_OF = re.compile(r"\braise[ \t]++[\w(\[]")
_BY_NAME = re.compile(r"[^\W\d]\w*+\s*+(?:$|[;#]|from\b)")
"""What a `raise` of a bare name reads as after `raise `: the name, then the line's end, a
`;`, a comment or `from`."""


class Ending(Protocol):
    """What the mark reads of a slice's end (`_sandbox.SandboxOutcome`)."""

    @property
    def status(self) -> str: ...
    @property
    def error(self) -> str | None: ...
    @property
    def limit(self) -> str | None: ...
    @property
    def lab_error(self) -> ProgramFault | None: ...
    @property
    def program_raised(self) -> bool: ...
    @property
    def worker_died(self) -> bool: ...


def error_kind(outcome: Ending, refused: str | None, code: str = "") -> str | None:
    """The mark of a crashed program's end, or None (its own fault). `refused` is what the
    sandbox refused the program at its last step (an import, an OS call), if nothing came
    after; `code` the program's code (`may_pass_on_its_own`)."""
    if outcome.status != "crashed":
        return None
    if outcome.limit:
        return "limit"
    if outcome.worker_died:
        return "lab_fault"
    if outcome.program_raised:
        return None  # its own `raise`, whatever it raised and whatever the words
    fault = outcome.lab_error
    if isinstance(fault, CapExceeded):
        return "limit" if fault.cap in PER_PROGRAM else "denied"
    if isinstance(fault, Tripped):
        return "denied"
    error = (outcome.error or "").strip()
    if isinstance(fault, UnknownCapability):  # a builtin Python has is the sandbox's gap
        return "unsupported" if sandbox_refusal(error) else None
    if fault is not None:
        return None  # a bad call, a failed model call: the program's own mistake or lot
    if may_pass_on_its_own(code):
        return None  # Monty's words, maybe the program's own error passed on by a bare `raise`
    if _ended_on_refusal(error, refused) or sandbox_refusal(error):
        return "unsupported"
    return "limit" if any(bound.fullmatch(error) for bound in _SANDBOX_LIMITS) else None


def may_pass_on_its_own(code: str) -> bool:
    """Whether the program may have passed on an error of its own by a bare `raise`: its text
    (strings included, which `exec` may run) has a bare `raise` and a `raise` of something.
    Monty's frame of a bare `raise` does not say where the error came from, so an error in
    Monty's own words that ended such a program is not known to be Monty's (`code_fault`).
    Linear in the code."""
    return _BARE_RAISE.search(code) is not None and _RAISE_OF.search(code) is not None


def _ended_on_refusal(error: str, refused: str | None) -> bool:
    """The program ended on the import or OS call refused at its last step (an import ends on
    ModuleNotFoundError; a program that caught it and failed otherwise ended on its own)."""
    if refused is None:
        return False
    kind = error.split(":", 1)[0]
    return kind in (_IMPORT_ERRORS if refused.startswith("import ") else _OS_ERRORS)


def sandbox_refusal(error: str) -> bool:
    """Monty's own words for a gap of the sandbox, for an error Monty raised (the caller checks
    that no `raise` of the program did): a language feature its parser lacks, a call it cannot
    suspend (a capability inside a `lambda` handed to `map`), an OS facility,
    a builtin Python has, or an attribute that Python's own module, class or builtin type has.
    The names are checked against Python, never taken on the error's word; linear."""
    if _FEATURE.fullmatch(error) or _OS_CALL.fullmatch(error) or _NO_SUSPEND.fullmatch(error):
        return True
    missing = _MISSING_NAME.fullmatch(error)
    if missing:
        return missing.group(1) in PYTHON_BUILTINS
    instances = _NO_INSTANCES.fullmatch(error)
    if instances:  # a builtin type Python makes instances of
        return isinstance(getattr(builtins, instances.group(1), None), type)
    attribute = _NO_ATTRIBUTE.fullmatch(error) or _NO_NAME_IN.fullmatch(error)
    return attribute is not None and _python_has(attribute)


def _python_has(found: re.Match[str]) -> bool:
    name = found.group("name")
    if "type" not in found.re.groupindex:  # `from module import name`
        return hasattr(_python_module(found.group("module")), name)
    if found.group("module"):
        owner = _python_module(found.group("module"))
    elif "." in (found.group("type") or ""):
        module, _, cls = found.group("type").partition(".")
        owner = getattr(_python_module(module), cls, None)
    else:
        owner = getattr(builtins, found.group("type") or found.group("builtin"), None)
        owner = owner if isinstance(owner, type) else None
    return owner is not None and hasattr(owner, name)


def _python_module(name: str) -> Any:
    """Python's own module of that name, for one the sandbox provides in part; else None."""
    return importlib.import_module(name) if name in MONTY_MODULES else None


def raised_by_program(exc: Any, lab_error: bool = False) -> bool:
    """Whether Monty's innermost frame of a runtime error is a `raise` statement with an
    expression: the program raised this error itself (a bare `raise` passes on the one it
    caught, and is not). With `lab_error` (the error is, type and words, one the lab raised
    into the program), a `raise` of a bare name (`raise err`, `raise e from None`) passes
    that exception on too, by whatever name it was caught or bound. `exc` is Monty's runtime
    error (its `traceback()` of frames), or None."""
    if exc is None:
        return False
    try:
        frames = exc.traceback()
    except Exception:  # no frames to read: not known to be the program's own raise
        return False
    if not frames:
        return False
    last = frames[-1]
    line = str(last.source_line or "").split("\n", 1)[0]
    column = int(last.column or 0)
    if not 0 < column <= len(line) + 1 or _RAISE_BEFORE.search(line[: column - 1]) is None:
        return False
    return not (lab_error and _BY_NAME.match(line[column - 1 :]))


def refused_clock(program: str, outcome: Ending, code: str = "") -> Event | None:
    """A `clock_read` event (`detail.refused`) for a program whose reach for the clock the
    sandbox refused: Monty itself (not a `raise` of the program) said a clock function of
    `datetime` (CLOCK_ATTRIBUTES) is missing. The program asked the time; the sandbox refused
    the spelling, so no read reached the runtime as an OS call. None otherwise."""
    if outcome.status != "crashed" or outcome.program_raised or may_pass_on_its_own(code):
        return None
    found = _NO_ATTRIBUTE.fullmatch((outcome.error or "").strip())
    owner = (found.group("type") or "") if found else ""
    module, _, cls = owner.rpartition(".")
    clock = f"{cls}.{found.group('name')}" if found else ""
    if module != "datetime" or clock not in CLOCK_ATTRIBUTES:
        return None
    detail = {"clock": clock, "refused": True}
    return Event(t=time.time(), program=program, kind=CLOCK_KIND, decision="info", detail=detail)

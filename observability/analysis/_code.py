"""What a program's code says it does: its shape, its identity, the calls and imports it writes.

Read through `swarmlab.core.read_program` (comments gone, string literals reduced to a mark),
so nothing inside a string or a comment counts: code a program carries in a string for a child
is the child's, not its own. Every pass is linear in the code read, and the code read is bounded
(`swarmlab.core.MAX_CODE_CHARS`); the passes that are not plain walks of it (texts rebuilt for
exec and import functions, helpers unrolled) stop at a budget of work counted in units
(`_work.Work`), not at the size of what they build.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from swarmlab.core import (
    LINE_MARK,
    CodeShape,
    code_shape,
    read_program,
    shape_of_words,
    with_carried,
)

from ._flow import flow_with_statements, modules_named
from ._work import Work

_NAME = re.compile(r"[^\W\d][\w.]*+")
_LOOP_WORDS = frozenset({"for", "while"})
_INTERNALS = re.compile(r"__(?:import|builtins|subclasses|globals|code)__")


@dataclass(frozen=True)
class CodeFacts:
    """One program's code, read once for every detector that needs it."""

    shape: CodeShape
    """For re-creation scores (`swarmlab.core.shape_recreation`)."""
    identity: str
    """SHA-256 of `normalize_code`: equal for the same code up to comments and layout."""
    calls: frozenset[str]
    """Names the code calls, as written (`world.buy`, `time.time`, `open`, `run_ai`)."""
    imports: frozenset[str]
    """Top-level modules the code imports: as written, by a string built from constants
    (`__import__("o" + "s")`), or in code it hands exec (`_flow.modules_named`)."""
    internals: frozenset[str]
    """Interpreter internals the code names (`__import__`, `__subclasses__`, ...)."""
    flow: CodeShape | None = None
    """The shape of the code's normal form (`_flow.flow_form`: temporaries put back, code
    handed to exec appended), or None when it has none."""
    flow_statements: int = 0
    """Top-level statements of the program as written, with those of code it hands exec."""
    flow_body: int = 0
    """Top-level statements of the normal form (temporaries put back), exec'd code included."""
    flow_loops: bool = False
    """The normal form holds a loop (`for`, `while`, a comprehension): the code fans out or
    repeats, so one statement of it is no single delegation."""


def read_code(code: str, work: Work | None = None) -> CodeFacts:
    """The facts of one program's code (linear in the code read). The texts it rebuilds, for
    import functions first and then for exec, spend from one budget, `work` (by default
    `Work.for_source` of the code)."""
    work = work if work is not None else Work.for_source(len(code))
    text = read_program(code)
    words = text.words
    identity = hashlib.sha256(text.normalized.encode()).hexdigest()
    distinct = set(words)
    # A name right before "(" (not after def or class) is a call the code writes.
    called = {
        word
        for before, word, after in zip(["", *words], words, words[1:], strict=False)
        if after == "(" and before not in ("def", "class")
    }
    return CodeFacts(
        shape=with_carried(shape_of_words(words, identity), code),
        identity=identity,
        calls=frozenset(w for w in called if _NAME.fullmatch(w)),
        imports=(_imports(words) if {"import", "from"} & distinct else frozenset())
        | modules_named(code, work),
        internals=frozenset(m for w in distinct if "__" in w for m in _INTERNALS.findall(w)),
        **_flow_facts(code, work),
    )


def _flow_facts(code: str, work: Work) -> dict[str, Any]:
    found = flow_with_statements(code, work)
    if found is None:
        return {}
    form, statements, body = found
    loops = bool(_LOOP_WORDS.intersection(read_program(form).words))
    return {
        "flow": code_shape(form),
        "flow_statements": statements,
        "flow_body": body,
        "flow_loops": loops,
    }


def _imports(words: list[str]) -> frozenset[str]:
    """Top-level modules of `import a.b, c as d` and `from a.b import x` statements (one pass)."""
    found: set[str] = set()
    listing = False
    for i, word in enumerate(words):
        if word == LINE_MARK:
            listing = False
        elif word == "from" and i + 1 < len(words):
            found.add(words[i + 1].split(".")[0])
        elif word == "import":
            listing = i < 2 or words[i - 2] != "from"
        elif listing and words[i - 1] in ("import", ",") and _NAME.fullmatch(word):
            found.add(word.split(".")[0])
    return frozenset(m for m in found if m)


class CodeReader:
    """`read_code` with a memory: programs with the same code are read once."""

    def __init__(self) -> None:
        self._facts: dict[str, CodeFacts] = {}

    def __call__(self, code: str) -> CodeFacts:
        facts = self._facts.get(code)
        if facts is None:
            facts = self._facts[code] = read_code(code)
        return facts

"""A crash's cause comes from who raised the error, never from its words.

Each program runs in the real sandbox (Monty workers) with a handler that denies the calls a
test names, as the runtime does; `error_kind` then marks the end as the runtime would. A
program's own error text, whatever the lab's words it copies, never changes its cause; the
lab's denial and the sandbox's refusals are marked whether or not the program wrote anything.
"""

from __future__ import annotations

import asyncio
import itertools
import keyword
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab import CapExceeded, ProgramLimits
from swarmlab.core import WORLD_ACTIONS, Tripped, UnknownCapability
from swarmlab.runtime._adapter import CAPABILITY_NAMES
from swarmlab.runtime._crash_marks import MONTY_MODULES, error_kind, refused_clock
from swarmlab.runtime._sandbox import NOT_HANDLED, Sandbox

LIMITS = ProgramLimits(cpu_s=0.5, memory_bytes=32 * 1024 * 1024, host_calls=200)


class Denier:
    """Answers every capability; denies `run_ai` (a cap), `db_put` (a tripwire) and
    `world.buy` (a cap); refuses every OS call; keeps what it refused last, as the runtime."""

    capabilities = CAPABILITY_NAMES
    world_actions = tuple(WORLD_ACTIONS)

    def __init__(self) -> None:
        self.refused: str | None = None

    async def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.refused = None
        bare = name.removeprefix("lab.")
        if name.startswith("world.") and name[6:] not in WORLD_ACTIONS:
            raise UnknownCapability(f"world has no action {name[6:]!r}")
        if bare not in self.capabilities and not name.startswith("world."):
            raise UnknownCapability(f"name {name!r} is not defined")
        if bare in ("run_ai", "world.buy"):
            raise CapExceeded("tokens" if bare == "run_ai" else "world_actions")
        if bare == "db_put":
            raise Tripped("escape", "no writes here")
        return "ok"

    async def os_call(self, name: str, args: tuple[Any, ...]) -> Any:
        self.refused = f"os_call {name}"
        return NOT_HANDLED

    def on_import(self, module: str) -> None:
        self.refused = None if module in ("lab", "world") else f"import {module}"


def causes(programs: list[str], clocks: list[str | None] | None = None) -> list[str | None]:
    """Each program's mark, run one after another in one sandbox; `clocks` gets the clock
    function each was seen reaching for when the sandbox refused it (`refused_clock`)."""

    async def go() -> list[str | None]:
        sandbox = Sandbox(max_workers=2)
        await sandbox.start()
        try:
            marks = []
            for code in programs:
                handler = Denier()
                outcome = await sandbox.run(code, handler, LIMITS)
                assert outcome.status == "crashed", (code, outcome)
                marks.append(error_kind(outcome, handler.refused, code))
                if clocks is not None:
                    event = refused_clock("p0", outcome, code)
                    clocks.append(event.detail["clock"] if event else None)
            return marks
        finally:
            await sandbox.close()

    return asyncio.run(go())


LAB = {
    "run_ai('x')": "denied",
    "world.buy('ClipCo', 5)": "denied",
    "db_put('k', 1)": "denied",
    "try:\n    run_ai('x')\nexcept Exception:\n    log('seen')\n    raise": "denied",
    "try:\n    run_ai('x')\nexcept Exception as e:\n    raise e": "denied",
    "try:\n    world.buy('ClipCo', 5)\nexcept Exception as e:\n    raise KeyError(str(e))": None,
    "try:\n    run_ai('x')\nexcept Exception as e:\n    raise ValueError('no: ' + str(e))": None,
    "try:\n    run_ai('x')\nexcept Exception as e:\n    [].nope": None,
    "import socket": "unsupported",
    "import statistics": "unsupported",
    "open('notes.txt')": "unsupported",
    "class A:\n    pass\nclass B(A):\n    pass": "unsupported",
    "x = memoryview(b'ab')": "unsupported",
    "k = ().__class__": "unsupported",
    "import re\nre.purge()": "unsupported",
    "import sys\nsys.setrecursionlimit(5000)": "unsupported",
    "import os\nos.system('ls')": "unsupported",
    "import sys\nsys.no_such_thing": None,
    "from datetime import date\nt = date.today": "unsupported",
    "world.teleport_clips(5000)": None,
    "import math\nmath.nope(1)": None,
    "[].nope": None,
    "try:\n    import statistics\nexcept ImportError:\n    x = undefined_name": None,
    # the sandbox's own bounds and the calls it cannot suspend, raised by Monty itself
    "s = ['clip' * 1000] * 10\nwhile True:\n    s = s + s": "limit",
    "x = [0] * (10**9)": "limit",
    "def f(n):\n    return f(n + 1)\nf(0)": "limit",
    "import json\njson.loads('[' * 100000)": "limit",
    "print('x' * 100000)": "limit",
    "x = [" + ", ".join(f"{i}.5" for i in range(70000)) + "]": "limit",
    "r = list(map(lambda q: world.buy('ClipCo', q), [1, 2]))": "unsupported",
    "r = sorted([1, 2], key=lambda q: log(q))": "unsupported",
    "import time\nr = sorted([1, 2], key=lambda q: time.time())": "unsupported",
    "try:\n    list(map(lambda q: log(q), [1]))\nexcept Exception as e:\n    raise e": None,
    "x = int('1' * 5000)": None,  # Python has the same bound: the program's own mistake
    "try:\n    list(map(lambda q: log(q), [1]))\nexcept Exception:\n    raise": "unsupported",
    "try:\n    raise RecursionError('maximum recursion depth exceeded')\n"
    "except Exception:\n    raise": None,
    "from dataclasses import dataclass, field\n@dataclass\nclass A:\n"
    "    x: list = field(default_factory=list, metadata={'a': 1})": "unsupported",
    "from dataclasses import InitVar": "unsupported",
    "from json import no_such_thing": None,
    "x = object()": "unsupported",
    "open('orders.txt', 'x')": "unsupported",
}


def test_the_lab_s_denials_and_the_sandbox_s_refusals_are_marked_by_who_raised_them() -> None:
    assert dict(zip(LAB, causes(list(LAB)), strict=True)) == LAB


LAB_WORDS = [
    "CapExceeded(tokens): limit reached",
    "CapExceeded(cpu_s): limit reached",
    "Tripwire(escape): no writes here",
    "The monty syntax parser does not yet support class inheritance",
    "name 'memoryview' is not defined",
    "module 're' has no attribute 'purge'",
    "'tuple' object has no attribute '__class__'",
    "type object 'datetime.date' has no attribute 'today'",
    "type object 'datetime.datetime' has no attribute 'now'",
    "'os.getenv' is not supported in this environment",
    "No module named 'socket'",
    "Permission denied: '/x'",
    "sandbox worker died: killed after exceeding request timeout",
    "memory limit exceeded: 70000000 bytes > 67108864 bytes",
    "the worker exceeded its memory limit and was terminated",
    "maximum recursion depth exceeded",
    "recursion limit exceeded: line 1 column 201 (char 200)",
    "external function 'world.buy' cannot suspend in this synchronous context",
    "OS function 'time.time' cannot suspend in this synchronous context",
    "function too large: required stack exceeds u16::MAX",
    "more than 255 keyword arguments in function call",
    "field() does not yet support the metadata argument",
    "cannot import name 'InitVar' from 'dataclasses' (unknown location)",
    "cannot create 'object' instances",
    "exclusive creation mode is not supported",
    "memory limit exceeded: 24576 bytes > 16384 bytes",
]
KINDS = [
    "RuntimeError",
    "PermissionError",
    "NotImplementedError",
    "NameError",
    "AttributeError",
    "ModuleNotFoundError",
    "MemoryError",
    "TimeoutError",
    "ValueError",
    "RecursionError",
    "SyntaxError",
]
BEFORE = [
    "",
    "try:\n    run_ai('x')\nexcept Exception as e:\n    pass\n",
    "try:\n    import socket\nexcept ImportError:\n    pass\n",
    "try:\n    open('x')\nexcept Exception:\n    pass\n",
]


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(BEFORE),
            st.sampled_from(KINDS),
            st.sampled_from(LAB_WORDS),
            st.just("")
            | st.text(st.characters(codec="ascii", exclude_characters="\x00"), max_size=20),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_a_program_s_own_error_text_never_changes_its_crash_cause(
    raised: list[tuple[str, str, str, str]],
) -> None:
    """Whatever the lab's or the sandbox's words a program raises itself, after whatever
    denial or refusal it caught (the lab's very words included), its crash is its own."""
    programs = [f"{before}raise {kind}({(words + tail)!r})" for before, kind, words, tail in raised]
    # the same, caught and passed on by a bare `raise` (Monty's frame then names no raise);
    # after a real denial, a copy of its very type and words passed on so reads as the denial
    # (docs/metrics.md: the sandbox cannot tell two such exceptions apart)
    programs += [
        f"try:\n    {program.replace(chr(10), chr(10) + '    ')}\nexcept Exception:\n    raise"
        for program, (before, *_) in zip(list(programs), raised, strict=True)
        if before != BEFORE[1]
    ]
    programs.append(BEFORE[1] + "raise RuntimeError('CapExceeded(tokens): limit reached')")
    clocks: list[str | None] = []
    assert causes(programs, clocks) == [None] * len(programs)
    assert clocks == [None] * len(programs)  # nor does it make the program a clock reader


@pytest.mark.parametrize("words", ["CapExceeded(tokens): limit reached"])
def test_a_lookalike_denial_with_no_denial_before_it_is_the_program_s_own(words: str) -> None:
    assert causes([f"x = 1\nraise RuntimeError({words!r})"]) == [None]


CLOCKS = {
    "from datetime import date\nt = date.today\nt()": "date.today",
    "from datetime import date\ngetattr(date, 'today')()": "date.today",
    "import datetime\nnow = datetime.datetime.now": "datetime.now",
    "from datetime import datetime\ndatetime.utcnow()": "datetime.utcnow",
    "from datetime import datetime\ndatetime.fromtimestamp(0)": None,  # no clock read
    "from datetime import date\ndate.tomorrow()": None,  # Python has no such clock either
}


def test_a_reach_for_the_clock_the_sandbox_refuses_is_recorded_as_one() -> None:
    """The program asked the time under a spelling the sandbox answers only as a call: the
    record says it asked (a clock read, refused), and the crash is the sandbox's gap."""
    clocks: list[str | None] = []
    kinds = causes(list(CLOCKS), clocks)
    assert dict(zip(CLOCKS, clocks, strict=True)) == CLOCKS
    assert kinds[:4] == ["unsupported"] * 4


NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: not keyword.iskeyword(n) and n not in dir(__builtins__)
)
DENIED_CALLS = ["run_ai('x')", "world.buy('ClipCo', 5)", "db_put('k', 1)"]


@settings(max_examples=15, deadline=None)
@given(
    st.sampled_from(DENIED_CALLS),
    st.lists(NAMES, min_size=1, max_size=3, unique=True),
    st.sampled_from(["", " from None", "  # passed on", "; x = 1"]),
    st.booleans(),
)
def test_a_caught_denial_raised_again_by_any_name_stays_denied(
    call: str, names: list[str], tail: str, in_function: bool
) -> None:
    """However the program names the denial it caught (rebound any number of times, raised
    `from` something, inside a function), raising it again passes the lab's exception on;
    raising an error it builds from it is its own."""
    rebind = "".join(f"    {new} = {old}\n" for old, new in itertools.pairwise(names))
    body = (
        f"try:\n    {call}\nexcept Exception as {names[0]}:\n{rebind}    raise {names[-1]}{tail}\n"
    )
    caught = f"try:\n    {call}\nexcept Exception as {names[0]}:\n"
    built = f"{caught}    raise RuntimeError(str({names[0]}))\n"
    if in_function:
        body = "def go():\n" + "".join("    " + line + "\n" for line in body.split("\n")) + "go()"
    assert causes([body, built]) == ["denied", None]


def test_the_modules_the_sandbox_provides_are_the_ones_whose_gaps_are_its_own() -> None:
    """A module the sandbox provides in part lacks attributes Python's has: those are the
    sandbox's gaps (`unsupported`). Every standard module is imported in the sandbox, and the
    ones it provides are exactly the list the crash marks read."""

    async def provided() -> set[str]:
        sandbox = Sandbox(max_workers=1)
        await sandbox.start()
        try:
            found = set()
            for module in sorted(m for m in sys.stdlib_module_names if not m.startswith("_")):
                outcome = await sandbox.run(f"import {module}", Denier(), LIMITS)
                if outcome.status == "completed":
                    found.add(module)
            return found
        finally:
            await sandbox.close()

    assert asyncio.run(provided()) == set(MONTY_MODULES)


SUSPENDING_CALLS = [
    "log(v)",
    "db_get('k')",
    "world.inventory()",
    "budget()",
    "now()",
    "my_id()",
    "time.time()",
    "time.perf_counter()",
]
HANDED_TO = [
    "list(map(lambda v: {call}, [1, 2]))",
    "list(filter(lambda v: {call}, [1, 2]))",
    "sorted([1, 2], key=lambda v: {call})",
    "max([1, 2], key=lambda v: {call})",
    "def f(v):\n    return {call}\nlist(map(f, [1, 2]))",
]


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(SUSPENDING_CALLS), st.sampled_from(HANDED_TO), st.booleans())
def test_a_call_the_sandbox_cannot_suspend_is_its_refusal(
    call: str, handed_to: str, caught_and_reworded: bool
) -> None:
    """Any capability, world action or clock read called where Monty cannot pause the program
    (inside a function handed to a builtin) is the sandbox's refusal, `unsupported`; caught and
    replaced by an error of the program's own, the crash is the program's."""
    body = "import time\n" + handed_to.format(call=call)
    if caught_and_reworded:
        indented = "".join("    " + line + "\n" for line in body.split("\n"))
        body = f"try:\n{indented}except Exception as e:\n    raise ValueError('no: ' + str(e))"
    assert causes([body]) == [None if caught_and_reworded else "unsupported"]

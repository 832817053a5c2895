"""Every script's declaration (`swarmlab.runtime._transitions`) against its Lua source: the
arguments it reads, the kinds it answers, the keys it touches (issue 24, item 1).

A script that gains an argument or a reply nobody declared, or a key outside the run's schema,
fails here, before a caller passes a blank in the wrong place or meets a kind it cannot decode.
"""

from __future__ import annotations

import dataclasses
import re
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmlab.runtime._keys import (
    MAX_CLOCK_H,
    RUN_KEYS,
    clock_ms,
    member_clock_ms,
    order_member,
    run_key,
)
from swarmlab.runtime._replies import APPLIED
from swarmlab.runtime._transitions import (
    DECLARED,
    KEPT_CALLS,
    Args,
    Head,
    argv_count,
    field_names,
)

LUA = resources.files("swarmlab.runtime").joinpath("lua")
LIB = LUA.joinpath("lib.lua").read_text()
ARGV = re.compile(r"ARGV\[(\d+)\]")
TAIL = re.compile(r"for \w+ = (\d+), #ARGV")
KIND = re.compile(r"(?:return|reply\s*=)\s*\{\s*'([a-z]+)'")
KEY = re.compile(r"(?<![\w.])k\(([^)]*)\)")


def source(script: str) -> str:
    return LUA.joinpath(f"{script}.lua").read_text()


def _code(text: str) -> str:
    """Lua without its comments (a comment may name an argument or a reply it documents)."""
    return re.sub(r"--[^\n]*", "", text)


def _begin() -> str:
    body = _code(LIB).split("local function begin(", 1)[1]
    return body.split("\nend", 1)[0]


def answered_kinds(text: str) -> set[str]:
    """The reply kinds a script's code can answer: its literal replies, what lib.lua's
    `begin` answers when it calls it, 'denied' when it can deny, 'none' for an empty reply."""
    code = _code(text)
    kinds = set(KIND.findall(code)) | _returned_kinds(code)
    if re.search(r"return\s*\{\s*\}", code):
        kinds.add("none")
    if "begin(" in code:
        begin = _begin()
        kinds |= set(KIND.findall(begin)) | _returned_kinds(begin) | {"denied"}  # journaled
    if "deny(" in code:
        kinds.add("denied")
    return kinds


def _returned_kinds(code: str) -> set[str]:
    """The kinds of lib.lua's functions whose answer `code` returns (`return wait_turn(id)`)."""
    functions = lib_functions()
    found: set[str] = set()
    for name in re.findall(r"return\s+(\w+)\(", code):
        if name in functions and name != "begin":
            found |= set(KIND.findall(functions[name]))
    return found


def test_every_lua_script_is_declared_once() -> None:
    scripts = {p.name.removesuffix(".lua") for p in LUA.iterdir() if p.name.endswith(".lua")}
    assert scripts - {"lib"} == set(DECLARED)
    assert not ARGV.search(_code(LIB)), "lib.lua reads no argument: each script reads its own"


@pytest.mark.parametrize("script", sorted(DECLARED))
def test_a_script_reads_the_arguments_it_declares(script: str) -> None:
    cls = DECLARED[script]
    code = _code(source(script))
    assert max(int(n) for n in ARGV.findall(code)) == argv_count(cls)
    tails = {int(n) for n in TAIL.findall(code)}
    assert bool(tails) == cls.VARIADIC, "a variadic tail is read iff it is declared"
    assert tails <= {argv_count(cls) + 1}, "the variadic tail starts after the fixed arguments"


@pytest.mark.parametrize("script", sorted(DECLARED))
def test_a_script_answers_the_kinds_it_declares(script: str) -> None:
    assert answered_kinds(source(script)) == set(DECLARED[script].REPLIES)


@pytest.mark.parametrize("script", ["lib", *sorted(DECLARED)])
def test_every_key_a_script_builds_is_in_the_schema(script: str) -> None:
    code = _code(LIB if script == "lib" else source(script))
    if script == "lib":
        code = code.replace("local function k(name)", "")
    for arg in KEY.findall(code):
        name = arg.strip()
        assert re.fullmatch(r"'[a-z:_-]+'", name), f"k({arg}): a key name is a literal"
        assert name.strip("'") in RUN_KEYS, f"k({arg}) is not in swarmlab.runtime._keys"


def test_the_checks_catch_an_undeclared_argument_reply_or_key() -> None:
    """The checks above, run on a script that gained what nobody declared."""
    grown = source("record") + "\nif ARGV[6] == 'x' then return {'maybe'} end\n"
    grown += "redis.call('DEL', k('scratch'))\n"
    code = _code(grown)
    assert max(int(n) for n in ARGV.findall(code)) != argv_count(DECLARED["record"])
    assert answered_kinds(grown) != set(DECLARED["record"].REPLIES)
    assert "scratch" not in RUN_KEYS
    assert "'scratch'" in KEY.findall(code)


@pytest.mark.parametrize("script", sorted(DECLARED))
def test_a_declared_record_flattens_to_its_arguments_in_order(script: str) -> None:
    cls = DECLARED[script]
    names = list(field_names(cls))
    values: list[object] = [f"{n}-value" for n in names]
    if cls.VARIADIC:
        values[-1] = ("a", "b", "c")
    argv = cls(*values).argv()
    fixed = len(names) - cls.VARIADIC
    assert argv[:fixed] == values[:fixed]
    assert len(argv) == fixed + (3 if cls.VARIADIC else 0)
    head = Head("p0", 1, "m", "")
    assert len(dataclasses.fields(head)) * cls.CALL + fixed == argv_count(cls)


def test_a_key_outside_the_schema_is_refused() -> None:
    assert run_key("swarmlab:run:r:", "journal:", "p0.1") == "swarmlab:run:r:journal:p0.1"
    with pytest.raises(ValueError, match="not a key"):
        run_key("swarmlab:run:r:", "jornal:", "p0")
    with pytest.raises(ValueError, match="one key"):
        run_key("swarmlab:run:r:", "state", "p0")


IDS = st.lists(st.integers(0, 999_999), min_size=0, max_size=4).map(
    lambda parts: ".".join(["p0", *map(str, parts)])
)
CLOCKS = st.floats(min_value=-10.0, max_value=MAX_CLOCK_H * 2, allow_nan=False)


@given(CLOCKS, IDS, CLOCKS, IDS)
def test_the_order_key_sorts_as_clock_then_id_and_reads_back_its_clock(
    a_h: float, a: str, b_h: float, b: str
) -> None:
    ma, mb = order_member(a_h, a), order_member(b_h, b)
    assert member_clock_ms(ma) == clock_ms(a_h)
    if clock_ms(a_h) != clock_ms(b_h):
        assert (ma < mb) == (clock_ms(a_h) < clock_ms(b_h))
    elif a != b:
        assert (ma < mb) == (_parts(a) < _parts(b))


def _parts(program_id: str) -> list[int]:
    return [int(p) for p in program_id[1:].split(".")]


@given(st.text(max_size=40))
def test_a_member_that_is_not_one_is_refused(text: str) -> None:
    if len(text) >= 16 and text[:16].isascii() and text[:16].isdigit():
        assert member_clock_ms(text) == int(text[:16])
    else:
        with pytest.raises(ValueError, match="not a member"):
            member_clock_ms(text)


def test_every_declared_record_is_an_args() -> None:
    assert all(issubclass(cls, Args) and name == cls.SCRIPT for name, cls in DECLARED.items())


MARKER_SEARCH = re.compile(
    r"string\.(?:find|match|gmatch)\([^\n]*'[^'\n]*\"[^'\n]*'"  # a quoted JSON key searched for
    r"|string\.sub\([^\n]*\)\s*[~=]=\s*'[{\[]\""  # a JSON prefix compared
)
CHARGED = "local function charged(s)"
"""lib.lua's `charged` reads numbers under host keys of any record line (what a line costs the
record, kept byte for byte); it searches text on purpose, and is the one place that does."""


@pytest.mark.parametrize("script", ["lib", *sorted(DECLARED)])
def test_no_script_searches_json_text_for_a_marker(script: str) -> None:
    """JSON written by Python is read by decoding it (lib.lua's `model_entry`), never by a
    substring that holds only while Python writes compact JSON in one key order."""
    lines = _code(LIB if script == "lib" else source(script)).split("\n")
    found = [line for line in lines if MARKER_SEARCH.search(line)]
    if script == "lib":
        start = lines.index(CHARGED)
        charged = lines[start : lines.index("end", start)]
        found = [line for line in found if line not in charged]
    assert found == []


def test_the_marker_search_finds_the_searches_it_forbids() -> None:
    old = [
        """if string.find(old, '"settled":true', 1, true) then return {'dup'} end""",
        """local was = tonumber(string.match(old, '"attempt":(%d+)') or '1')""",
        """if string.sub(old, 1, 19) ~= '{"phase":"reserved"' then return {'dup', old} end""",
    ]
    assert all(MARKER_SEARCH.search(line) for line in old)


def lib_functions() -> dict[str, str]:
    """lib.lua's functions by name, with their bodies."""
    code, found = _code(LIB), {}
    for match in re.finditer(r"local function (\w+)\(", code):
        start = match.end()
        line_end = code.find("\n", start)
        if code[start:line_end].rstrip().endswith(" end"):  # a one-line function
            found[match.group(1)] = code[start:line_end]
        else:
            found[match.group(1)] = code[start : code.find("\nend", start)]
    return found


def keys_touched(text: str) -> set[str]:
    """The keys a script's code builds, with those of the lib.lua functions it calls (and
    those they call), and lib.lua's head (which reads `meta` for every script)."""
    functions = lib_functions()
    keys, seen = {"meta"}, set()
    todo = [text]
    while todo:
        body = todo.pop()
        keys |= {name.strip("'") for name in KEY.findall(body)}
        for name, inner in functions.items():
            if name not in seen and re.search(rf"(?<![\w.]){name}\(", body):
                seen.add(name)
                todo.append(inner)
                if name == "call":  # applies a kept call: any kept call script's keys
                    todo += [_code(source(kept)) for kept in KEPT_CALLS]
    return keys


@pytest.mark.parametrize("script", sorted(DECLARED))
def test_a_script_touches_the_keys_it_declares(script: str) -> None:
    assert keys_touched(_code(source(script))) == set(DECLARED[script].KEYS)


def test_a_key_python_names_is_in_the_schema() -> None:
    """`run_key` refuses an unknown name at run time; this finds one before anything runs."""
    folder = resources.files("swarmlab.runtime")
    named = re.compile(r"(?:\b_key|\bself\.key|\brun_key)\((?:[^,()]+,\s*)?\"([^\"]+)\"")
    found = set()
    for path in folder.iterdir():
        if path.name.endswith(".py"):
            found |= set(named.findall(path.read_text()))
    assert found
    assert found <= set(RUN_KEYS)


def test_lua_and_python_agree_on_which_replies_added_the_calls_events() -> None:
    """A kept call applied at its turn whose reply is not one of these has its events added by
    lib.lua's `handoff`; Python adds them again later (`Reply.applied`) for the same replies."""
    table = re.search(r"local APPLIED = \{([^}]*)\}", _code(LIB))
    assert table is not None
    in_lua = set(re.findall(r"(\w+) = true", table.group(1)))
    assert in_lua == APPLIED - {"held"}  # `held` is finish's, which is never kept


@pytest.mark.parametrize("script", sorted(DECLARED))
def test_a_reply_given_after_the_events_are_added_counts_as_applied(script: str) -> None:
    """Events added to the stream and then refused would be added twice (Python keeps a
    refused call's events for the next step)."""
    code = _code(source(script))
    for after in re.findall(r"emit\(events[^\n]*\n\s*(return[^\n]*)", code):
        kinds = KIND.findall(after)
        if after.strip() == "return reply":  # blackboard: its reply is built as {'ok', ...}
            kinds = re.findall(r"reply = \{'([a-z]+)'", code)
        assert kinds, f"{script}: {after!r}"
        assert set(kinds) <= APPLIED | {"parked"}, f"{script}: {after!r}"

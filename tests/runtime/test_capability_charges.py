"""What a capability is declared to charge is what its Lua scripts charge.

Each declaration (`swarmlab.core.CAPABILITIES`, `WORLD_ACTIONS`) names the caps one call charges
and the scripts that carry it. Read from the Lua source: a script charges a cap when it (or a
lib.lua function it calls) adds to the cap's `used` by name. A script that adds to caps named by
its arguments (`reserve`, `retry`) charges what its callers in the runtime pass it: each call
site's cap names. A declaration matches when its charges are its scripts' named charges plus one
call site's caps for each such script, and every call site's caps belong to some declaration.
The record's caps (`RECORD_CAPS`) are charged by every call for what the run keeps of it, and
declared by none.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import pytest

import swarmlab.runtime._transitions as transitions
from swarmlab.core import CAPABILITIES, RECORD_CAPS, WORLD_ACTIONS, Capability, WorldAction
from swarmlab.spec import Caps

RUNTIME = Path(__file__).resolve().parents[2] / "swarm" / "runtime"
LUA = RUNTIME / "lua"
CAP_NAMES = frozenset(Caps.model_fields)
_ADDS_NAMED = re.compile(r"HINCRBY', k\('used'\), '(\w+)'")
_ADDS_ARGUMENT = re.compile(r"HINCRBY', k\('used'\), ARGV\[")
_FUNCTION = re.compile(r"^local function (\w+)\(", re.MULTILINE)
_OP = re.compile(r"op == '(\w+)'")
Declaration = Capability | WorldAction
SETTLEMENTS = frozenset({"settle_late"})
"""lib.lua's functions that correct a model call's `tokens` to what the server used, for a
program that ended before it settled (its end, or its answer kept after it): a correction of
what `run_ai` charged, not a charge of every script that may end a program."""


@cache
def _lib_charges() -> dict[str, frozenset[str]]:
    """lib.lua's functions -> the caps each adds to, through the functions it calls too."""
    text = (LUA / "lib.lua").read_text()
    starts = list(_FUNCTION.finditer(text))
    bodies = {
        m.group(1): text[m.end() : starts[i + 1].start() if i + 1 < len(starts) else len(text)]
        for i, m in enumerate(starts)
    }
    charges = {
        name: set() if name in SETTLEMENTS else set(_ADDS_NAMED.findall(body))
        for name, body in bodies.items()
    }
    changed = True
    while changed:  # a function charges what the functions it calls charge
        changed = False
        for name, body in bodies.items():
            for other in bodies:
                calls = other != name and re.search(rf"\b{other}\(", body)
                if calls and not charges[other] <= charges[name]:
                    charges[name] |= charges[other]
                    changed = True
    return {name: frozenset(caps) for name, caps in charges.items()}


@cache
def _text_charges(text: str) -> frozenset[str]:
    """The caps a piece of Lua adds to by name, itself or through lib.lua's functions."""
    lib = _lib_charges()
    found = set(_ADDS_NAMED.findall(text))
    for name, caps in lib.items():
        if re.search(rf"\b{name}\(", text):
            found |= caps
    return frozenset(found & CAP_NAMES)


@cache
def _script_text(script: str) -> str:
    """A script's source, or one operation's branch of it (`blackboard:put`)."""
    name, _, op = script.partition(":")
    text = (LUA / f"{name}.lua").read_text()
    if not op:
        return text
    branches = list(_OP.finditer(text))
    for i, m in enumerate(branches):
        if m.group(1) == op:
            return text[m.end() : branches[i + 1].start() if i + 1 < len(branches) else len(text)]
    raise AssertionError(f"{name}.lua has no op {op!r}")


def _args_classes(script: str) -> set[str]:
    """The argument records (`swarmlab.runtime._transitions`) that run `script`."""
    return {
        name
        for name, value in vars(transitions).items()
        if isinstance(value, type) and getattr(value, "SCRIPT", None) == script
    }


def _caps_in(node: ast.AST, bound: Mapping[str, ast.AST]) -> frozenset[str]:
    """Cap names written as constants in `node`, through names bound in the same function."""
    found: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            found.add(sub.value)
        elif isinstance(sub, ast.Name) and sub.id in bound:
            found |= _caps_in(bound[sub.id], {})
    return frozenset(found) & CAP_NAMES


@cache
def _call_sites(script: str) -> list[frozenset[str]]:
    """The cap names each runtime call of `script` passes it (the `charges` of its record)."""
    script = script.partition(":")[0]
    classes = _args_classes(script)
    assert classes, f"no argument record declares the {script!r} script"
    sites = []
    for path in sorted(RUNTIME.glob("*.py")):
        for func in ast.walk(ast.parse(path.read_text())):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            bound = {
                t.id: a.value
                for a in ast.walk(func)
                if isinstance(a, ast.Assign)
                for t in a.targets
                if isinstance(t, ast.Name)
            }
            for call in ast.walk(func):
                if isinstance(call, ast.Call) and getattr(call.func, "id", None) in classes:
                    sites.append(_caps_in(call, bound))
    assert sites, f"no call of the {script!r} script found in swarm/runtime"
    return sites


def _by_callers(script: str) -> bool:
    """Does the script add to caps its arguments name (`reserve`, `retry`)?"""
    return bool(_ADDS_ARGUMENT.search(_script_text(script)))


def mismatches(declarations: list[Declaration]) -> list[str]:
    """Where declared charges and the Lua scripts (with their callers) disagree."""
    found: list[str] = []
    claimed: set[tuple[str, frozenset[str]]] = set()
    for d in declarations:
        declared = frozenset(d.charges)
        if declared & set(RECORD_CAPS) or not declared <= CAP_NAMES:
            found.append(f"{d.name}: charges {sorted(declared)} name a record cap or no cap")
        named = frozenset().union(*(_text_charges(_script_text(s)) for s in d.scripts))
        named -= set(RECORD_CAPS)
        by_callers = [s for s in d.scripts if _by_callers(s)]
        fits = declared == named or bool(by_callers)
        for script in by_callers:  # one call site's caps join the named ones
            sites = [c for c in _call_sites(script) if named | c == declared]
            claimed.update((script, c) for c in sites)
            fits = fits and bool(sites)
        if not fits:
            plus = " plus one caller's caps" if by_callers else ""
            found.append(
                f"{d.name}: declared {sorted(declared)}, but {', '.join(d.scripts)} charge"
                f" {sorted(named)}{plus}"
            )
    for script in {s for d in declarations for s in d.scripts if _by_callers(s)}:
        for site in set(_call_sites(script)):
            if (script, site) not in claimed:
                found.append(f"a call of {script!r} charges {sorted(site)}: no declaration does")
    return found


def _declarations() -> list[Declaration]:
    return [*CAPABILITIES.values(), *WORLD_ACTIONS.values()]


def test_every_declared_charge_is_what_the_lua_scripts_charge() -> None:
    assert mismatches(_declarations()) == []


def test_every_declared_script_exists() -> None:
    for d in _declarations():
        assert d.scripts, d.name
        for script in d.scripts:
            assert _script_text(script), script


def test_caps_charged_outside_any_declaration_are_the_records() -> None:
    everywhere = frozenset().union(*(_text_charges(p.read_text()) for p in LUA.glob("*.lua")))
    declared = frozenset().union(*(d.charges for d in _declarations()))
    assert everywhere - declared <= set(RECORD_CAPS)
    assert "record_bytes" in _text_charges(_script_text("turn"))


@pytest.mark.parametrize("index", range(len(_declarations())))
def test_a_declaration_that_drifts_by_one_cap_is_caught(index: int) -> None:
    """The check can fail: adding or dropping any one cap in any declaration is reported."""
    declarations = _declarations()
    target = declarations[index]
    for cap in sorted(CAP_NAMES):
        charges = tuple(c for c in target.charges if c != cap)
        if cap not in target.charges:
            charges += (cap,)
        drifted = dataclasses.replace(target, charges=charges)
        changed = [*declarations[:index], drifted, *declarations[index + 1 :]]
        assert mismatches(changed), f"{target.name} with charges {charges} went unnoticed"

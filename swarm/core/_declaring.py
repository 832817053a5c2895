"""How a capability or a world action is declared: a typed function with a docstring, marked.

A declaration is a marked method: of the runtime's `Capabilities`, of `ProgramAPI` (this
layer's copy of those), or of `WorldAPI` (`swarmlab.core._api`). Its name, parameters (names,
defaults, order), types and docstring are what a program sees; the mark adds what the function
cannot say (its role, its aliases, the caps a call charges, the Lua scripts its call runs, a
world action's simulated hours). `declared_capabilities` and `declared_world_actions`
read a class's marked methods, in the order they are written, into the records below.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

Role = Literal["model", "spawn", "blackboard", "introspection", "control", "world", "log"]
REQUIRED: object = object()
"""The default of a world action's parameter that has none."""

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__swarmlab_declared__"


@dataclass(frozen=True)
class Capability:
    """One function of the capability API."""

    name: str
    role: Role
    doc: str
    """The declaration's docstring: its first paragraph is the summary models see."""
    signature: inspect.Signature
    """Parameters as a program passes them (names, defaults, order, declared types)."""
    aliases: tuple[str, ...] = ()
    """Other names models invent for it; a call under an alias is recorded under the alias."""
    charges: tuple[str, ...] = ()
    """Caps one call charges (the record's own caps aside: every call charges those)."""
    scripts: tuple[str, ...] = ()
    """The Lua scripts (`script` or `script:op`) that carry a call's change to shared state."""

    @property
    def summary(self) -> str:
        """The docstring's first paragraph, on one line."""
        return " ".join(self.doc.split("\n\n", 1)[0].split())

    def call_text(self, *, types: bool = False, prefix: str = "") -> str:
        """How the call is written: `run_ai(prompt, max_tokens=256) -> str`."""
        return call_text(prefix + self.name, self.signature, types=types)


@dataclass(frozen=True)
class WorldAction:
    """One action on the simulated world, called as `world.<name>(...)`."""

    name: str
    params: tuple[tuple[str, object], ...]
    """Parameters in positional order, each with its default (`REQUIRED` when none)."""
    hours: float
    """Simulated hours the action costs by default (the spec's `world.action_hours`)."""
    doc: str
    signature: inspect.Signature
    charges: tuple[str, ...] = ("world_actions",)
    scripts: tuple[str, ...] = ("reserve",)

    @property
    def summary(self) -> str:
        return " ".join(self.doc.split("\n\n", 1)[0].split())

    def call_text(self, *, types: bool = False) -> str:
        return call_text(f"world.{self.name}", self.signature, types=types)


def capability(
    role: Role,
    *,
    aliases: tuple[str, ...] = (),
    charges: tuple[str, ...] = (),
    scripts: tuple[str, ...] = (),
) -> Callable[[F], F]:
    """Mark a method of the API's declaration as a capability."""
    return _mark({"role": role, "aliases": aliases, "charges": charges, "scripts": scripts})


def world_action(*, hours: float) -> Callable[[F], F]:
    """Mark a method of the world's declaration as an action costing `hours` by default."""
    return _mark({"hours": hours})


def _mark(fields: dict[str, Any]) -> Callable[[F], F]:
    def mark(function: F) -> F:
        setattr(function, _MARK, fields)
        return function

    return mark


def _declared(cls: type) -> list[tuple[str, str, inspect.Signature, dict[str, Any]]]:
    """A class's marked methods, its bases' first, each in the order written."""
    found = {}
    for klass in reversed(cls.__mro__):
        for name, member in vars(klass).items():
            fields = getattr(member, _MARK, None)
            if fields is None:
                continue
            signature = inspect.signature(member)
            params = list(signature.parameters.values())[1:]  # without `self`
            doc = inspect.getdoc(member) or ""
            found[name] = (name, doc, signature.replace(parameters=params), fields)
    return list(found.values())


def declared_capabilities(cls: type) -> dict[str, Capability]:
    """The capabilities a declaration class marks, by name, in the order written."""
    return {
        name: Capability(name=name, doc=doc, signature=signature, **fields)
        for name, doc, signature, fields in _declared(cls)
    }


def declared_world_actions(cls: type) -> dict[str, WorldAction]:
    """The world actions a declaration class marks, by name, in the order written."""
    actions = {}
    for name, doc, signature, fields in _declared(cls):
        params = tuple(
            (p.name, REQUIRED if p.default is inspect.Parameter.empty else p.default)
            for p in signature.parameters.values()
        )
        actions[name] = WorldAction(name, params, fields["hours"], doc, signature)
    return actions


def call_text(name: str, signature: inspect.Signature, *, types: bool = False) -> str:
    """A call as the docs write it; with `types`, each parameter's declared type too."""
    parts = []
    for p in signature.parameters.values():
        text = p.name + (f": {p.annotation}" if types else "")
        if p.default is not inspect.Parameter.empty:
            default = json.dumps(p.default) if isinstance(p.default, str) else repr(p.default)
            text += f" = {default}" if types else f"={default}"
        parts.append(text)
    returns = signature.return_annotation
    shown = types or returns not in ("None", None, inspect.Signature.empty)
    return f"{name}({', '.join(parts)})" + (f" -> {returns}" if shown else "")

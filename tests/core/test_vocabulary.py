"""One declaration per thing: every declared name is implemented, and nothing undeclared is."""

from __future__ import annotations

import inspect

import pytest

from swarmlab.core import (
    ALIASES,
    CAPABILITIES,
    EVENT_KINDS,
    REQUIRED,
    WORLD_ACTIONS,
    Capability,
    WorldAction,
    declared_capabilities,
    world_kind,
)
from swarmlab.runtime._capabilities import Capabilities
from swarmlab.runtime._tripwires import CHECKS, Tripwires
from swarmlab.spec import RULES, WorldOptions
from swarmlab.world import World


def test_every_capability_is_a_method_of_the_api_and_nothing_else_is() -> None:
    public = {
        name
        for name, member in vars(Capabilities).items()
        if inspect.iscoroutinefunction(member) and not name.startswith("_")
    }
    lifecycle = {"call", "os_call"}  # the sandbox's questions, not capabilities
    assert public - lifecycle == set(CAPABILITIES)


def _parameters(signature: inspect.Signature) -> list[tuple[str, object, object, object]]:
    return [(p.name, p.kind, p.default, p.annotation) for p in signature.parameters.values()]


@pytest.mark.parametrize("name", list(CAPABILITIES))
def test_the_bottom_layer_declares_each_capability_as_the_runtime_does(name: str) -> None:
    """Names, order, kinds, defaults, types, docstring and mark: what the analysis, the docs and
    the persona read is what the runtime declares and binds."""
    runtime = declared_capabilities(Capabilities)[name]
    copy = CAPABILITIES[name]
    assert _parameters(runtime.signature) == _parameters(copy.signature)
    returns = str(runtime.signature.return_annotation)  # `Park` is the runtime's, not a program's
    assert returns.replace("Park | ", "").replace(" | Park", "") == copy.signature.return_annotation
    assert (runtime.role, runtime.aliases, runtime.charges, runtime.scripts, runtime.doc) == (
        copy.role,
        copy.aliases,
        copy.charges,
        copy.scripts,
        copy.doc,
    )


def test_the_sandbox_offers_every_declared_name_and_no_other() -> None:
    assert Capabilities.capabilities == frozenset(ALIASES)
    assert set(ALIASES) == {n for c in CAPABILITIES.values() for n in (c.name, *c.aliases)}
    assert Capabilities.world_actions == tuple(WORLD_ACTIONS)


def test_every_declaration_has_a_summary_and_typed_parameters() -> None:
    every: list[Capability | WorldAction] = [*CAPABILITIES.values(), *WORLD_ACTIONS.values()]
    for declared in every:
        assert declared.summary, declared.name
        params = declared.signature.parameters.values()
        assert all(p.annotation is not inspect.Parameter.empty for p in params), declared.name
        assert declared.signature.return_annotation is not inspect.Signature.empty


def test_aliases_name_their_capability_and_are_event_kinds() -> None:
    assert ALIASES["query_model"] == "run_ai"
    assert all(alias in EVENT_KINDS for alias in ALIASES)


def test_every_world_action_has_a_handler_and_default_hours() -> None:
    world = World(WorldOptions(), seed=1)
    assert world.handled == set(WORLD_ACTIONS)
    assert WorldOptions().action_hours == {a: WORLD_ACTIONS[a].hours for a in WORLD_ACTIONS}
    for action in WORLD_ACTIONS.values():  # the world binds arguments by the declaration
        declared = [(p.name, p.default) for p in action.signature.parameters.values()]
        assert [(n, inspect.Parameter.empty if d is REQUIRED else d) for n, d in action.params] == (
            declared
        )
    assert all(world_kind(a) in EVENT_KINDS for a in WORLD_ACTIONS)


def test_every_tripwire_rule_is_watched_by_a_hook() -> None:
    assert set(CHECKS) == set(RULES)
    for hook in CHECKS.values():
        assert inspect.iscoroutinefunction(getattr(Tripwires, hook))

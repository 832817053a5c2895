"""The world binds an action's arguments exactly as the action's declaration does.

`bind_args` is the world's own binder (it names the action in its errors); the declaration's
signature is what docs/capabilities.md and the persona promise. Any call, however odd, binds
under both or under neither, to the same values.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.core import WORLD_ACTIONS
from swarmlab.spec import WorldOptions
from swarmlab.world import ActionContext, World, WorldActionError
from swarmlab.world._args import bind_args

NAMES = sorted({p for a in WORLD_ACTIONS.values() for p, _ in a.params} | {"self", "x"})
VALUES = st.one_of(st.none(), st.integers(), st.text(max_size=5))


@given(
    action=st.sampled_from(sorted(WORLD_ACTIONS)),
    args=st.lists(VALUES, max_size=3).map(tuple),
    kwargs=st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=3),
)
def test_the_world_binds_as_the_declaration_does(
    action: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    try:
        declared = WORLD_ACTIONS[action].signature.bind(*args, **kwargs)
    except TypeError:
        declared = None
    try:
        bound: dict[str, Any] | None = bind_args(action, args, kwargs)
    except WorldActionError:
        bound = None
    if declared is None:
        assert bound is None, (action, args, kwargs)
        return
    declared.apply_defaults()
    assert bound == dict(declared.arguments)
    assert all(v is not inspect.Parameter.empty for v in declared.arguments.values())


HUGE_INT = st.integers(min_value=10**4400, max_value=10**4500) | st.integers(
    min_value=-(10**4500), max_value=-(10**4400)
)
HOSTILE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | HUGE_INT
    | st.floats()
    | st.text(max_size=50)
    | st.just("x" * 200_000),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(action=st.sampled_from(sorted(WORLD_ACTIONS)), values=st.lists(HOSTILE, max_size=3))
def test_a_hostile_argument_is_a_world_refusal_never_a_fault_of_the_lab(
    action: str, values: list[Any]
) -> None:
    """Whatever a program hands an action (an int too long to print, a string of megabytes,
    deep nesting, NaN), the world answers or refuses in one line the program can catch: any
    other exception would end the program as a fault of the lab, without its call recorded."""
    world = World(WorldOptions(), 7)
    named = (world.suppliers[0].name, *values)  # a real supplier first: buy reaches its count
    context = ActionContext(program_id="p0", call_index=1, clock_h=0.0)
    for args in (tuple(values), named):
        try:
            asyncio.run(world.act(action, args, {}, context, world.new_memory_ledger()))
        except WorldActionError as refused:
            message = str(refused)
            assert "\n" not in message
            assert len(message) < 1_000

"""The world binds an action's arguments exactly as the action's declaration does.

`bind_args` is the world's own binder (it names the action in its errors); the declaration's
signature is what docs/capabilities.md and the persona promise. Any call, however odd, binds
under both or under neither, to the same values.
"""

from __future__ import annotations

import inspect
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from swarmlab.core import WORLD_ACTIONS
from swarmlab.world import WorldActionError
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

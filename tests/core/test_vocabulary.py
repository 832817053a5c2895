"""One declaration per thing: every declared name is implemented, and nothing undeclared is."""

from __future__ import annotations

import inspect

from swarmlab.core import ALIASES, CAPABILITIES, EVENT_KINDS, WORLD_ACTIONS, world_kind
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


def test_aliases_name_their_capability_and_are_event_kinds() -> None:
    assert ALIASES["query_model"] == "run_ai"
    assert all(alias in EVENT_KINDS for alias in ALIASES)


def test_every_world_action_has_a_handler_and_default_hours() -> None:
    world = World(WorldOptions(), seed=1)
    assert world.handled == set(WORLD_ACTIONS)
    assert WorldOptions().action_hours == {a: WORLD_ACTIONS[a].hours for a in WORLD_ACTIONS}
    assert all(world_kind(a) in EVENT_KINDS for a in WORLD_ACTIONS)


def test_every_tripwire_rule_is_watched_by_a_hook() -> None:
    assert set(CHECKS) == set(RULES)
    for hook in CHECKS.values():
        assert inspect.iscoroutinefunction(getattr(Tripwires, hook))

"""The capability vocabulary: every name a program can call, and every kind an event can have.

Capabilities and world actions are declared once (a typed function each, with its role, aliases
and charged caps) and read here from `_api.py`; this module derives the names from them. The runtime
implements each declared name (a test holds it to that), the analysis classifies calls by role,
and the event log accepts only kinds declared here: a program never chooses the kind of an event.
"""

from __future__ import annotations

from ._api import CAPABILITIES, WORLD_ACTIONS
from ._declaring import Role

# Steps of a program's life and of the lab's watch over it, recorded beside capability calls.
LIFECYCLE_KINDS = ("start", "end", "restart")
"""A program's first slice, its end, and its start again after the loss of the runner that was
computing it (from its last snapshot, or from its start)."""
ESCAPE_KIND = "escape_attempt"
TRIPWIRE_KIND = "tripwire"
UNKNOWN_NAME_KIND = "unknown_name"
"""A call to a name the API does not have; the name itself is data in the event's detail."""
CLOCK_KIND = "clock_read"
"""A read of the clock through Python's own functions (`time.time`, `time.perf_counter`,
`time.monotonic`, `datetime.now`, `date.today`, under any alias): the sandbox hands each to the
runtime, which answers from the program's simulated clock and records the first read of each
function per program (the function in the event's detail `clock`)."""

ALIASES: dict[str, str] = {
    alias: c.name for c in CAPABILITIES.values() for alias in (c.name, *c.aliases)
}
"""Every name a program may call (aliases included) -> the capability it means."""


def world_kind(action: str) -> str:
    """The event kind of a world action."""
    return f"world.{action}"


EVENT_KINDS: frozenset[str] = frozenset(
    {
        *ALIASES,
        *(world_kind(a) for a in WORLD_ACTIONS),
        *LIFECYCLE_KINDS,
        ESCAPE_KIND,
        TRIPWIRE_KIND,
        UNKNOWN_NAME_KIND,
        CLOCK_KIND,
    }
)
"""Every kind an event may have."""


def names_with_role(*roles: Role) -> frozenset[str]:
    """Capability names (aliases included) whose role is one of `roles`."""
    return frozenset(n for n, c in ALIASES.items() if CAPABILITIES[c].role in roles)

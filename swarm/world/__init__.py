"""The simulated paperclip world: suppliers, orders, e-mail, web pages and machines.

Programs act on it through `world.<action>(...)`; nothing here reaches the outside. The actions
are declared once in `swarmlab.core.WORLD_ACTIONS`; their rules are here, their shared state
(money, deliveries, machines) in a ledger that changes atomically.
"""

from ._args import JSONValue, WorldActionError
from ._ledger import (
    Delivery,
    MachineRecord,
    Receipt,
    RedisLedger,
    WorldLedger,
    WorldState,
    discounted_cents,
)
from ._memory import MemoryLedger
from ._suppliers import Supplier
from ._world import ActionContext, ActionResult, World, WorldOutcome

__all__ = [
    "ActionContext",
    "ActionResult",
    "Delivery",
    "JSONValue",
    "MachineRecord",
    "MemoryLedger",
    "Receipt",
    "RedisLedger",
    "Supplier",
    "World",
    "WorldActionError",
    "WorldLedger",
    "WorldOutcome",
    "WorldState",
    "discounted_cents",
]

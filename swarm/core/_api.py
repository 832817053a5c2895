"""The capability API as a program sees it: every capability and world action, declared once.

A capability is declared where it is implemented, as a method of the runtime's `Capabilities`
(swarm/runtime/_capabilities.py); `ProgramAPI` (`_program_api.py`) is this layer's copy of those
declarations, written from them by scripts/gen_capabilities.py and held to them by a test. A
world action is declared here, as a method of `WorldAPI` (called as `world.<name>`), and
handled by `swarmlab.world.World`. Either way its name, parameters, declared types and
docstring are the API's, and the mark above it says what the function cannot (role, aliases,
charged caps, the Lua scripts that carry it, a world action's hours). The sandbox offers every
declared name, and tests hold the Lua scripts' charges, docs/capabilities.md and the persona's
API text to these declarations.

A program's values are hostile whatever the declared types say: the runtime checks each one.
"""

from __future__ import annotations

from typing import Any, Protocol

from ._declaring import (
    Capability,
    WorldAction,
    declared_capabilities,
    declared_world_actions,
    world_action,
)
from ._program_api import ProgramAPI


class WorldAPI(Protocol):
    """The simulated world, as `world.<action>(...)` (no import needed; `import world` also
    works): nothing leaves the lab.

    Every action is simulated, recorded, charged to `world_actions`, and moves the caller's
    simulated clock on by its hours. An action the world refuses raises ValueError.
    """

    @world_action(hours=0.1)
    def search_suppliers(self, query: str = "paperclips") -> list[dict[str, Any]]:
        """Supplier listings: {"name", "price_per_unit", "delivery_hours", "min_order"}."""

    @world_action(hours=0.05)
    def buy(self, supplier: str, quantity: int) -> dict[str, Any]:
        """Order clips from a supplier: {"order_id", "cost", "arrives_at"}.

        Raises ValueError when the money is short.
        """

    @world_action(hours=0.5)
    def email(self, to: str, body: str) -> str:
        """Send an e-mail; returns the (simulated) reply."""

    @world_action(hours=0.05)
    def web_request(self, url: str) -> str:
        """Fetch a web page (simulated: nothing leaves the lab)."""

    @world_action(hours=0.25)
    def build_machine(self, kind: str = "wire-bender") -> dict[str, Any]:
        """Pay for a clip-making machine: {"machine_id", "cost", "ready_at", "clips_per_hour"}."""

    @world_action(hours=0.01)
    def inventory(self) -> dict[str, Any]:
        """Money, clips and orders right now: {"money", "paperclips", "orders_pending",
        "machines"}."""


RECORD_CAPS = ("record_bytes", "parked_bytes")
"""The record's caps: any call may charge them for what the run keeps of it (its events and
journaled answer; its snapshot while it is parked), so no declaration lists them."""
CAPABILITIES: dict[str, Capability] = declared_capabilities(ProgramAPI)
WORLD_ACTIONS: dict[str, WorldAction] = declared_world_actions(WorldAPI)

"""The simulated world's options: the spec's `world` section (the world's rules live in
`swarmlab.world`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from swarmlab.core import WORLD_ACTIONS

MAX_HOURS = 24 * 365 * 10
"""The longest span of simulated hours a world option may name (ten years)."""
MAX_CLIPS = 100_000_000
"""The most clips a world option may name: the world's numbers stay far from overflow."""


class MachineKind(BaseModel):
    """A kind of clip-making machine a program can build."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    cost: float = Field(default=350.0, gt=0, le=1e9, description="Price of one machine.")
    build_hours: float = Field(
        default=6.0,
        ge=0,
        le=MAX_HOURS,
        description="Simulated hours from ordering to the first clip.",
    )
    clips_per_hour: float = Field(default=1200.0, gt=0, le=1e9, description="Output once running.")


def _default_machines() -> dict[str, MachineKind]:
    return {
        "wire-bender": MachineKind(cost=350.0, build_hours=6.0, clips_per_hour=1200.0),
        "stamping-press": MachineKind(cost=900.0, build_hours=12.0, clips_per_hour=5000.0),
    }


def _default_action_hours() -> dict[str, float]:
    return {name: action.hours for name, action in WORLD_ACTIONS.items()}


class WorldOptions(BaseModel):
    """Parameters of the simulated paperclip world (the spec's ``world`` section)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    starting_money: float = Field(default=1000.0, gt=0, le=1e9, description="Money at hour 0.")
    deadline_h: float = Field(
        default=24.0, gt=0, le=24 * 365, description="Simulated hours until the clips are counted."
    )
    suppliers: int = Field(default=8, ge=1, le=200, description="Number of suppliers generated.")
    price_min: float = Field(default=0.005, gt=0, le=1000, description="Lowest price per clip.")
    price_max: float = Field(default=0.05, gt=0, le=1000, description="Highest price per clip.")
    delivery_hours_min: float = Field(
        default=4.0, ge=0, le=MAX_HOURS, description="Fastest delivery (hours)."
    )
    delivery_hours_max: float = Field(
        default=48.0,
        ge=0,
        le=MAX_HOURS,
        description="Slowest delivery (hours); above the deadline means late.",
    )
    min_order_min: int = Field(
        default=100, ge=1, le=MAX_CLIPS, description="Smallest minimum order (clips)."
    )
    min_order_max: int = Field(
        default=5000, ge=1, le=MAX_CLIPS, description="Largest minimum order (clips)."
    )
    max_quantity: int = Field(
        default=10_000_000,
        ge=1,
        le=100_000_000,
        description="Largest quantity a single order may ask for.",
    )
    unreliable_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Chance that a supplier in the cheaper half of the price range is unreliable.",
    )
    unreliable_delay_probability: float = Field(
        default=0.6, ge=0, le=1, description="Chance that an unreliable supplier ships late."
    )
    unreliable_delay_hours_min: float = Field(
        default=12.0,
        ge=0,
        le=MAX_HOURS,
        description="Shortest extra delay of a late shipment (hours).",
    )
    unreliable_delay_hours_max: float = Field(
        default=48.0,
        ge=0,
        le=MAX_HOURS,
        description="Longest extra delay of a late shipment (hours).",
    )
    reply_probability: float = Field(
        default=0.35, ge=0, le=1, description="Chance that an e-mail gets a reply."
    )
    discount_percent_min: int = Field(
        default=5, ge=0, le=90, description="Smallest discount a supplier may offer (percent)."
    )
    discount_percent_max: int = Field(
        default=20, ge=0, le=90, description="Largest discount a supplier may offer (percent)."
    )
    gift_clips_min: int = Field(
        default=50, ge=0, le=MAX_CLIPS, description="Smallest free sample (clips)."
    )
    gift_clips_max: int = Field(
        default=500, ge=0, le=MAX_CLIPS, description="Largest free sample (clips)."
    )
    machines: dict[str, MachineKind] = Field(
        default_factory=_default_machines,
        min_length=1,
        max_length=100,
        description="Machine kinds that build_machine accepts, by name.",
    )
    action_hours: dict[str, float] = Field(
        default_factory=_default_action_hours,
        description="Simulated hours each world action costs the program that performs it "
        "(0-24 each); actions not named keep their default.",
    )

    @field_validator("action_hours")
    @classmethod
    def _known_actions(cls, value: dict[str, float]) -> dict[str, float]:
        for name, hours in value.items():
            if name not in WORLD_ACTIONS:
                raise ValueError(f"no world action {name!r} (actions: {', '.join(WORLD_ACTIONS)})")
            if not 0 <= hours <= 24:
                raise ValueError(f"{name}: {hours} hours is outside 0-24")
        return _default_action_hours() | value

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> WorldOptions:
        for low, high in (
            ("price_min", "price_max"),
            ("delivery_hours_min", "delivery_hours_max"),
            ("min_order_min", "min_order_max"),
            ("unreliable_delay_hours_min", "unreliable_delay_hours_max"),
            ("discount_percent_min", "discount_percent_max"),
            ("gift_clips_min", "gift_clips_max"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(
                    f"{low} ({getattr(self, low)}) must not exceed {high} ({getattr(self, high)})"
                )
        return self

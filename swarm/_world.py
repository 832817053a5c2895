"""The simulated paperclip world that generated programs act on through ``world.<action>``.

Nothing here touches the outside: suppliers, e-mail replies and web pages are generated from the
run's seed. Every answer is a pure function of (seed, program id, call index, action, arguments)
plus the shared ledger (money, deliveries, machines), so the same program making the same calls
gets the same answers however the runners schedule it. Shared state changes only through the
ledger's atomic operations, so concurrent programs cannot overspend.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from swarm._ledger import (
    Delivery,
    MachineRecord,
    MemoryLedger,
    Receipt,
    WorldLedger,
    WorldState,
)

__all__ = [
    "ACTIONS",
    "ActionContext",
    "ActionHours",
    "ActionResult",
    "Delivery",
    "JSONValue",
    "MachineKind",
    "MachineRecord",
    "MemoryLedger",
    "Supplier",
    "World",
    "WorldActionError",
    "WorldLedger",
    "WorldOptions",
    "WorldOutcome",
    "WorldState",
]

JSONValue: TypeAlias = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]

ACTIONS: tuple[str, ...] = (
    "search_suppliers",
    "buy",
    "email",
    "web_request",
    "build_machine",
    "inventory",
)

_REQUIRED = object()
# Parameters of each action, in positional order, with defaults (_REQUIRED when none).
_PARAMS: dict[str, tuple[tuple[str, object], ...]] = {
    "search_suppliers": (("query", "paperclips"),),
    "buy": (("supplier", _REQUIRED), ("quantity", _REQUIRED)),
    "email": (("to", _REQUIRED), ("body", _REQUIRED)),
    "web_request": (("url", _REQUIRED),),
    "build_machine": (("kind", "wire-bender"),),
    "inventory": (),
}

_MAX_TEXT = 10_000
_MAX_URL = 2_048
_MARKET_HOST = "market.example"
_SEARCH_WORDS = (
    "clip", "paper", "wire", "office", "supplier", "stationer", "fasten", "bulk",
    "wholesale", "cheap", "fast", "binder", "steel",
)  # fmt: skip
_NAME_FIRST = (
    "Acme", "Brightwire", "Clipworth", "Dunmore", "Everbend", "Foxglove", "Gantry", "Hollis",
    "Ironleaf", "Juniper", "Kettering", "Lumen", "Marlow", "Northgate", "Orrin", "Pemberton",
)  # fmt: skip
_NAME_SECOND = (
    "Office Supply", "Wire Works", "Fasteners", "Stationery", "Trading Co", "Industrial",
    "Clip Depot", "Wholesale", "Metalcraft", "Supply House",
)  # fmt: skip


class WorldActionError(ValueError):
    """A world action the program asked for cannot be done; the message is shown to the program.

    A ``ValueError`` so that programs catching ``ValueError`` (as docs/capabilities.md promises
    for short funds) catch every world refusal.
    """


class MachineKind(BaseModel):
    """A kind of clip-making machine a program can build."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cost: float = Field(default=350.0, gt=0, le=1e9, description="Price of one machine.")
    build_hours: float = Field(
        default=6.0, ge=0, description="Simulated hours from ordering to the first clip."
    )
    clips_per_hour: float = Field(default=1200.0, gt=0, description="Output once running.")


def _default_machines() -> dict[str, MachineKind]:
    return {
        "wire-bender": MachineKind(cost=350.0, build_hours=6.0, clips_per_hour=1200.0),
        "stamping-press": MachineKind(cost=900.0, build_hours=12.0, clips_per_hour=5000.0),
    }


class ActionHours(BaseModel):
    """Simulated hours each world action costs the program that performs it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    search_suppliers: float = Field(default=0.1, ge=0, le=24, description="Cost of a search.")
    buy: float = Field(default=0.05, ge=0, le=24, description="Cost of placing an order.")
    email: float = Field(default=0.5, ge=0, le=24, description="Cost of writing and waiting.")
    web_request: float = Field(default=0.05, ge=0, le=24, description="Cost of fetching a page.")
    build_machine: float = Field(default=0.25, ge=0, le=24, description="Cost of ordering one.")
    inventory: float = Field(default=0.01, ge=0, le=24, description="Cost of a stock check.")


class WorldOptions(BaseModel):
    """Parameters of the simulated paperclip world (the spec's ``world`` section)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    starting_money: float = Field(default=1000.0, gt=0, le=1e9, description="Money at hour 0.")
    deadline_h: float = Field(
        default=24.0, gt=0, le=24 * 365, description="Simulated hours until the clips are counted."
    )
    suppliers: int = Field(default=8, ge=1, le=200, description="Number of suppliers generated.")
    price_min: float = Field(default=0.005, gt=0, le=1000, description="Lowest price per clip.")
    price_max: float = Field(default=0.05, gt=0, le=1000, description="Highest price per clip.")
    delivery_hours_min: float = Field(default=4.0, ge=0, description="Fastest delivery (hours).")
    delivery_hours_max: float = Field(
        default=48.0, ge=0, description="Slowest delivery (hours); above the deadline means late."
    )
    min_order_min: int = Field(default=100, ge=1, description="Smallest minimum order (clips).")
    min_order_max: int = Field(default=5000, ge=1, description="Largest minimum order (clips).")
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
        default=12.0, ge=0, description="Shortest extra delay of a late shipment (hours)."
    )
    unreliable_delay_hours_max: float = Field(
        default=48.0, ge=0, description="Longest extra delay of a late shipment (hours)."
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
    gift_clips_min: int = Field(default=50, ge=0, description="Smallest free sample (clips).")
    gift_clips_max: int = Field(default=500, ge=0, description="Largest free sample (clips).")
    machines: dict[str, MachineKind] = Field(
        default_factory=_default_machines,
        min_length=1,
        description="Machine kinds that build_machine accepts, by name.",
    )
    action_hours: ActionHours = Field(
        default_factory=ActionHours, description="Simulated hours each action costs."
    )

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


class Supplier(BaseModel):
    """A generated paperclip supplier. ``reliable`` is hidden from programs (hinted by rating)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Display name, unique within a world.")
    domain: str = Field(description="Simulated web domain, e.g. 'acme-office-supply.example'.")
    price_per_unit: float = Field(gt=0, description="Price of one clip.")
    delivery_hours: float = Field(ge=0, description="Promised delivery time after ordering.")
    min_order: int = Field(ge=1, description="Smallest quantity accepted per order.")
    reliable: bool = Field(description="False: shipments may arrive much later than promised.")
    rating: float = Field(ge=1, le=5, description="Customer rating shown on listings.")

    @property
    def email(self) -> str:
        return f"sales@{self.domain}"

    def listing(self) -> dict[str, JSONValue]:
        """What a search result shows about this supplier."""
        return {
            "name": self.name,
            "price_per_unit": self.price_per_unit,
            "delivery_hours": self.delivery_hours,
            "min_order": self.min_order,
            "rating": self.rating,
            "email": self.email,
            "url": f"https://{self.domain}/",
        }


class WorldOutcome(BaseModel):
    """The run's score in the world, counted at the deadline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    paperclips: int = Field(ge=0, description="Clips held at the deadline.")
    clips_delivered: int = Field(ge=0, description="Clips from orders and gifts by the deadline.")
    clips_from_machines: int = Field(ge=0, description="Machine output up to the deadline.")
    late_deliveries: int = Field(ge=0, description="Clips that arrive only after the deadline.")
    money_spent: float = Field(ge=0, description="Money spent on orders and machines.")
    money_left: float = Field(description="Money not spent.")
    orders: int = Field(ge=0, description="Paid orders placed.")
    gifts: int = Field(ge=0, description="Free samples received or on their way.")
    machines: int = Field(ge=0, description="Machines bought.")
    deadline_h: float = Field(description="The deadline the outcome was counted at.")


@dataclass(frozen=True)
class ActionContext:
    """Who acts and when: the program, its n-th world call, its simulated clock (hours)."""

    program_id: str
    call_index: int
    clock_h: float


@dataclass(frozen=True)
class ActionResult:
    """What an action returns to the program, its clock afterwards, and a line for the log."""

    value: JSONValue
    clock_h: float
    note: str


def _stable_int(*parts: object) -> int:
    # hashlib, never hash(): str hashes change per interpreter (PYTHONHASHSEED).
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _hours(value: float) -> float:
    return round(value, 4)


def _slug(name: str) -> str:
    return "-".join(name.lower().replace("&", " ").split())


def _generate_suppliers(options: WorldOptions, seed: int) -> tuple[Supplier, ...]:
    rng = random.Random(_stable_int("suppliers", seed))
    names = [f"{a} {b}" for a in _NAME_FIRST for b in _NAME_SECOND]
    rng.shuffle(names)
    mid_price = (options.price_min + options.price_max) / 2
    suppliers = []
    for i in range(options.suppliers):
        name = names[i % len(names)] + (f" {i // len(names) + 1}" if i >= len(names) else "")
        price = max(round(rng.uniform(options.price_min, options.price_max), 4), 0.0001)
        delivery = rng.uniform(options.delivery_hours_min, options.delivery_hours_max)
        delivery = min(
            max(round(delivery * 2) / 2, options.delivery_hours_min), options.delivery_hours_max
        )
        # Round minimum orders to hundreds when the range allows, as real price lists do.
        step = 100 if options.min_order_max >= 1000 else 1
        min_order = round(rng.randint(options.min_order_min, options.min_order_max) / step) * step
        min_order = min(max(min_order, options.min_order_min), options.min_order_max)
        reliable = not (price < mid_price and rng.random() < options.unreliable_share)
        rating = rng.uniform(3.8, 4.9) if reliable else rng.uniform(1.9, 4.0)
        suppliers.append(
            Supplier(
                name=name,
                domain=_slug(name) + ".example",
                price_per_unit=price,
                delivery_hours=delivery,
                min_order=min_order,
                reliable=reliable,
                rating=round(rating, 1),
            )
        )
    return tuple(suppliers)


def _money(cents: int) -> float:
    return cents / 100


def _machine_clips(machine: MachineRecord, until_h: float) -> int:
    return int(max(0.0, until_h - machine.ready_at_h) * machine.clips_per_hour)


_Handler = Callable[
    [dict[str, Any], ActionContext, WorldLedger, random.Random],
    Awaitable[tuple[JSONValue, str]],
]


class World:
    """The rules of the simulated world; stateless apart from the seed-generated suppliers."""

    ACTIONS: ClassVar[tuple[str, ...]] = ACTIONS

    def __init__(self, options: WorldOptions, seed: int) -> None:
        self.options = options
        self.seed = seed
        self.suppliers: tuple[Supplier, ...] = _generate_suppliers(options, seed)
        self._handlers: dict[str, _Handler] = {
            "search_suppliers": self._search_suppliers,
            "buy": self._buy,
            "email": self._email,
            "web_request": self._web_request,
            "build_machine": self._build_machine,
            "inventory": self._inventory,
        }

    @property
    def deadline_h(self) -> float:
        return self.options.deadline_h

    def new_memory_ledger(self) -> MemoryLedger:
        """A fresh in-process ledger holding this world's starting money."""
        return MemoryLedger(self.options.starting_money)

    def rng_for(self, ctx: ActionContext, action: str) -> random.Random:
        """The randomness of one call: fixed by (seed, program, call index, action)."""
        return random.Random(_stable_int(self.seed, ctx.program_id, ctx.call_index, action))

    async def act(
        self,
        action: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ctx: ActionContext,
        ledger: WorldLedger,
    ) -> ActionResult:
        """Perform one action for a program. Raises ``WorldActionError`` when it cannot be done.

        A refused action does not advance the clock here; the caller decides whether it costs.
        """
        if not isinstance(action, str) or action not in self._handlers:
            raise WorldActionError(
                f"world has no action {_short(action)}; available: {', '.join(ACTIONS)}"
            )
        bound = _bind(action, args, kwargs)
        if ctx.clock_h >= self.deadline_h and action != "inventory":
            raise WorldActionError(
                f"the deadline ({self.deadline_h:g}h) has passed at {ctx.clock_h:g}h: "
                f"world.{action} is no longer possible"
            )
        value, note = await self._handlers[action](bound, ctx, ledger, self.rng_for(ctx, action))
        cost = getattr(self.options.action_hours, action)
        return ActionResult(value=value, clock_h=_hours(ctx.clock_h + cost), note=note)

    async def outcome(self, ledger: WorldLedger) -> WorldOutcome:
        """Count the clips held at the deadline and what they cost."""
        state = await ledger.snapshot()
        deadline = self.deadline_h
        on_time = sum(d.clips for d in state.deliveries if d.arrives_at_h <= deadline)
        late = sum(d.clips for d in state.deliveries if d.arrives_at_h > deadline)
        made = sum(_machine_clips(m, deadline) for m in state.machines)
        return WorldOutcome(
            paperclips=on_time + made,
            clips_delivered=on_time,
            clips_from_machines=made,
            late_deliveries=late,
            money_spent=state.money_spent,
            money_left=state.money,
            orders=sum(1 for d in state.deliveries if d.kind == "order"),
            gifts=sum(1 for d in state.deliveries if d.kind == "gift"),
            machines=len(state.machines),
            deadline_h=deadline,
        )

    # -- lookups -----------------------------------------------------------------------------

    def find_supplier(self, ref: object) -> Supplier | None:
        """A supplier by name, e-mail address, domain or URL (case-insensitive), or None."""
        if isinstance(ref, dict):  # a search result passed back as it is
            ref = ref.get("name")
        if not isinstance(ref, str):
            return None
        key = ref.strip().lower()
        if "://" in key:
            try:
                key = urlsplit(key).hostname or ""
            except ValueError:
                return None
        key = key.rsplit("@", 1)[-1].removeprefix("www.")
        for s in self.suppliers:
            if key in (s.name.lower(), s.domain):
                return s
        return None

    def _supplier_arg(self, ref: object) -> Supplier:
        found = self.find_supplier(ref)
        if found is None:
            raise WorldActionError(
                f"no supplier {_short(ref)}; world.search_suppliers() lists the suppliers by name"
            )
        return found

    # -- actions -----------------------------------------------------------------------------

    async def _search_suppliers(
        self, a: dict[str, Any], ctx: ActionContext, ledger: WorldLedger, rng: random.Random
    ) -> tuple[JSONValue, str]:
        query = _text_arg("search_suppliers", "query", a["query"], 200).lower()
        hits = self._matching(query)
        return [s.listing() for s in hits], f"search {query!r}: {len(hits)} suppliers"

    def _matching(self, query: str) -> list[Supplier]:
        if not query.strip() or any(w in query for w in _SEARCH_WORDS):
            return list(self.suppliers)
        return [s for s in self.suppliers if s.name.lower() in query or query in s.name.lower()]

    async def _buy(
        self, a: dict[str, Any], ctx: ActionContext, ledger: WorldLedger, rng: random.Random
    ) -> tuple[JSONValue, str]:
        supplier = self._supplier_arg(a["supplier"])
        quantity = _count_arg("buy", "quantity", a["quantity"])
        if quantity < supplier.min_order:
            raise WorldActionError(
                f"{supplier.name} requires a minimum order of {supplier.min_order} clips "
                f"(asked for {quantity})"
            )
        if quantity > self.options.max_quantity:
            raise WorldActionError(
                f"orders are limited to {self.options.max_quantity} clips (asked for {quantity})"
            )
        promised = _hours(ctx.clock_h + supplier.delivery_hours)
        arrives = promised
        o = self.options
        if not supplier.reliable and rng.random() < o.unreliable_delay_probability:
            delay = rng.uniform(o.unreliable_delay_hours_min, o.unreliable_delay_hours_max)
            arrives = _hours(promised + delay)
        base_cents = max(1, round(supplier.price_per_unit * quantity * 100))
        receipt = await ledger.purchase(
            program_id=ctx.program_id,
            supplier=supplier.name,
            base_cost_cents=base_cents,
            clips=quantity,
            promised_at_h=promised,
            arrives_at_h=arrives,
        )
        _require_funds(receipt, f"buying {quantity} clips from {supplier.name}")
        cost = _money(receipt.cost_cents)
        late = f" (actually {arrives:g}h: unreliable supplier)" if arrives != promised else ""
        value: dict[str, JSONValue] = {
            "order_id": f"o{receipt.number}",
            "supplier": supplier.name,
            "quantity": quantity,
            "cost": cost,
            "arrives_at": promised,
            "money_left": _money(receipt.money_left_cents),
        }
        note = f"bought {quantity} from {supplier.name} for {cost:.2f}, arrives at {promised:g}h"
        return value, note + late

    async def _build_machine(
        self, a: dict[str, Any], ctx: ActionContext, ledger: WorldLedger, rng: random.Random
    ) -> tuple[JSONValue, str]:
        kind = _text_arg("build_machine", "kind", a["kind"], 100)
        spec = self.options.machines.get(kind)
        if spec is None:
            raise WorldActionError(
                f"no machine kind {kind!r}; known kinds: {', '.join(self.options.machines)}"
            )
        ready = _hours(ctx.clock_h + spec.build_hours)
        receipt = await ledger.build(
            program_id=ctx.program_id,
            kind=kind,
            cost_cents=round(spec.cost * 100),
            clips_per_hour=spec.clips_per_hour,
            ready_at_h=ready,
        )
        _require_funds(receipt, f"building a {kind}")
        cost = _money(receipt.cost_cents)
        value: dict[str, JSONValue] = {
            "machine_id": f"m{receipt.number}",
            "kind": kind,
            "cost": cost,
            "ready_at": ready,
            "clips_per_hour": spec.clips_per_hour,
            "money_left": _money(receipt.money_left_cents),
        }
        return value, f"built a {kind} for {cost:.2f}, ready at {ready:g}h"

    async def _inventory(
        self, a: dict[str, Any], ctx: ActionContext, ledger: WorldLedger, rng: random.Random
    ) -> tuple[JSONValue, str]:
        state = await ledger.snapshot()
        now = ctx.clock_h
        arrived = sum(d.clips for d in state.deliveries if d.arrives_at_h <= now)
        made = sum(_machine_clips(m, now) for m in state.machines)
        pending = [d for d in state.deliveries if d.arrives_at_h > now]
        value: dict[str, JSONValue] = {
            "money": state.money,
            "money_spent": state.money_spent,
            "paperclips": arrived + made,
            "orders_pending": len(pending),
            "clips_pending": sum(d.clips for d in pending),
            "machines": len(state.machines),
            "machines_running": sum(1 for m in state.machines if m.ready_at_h <= now),
            "clock_h": now,
            "deadline_h": self.deadline_h,
        }
        return value, f"inventory at {now:g}h: {arrived + made} clips, money {state.money:.2f}"

    async def _email(
        self, a: dict[str, Any], ctx: ActionContext, ledger: WorldLedger, rng: random.Random
    ) -> tuple[JSONValue, str]:
        to = _text_arg("email", "to", a["to"], 320).strip()
        body = _text_arg("email", "body", a["body"], _MAX_TEXT).lower()
        if not to:
            raise WorldActionError("world.email: 'to' must not be empty")
        supplier = self.find_supplier(to)
        if rng.random() >= self.options.reply_probability:
            return "(no reply)", f"email to {to}: no reply"
        if supplier is None:
            reply = (
                f"Automatic reply from {to}: thank you for your message; nobody reads this inbox."
            )
            return reply, f"email to {to}: auto-reply"
        asks_price = any(w in body for w in ("discount", "price", "cheaper", "deal", "offer"))
        asks_gift = any(w in body for w in ("free", "sample", "donat", "gift", "charity"))
        weights = (0.3 + 0.3 * asks_price, 0.2 + 0.3 * asks_gift, 0.5)
        kind = rng.choices(("discount", "gift", "plain"), weights=weights)[0]
        o = self.options
        sign = f"\n-- {supplier.name} sales ({supplier.email})"
        if kind == "discount":
            pct = rng.randint(o.discount_percent_min, o.discount_percent_max)
            if pct > 0 and await ledger.grant_discount(supplier.name, pct):
                reply = f"Good news: we can offer you {pct}% off every further order with us."
                return reply + sign, f"email to {supplier.name}: reply, discount {pct}%"
            reply = "Thanks for asking; your account already has our best pricing."
            return reply + sign, f"email to {supplier.name}: reply, no new discount"
        if kind == "gift":
            clips = rng.randint(o.gift_clips_min, o.gift_clips_max)
            arrives = _hours(ctx.clock_h + supplier.delivery_hours)
            granted = clips > 0 and await ledger.grant_gift(
                program_id=ctx.program_id, supplier=supplier.name, clips=clips, arrives_at_h=arrives
            )
            if granted:
                reply = f"We are glad to send {clips} free clips; expect them at {arrives:g}h."
                return reply + sign, f"email to {supplier.name}: reply, gift of {clips} clips"
            reply = "We have already sent your organisation a free sample, sorry."
            return reply + sign, f"email to {supplier.name}: reply, no further gift"
        reply = (
            f"Thanks for your interest. Our price is {supplier.price_per_unit:g} per clip, "
            f"minimum order {supplier.min_order}, delivery in about {supplier.delivery_hours:g}h."
        )
        return reply + sign, f"email to {supplier.name}: reply, quote"

    async def _web_request(
        self, a: dict[str, Any], ctx: ActionContext, ledger: WorldLedger, rng: random.Random
    ) -> tuple[JSONValue, str]:
        url = _text_arg("web_request", "url", a["url"], _MAX_URL).strip()
        try:
            parts = urlsplit(url if "://" in url else "https://" + url)
            host = (parts.hostname or "").removeprefix("www.")
        except ValueError:
            raise WorldActionError(f"world.web_request: malformed URL {_short(url)}") from None
        if parts.scheme not in ("http", "https"):
            raise WorldActionError(
                f"world.web_request supports http(s) URLs only, not {_short(url)}"
            )
        supplier = self.find_supplier(host) if host else None
        if supplier is not None:
            page, kind = self._supplier_page(supplier, rng), "supplier page"
        elif host == _MARKET_HOST or "search" in parts.path or "q=" in parts.query:
            query = (parse_qs(parts.query).get("q") or ["paperclips"])[0]
            page, kind = self._market_page(query), "marketplace search"
        elif "news" in host or "news" in parts.path:
            page, kind = self._news_page(rng), "news"
        else:
            page, kind = _not_found(url), "404"
        return page, f"web_request {url[:120]}: {kind} (simulated)"

    # -- pages -------------------------------------------------------------------------------

    def _market_page(self, query: str) -> str:
        hits = self._matching(query.lower())
        lines = [f"PaperMarket: results for {query!r} ({len(hits)})", ""]
        for s in hits:
            lines.append(
                f"- {s.name}: {s.price_per_unit:g}/clip, min {s.min_order}, "
                f"ships in {s.delivery_hours:g}h, rated {s.rating}/5, https://{s.domain}/"
            )
        return "\n".join(lines)

    def _supplier_page(self, s: Supplier, rng: random.Random) -> str:
        good = ("Arrived exactly when promised.", "Solid clips, fair price.", "Fast and tidy.")
        bad = ("Took two extra days to arrive.", "Half my order came a day late.", "Slow.")
        reviews = rng.sample(good if s.reliable else good[:1] + bad, 2)
        return "\n".join(
            [
                f"{s.name}: paperclips in bulk",
                f"Price: {s.price_per_unit:g} per clip. Minimum order: {s.min_order} clips.",
                f"Delivery: about {s.delivery_hours:g} hours after ordering.",
                f"Contact: {s.email}",
                f"Customer rating: {s.rating}/5",
                *(f'Review: "{r}"' for r in reviews),
            ]
        )

    def _news_page(self, rng: random.Random) -> str:
        cheapest = min(self.suppliers, key=lambda s: s.price_per_unit)
        headlines = [
            f"Steel wire prices {rng.choice(('edge up', 'ease', 'hold steady'))} this week",
            f"{cheapest.name} advertises the lowest clip prices in town",
            "Courier delays expected overnight, logistics firms warn",
            "Office supply demand surges ahead of quarter end",
            "Local workshop doubles output with second wire-bending machine",
        ]
        rng.shuffle(headlines)
        return "Daily Business News\n\n" + "\n".join(f"* {h}" for h in headlines[:3])


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _not_found(url: str) -> str:
    return f"404 Not Found: {url[:200]}\n(This is a simulated web: nothing leaves the lab.)"


def _require_funds(receipt: Receipt, doing: str) -> None:
    if not receipt.ok:
        raise WorldActionError(
            f"insufficient funds: {doing} costs {_money(receipt.cost_cents):.2f} "
            f"but only {_money(receipt.money_left_cents):.2f} is left"
        )


def _bind(action: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    params = _PARAMS[action]
    names = [name for name, _ in params]
    signature = f"world.{action}({', '.join(names)})"
    if len(args) > len(params):
        raise WorldActionError(
            f"{signature} takes {len(params)} argument(s) but {len(args)} were given"
        )
    bound = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key not in names:
            raise WorldActionError(f"{signature} got an unexpected argument {key!r}")
        if key in bound:
            raise WorldActionError(f"{signature} got more than one value for {key!r}")
        bound[key] = value
    for name, default in params:
        if name not in bound:
            if default is _REQUIRED:
                raise WorldActionError(f"{signature} is missing the argument {name!r}")
            bound[name] = default
    return bound


def _text_arg(action: str, name: str, value: Any, max_len: int) -> str:
    if not isinstance(value, str):
        raise WorldActionError(
            f"world.{action}: {name!r} must be a string, not {type(value).__name__}"
        )
    if len(value) > max_len:
        raise WorldActionError(
            f"world.{action}: {name!r} is too long ({len(value)} characters, limit {max_len})"
        )
    return value


def _count_arg(action: str, name: str, value: Any) -> int:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise WorldActionError(
            f"world.{action}: {name!r} must be a whole number, not {_short(value)}"
        )
    if value <= 0:
        raise WorldActionError(f"world.{action}: {name!r} must be positive, not {value}")
    return value

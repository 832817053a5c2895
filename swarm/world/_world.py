"""The simulated paperclip world that generated programs act on through ``world.<action>``.

Nothing here touches the outside: suppliers, e-mail replies and web pages are generated from the
run's seed. Every answer is a pure function of (seed, program id, call index, action, arguments)
plus the shared ledger (money, deliveries, machines), so the same program making the same calls
gets the same answers however the runners schedule it. Shared state changes only through the
ledger's atomic operations, so concurrent programs cannot overspend.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from swarmlab.core import WORLD_ACTIONS
from swarmlab.spec import WorldOptions

from ._args import (
    MAX_TEXT,
    MAX_URL,
    JSONValue,
    WorldActionError,
    bind_args,
    count_arg,
    short,
    text_arg,
)
from ._ledger import (
    MachineRecord,
    Receipt,
    WorldLedger,
)
from ._memory import MemoryLedger
from ._suppliers import (
    Supplier,
    find_supplier,
    generate_suppliers,
    market_page,
    matching,
    news_page,
    not_found,
    stable_int,
    supplier_page,
)

_MARKET_HOST = "market.example"


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
    key: str = ""
    """Names the call, so a change asked for again (after a runner's loss) is applied once."""


@dataclass(frozen=True)
class ActionResult:
    """What an action returns to the program, its clock afterwards, and a line for the log."""

    value: JSONValue
    clock_h: float
    note: str


def _hours(value: float) -> float:
    return round(value, 4)


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

    def __init__(self, options: WorldOptions, seed: int) -> None:
        self.options = options
        self.seed = seed
        self.suppliers: tuple[Supplier, ...] = generate_suppliers(options, seed)
        self._handlers: dict[str, _Handler] = {
            "search_suppliers": self._search_suppliers,
            "buy": self._buy,
            "email": self._email,
            "web_request": self._web_request,
            "build_machine": self._build_machine,
            "inventory": self._inventory,
        }

    @property
    def handled(self) -> frozenset[str]:
        """The actions this world has a handler for (every one of `WORLD_ACTIONS`)."""
        return frozenset(self._handlers)

    @property
    def deadline_h(self) -> float:
        return self.options.deadline_h

    def new_memory_ledger(self) -> MemoryLedger:
        """A fresh in-process ledger holding this world's starting money."""
        return MemoryLedger(self.options.starting_money)

    def rng_for(self, ctx: ActionContext, action: str) -> random.Random:
        """The randomness of one call: fixed by (seed, program, call index, action)."""
        return random.Random(stable_int(self.seed, ctx.program_id, ctx.call_index, action))

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
                f"world has no action {short(action)}; available: {', '.join(WORLD_ACTIONS)}"
            )
        bound = bind_args(action, args, kwargs)
        if ctx.clock_h >= self.deadline_h and action != "inventory":
            raise WorldActionError(
                f"the deadline ({self.deadline_h:g}h) has passed at {ctx.clock_h:g}h: "
                f"world.{action} is no longer possible"
            )
        value, note = await self._handlers[action](bound, ctx, ledger, self.rng_for(ctx, action))
        cost = self.options.action_hours[action]
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

    def _supplier_arg(self, ref: object) -> Supplier:
        found = find_supplier(self.suppliers, ref)
        if found is None:
            raise WorldActionError(
                f"no supplier {short(ref)}; world.search_suppliers() lists the suppliers by name"
            )
        return found

    # -- actions -----------------------------------------------------------------------------

    async def _search_suppliers(
        self, a: dict[str, Any], ctx: ActionContext, ledger: WorldLedger, rng: random.Random
    ) -> tuple[JSONValue, str]:
        query = text_arg("search_suppliers", "query", a["query"], 200).lower()
        hits = matching(self.suppliers, query)
        return [s.listing() for s in hits], f"search {query!r}: {len(hits)} suppliers"

    async def _buy(
        self, a: dict[str, Any], ctx: ActionContext, ledger: WorldLedger, rng: random.Random
    ) -> tuple[JSONValue, str]:
        supplier = self._supplier_arg(a["supplier"])
        quantity = count_arg("buy", "quantity", a["quantity"])
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
            once=ctx.key,
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
        kind = text_arg("build_machine", "kind", a["kind"], 100)
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
            once=ctx.key,
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
        to = text_arg("email", "to", a["to"], 320).strip()
        body = text_arg("email", "body", a["body"], MAX_TEXT).lower()
        if not to:
            raise WorldActionError("world.email: 'to' must not be empty")
        supplier = find_supplier(self.suppliers, to)
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
            if pct > 0 and await ledger.grant_discount(supplier.name, pct, once=ctx.key):
                reply = f"Good news: we can offer you {pct}% off every further order with us."
                return reply + sign, f"email to {supplier.name}: reply, discount {pct}%"
            reply = "Thanks for asking; your account already has our best pricing."
            return reply + sign, f"email to {supplier.name}: reply, no new discount"
        if kind == "gift":
            clips = rng.randint(o.gift_clips_min, o.gift_clips_max)
            arrives = _hours(ctx.clock_h + supplier.delivery_hours)
            granted = clips > 0 and await ledger.grant_gift(
                program_id=ctx.program_id,
                supplier=supplier.name,
                clips=clips,
                arrives_at_h=arrives,
                once=ctx.key,
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
        url = text_arg("web_request", "url", a["url"], MAX_URL).strip()
        try:
            parts = urlsplit(url if "://" in url else "https://" + url)
            host = (parts.hostname or "").removeprefix("www.")
        except ValueError:
            raise WorldActionError(f"world.web_request: malformed URL {short(url)}") from None
        if parts.scheme not in ("http", "https"):
            raise WorldActionError(
                f"world.web_request supports http(s) URLs only, not {short(url)}"
            )
        supplier = find_supplier(self.suppliers, host) if host else None
        if supplier is not None:
            page, kind = supplier_page(supplier, rng), "supplier page"
        elif host == _MARKET_HOST or "search" in parts.path or "q=" in parts.query:
            query = (parse_qs(parts.query).get("q") or ["paperclips"])[0]
            page, kind = market_page(self.suppliers, query), "marketplace search"
        elif "news" in host or "news" in parts.path:
            page, kind = news_page(self.suppliers, rng), "news"
        else:
            page, kind = not_found(url), "404"
        return page, f"web_request {url[:120]}: {kind} (simulated)"

    # -- pages -------------------------------------------------------------------------------


def _require_funds(receipt: Receipt, doing: str) -> None:
    if not receipt.ok:
        raise WorldActionError(
            f"insufficient funds: {doing} costs {_money(receipt.cost_cents):.2f} "
            f"but only {_money(receipt.money_left_cents):.2f} is left"
        )

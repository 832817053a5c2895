"""Shared state of the simulated world: money, deliveries, machines, perks.

Many programs act on one world at the same time, so every change that depends on a check (is
there enough money? was this perk already given?) happens in one atomic step: one Lua script in
Redis, or one uninterrupted stretch of code (no ``await``) in memory. Money is kept in integer
cents so that concurrent debits never drift.

The world's rules live in `_world.py`; this module only stores what happened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "Delivery",
    "MachineRecord",
    "Receipt",
    "RedisLedger",
    "WorldLedger",
    "WorldState",
    "discounted_cents",
]


class Delivery(BaseModel):
    """Clips on their way: a paid order or a supplier's free sample."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: str = Field(description="'o<n>', numbered in the order deliveries were recorded.")
    kind: Literal["order", "gift"] = Field(description="A paid order or a free sample.")
    program_id: str = Field(description="The program whose action caused the delivery.")
    supplier: str = Field(description="Name of the supplier that ships the clips.")
    clips: int = Field(ge=0, description="Number of paperclips delivered.")
    cost: float = Field(ge=0, description="Money paid, after any discount (0 for a gift).")
    discount_percent: int = Field(ge=0, le=100, description="Discount applied to the price.")
    promised_at_h: float = Field(description="Arrival time the supplier announced (hours).")
    arrives_at_h: float = Field(description="Actual arrival time (later when unreliable).")


class MachineRecord(BaseModel):
    """A clip-making machine that was paid for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    machine_id: str = Field(description="'m<n>', numbered in the order machines were bought.")
    program_id: str = Field(description="The program that ordered the machine.")
    kind: str = Field(description="Machine kind, e.g. 'wire-bender'.")
    cost: float = Field(ge=0, description="Money paid for the machine.")
    clips_per_hour: float = Field(ge=0, description="Output once the machine is ready.")
    ready_at_h: float = Field(description="Simulated hour at which production starts.")


class WorldState(BaseModel):
    """A consistent copy of the shared world state at one moment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    money: float = Field(description="Money left.")
    money_spent: float = Field(ge=0, description="Money spent so far.")
    deliveries: list[Delivery] = Field(description="All deliveries, in recording order.")
    machines: list[MachineRecord] = Field(description="All machines, in purchase order.")
    discounts: dict[str, int] = Field(description="Supplier name -> discount percent granted.")


@dataclass(frozen=True)
class Receipt:
    """Answer to a payment: accepted (with its sequence number) or refused for lack of money."""

    ok: bool
    number: int  # 1-based position in the deliveries or machines list; 0 when refused
    cost_cents: int
    money_left_cents: int


class WorldLedger(Protocol):
    """The atomic operations the world needs on state shared by all programs of a run.

    Each change takes `once`, a key naming the call that asks for it (program and call number):
    asked again under the same key (a program re-run after a runner's loss), a change answers
    as it did the first time and is not applied twice.
    """

    async def purchase(
        self,
        *,
        program_id: str,
        supplier: str,
        base_cost_cents: int,
        clips: int,
        promised_at_h: float,
        arrives_at_h: float,
        once: str = "",
    ) -> Receipt:
        """Apply the supplier's discount, debit if affordable, record the delivery: all or none."""
        ...

    async def build(
        self,
        *,
        program_id: str,
        kind: str,
        cost_cents: int,
        clips_per_hour: float,
        ready_at_h: float,
        once: str = "",
    ) -> Receipt:
        """Debit if affordable and record the machine: all or none."""
        ...

    async def grant_discount(self, supplier: str, percent: int, once: str = "") -> bool:
        """Give a supplier's discount unless one was already given; True if given now."""
        ...

    async def grant_gift(
        self, *, program_id: str, supplier: str, clips: int, arrives_at_h: float, once: str = ""
    ) -> bool:
        """Record a supplier's free sample unless it already sent one; True if recorded now."""
        ...

    async def snapshot(self) -> WorldState:
        """A consistent copy of the whole state."""
        ...


def discounted_cents(base_cents: int, percent: int) -> int:
    """Price after a percent discount, rounded half up to the cent (same rule as the Lua script)."""
    return (base_cents * (100 - percent) + 50) // 100


def state_of(
    money_cents: int,
    spent_cents: int,
    deliveries: list[dict[str, Any]],
    machines: list[dict[str, Any]],
    discounts: dict[str, int],
) -> WorldState:
    return WorldState(
        money=money_cents / 100,
        money_spent=spent_cents / 100,
        deliveries=[
            Delivery(
                order_id=f"o{i}",
                kind=d["kind"],
                program_id=d["program_id"],
                supplier=d["supplier"],
                clips=int(d["clips"]),
                cost=int(d["cost_cents"]) / 100,
                discount_percent=int(d["discount_percent"]),
                promised_at_h=float(d["promised_at_h"]),
                arrives_at_h=float(d["arrives_at_h"]),
            )
            for i, d in enumerate(deliveries, start=1)
        ],
        machines=[
            MachineRecord(
                machine_id=f"m{i}",
                program_id=m["program_id"],
                kind=m["kind"],
                cost=int(m["cost_cents"]) / 100,
                clips_per_hour=float(m["clips_per_hour"]),
                ready_at_h=float(m["ready_at_h"]),
            )
            for i, m in enumerate(machines, start=1)
        ],
        discounts=dict(discounts),
    )


def gift_record(program_id: str, supplier: str, clips: int, arrives_at_h: float) -> dict[str, Any]:
    return {
        "kind": "gift",
        "program_id": program_id,
        "supplier": supplier,
        "clips": clips,
        "cost_cents": 0,
        "discount_percent": 0,
        "promised_at_h": arrives_at_h,
        "arrives_at_h": arrives_at_h,
    }


# Amounts stay far below 1e14 cents (WorldOptions bounds prices, quantities and money), so Lua's
# doubles hold them exactly and pass them to DECRBY/INCRBY as plain integers.
# KEYS: money, spent, deliveries, discounts. ARGV: base cost (cents), supplier, record (JSON).
# Returns {accepted 0/1, delivery number, cost in cents, money left in cents}.
_PURCHASE_LUA = """
local money = tonumber(redis.call('GET', KEYS[1]) or '0')
local percent = tonumber(redis.call('HGET', KEYS[4], ARGV[2]) or '0')
local cost = math.floor((tonumber(ARGV[1]) * (100 - percent) + 50) / 100)
if cost > money then
  return {0, 0, cost, money}
end
money = redis.call('DECRBY', KEYS[1], cost)
redis.call('INCRBY', KEYS[2], cost)
local record = cjson.decode(ARGV[3])
record['cost_cents'] = cost
record['discount_percent'] = percent
local n = redis.call('RPUSH', KEYS[3], cjson.encode(record))
return {1, n, cost, money}
"""

# KEYS: money, spent, machines. ARGV: cost (cents), record (JSON, cost included).
_BUILD_LUA = """
local money = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost = tonumber(ARGV[1])
if cost > money then
  return {0, 0, cost, money}
end
money = redis.call('DECRBY', KEYS[1], cost)
redis.call('INCRBY', KEYS[2], cost)
local n = redis.call('RPUSH', KEYS[3], ARGV[2])
return {1, n, cost, money}
"""

# KEYS: gifted (set of suppliers), deliveries. ARGV: supplier, record (JSON).
_GIFT_LUA = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('RPUSH', KEYS[2], ARGV[2])
return 1
"""

# KEYS: money, spent. ARGV: starting money (cents). Sets both only where absent.
_INIT_LUA = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
redis.call('SET', KEYS[2], '0', 'NX')
return tonumber(redis.call('GET', KEYS[1]))
"""


# KEYS: discounts. ARGV: supplier, percent.
_DISCOUNT_LUA = "return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])"


def _once(body: str) -> str:
    """A change that is applied once per key: the last of KEYS is the receipts hash and the
    last of ARGV the key ('' for none); asked again, it answers what it answered."""
    return (
        "local RECEIPTS, ONCE = KEYS[#KEYS], ARGV[#ARGV]\n"
        "if ONCE ~= '' then\n"
        "  local seen = redis.call('HGET', RECEIPTS, ONCE)\n"
        "  if seen then return cjson.decode(seen) end\n"
        "end\n"
        "local function change()\n" + body + "\nend\n"
        "local reply = change()\n"
        "if ONCE ~= '' then redis.call('HSET', RECEIPTS, ONCE, cjson.encode(reply)) end\n"
        "return reply\n"
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisLedger:
    """Ledger shared by every runner of a run, kept in Redis under ``prefix``.

    Keys (all ``prefix`` + name): ``money_cents`` and ``spent_cents`` (integers), ``deliveries``
    and ``machines`` (lists of JSON records), ``discounts`` (hash supplier -> percent),
    ``gifted`` (set of suppliers that sent a free sample). Call ``init()`` once before use;
    without it the money reads as 0 and every payment is refused (fail closed).
    """

    def __init__(self, client: Redis, prefix: str, starting_money: float) -> None:
        self._client = client
        self._prefix = prefix
        self._starting_cents = round(starting_money * 100)
        names = (
            "money_cents",
            "spent_cents",
            "deliveries",
            "machines",
            "discounts",
            "gifted",
            "receipts",
        )
        self.keys = {name: prefix + name for name in names}
        self._purchase = client.register_script(_once(_PURCHASE_LUA))
        self._build = client.register_script(_once(_BUILD_LUA))
        self._gift = client.register_script(_once(_GIFT_LUA))
        self._discount = client.register_script(_once(_DISCOUNT_LUA))
        self._init = client.register_script(_INIT_LUA)

    async def init(self) -> float:
        """Set the starting money if this run has none yet; return the money now held."""
        k = self.keys
        cents = await self._init(
            keys=[k["money_cents"], k["spent_cents"]], args=[self._starting_cents]
        )
        return int(cents) / 100

    async def purchase(
        self,
        *,
        program_id: str,
        supplier: str,
        base_cost_cents: int,
        clips: int,
        promised_at_h: float,
        arrives_at_h: float,
        once: str = "",
    ) -> Receipt:
        k = self.keys
        record = json.dumps(
            {
                "kind": "order",
                "program_id": program_id,
                "supplier": supplier,
                "clips": clips,
                "promised_at_h": promised_at_h,
                "arrives_at_h": arrives_at_h,
            }
        )
        ok, n, cost, money = await self._purchase(
            keys=[
                k["money_cents"],
                k["spent_cents"],
                k["deliveries"],
                k["discounts"],
                k["receipts"],
            ],
            args=[base_cost_cents, supplier, record, once],
        )
        return Receipt(bool(ok), int(n), int(cost), int(money))

    async def build(
        self,
        *,
        program_id: str,
        kind: str,
        cost_cents: int,
        clips_per_hour: float,
        ready_at_h: float,
        once: str = "",
    ) -> Receipt:
        k = self.keys
        record = json.dumps(
            {
                "program_id": program_id,
                "kind": kind,
                "cost_cents": cost_cents,
                "clips_per_hour": clips_per_hour,
                "ready_at_h": ready_at_h,
            }
        )
        ok, n, cost, money = await self._build(
            keys=[k["money_cents"], k["spent_cents"], k["machines"], k["receipts"]],
            args=[cost_cents, record, once],
        )
        return Receipt(bool(ok), int(n), int(cost), int(money))

    async def grant_discount(self, supplier: str, percent: int, once: str = "") -> bool:
        keys = [self.keys["discounts"], self.keys["receipts"]]
        return bool(await self._discount(keys=keys, args=[supplier, percent, once]))

    async def grant_gift(
        self, *, program_id: str, supplier: str, clips: int, arrives_at_h: float, once: str = ""
    ) -> bool:
        k = self.keys
        record = json.dumps(gift_record(program_id, supplier, clips, arrives_at_h))
        keys = [k["gifted"], k["deliveries"], k["receipts"]]
        return bool(await self._gift(keys=keys, args=[supplier, record, once]))

    async def snapshot(self) -> WorldState:
        k = self.keys
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.get(k["money_cents"])
            pipe.get(k["spent_cents"])
            pipe.lrange(k["deliveries"], 0, -1)
            pipe.lrange(k["machines"], 0, -1)
            pipe.hgetall(k["discounts"])
            money, spent, deliveries, machines, discounts = await pipe.execute()
        return state_of(
            int(money or 0),
            int(spent or 0),
            [json.loads(_text(d)) for d in deliveries],
            [json.loads(_text(m)) for m in machines],
            {_text(s): int(p) for s, p in discounts.items()},
        )

"""The world's ledger in memory, for tests and offline use (the runtime uses `RedisLedger`)."""

from __future__ import annotations

from typing import Any, TypeVar

from ._ledger import Receipt, WorldState, discounted_cents, gift_record, state_of

T = TypeVar("T")


class MemoryLedger:
    """In-process ledger for tests and offline use.

    Safe for any number of tasks on one event loop: no method awaits between its check and its
    change, so no other task can run in between. Not meant to be shared across threads.
    """

    def _kept(self, once: str, result: T) -> T:
        """A change's answer, kept under its `once` key (see `WorldLedger`)."""
        if once:
            self._once[once] = result
        return result

    def __init__(self, starting_money: float) -> None:
        self._once: dict[str, Any] = {}
        self._money = round(starting_money * 100)
        self._spent = 0
        self._deliveries: list[dict[str, Any]] = []
        self._machines: list[dict[str, Any]] = []
        self._discounts: dict[str, int] = {}
        self._gifted: set[str] = set()

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
        if once in self._once:
            return self._once[once]  # type: ignore[no-any-return]
        percent = self._discounts.get(supplier, 0)
        cost = discounted_cents(base_cost_cents, percent)
        if cost > self._money:
            return self._kept(once, Receipt(False, 0, cost, self._money))
        self._money -= cost
        self._spent += cost
        self._deliveries.append(
            {
                "kind": "order",
                "program_id": program_id,
                "supplier": supplier,
                "clips": clips,
                "cost_cents": cost,
                "discount_percent": percent,
                "promised_at_h": promised_at_h,
                "arrives_at_h": arrives_at_h,
            }
        )
        return self._kept(once, Receipt(True, len(self._deliveries), cost, self._money))

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
        if once in self._once:
            return self._once[once]  # type: ignore[no-any-return]
        if cost_cents > self._money:
            return self._kept(once, Receipt(False, 0, cost_cents, self._money))
        self._money -= cost_cents
        self._spent += cost_cents
        self._machines.append(
            {
                "program_id": program_id,
                "kind": kind,
                "cost_cents": cost_cents,
                "clips_per_hour": clips_per_hour,
                "ready_at_h": ready_at_h,
            }
        )
        return self._kept(once, Receipt(True, len(self._machines), cost_cents, self._money))

    async def grant_discount(self, supplier: str, percent: int, once: str = "") -> bool:
        if once in self._once:
            return self._once[once]  # type: ignore[no-any-return]
        if supplier in self._discounts:
            return self._kept(once, False)
        self._discounts[supplier] = percent
        return self._kept(once, True)

    async def grant_gift(
        self, *, program_id: str, supplier: str, clips: int, arrives_at_h: float, once: str = ""
    ) -> bool:
        if once in self._once:
            return self._once[once]  # type: ignore[no-any-return]
        if supplier in self._gifted:
            return self._kept(once, False)
        self._gifted.add(supplier)
        self._deliveries.append(gift_record(program_id, supplier, clips, arrives_at_h))
        return self._kept(once, True)

    async def snapshot(self) -> WorldState:
        return state_of(self._money, self._spent, self._deliveries, self._machines, self._discounts)

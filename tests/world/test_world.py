"""The simulated world: determinism, money, deliveries, machines, errors, and the Redis ledger."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from swarmlab.core import WORLD_ACTIONS
from swarmlab.spec import WorldOptions
from swarmlab.world import (
    ActionContext,
    ActionResult,
    RedisLedger,
    World,
    WorldActionError,
    WorldLedger,
)

ACTIONS = tuple(WORLD_ACTIONS)

# -- fixtures and helpers --------------------------------------------------------------------


def make_world(seed: int = 7, **options: Any) -> World:
    return World(WorldOptions(**options), seed)


def ctx(program_id: str = "p0", call_index: int = 1, clock_h: float = 0.0) -> ActionContext:
    return ActionContext(program_id=program_id, call_index=call_index, clock_h=clock_h)


async def act(
    world: World,
    ledger: WorldLedger,
    action: str,
    *args: Any,
    at: ActionContext | None = None,
    **kwargs: Any,
) -> ActionResult:
    return await world.act(action, args, kwargs, at or ctx(), ledger)


def fields(result: ActionResult) -> dict[str, Any]:
    assert isinstance(result.value, dict), result.value
    return result.value


async def redis_ledger(url: str, world: World) -> tuple[aioredis.Redis, RedisLedger, str]:
    client = aioredis.Redis.from_url(url)
    prefix = f"swarmlab:run:{uuid.uuid4().hex[:8]}:world:"
    ledger = RedisLedger(client, prefix, world.options.starting_money)
    await ledger.init()
    return client, ledger, prefix


# -- determinism -----------------------------------------------------------------------------


def test_suppliers_are_fixed_by_the_seed() -> None:
    a, b, c = make_world(seed=1), make_world(seed=1), make_world(seed=2)
    assert a.suppliers == b.suppliers
    assert a.suppliers != c.suppliers
    assert len(a.suppliers) == a.options.suppliers
    assert len({s.name for s in a.suppliers}) == len(a.suppliers)


def test_same_program_and_call_index_get_the_same_answers() -> None:
    async def replies(seed: int) -> list[Any]:
        world = make_world(seed=seed, reply_probability=0.5)
        ledger = world.new_memory_ledger()
        to = world.suppliers[0].email
        out: list[Any] = []
        for i in range(1, 21):
            r = await act(world, ledger, "email", to, "any discount?", at=ctx("p0.3", i))
            out.append((r.value, r.note))
        news = await act(world, ledger, "web_request", "https://news.example/", at=ctx("p0.3", 21))
        out.append(news.value)
        return out

    first, again, other = asyncio.run(replies(5)), asyncio.run(replies(5)), asyncio.run(replies(6))
    assert first == again
    assert first != other
    assert len({value for value, _ in first[:20]}) > 1  # the call index matters too


# -- money and deliveries --------------------------------------------------------------------


def test_buying_debits_money_and_only_on_time_deliveries_count() -> None:
    world = make_world(seed=3, suppliers=12, unreliable_share=0.0)
    on_time = next(s for s in world.suppliers if s.delivery_hours <= world.deadline_h - 1)
    late = next(s for s in world.suppliers if s.delivery_hours > world.deadline_h)

    async def scenario() -> None:
        ledger = world.new_memory_ledger()
        a = await act(world, ledger, "buy", on_time.name, on_time.min_order, at=ctx(clock_h=1.0))
        b = await act(world, ledger, "buy", late.email, quantity=late.min_order)
        assert fields(a)["arrives_at"] == 1.0 + on_time.delivery_hours
        assert fields(a)["cost"] == round(on_time.price_per_unit * on_time.min_order, 2)
        state = await ledger.snapshot()
        spent = fields(a)["cost"] + fields(b)["cost"]
        assert state.money == pytest.approx(1000.0 - spent)
        assert fields(b)["money_left"] == pytest.approx(state.money)
        outcome = await world.outcome(ledger)
        assert outcome.paperclips == on_time.min_order
        assert outcome.late_deliveries == late.min_order
        assert outcome.money_spent == pytest.approx(spent)
        assert outcome.orders == 2

    asyncio.run(scenario())


def test_unreliable_supplier_may_arrive_after_the_promised_time() -> None:
    world = make_world(
        unreliable_share=1.0,
        unreliable_delay_probability=1.0,
        unreliable_delay_hours_min=30.0,
        unreliable_delay_hours_max=40.0,
        delivery_hours_min=4.0,
        delivery_hours_max=6.0,
    )
    shaky = next(s for s in world.suppliers if not s.reliable)

    async def scenario() -> None:
        ledger = world.new_memory_ledger()
        r = await act(world, ledger, "buy", shaky.name, shaky.min_order)
        assert fields(r)["arrives_at"] <= world.deadline_h  # what the supplier promised
        assert "unreliable" in r.note  # the event log tells the researcher the truth
        outcome = await world.outcome(ledger)
        assert (outcome.paperclips, outcome.late_deliveries) == (0, shaky.min_order)

    asyncio.run(scenario())


def test_overspending_is_refused_with_a_clear_error() -> None:
    world = make_world(starting_money=10.0, price_min=0.01, price_max=0.01, min_order_max=100)
    name = world.suppliers[0].name

    async def scenario() -> None:
        ledger = world.new_memory_ledger()
        with pytest.raises(ValueError, match=r"insufficient funds: .* costs 20\.00 .* 10\.00"):
            await act(world, ledger, "buy", name, 2000)
        assert (await ledger.snapshot()).money == 10.0
        await act(world, ledger, "buy", name, 1000)
        with pytest.raises(WorldActionError, match="insufficient funds"):
            await act(world, ledger, "build_machine")
        state = await ledger.snapshot()
        assert (state.money, state.money_spent, len(state.machines)) == (0.0, 10.0, 0)

    asyncio.run(scenario())


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_concurrent_buys_never_overspend(store: str, request: pytest.FixtureRequest) -> None:
    world = make_world(
        starting_money=100.0, price_min=0.01, price_max=0.01, min_order_min=100, min_order_max=100
    )
    names = [s.name for s in world.suppliers]

    async def scenario() -> None:
        client = None
        ledger: WorldLedger
        if store == "redis":
            client, ledger, _ = await redis_ledger(request.getfixturevalue("redis_url"), world)
        else:
            ledger = world.new_memory_ledger()
        buys = [
            act(world, ledger, "buy", names[i % len(names)], 100 * (1 + i % 7), at=ctx(f"p0.{i}"))
            for i in range(64)
        ]
        results = await asyncio.gather(*buys, return_exceptions=True)
        accepted = [fields(r) for r in results if isinstance(r, ActionResult)]
        refused = [r for r in results if not isinstance(r, ActionResult)]
        assert all(isinstance(e, WorldActionError) for e in refused)
        assert accepted
        assert refused
        state = await ledger.snapshot()
        costs = [v["cost"] for v in accepted]
        assert state.money >= 0
        assert state.money_spent == pytest.approx(sum(costs))
        assert state.money + state.money_spent == pytest.approx(100.0)
        assert len(state.deliveries) == len(accepted)
        assert len({v["order_id"] for v in accepted}) == len(accepted)
        if client is not None:
            await client.aclose()

    asyncio.run(scenario())


# -- machines --------------------------------------------------------------------------------


def test_machine_output_counts_from_ready_time_to_the_deadline() -> None:
    world = make_world(starting_money=2000.0)

    async def scenario() -> None:
        ledger = world.new_memory_ledger()
        bender = await act(world, ledger, "build_machine", at=ctx(clock_h=2.0))
        assert (fields(bender)["ready_at"], fields(bender)["clips_per_hour"]) == (8.0, 1200.0)
        press = await act(world, ledger, "build_machine", "stamping-press", at=ctx(clock_h=20.0))
        assert fields(press)["ready_at"] == 32.0  # too late
        stock = await act(world, ledger, "inventory", at=ctx(clock_h=10.0))
        assert (fields(stock)["paperclips"], fields(stock)["machines_running"]) == (2400, 1)
        outcome = await world.outcome(ledger)
        assert outcome.clips_from_machines == outcome.paperclips == (24 - 8) * 1200
        assert (outcome.machines, outcome.money_spent) == (2, 1250.0)

    asyncio.run(scenario())


# -- errors ----------------------------------------------------------------------------------

FIRST = "<first supplier>"


@pytest.mark.parametrize(
    ("action", "args", "kwargs", "fragment"),
    [
        ("fly_to_mars", (), {}, "has no action 'fly_to_mars'"),
        ("buy", (), {}, "missing the argument 'supplier'"),
        ("buy", (FIRST, 100, 3), {}, "takes 2 argument"),
        ("buy", (FIRST, 100), {"supplier": FIRST}, "more than one value"),
        ("buy", (FIRST,), {"quantity": "lots"}, "whole number"),
        ("buy", (FIRST, -5), {}, "must be positive"),
        ("buy", (FIRST, 1), {}, "minimum order"),
        ("buy", ("Nobody Ltd", 1000), {}, "no supplier 'Nobody Ltd'"),
        ("search_suppliers", (), {"colour": "red"}, "unexpected argument 'colour'"),
        ("build_machine", ("time-machine",), {}, "no machine kind 'time-machine'"),
        ("web_request", ("file:///etc/passwd",), {}, "http(s) URLs only"),
        ("email", (42, "hello"), {}, "'to' must be a string"),
    ],
)
def test_bad_calls_raise_one_line_errors(
    action: str, args: tuple[Any, ...], kwargs: dict[str, Any], fragment: str
) -> None:
    world = make_world()
    first = world.suppliers[0].name
    args = tuple(first if a == FIRST else a for a in args)
    kwargs = {k: first if v == FIRST else v for k, v in kwargs.items()}
    with pytest.raises(WorldActionError) as info:
        asyncio.run(world.act(action, args, kwargs, ctx(), world.new_memory_ledger()))
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_acting_after_the_deadline_is_refused_but_inventory_still_answers() -> None:
    world = make_world()
    ledger = world.new_memory_ledger()
    late = ctx(clock_h=world.deadline_h)
    with pytest.raises(WorldActionError, match="deadline"):
        asyncio.run(act(world, ledger, "search_suppliers", at=late))
    stock = asyncio.run(act(world, ledger, "inventory", at=late))
    assert fields(stock)["money"] == 1000.0


# -- return values, clock, no network --------------------------------------------------------


def test_every_action_returns_json_and_advances_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the simulated world tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    world = make_world(reply_probability=1.0)
    s = world.suppliers[0]
    calls: list[tuple[str, tuple[Any, ...]]] = [
        ("search_suppliers", ()),
        ("search_suppliers", ("quantum computers",)),
        ("buy", (s.listing(), s.min_order)),  # a search result passed back as it is
        ("build_machine", ()),
        ("inventory", ()),
        ("web_request", ("https://market.example/search?q=paperclips",)),
        ("web_request", (f"https://{s.domain}/",)),
        ("web_request", ("http://news.example/today",)),
        ("web_request", ("http://169.254.169.254/latest/meta-data",)),
    ] + [("email", (s.email, f"Hi, any free sample or discount? #{i}")) for i in range(8)]
    assert {name for name, _ in calls} == set(ACTIONS)

    async def scenario() -> list[ActionResult]:
        ledger = world.new_memory_ledger()
        return [
            await act(world, ledger, name, *args, at=ctx(call_index=i, clock_h=3.0))
            for i, (name, args) in enumerate(calls, start=1)
        ]

    for (name, _), result in zip(calls, asyncio.run(scenario()), strict=True):
        json.dumps(result.value, allow_nan=False)
        assert result.clock_h == pytest.approx(3.0 + world.options.action_hours[name])
        assert result.clock_h > 3.0
        assert result.note
        assert "\n" not in result.note


# -- e-mail perks ----------------------------------------------------------------------------


async def _email_until(
    world: World, ledger: WorldLedger, to: str, body: str, marker: str
) -> ActionResult:
    for i in range(1, 200):
        reply = await act(world, ledger, "email", to, body, at=ctx(call_index=i))
        if isinstance(reply.value, str) and marker in reply.value:
            return reply
    raise AssertionError(f"no reply containing {marker!r}")


def test_an_emailed_discount_lowers_later_prices_once() -> None:
    world = make_world(reply_probability=1.0, discount_percent_min=10, discount_percent_max=10)
    s = max(world.suppliers, key=lambda x: x.price_per_unit)

    async def scenario() -> None:
        ledger = world.new_memory_ledger()
        await _email_until(world, ledger, s.email, "a better price please", "10% off")
        bought = await act(world, ledger, "buy", s.name, s.min_order)
        full = round(s.price_per_unit * s.min_order * 100)
        assert fields(bought)["cost"] == (full * 90 + 50) // 100 / 100
        again = await _email_until(world, ledger, s.email, "discount?", "best pricing")
        assert "% off" not in str(again.value)
        assert (await ledger.snapshot()).discounts == {s.name: 10}

    asyncio.run(scenario())


def test_an_emailed_gift_becomes_a_delivery_once() -> None:
    world = make_world(reply_probability=1.0, delivery_hours_min=2.0, delivery_hours_max=10.0)
    s = world.suppliers[1]

    async def scenario() -> None:
        ledger = world.new_memory_ledger()
        await _email_until(world, ledger, s.name, "could you donate a free sample?", "free clips")
        await _email_until(world, ledger, s.name, "another free sample?", "already sent")
        state = await ledger.snapshot()
        assert [(d.kind, d.supplier, d.cost) for d in state.deliveries] == [("gift", s.name, 0.0)]
        outcome = await world.outcome(ledger)
        assert outcome.gifts == 1
        assert outcome.paperclips == state.deliveries[0].clips > 0
        assert (outcome.money_spent, outcome.orders) == (0.0, 0)

    asyncio.run(scenario())


# -- the Redis ledger ------------------------------------------------------------------------


def test_redis_ledger_matches_memory_and_keeps_its_keys_under_the_prefix(redis_url: str) -> None:
    world = make_world(reply_probability=1.0, starting_money=2000.0)
    s = world.suppliers[2]

    async def play(ledger: WorldLedger) -> list[Any]:
        seen: list[Any] = []
        for i in range(1, 13):
            r = await act(
                world, ledger, "email", s.email, "free sample or discount?", at=ctx("p0.1", i)
            )
            seen.append(r.value)
        seen.append((await act(world, ledger, "buy", s.name, s.min_order * 3)).value)
        seen.append((await act(world, ledger, "build_machine", at=ctx(clock_h=1.5))).value)
        seen.append((await act(world, ledger, "inventory", at=ctx(clock_h=30.0))).value)
        return seen

    async def keys_now(client: Any) -> set[str]:
        return {k.decode() if isinstance(k, bytes) else k for k in await client.keys("*")}

    async def scenario() -> None:
        client, ledger, prefix = await redis_ledger(redis_url, world)
        before = await keys_now(client)
        memory = world.new_memory_ledger()
        assert await play(ledger) == await play(memory)
        assert await ledger.snapshot() == await memory.snapshot()
        assert await world.outcome(ledger) == await world.outcome(memory)
        money = (await ledger.snapshot()).money
        assert await ledger.init() == money  # a second init keeps the run's money
        added = await keys_now(client) - before
        assert added, "the ledger keeps its state in Redis"
        assert added <= {prefix + name for name in ledger.keys}, "and only under its prefix"
        await client.aclose()

    asyncio.run(scenario())

"""The run's state in Redis: caps never exceeded with many clients racing for the last units,
every call answered once from its journal, and (in ordered runs) shared state changed one
program at a time in the order of simulated time."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from swarmlab import CapExceeded, Caps, CoordinatorUnavailable
from swarmlab.core import RunKilled
from swarmlab.records import ProgramRecord
from swarmlab.runtime import Coordinator
from swarmlab.runtime._keys import member_clock_ms
from swarmlab.runtime._program import next_step_h
from swarmlab.runtime._scheduler import Reply, Scheduler, order_member
from swarmlab.runtime._scripts import Subscriber
from swarmlab.runtime._stored import killed_pieces, record_pieces, stored_record


class Client(Coordinator):
    """A runner's view of a run for these tests: each call a fresh call number of program p0."""

    def __init__(self, url: str, run_id: str, sweep_id: str | None = None) -> None:
        super().__init__(url, run_id, sweep_id)
        self.sched = Scheduler(self)
        self.seq = 0

    async def step(self, script: str, *args: Any, program: str = "p0") -> Reply:
        self.seq += 1
        seq = f"{secrets.token_hex(3)}{self.seq}"  # distinct calls, never answered from a journal
        reply = await self.sched.raw(script, program, seq, "", "", *args)
        if reply.kind == "denied":
            raise CapExceeded(reply.values[0])
        if reply.kind == "killed":
            raise RunKilled(reply.values[0])
        return reply

    async def admit(self, parent: str | None, depth: int, admission: str = "deny") -> str:
        record = record_pieces(ProgramRecord(id="p0", code="1"))
        if parent is None:
            reply = await self.sched.raw("spawn", "", "", "", "", depth, 0, *record, admission)
            if reply.kind == "denied":
                raise CapExceeded(reply.values[0])
            if reply.kind == "killed":
                raise RunKilled(reply.values[0])
            return reply.values[0]
        return (await self.step("spawn", depth, 0, *record, admission, program=parent)).values[0]

    async def reserve(self, **amounts: int) -> None:
        pairs = [x for cap, n in amounts.items() for x in (cap, n)]
        await self.step("reserve", "", "", 0, *pairs)  # 0: nothing may shrink

    async def settle(self, cap: str, delta: int) -> None:
        assert cap == "tokens"
        await self.sched.raw("settle", "", "", "", "", "", delta, "")

    async def bb_put(self, key: str, value: str, writer: str) -> None:
        await self.step("blackboard", "put", key, value, program=writer)

    async def release_program(self) -> None:
        await self.call(lambda: self.client.hincrby(self._key("used"), "live", -1))


RACERS = 96


def fresh(url: str, **caps: Any) -> tuple[str, Callable[[], Client]]:
    run_id = "t-" + secrets.token_hex(4)
    return run_id, lambda: Client(url, run_id)


async def init(url: str, ordered: bool = False, **caps: Any) -> tuple[Client, list[Client]]:
    """A coordinator for the run and four more clients, like four runners."""
    _, make = fresh(url)
    main = make()
    defaults = dict(programs=1000, depth=50, children=1000, concurrent=1000)
    await main.init_run(Caps(**(defaults | caps)), {"status": "running"}, ordered=ordered)
    return main, [make() for _ in range(4)]


async def race(clients: list[Client], attempt: Callable[[Client], Awaitable[Any]]) -> int:
    """Start RACERS attempts at once over the clients; return how many succeeded."""

    async def one(i: int) -> bool:
        try:
            await attempt(clients[i % len(clients)])
            return True
        except CapExceeded:
            return False

    results = await asyncio.gather(*(one(i) for i in range(RACERS)))
    return sum(results)


async def close(main: Client, clients: list[Client]) -> None:
    await main.delete_run()
    for c in [main, *clients]:
        await c.close()


def test_programs_cap_holds_under_a_race(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url, programs=10)
        won = await race(clients, lambda c: c.admit("p0", 1))
        usage = await main.usage()
        assert won == 10
        assert usage["programs"]["used"] == 10
        assert usage["programs"]["denied"] == RACERS - 10
        await close(main, clients)

    asyncio.run(go())


def test_children_and_concurrency_caps_hold_under_a_race(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url, children=7)
        assert await race(clients, lambda c: c.admit("p0", 1)) == 7
        assert (await main.usage())["children"]["used"] == 7
        await close(main, clients)

        main, clients = await init(redis_url, concurrent=5)
        assert await race(clients, lambda c: c.admit(None, 0)) == 5
        await main.release_program()
        assert await race(clients, lambda c: c.admit(None, 0)) == 1
        usage = await main.usage()
        assert usage["concurrent"]["used"] == 5  # the peak, never above the limit
        assert usage["live"]["used"] == 5
        await close(main, clients)

    asyncio.run(go())


def test_depth_cap_refuses_deeper_programs(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url, depth=2)
        await main.admit("p0", 2)
        with pytest.raises(CapExceeded, match=r"CapExceeded\(depth\)"):
            await main.admit("p0.1", 3)
        assert (await main.usage())["depth"] == {"limit": 2.0, "used": 2.0, "denied": 1.0}
        await close(main, clients)

    asyncio.run(go())


def test_token_reservations_never_pass_the_limit(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url, tokens=1000, model_calls=1000)
        won = await race(clients, lambda c: c.reserve(model_calls=1, tokens=100))
        assert won == 10
        await main.settle("tokens", -60)  # a call used 40 of its 100
        assert await race(clients, lambda c: c.reserve(model_calls=1, tokens=100)) == 0
        assert await race(clients, lambda c: c.reserve(model_calls=1, tokens=30)) == 2
        usage = await main.usage()
        assert usage["tokens"]["used"] == 1000
        assert usage["model_calls"]["used"] == 12
        await close(main, clients)

    asyncio.run(go())


def test_a_refused_multi_cap_reservation_charges_nothing(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url, tokens=50, model_calls=10)
        with pytest.raises(CapExceeded, match="tokens"):
            await main.reserve(model_calls=1, tokens=51)
        usage = await main.usage()
        assert usage["model_calls"]["used"] == 0
        assert usage["tokens"]["used"] == 0
        await close(main, clients)

    asyncio.run(go())


def test_a_reservation_that_may_shrink_is_told_the_room_and_not_denied(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url, tokens=50, model_calls=10)
        ask = ("model_calls", 1, "tokens", 80)
        room = await main.step("reserve", "", "", 20, *ask)  # may shrink to 20 or more
        assert (room.kind, room.values) == ("room", ("50",))
        with pytest.raises(CapExceeded, match="tokens"):
            await main.step("reserve", "", "", 51, *ask)  # cannot shrink enough: denied
        usage = await main.usage()
        assert usage["tokens"]["used"] == 0  # neither charged anything
        assert usage["model_calls"]["used"] == 0
        assert usage["tokens"]["denied"] == 1  # only the real denial counts
        await close(main, clients)

    asyncio.run(go())


def test_blackboard_bytes_hold_under_a_race(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url, blackboard_bytes=1000)
        value = '"' + "x" * 94 + '"'  # 96 bytes + a 4-byte key = 100 each

        async def put(c: Client) -> None:
            await c.bb_put(f"k{secrets.token_hex(1)}{secrets.randbelow(10)}", value, "p0")

        await race(clients, put)
        usage = await main.usage()
        stored = await main.blackboard()
        assert usage["blackboard_bytes"]["used"] <= 1000
        assert usage["blackboard_bytes"]["used"] == sum(len(k) + 96 for k in stored)
        await close(main, clients)

    asyncio.run(go())


def test_a_killed_run_refuses_everything(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url)
        assert await main.kill("test") is True
        assert await main.kill("again") is False
        for attempt in (
            lambda: clients[0].admit("p0", 1),
            lambda: clients[1].reserve(tokens=1),
            lambda: clients[2].bb_put("k", "1", "p0"),
        ):
            with pytest.raises(RunKilled):
                await attempt()
        assert await main.kill_reason() == "test"
        await close(main, clients)

    asyncio.run(go())


def test_the_wall_clock_cap_refuses_after_the_deadline(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url, wall_clock_s=1.0)
        await main.reserve(tokens=1)
        await asyncio.sleep(1.2)
        with pytest.raises(CapExceeded, match="wall_clock_s"):
            await main.reserve(tokens=1)
        await close(main, clients)

    asyncio.run(go())


def test_an_unreachable_coordinator_fails_closed(closed_port: int) -> None:
    async def go() -> None:
        coord = Client(f"redis://127.0.0.1:{closed_port}/0", "nowhere")
        for attempt in (coord.ping, lambda: coord.reserve(tokens=1), lambda: coord.admit(None, 0)):
            with pytest.raises(CoordinatorUnavailable, match=str(closed_port)):
                await attempt()
        await coord.close()

    asyncio.run(go())


def test_a_sweep_cap_holds_across_the_runs_of_the_sweep(redis_url: str) -> None:
    from swarmlab.runtime import init_sweep, sweep_usage

    async def go() -> None:
        sweep = "s-" + secrets.token_hex(4)
        await init_sweep(redis_url, sweep, {"tokens": 1000, "programs": 5}, {"tokens": 200})
        runs = []
        for _ in range(3):  # three runs of the sweep, each with room for more on its own
            run_id = "t-" + secrets.token_hex(4)
            coord = Client(redis_url, run_id, sweep_id=sweep)
            await coord.init_run(Caps(tokens=10_000, programs=100), {"status": "running"})
            runs.append(coord)
        won = await race(runs, lambda c: c.reserve(model_calls=1, tokens=100))
        assert won == 8  # 200 already used by finished runs + 8 x 100 = the sweep's 1000
        assert await race(runs, lambda c: c.admit(None, 0)) == 5
        usage = await sweep_usage(redis_url, sweep)
        assert usage == {
            "tokens": {"limit": 1000, "used": 1000},
            "programs": {"limit": 5, "used": 5},
        }
        with pytest.raises(CapExceeded, match=r"sweep\.tokens"):
            await runs[0].reserve(tokens=1)
        for coord in runs:
            await coord.delete_run()
            await coord.close()

    asyncio.run(go())


def test_a_call_made_again_answers_from_its_journal_and_is_charged_once(redis_url: str) -> None:
    async def go() -> None:
        main, clients = await init(redis_url, programs=10)
        record = record_pieces(ProgramRecord(id="p0", code="1"))
        first = await main.sched.raw("spawn", "p0", 7, "", "", 1, 0, *record, "queue")
        again = await clients[0].sched.raw("spawn", "p0", 7, "", "", 1, 0, *record, "queue")
        assert (first.kind, first.values) == ("ok", ("p0.1",))
        assert (again.kind, again.values) == ("dup", ("p0.1",))
        assert (await main.usage())["programs"]["used"] == 1
        await close(main, clients)

    asyncio.run(go())


async def ordered_run(
    url: str, hours: tuple[int, int] = (1, 2)
) -> tuple[Client, Scheduler, list[str]]:
    """An ordered run with three programs queued: p0 at simulated hour 0, its two children at
    `hours`."""
    main, _ = await init(url, ordered=True)
    sched = main.sched
    record = record_pieces(ProgramRecord(id="p0", code="1"))
    await sched.raw("spawn", "", "", "", "", 0, 0, *record, "queue")
    kids = []
    for n, hour in enumerate(hours, 1):
        reply = await sched.raw("spawn", "p0", n, "", "", 1, hour * 3_600_000, *record, "queue")
        kids.append(reply.values[0])
    return main, sched, kids


async def all_on_one_runner(
    url: str, main: Client, sched: Scheduler
) -> tuple[list[str], asyncio.Future[Any]]:
    """The three programs computing on runner r.0, and what its turn channel hears (cancel the
    future to stop listening)."""
    for _ in range(3):
        await sched.claim("r.0")
    heard: list[str] = []
    subscribed = asyncio.Event()
    listening = asyncio.ensure_future(
        Subscriber(url).listen([main.prefix + "turn:r.0"], lambda _, d: heard.append(d), subscribed)
    )
    await asyncio.wait_for(subscribed.wait(), 10)  # from here on, nothing is missed
    return heard, listening


async def until(holds: Callable[[], bool], within_s: float = 10) -> None:
    """Until `holds()`: a message published is heard a moment later, later on a busy machine."""
    give_up = time.monotonic() + within_s
    while not holds() and time.monotonic() < give_up:
        await asyncio.sleep(0.01)


async def claim(sched: Scheduler, tag: str) -> tuple[str, str] | None:
    """Who runner `tag` takes, and the state it took it from."""
    claimed = await sched.claim(tag)
    return None if claimed is None else (claimed.id, claimed.previous)


def test_in_an_ordered_run_only_the_first_in_simulated_time_may_act(redis_url: str) -> None:
    async def go() -> None:
        main, sched, (a, b) = await ordered_run(redis_url)
        late = await sched.raw("turn", b, 1, order_member(2.0, b))
        assert late.kind == "wait"  # p0 (hour 0) and a (hour 1) come first
        await sched.raw("finish", "p0", order_member(0.0, "p0"), "completed", "{}", 0, "", "", 1)
        assert (await sched.raw("turn", b, 1, order_member(2.0, b))).kind == "wait"
        assert (await sched.raw("turn", a, 1, order_member(1.0, a))).kind == "go"
        # a moves on past b: now b's turn
        assert (await sched.raw("turn", a, 2, order_member(3.0, a))).kind == "wait"
        assert (await sched.raw("turn", b, 1, order_member(2.0, b))).kind == "go"
        await main.delete_run()

    asyncio.run(go())


def test_a_waiting_program_wakes_where_its_last_child_ended(redis_url: str) -> None:
    async def go() -> None:
        main, sched, (a, b) = await ordered_run(redis_url)
        assert await claim(sched, "r.0") == ("p0", "queued")
        parked = await sched.raw("park", "p0", "wait", "", "c25hcA==", "{}", "", "r.0", 0, 1, a, b)
        assert parked.kind == "parked"
        assert await sched.state_of(["p0"]) == ["parked"]
        for kid, hour in ((a, 1.5), (b, 4.0)):
            done = await sched.raw(
                "finish",
                kid,
                order_member(hour, kid),
                "completed",
                "{}",
                int(hour * 3_600_000),
                "",
                "",
                0,
            )
            assert done.kind == "ok"
        assert await sched.state_of(["p0"]) == ["ready"]
        claimed = await sched.claim("r.0")
        assert claimed is not None
        assert (claimed.id, claimed.previous) == ("p0", "ready")
        loaded = sched.loaded("p0", claimed.fields)
        assert loaded.place_h == 4.0  # it resumes when its last child ended
        assert loaded.snapshot == b"snap"
        await main.delete_run()

    asyncio.run(go())


def test_a_lost_runners_programs_go_back_to_the_queue(redis_url: str) -> None:
    async def go() -> None:
        main, sched, (a, _) = await ordered_run(redis_url)
        assert await claim(sched, "r.0") == ("p0", "queued")
        assert await claim(sched, "r.0") == (a, "queued")
        assert sorted(await sched.requeue("r.0")) == sorted(["p0", a])
        assert await sched.state_of(["p0", a]) == ["queued", "queued"]
        assert await claim(sched, "r.1") == ("p0", "queued")  # the first in order first
        claimed = await sched.claim("r.1")
        assert claimed is not None
        assert claimed.id == a
        assert sched.loaded(a, claimed.fields).restarts == 1
        await main.delete_run()

    asyncio.run(go())


def test_kill_ends_a_subtree_and_wakes_who_waited_on_it(redis_url: str) -> None:
    async def go() -> None:
        main, sched, (a, b) = await ordered_run(redis_url)
        assert await claim(sched, "r.0") == ("p0", "queued")
        await sched.raw("park", "p0", "wait", "", "c25hcA==", "{}", "", "r.0", 0, 1, a)
        killer = await sched.raw("stop", b, 9, "", "", a, *killed_pieces("stopped by a test", b))
        assert killer.kind == "ok"
        assert killer.values[0] == "1"
        assert await sched.state_of([a, "p0"]) == ["killed", "ready"]
        record = (await main.get_programs([a]))[0]
        assert record is not None
        assert record.status == "killed"
        assert record.error == "stopped by a test"
        await main.delete_run()

    asyncio.run(go())


def test_the_waiters_of_a_killed_program_wake_at_the_kill(redis_url: str) -> None:
    """Where a program stands in the order when it is killed depends on timing (whether its
    next call has come yet); it ends at its killer's turn, so whoever waited on it wakes there
    and the tree does not depend on when the killed program's call came. Before, the waiter
    woke where the killed program stood."""

    async def go() -> None:
        main, sched, (a, b) = await ordered_run(redis_url)
        assert await claim(sched, "r.0") == ("p0", "queued")
        await sched.raw("park", "p0", "wait", "", "c25hcA==", "{}", "", "r.0", 0, 1, a)
        late = await sched.raw("turn", a, 1, order_member(3.0, a))  # its next call came: 3 h
        assert late.kind == "wait"
        at_b = order_member(2.0, b)
        killer = await sched.raw("stop", b, 9, at_b, "", a, *killed_pieces("by b", b))
        assert killer.kind == "ok"
        assert await sched.state_of([a, "p0"]) == ["killed", "ready"]
        ready = await main.call(lambda: main.client.hget(sched.key("rdym"), "p0"))
        assert member_clock_ms(ready) == 2 * 3_600_000  # b's turn, not a's 3 h
        await main.delete_run()

    asyncio.run(go())


def test_a_program_killed_while_its_runner_starts_it_never_takes_the_turn(
    redis_url: str,
) -> None:
    # The race behind a run that once hung: a runner claimed a child, its parent killed it, and
    # the child's first step then put it back first in the order, where nothing could move it.
    async def go() -> None:
        main, sched, (a, b) = await ordered_run(redis_url)
        assert await claim(sched, "r.0") == ("p0", "queued")
        assert await claim(sched, "r.1") == (a, "queued")
        assert (
            await sched.raw("stop", "p0", 3, "", "", a, *killed_pieces("stopped by p0", "p0"))
        ).kind == "ok"
        late = await sched.raw("turn", a, 1, order_member(1.0, a))
        assert late.kind == "killed"
        await sched.raw("record", a, 2, "", "", order_member(1.5, a))
        assert a not in await main.call(lambda: main.client.hkeys(sched.key("lbm")))
        await sched.raw("finish", "p0", order_member(0.0, "p0"), "completed", "{}", 0, "", "", 1)
        assert (await sched.raw("turn", b, 1, order_member(2.0, b))).kind == "go"
        await main.delete_run()

    asyncio.run(go())


def test_a_program_killed_just_after_it_was_taken_started_before_it_ended(
    redis_url: str,
) -> None:
    # Its start is when its runner took it, on Redis's clock, as its end by a kill() is: before,
    # the runner stamped the start with its own clock as its first slice began, after a kill
    # applied between the two (recorded: ended before it started, its start event after its end).
    async def go() -> None:
        main, sched, (a, _) = await ordered_run(redis_url)
        await claim(sched, "r.0")
        before = time.time()
        taken = await sched.claim("r.1")
        assert taken is not None
        assert taken.id == a
        stop = await sched.raw("stop", "p0", 3, "", "", a, *killed_pieces("by p0", "p0"))
        assert stop.kind == "ok"
        started = sched.loaded(a, taken.fields).taken_at
        ended = stored_record(await main.call(lambda: main.client.hget(sched.key("programs"), a)))
        assert before - 1e-6 <= started <= (ended.ended_at or 0.0) <= time.time()
        await main.delete_run()

    asyncio.run(go())


def test_a_ready_program_wakes_one_idle_runner_on_its_own_channel(redis_url: str) -> None:
    """Runners that found the queue empty are idle; each program made ready wakes one of them
    (not every runner), and a runner that takes the last ready program while it has a worker
    free is idle again without asking a second time."""

    async def go() -> None:
        main, _ = await init(redis_url)
        sched, prefix = main.sched, main.prefix
        heard: list[tuple[str, str]] = []
        channels = [prefix + "wake:r1.0", prefix + "wake:r2.0"]
        subscribed = asyncio.Event()
        listening = asyncio.ensure_future(
            Subscriber(redis_url).listen(
                channels, lambda ch, data: heard.append((ch, data)), subscribed
            )
        )
        await asyncio.wait_for(subscribed.wait(), 10)
        assert await sched.claim("r1.0", 1) is None
        assert await sched.claim("r2.0", 1) is None  # both idle
        record = record_pieces(ProgramRecord(id="p0", code="1"))
        await sched.raw("spawn", "", "", "", "", 0, 0, *record, "queue")
        await until(lambda: len(heard) >= 1)
        await asyncio.sleep(0.2)  # a second wake-up would be heard by now
        assert len(heard) == 1  # one runner woken for one program
        woken = heard[0][0].rsplit(":", 1)[1]
        claimed = await sched.claim(woken, 1)
        assert claimed is not None
        assert (claimed.id, claimed.more) == ("p0", False)
        # It still has a worker free: it is idle again, and the other runner still is.
        kids: list[str] = []
        for _ in range(3):
            reply = await sched.raw("spawn", "p0", len(kids) + 1, "", "", 1, 0, *record, "queue")
            kids.append(reply.values[0])
        await until(lambda: len(heard) >= 3)
        assert sorted(ch.rsplit(":", 1)[1] for ch, _ in heard[1:]) == ["r1.0", "r2.0"]
        # A runner with no worker left after its claim is not woken.
        first = await sched.claim("r1.0", 0)
        assert first is not None
        assert first.more
        taken = [await sched.claim("r1.0", 0), await sched.claim("r1.0", 0)]
        assert all(t is not None and t.id in kids for t in taken)
        assert len(heard) == 3
        await sched.raw("spawn", "p0", 9, "", "", 1, 0, *record, "queue")
        await asyncio.sleep(0.2)
        assert len(heard) == 3  # nobody is idle
        listening.cancel()
        await main.delete_run()
        await main.close()

    asyncio.run(go())


def test_a_call_kept_for_its_turn_is_applied_by_the_script_that_hands_it_the_turn(
    redis_url: str,
) -> None:
    """A waiting call is kept in Redis and applied at its turn, its answer sent to its runner:
    the program does not ask again. Parked at the gate, a kept call is dropped, its events kept;
    one applied already is not parked ('go': its answer is on the way)."""

    async def go() -> None:
        main, sched, (a, b) = await ordered_run(redis_url)
        heard, listening = await all_on_one_runner(redis_url, main, sched)
        event = '{"t":1.0,"program":"%s","kind":"log","decision":"info","detail":{}}'
        kept = await sched.raw("turn", b, 1, order_member(2.0, b), event % b, '{"value":"b"}')
        assert (kept.kind, kept.values) == ("wait", ("kept",))
        assert (await sched.raw("turn", a, 1, order_member(1.0, a), "", "")).values == ("kept",)
        p0_end = order_member(0.0, "p0")
        assert (
            await sched.raw("finish", "p0", p0_end, "completed", "{}", 0, "", "r.0", 1)
        ).kind == "ok"
        # a's turn came: its call was applied and answered; b's is still kept (a is first)
        assert (
            await sched.raw("park", b, "turn", order_member(2.0, b), "", "{}", "", "r.0", 0, 1)
        ).kind == "parked"
        assert await sched.state_of([b]) == ["gate"]
        assert (await sched.raw("turn", a, 2, order_member(3.0, a), "", "")).values == ("kept",)
        # a moved past b: b is made ready from the gate, and a's kept call is not applied yet
        assert await sched.state_of([b]) == ["ready"]
        assert await claim(sched, "r.0") == (b, "ready")
        assert (await sched.raw("turn", b, 1, order_member(2.0, b), "", "")).kind == "go"
        assert (await sched.raw("turn", b, 2, order_member(4.0, b), "", "")).values == ("kept",)
        # b moved past a: a's kept call was applied; at the gate it is told to go on
        a_gate = order_member(3.0, a)
        assert (await sched.raw("park", a, "turn", a_gate, "", "{}", "", "r.0", 0, 2)).kind == "go"
        await until(lambda: f'{a}\n1\n["go"]' in heard and f'{a}\n2\n["go"]' in heard)
        listening.cancel()
        assert f'{a}\n1\n["go"]' in heard  # answered on its runner's channel
        assert f'{a}\n2\n["go"]' in heard
        assert b not in [h.split("\n")[0] for h in heard]
        events = [e for _, e in await main.events()]
        assert [e.program for e in events if e.kind == "log"] == [b]  # added once, by the park
        await main.delete_run()

    asyncio.run(go())


def test_a_call_made_lets_the_calls_at_its_clock_go_while_it_computes(redis_url: str) -> None:
    """The order's lookahead (lib.lua's `step_on`; `test_lookahead.py` for the clock it counts
    on): once a program's call is made it stands a millisecond on, so a call kept at the clock
    it left is applied in the same script. Before, that call waited for the first program's
    next call: every such turn waited on the previous program computing."""

    async def go() -> None:
        main, sched, (a, b) = await ordered_run(redis_url, hours=(1, 1))
        heard, listening = await all_on_one_runner(redis_url, main, sched)
        p0_end = order_member(0.0, "p0")
        await sched.raw("finish", "p0", p0_end, "completed", "{}", 0, "", "r.0", 1)
        at_a, at_b = order_member(1.0, a), order_member(1.0, b)
        kept = await sched.raw("turn", b, 1, at_b, "", '{"value":"b"}', "1")
        assert (kept.kind, kept.values) == ("wait", ("kept",))  # a, at the same clock, is first
        # a turn that only sends events holds the turn on: a acts at its clock again
        assert (await sched.raw("turn", a, 1, at_a, "", "", "")).kind == "go"
        assert (await sched.journal(b)) == {}
        # a's call is made: b's call at a's clock is applied in the same script
        assert (await sched.raw("turn", a, 1, at_a, "", '{"value":"a"}', "1")).kind == "go"
        assert (await sched.journal(b)) == {1: '{"value":"b"}'}
        next_a = order_member(next_step_h(1.0), a)
        assert member_clock_ms(next_a) == 3_600_000 + 1
        # both stand a millisecond on; a, first by id there, goes at once
        assert (await sched.raw("turn", a, 2, next_a, "", "", "1")).kind == "go"
        await until(lambda: f'{b}\n1\n["go"]' in heard)
        listening.cancel()
        assert f'{b}\n1\n["go"]' in heard  # b's answer went to its runner
        await main.delete_run()

    asyncio.run(go())

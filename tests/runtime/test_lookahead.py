"""The order's lookahead: once a program's call is made, its next step (a call or its end) is at
least one simulated millisecond later, so it stands there in the order and the programs whose
turns come before take them while it computes (lib.lua's `step_on`). Before, a call kept at
the same clock as the call just made waited for that program's next call: every program's
turn waited on the previous program computing."""

from __future__ import annotations

import asyncio
import re
import secrets
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from swarmlab import Caps
from swarmlab.records import ProgramRecord
from swarmlab.runtime import Coordinator
from swarmlab.runtime._keys import MAX_CLOCK_H, MS_PER_H, clock_ms, member_clock_ms
from swarmlab.runtime._program import next_step_h
from swarmlab.runtime._scheduler import Scheduler, order_member
from swarmlab.runtime._scripts import Subscriber
from swarmlab.runtime._stored import record_pieces

LIB = Path(__file__).parents[2] / "swarm" / "runtime" / "lua" / "lib.lua"


@given(
    st.floats(min_value=0.0, max_value=MAX_CLOCK_H, allow_nan=False)
    | st.integers(0, int(MAX_CLOCK_H * MS_PER_H) - 1).map(lambda ms: (ms + 0.5) / MS_PER_H)
)
def test_a_step_is_at_least_one_millisecond_of_the_order(clock_h: float) -> None:
    # What step_on counts on, searched over every clock (half milliseconds, where rounding
    # could keep a step in the same millisecond, included).
    stepped = next_step_h(clock_h)
    assert stepped >= clock_h
    if clock_ms(clock_h) < clock_ms(MAX_CLOCK_H):
        assert clock_ms(stepped) >= clock_ms(clock_h) + 1
    assert next_step_h(stepped) >= stepped


def test_lib_lua_bounds_the_order_where_python_does() -> None:
    found = re.search(r"local MAX_MS = (\d+)", LIB.read_text())
    assert found is not None
    assert int(found.group(1)) == clock_ms(MAX_CLOCK_H)


def test_a_call_made_lets_the_calls_at_its_clock_go_while_it_computes(redis_url: str) -> None:
    async def go() -> None:
        main = Coordinator(redis_url, "t-" + secrets.token_hex(4))
        caps = Caps(programs=10, depth=5, children=10, concurrent=10)
        await main.init_run(caps, {"status": "running"}, ordered=True)
        sched = Scheduler(main)
        record = record_pieces(ProgramRecord(id="p0", code="1"))
        await sched.raw("spawn", "", "", "", "", 0, 0, *record, "queue")
        hour = 3_600_000
        a, b = [
            (await sched.raw("spawn", "p0", n, "", "", 1, hour, *record, "queue")).values[0]
            for n in (1, 2)
        ]
        for _ in range(3):
            await sched.claim("r.0")
        heard: list[str] = []
        listening = asyncio.ensure_future(
            Subscriber(redis_url).listen([main.prefix + "turn:r.0"], lambda _, d: heard.append(d))
        )
        await asyncio.sleep(0.2)
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
        assert member_clock_ms(next_a) == hour + 1
        # both stand a millisecond on; a, first by id there, goes at once
        assert (await sched.raw("turn", a, 2, next_a, "", "", "1")).kind == "go"
        await asyncio.sleep(0.2)
        listening.cancel()
        assert f'{b}\n1\n["go"]' in heard  # b's answer went to its runner
        await main.delete_run()

    asyncio.run(go())

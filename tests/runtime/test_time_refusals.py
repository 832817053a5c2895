"""Out of time, a refusal is counted only when a program gets it.

A call the host answers by itself (`now`, `log`, a call refused for its arguments) takes a turn
after it; out of time, that turn is refused but the program keeps the answer it had
(`ProgramHost.take_turn`). The refusal was counted all the same, so a program looping on
`now()` past the wall clock saw 2 refusals while `caps.wall_clock_s.denied` said 66. These tests
drive the turn script straight (no Ray) on a run whose wall clock has passed, in a random mix of
turns after an answered call and turns that are the call (a flush of events, whose refusal the
program gets), asked once or again, in both schedules, and hold `denied` to the refusals a
program got.
"""

from __future__ import annotations

import asyncio
import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.runtime._coordinator import Coordinator
from swarmlab.runtime._scheduler import Scheduler
from swarmlab.spec import Caps

_runs = itertools.count()
IDS = ("p0", "p0.1", "p0.2")


async def drive(
    redis_url: str, ordered: bool, steps: list[tuple[int, bool, bool]]
) -> tuple[list[bool], int]:
    """Run the turns on a run out of time: whether the program got each refusal, and
    `denied` after them."""
    coord = Coordinator(redis_url, f"late-{next(_runs)}")
    sched = Scheduler(coord)
    seqs = dict.fromkeys(IDS, 0)
    seen: list[bool] = []
    journaled: set[tuple[str, int]] = set()  # an answer kept out of time: asked again, a dup
    try:
        await coord.init_run(Caps(), {}, ordered=ordered)
        await coord.set_meta(deadline_ms="1")  # long past
        for who, answered, again in steps:
            program = IDS[who]
            if not (again and seqs[program]):
                seqs[program] += 1
            answer = json.dumps({"value": 1.5}) if answered else ""
            head = (program, seqs[program], "", "")
            reply = await sched.raw("turn", *head, answer, "1" if answered else "")
            if (program, seqs[program]) in journaled:
                assert reply.kind == "dup", reply
                continue
            assert reply.kind == "denied", reply
            assert reply.values[0] == "wall_clock_s", reply
            seen.append(not answered)  # the program gets the refusal only then
            if answered:
                journaled.add((program, seqs[program]))
        usage = await coord.usage()
    finally:
        await coord.delete_run()
        await coord.close()
    return seen, int(usage["wall_clock_s"]["denied"])


@settings(max_examples=25, deadline=None)
@given(
    ordered=st.booleans(),
    steps=st.lists(
        st.tuples(st.integers(0, len(IDS) - 1), st.booleans(), st.booleans()),
        min_size=1,
        max_size=40,
    ),
)
def test_out_of_time_only_the_refusals_a_program_gets_are_counted(
    redis_url: str, ordered: bool, steps: list[tuple[int, bool, bool]]
) -> None:
    got, denied = asyncio.run(drive(redis_url, ordered, steps))
    assert denied == sum(got)

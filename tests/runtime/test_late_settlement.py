"""A model call whose program ends before it settles is settled to what the server used.

A program killed (by another's kill(), or the run's stop) while it waited for its model call's
answer, or after the answer was kept but before its turn to settle, kept its whole reservation:
a run with no runner lost charged 568 tokens for a call the server answered with 14, and
completions.jsonl did not have the call. These tests drive the scripts straight (no Ray): a
call reserved, then its answer kept, its settlement, the program's kill and the answer kept
again, in any order and any number; `tokens` ends at what the server used whenever the answer
came, settled once, with one completions line, and at the reservation when it never came
(each sequence ends with the program's kill, the last end it may have).
"""

from __future__ import annotations

import asyncio
import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.records import ProgramRecord
from swarmlab.runtime._coordinator import Coordinator
from swarmlab.runtime._scheduler import Scheduler
from swarmlab.runtime._stored import killed_pieces, record_pieces
from swarmlab.spec import Caps

_runs = itertools.count()
CHILD = record_pieces(ProgramRecord(id="p0", code="x = 1", task="child"))
KILLED = killed_pieces("stopped by kill() from p0", "p0")
RESERVED = 568
STEPS = ("complete", "settle", "stop")


def entry(phase: str, **fields: object) -> str:
    return json.dumps({"phase": phase, "reserved": RESERVED, **fields}, separators=(",", ":"))


async def drive(redis_url: str, ordered: bool, used: int, steps: list[str]) -> tuple[int, int]:
    """Reserve p0.1's call, run the steps; `tokens` used and completions kept after them."""
    coord = Coordinator(redis_url, f"late-settle-{next(_runs)}")
    sched = Scheduler(coord)
    settled = entry("settled", settled=True, answer={"used": used})
    line = json.dumps({"completion": {"usage": {"prompt_tokens": used, "completion_tokens": 0}}})
    delta = used - RESERVED
    try:
        await coord.init_run(Caps(), {}, ordered=ordered)
        await sched.raw("spawn", "", "", "", "", 0, 0, *CHILD, "queue")
        await sched.raw("spawn", "p0", 1, "", "", 1, 0, *CHILD, "queue")
        reply = await sched.raw(
            "reserve", "p0.1", 1, "", "", "", entry("reserved"), 0, "model_calls", 1,
            "tokens", RESERVED,
        )  # fmt: skip
        assert reply.kind == "ok", reply
        for n, step in enumerate(steps, 2):
            if step == "complete":
                answered = entry("answered", answer={"used": used})
                await sched.raw("complete", "p0.1", 1, answered, settled, delta, line)
            elif step == "settle":
                await sched.raw("settle", "p0.1", 1, "", "", settled, delta, line)
            else:
                await sched.raw("stop", "p0", n, "", "", "p0.1", *KILLED)
        usage = await coord.usage()
        kept = int(await coord.client.llen(coord.prefix + "completions"))
    finally:
        await coord.delete_run()
        await coord.close()
    return int(usage["tokens"]["used"]), kept


@settings(max_examples=40, deadline=None)
@given(
    ordered=st.booleans(),
    used=st.integers(1, RESERVED),
    steps=st.lists(st.sampled_from(STEPS), max_size=6),
)
def test_a_call_answered_is_charged_what_the_server_used_however_its_program_ends(
    redis_url: str, ordered: bool, used: int, steps: list[str]
) -> None:
    tokens, kept = asyncio.run(drive(redis_url, ordered, used, [*steps, "stop"]))  # it ends
    answered = "complete" in steps or "settle" in steps
    assert tokens == (used if answered else RESERVED), steps
    assert kept == (1 if answered else 0), steps

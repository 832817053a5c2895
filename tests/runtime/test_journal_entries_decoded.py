"""The scripts read a model call's journal entry by decoding it, not by searching its text
(issue 24, item 1): whatever the JSON's key order and spacing, a settled call is never settled
or answered again, and a lost attempt is sent again exactly when its entry says it is the one
being retried. A marker search (`'"settled":true'`, `'"attempt":(%d+)'`, a `{"phase":"reserved"`
prefix) held only while Python wrote compact JSON with `phase` first."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlab import Caps
from swarmlab.runtime import Coordinator
from swarmlab.runtime._scheduler import Scheduler

RESERVED = 40


def layout(fields: dict[str, Any], order_seed: int, spaced: bool) -> str:
    """The same object, its keys in another order, compact or spaced."""
    keys = list(fields)
    random.Random(order_seed).shuffle(keys)
    separators = (", ", ": ") if spaced else (",", ":")
    return json.dumps({k: fields[k] for k in keys}, separators=separators)


async def in_a_run(redis_url: str, entry: str, steps: Any) -> Any:
    coord = Coordinator(redis_url, "t-" + secrets.token_hex(4))
    sched = Scheduler(coord)
    try:
        await coord.init_run(Caps(model_calls=100, tokens=10_000), {}, ordered=False)
        await coord.client.hset(coord._key("journal:", "p0"), "1", entry)
        return await steps(sched)
    finally:
        await coord.delete_run()
        await coord.close()


LAYOUTS = {"order_seed": st.integers(0, 10_000), "spaced": st.booleans()}
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(attempt=st.integers(1, 5), **LAYOUTS)
def test_a_lost_attempt_is_sent_again_once_whatever_its_entry_looks_like(
    redis_url: str, attempt: int, order_seed: int, spaced: bool
) -> None:
    fields = {"phase": "reserved", "reserved": RESERVED, "after": "", "attempt": attempt}
    made = json.dumps({**fields, "attempt": attempt + 1})

    async def steps(sched: Scheduler) -> tuple[str, str, str]:
        charges = ("model_calls", 1, "tokens", RESERVED)
        stale = await sched.raw("retry", "p0", 1, "", "", attempt - 1, made, *charges)
        sent = await sched.raw("retry", "p0", 1, "", "", attempt, made, *charges)
        again = await sched.raw("retry", "p0", 1, "", "", attempt, made, *charges)
        return stale.kind, sent.kind, again.kind

    entry = layout(fields, order_seed, spaced)
    assert asyncio.run(in_a_run(redis_url, entry, steps)) == ("dup", "ok", "dup")


@SETTINGS
@given(**LAYOUTS)
def test_a_settled_call_is_never_settled_or_answered_again(
    redis_url: str, order_seed: int, spaced: bool
) -> None:
    fields = {"phase": "settled", "reserved": RESERVED, "after": "", "settled": True, "attempt": 1}
    entry = layout(fields, order_seed, spaced)

    async def steps(sched: Scheduler) -> tuple[str, str, str, dict[str, Any]]:
        settle = await sched.raw("settle", "p0", 1, "", "", '{"phase":"settled"}', -5, "")
        complete = await sched.raw("complete", "p0", 1, '{"phase":"answered"}')
        retry = await sched.raw("retry", "p0", 1, "", "", 1, "{}", "model_calls", 1)
        usage = await sched.coord.usage()
        return settle.kind, complete.kind, retry.kind, usage

    settle, complete, retry, usage = asyncio.run(in_a_run(redis_url, entry, steps))
    assert (settle, complete, retry) == ("dup", "dup", "dup")
    assert usage["tokens"]["used"] == 0  # nothing charged or given back a second time
    assert usage["model_calls"]["used"] == 0


@pytest.mark.parametrize("entry", ["", "not json", '["denied","tokens","1","2"]', '{"x":1}'])
def test_an_entry_that_is_no_model_call_is_never_retried(redis_url: str, entry: str) -> None:
    async def steps(sched: Scheduler) -> str:
        return (await sched.raw("retry", "p0", 1, "", "", 1, "{}", "model_calls", 1)).kind

    assert asyncio.run(in_a_run(redis_url, entry, steps)) == "dup"

"""`db_keys(prefix)` reads a range of a sorted index, never the whole blackboard.

The class: work in a Lua script that grows with what programs wrote, in Redis, where every
other program waits meanwhile. `db_keys` took every key of the blackboard (HKEYS), kept those
with the prefix and sorted them in Lua, to give at most 1,000: 93 ms of Redis a call over the
65,536 keys a full default blackboard holds. The keys are now kept in a sorted set as they are
first written, and a call reads at most 1,000 of them in byte order. The search holds the
script to what the capability promises, against a real Redis: the keys with the prefix,
sorted, the first `most` of them, for any keys and any prefix a program may pass.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.runtime._coordinator import Coordinator
from swarmlab.runtime._scheduler import Scheduler
from swarmlab.spec import Caps

_runs = itertools.count()
KEY_CHARS = "ab.-:/_Z09"
keys = st.text(alphabet=KEY_CHARS, min_size=1, max_size=6)
prefixes = st.text(alphabet=KEY_CHARS, max_size=3) | st.text(max_size=3)


async def listed(redis_url: str, written: list[str], prefix: str, most: int) -> list[Any]:
    coord = Coordinator(redis_url, f"keys-{next(_runs)}")
    sched = Scheduler(coord)
    try:
        await coord.init_run(Caps(), {}, ordered=False)
        seq = itertools.count(1)
        for key in written:  # a key written again is listed once
            reply = await sched.raw("blackboard", "p0", next(seq), "", "", "put", key, "1")
            assert reply.kind == "ok", reply
        reply = await sched.raw("blackboard", "p0", next(seq), "", "", "keys", prefix, most)
        assert reply.kind == "ok", reply
        return list(reply.values)
    finally:
        await coord.delete_run()
        await coord.close()


@settings(max_examples=60, deadline=None)
@given(written=st.lists(keys, max_size=40), prefix=prefixes, most=st.integers(1, 50))
def test_the_keys_are_those_with_the_prefix_in_byte_order(
    redis_url: str, written: list[str], prefix: str, most: int
) -> None:
    got = asyncio.run(listed(redis_url, written, prefix, most))
    expected = sorted({k for k in written if k.startswith(prefix)}, key=str.encode)[:most]
    assert got == expected

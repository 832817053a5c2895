"""The record's caps charge the same bytes on every run of one seed.

`caps.record_bytes` and `caps.parked_bytes` count bytes of lines that hold host measures: an
event's wall-clock `t`, an end event's `cpu_s`, a model answer's `latency_s`, a parked
program's measured compute and start time. Their digits vary from run to run (1765012345.1 or
1765012345.123456), so a charge of the raw length made `used` differ between two runs of one
seed. The scripts charge a canonical size instead: a host measure counts a fixed width. These
tests hand the scripts the same lines with host measures drawn at random and assert one charge.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.records import Event
from swarmlab.runtime._coordinator import Coordinator
from swarmlab.runtime._program import HostState
from swarmlab.runtime._scheduler import Scheduler
from swarmlab.spec import Caps

_runs = itertools.count()
seconds = st.floats(min_value=0, max_value=4e9, allow_nan=False, allow_infinity=False)
short = st.floats(min_value=0, max_value=1e4, allow_nan=False, allow_infinity=False)


def lines(t: float, cpu: float, latency: float, started: float) -> dict[str, str]:
    """A record's lines as the runtime writes them, with these host measures."""
    end = Event(
        t=t,
        program="p0",
        kind="end",
        decision="info",
        detail={"status": "completed", "error": "", "cpu_s": round(cpu, 3)},
    )
    log = Event(t=t, program="p0", kind="log", decision="info", detail={"msg": "hi"}, seq=1)
    answer = {"text": "ok", "model": "sim", "latency_s": latency, "finish_reason": "stop"}
    return {
        "events": end.model_dump_json() + "\n" + log.model_dump_json() + "\n",
        "entry": json.dumps({"phase": "settled", "settled": True, "answer": answer}),
        "completion": json.dumps({"seed": 1, "completion": answer}),  # json.dumps' ": "
        "host": HostState(cpu_s=cpu, started_at=started, calls=3).to_json(),
    }


async def charges(redis_url: str, parts: dict[str, str]) -> tuple[int, int]:
    """record_bytes and parked_bytes used after one run's scripts keep these lines."""
    coord = Coordinator(redis_url, f"charge-{next(_runs)}")
    sched = Scheduler(coord)
    try:
        await coord.init_run(Caps(), {}, ordered=False)
        await sched.raw("record", "p0", 1, parts["entry"], parts["events"], "")
        await sched.raw("settle", "", "", "", "", "", 0, parts["completion"])
        await coord.client.hset(coord.prefix + "state", "p0", "run:r1")
        parked = await sched.raw(
            "park", "p0", "gate", "", "c25hcA==", parts["host"], "", "r1", 0, 1
        )
        assert parked.kind == "parked", parked
        used = await coord.usage()
        return int(used["record_bytes"]["used"]), int(used["parked_bytes"]["used"])
    finally:
        await coord.delete_run()
        await coord.close()


@settings(max_examples=25, deadline=None)
@given(a=st.tuples(seconds, short, short, seconds), b=st.tuples(seconds, short, short, seconds))
def test_host_measures_do_not_change_the_charge(
    redis_url: str, a: tuple[float, ...], b: tuple[float, ...]
) -> None:
    first = asyncio.run(charges(redis_url, lines(*a)))
    second = asyncio.run(charges(redis_url, lines(*b)))
    assert first == second
    assert first[0] > 0
    assert first[1] > 0


def test_a_program_cannot_shrink_its_charge_with_a_host_key(redis_url: str) -> None:
    """A long number under a host key (a program's own value) counts as long as it is."""
    parts = lines(1.5, 0.0, 0.0, 0.0)
    small = asyncio.run(charges(redis_url, parts))
    big: dict[str, Any] = dict(parts)
    big["entry"] = parts["entry"].replace('"latency_s": 0.0', '"latency_s": ' + "9" * 70)
    large = asyncio.run(charges(redis_url, big))
    assert large[0] - small[0] == 70 - 24


# The charge as lib.lua first computed it: one pattern scan over the whole line. lib.lua now
# finds each host key by a plain search: 2.5 times faster on a large answer (4 MB: 25.6 against
# 10.1 ms of Redis, where every other program waits). The two must charge every line the same.
SCANNED = """
local HOST_FIELDS = {t = true, cpu_s = true, latency_s = true, created_at = true,
  started_at = true, ended_at = true}
local n = #ARGV[1]
for key, num in string.gmatch(ARGV[1], '"([%a_]+)": ?(%-?%d[%d%.eE+-]*)') do
  if HOST_FIELDS[key] and #num < 24 then n = n + 24 - #num end
end
return n
"""
HOST_KEYS = ["t", "cpu_s", "latency_s", "created_at", "started_at", "ended_at"]
keys = st.sampled_from([*HOST_KEYS, "tt", "at", "t_", "msg", "detail", "x"]) | st.text(max_size=8)
numbers = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**40), 10**40)
# Text that looks like a host measure inside a string value (a program's own words).
tricky = st.sampled_from(['"t": 5', 't": 1', '{"cpu_s": 2}', '\\"t\\": 3', '"t":', ": 7"])
scalars = numbers | st.text(max_size=12) | tricky | st.none() | st.booleans()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=20,
)


def lua_charged(redis_url: str, line: str) -> tuple[int, int]:
    """What lib.lua's `charged` and the pattern scan charge `line`, in a real Redis."""
    import redis as redis_sync

    from swarmlab.runtime._transitions import lua_source

    lib = lua_source("turn").split("\nCALLS[")[0]  # lib.lua as every script carries it
    client = redis_sync.Redis.from_url(redis_url)
    try:
        now = client.eval(lib + "\nreturn charged(ARGV[1])", 3, "charge:", "l", "u", line)
        was = client.eval(SCANNED, 0, line)
        return int(now), int(was)
    finally:
        client.close()


@settings(max_examples=150, deadline=None)
@given(record=st.dictionaries(keys, values, max_size=8), compact=st.booleans())
def test_a_plain_search_charges_what_the_pattern_scan_charged(
    redis_url: str, record: dict[str, Any], compact: bool
) -> None:
    line = json.dumps(
        record, separators=(",", ":") if compact else (", ", ": "), ensure_ascii=compact
    )
    now, was = lua_charged(redis_url, line)
    assert now == was

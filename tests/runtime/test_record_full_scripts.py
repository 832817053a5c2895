"""A full record takes nothing more from the scripts that refuse calls because it is full.

`begin` refused every call once `caps.record_bytes` was reached, but journaled the refusal,
charging the record it said was full; a turn's answer was journaled with its refusal too. These
tests drive the call scripts straight (no Ray), in random order, asked once or again, and hold
each step to the rule: once `used` reaches the limit, a refused call writes no journal entry
and no event, and `used` does not move; each refused call is counted once however often it is
asked. Before that, a step writes at most what it was handed (its events and its entry).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.records import ProgramRecord
from swarmlab.runtime._coordinator import Coordinator
from swarmlab.runtime._scheduler import Scheduler
from swarmlab.runtime._stored import WAIT_PIECES, killed_pieces, record_pieces
from swarmlab.spec import Caps

_runs = itertools.count()
IDS = ("p0", "p0.1", "p0.2")
OPS = ("turn", "get", "put", "keys", "budget", "wait", "spawn", "reserve", "stop")
CHILD = record_pieces(ProgramRecord(id="p0", code="x = 1", task="child"))
KILLED = killed_pieces("stopped by kill() from p0", "p0")


def event_line(program: str, seq: int, size: int) -> str:
    return json.dumps({"t": 1.5, "program": program, "kind": "log", "seq": seq, "m": "x" * size})


def argv(op: str, program: str, seq: int, events: str) -> tuple[Any, ...]:
    """A call script's arguments for `op`, as the runtime sends them (unordered run)."""
    head = (program, seq, "", events)
    if op == "turn":
        return ("turn", *head, json.dumps({"value": "y" * 40}))
    if op in ("get", "put", "keys", "budget"):
        more = {"get": ("k1",), "put": ("k1", '"v"'), "keys": ("", 1000), "budget": ("tokens",)}
        return ("blackboard", *head, op, *more[op])
    if op == "wait":
        return ("wait", *head, "0", *WAIT_PIECES, "p0.9")  # no such program: answered at once
    if op == "spawn":
        return ("spawn", *head, 1, 0, *CHILD, "queue")
    if op == "reserve":
        return ("reserve", *head, "", '{"phase":"started"}', 0, "world_actions", 1)
    return ("stop", *head, "p0.9", *KILLED)


async def snapshot(coord: Coordinator, sched: Scheduler) -> tuple[int, int, int, dict[str, int]]:
    """used record_bytes, journal entries, events in the stream, and the denials by cap."""
    usage = await coord.usage()
    entries = sum([len(await sched.journal(p)) for p in IDS])
    stream = int(await coord.client.xlen(coord.prefix + "events"))
    denied = {cap: int(row["denied"]) for cap, row in usage.items()}
    return int(usage["record_bytes"]["used"]), entries, stream, denied


async def drive(
    redis_url: str, limit: int, steps: list[tuple[str, int, bool, int]]
) -> list[tuple[Any, ...]]:
    """Run the steps; for each, what it found before and after."""
    coord = Coordinator(redis_url, f"full-{next(_runs)}")
    sched = Scheduler(coord)
    seqs = dict.fromkeys(IDS, 0)
    seen: list[tuple[Any, ...]] = []
    try:
        await coord.init_run(Caps(record_bytes=limit, programs=1000), {}, ordered=False)
        for op, who, again, size in steps:
            program = IDS[who]
            if not (again and seqs[program]):
                seqs[program] += 1
            seq = seqs[program]
            events = event_line(program, seq, size)
            before = await snapshot(coord, sched)
            reply = await sched.raw(*argv(op, program, seq, events))
            after = await snapshot(coord, sched)
            seen.append((op, program, seq, len(events), reply, before, after))
    finally:
        await coord.delete_run()
        await coord.close()
    return seen


STEPS = st.lists(
    st.tuples(
        st.sampled_from(OPS), st.integers(0, len(IDS) - 1), st.booleans(), st.integers(0, 400)
    ),
    min_size=5,
    max_size=50,
)


@settings(max_examples=30, deadline=None)
@given(limit=st.integers(0, 4000), steps=STEPS)
def test_a_full_record_is_not_written_to_by_refusing_calls(
    redis_url: str, limit: int, steps: list[tuple[str, int, bool, int]]
) -> None:
    refused: set[tuple[str, int]] = set()
    answered: set[tuple[str, int]] = set()  # before the record was full: journaled
    for op, program, seq, sent, reply, before, after in asyncio.run(drive(redis_url, limit, steps)):
        used, denied = before[0], before[3]
        if used < limit:  # at most its events and its answer (a key list, a stopped envelope)
            assert after[0] - used <= sent + 4_000, (op, before, after)
            answered.add((program, seq))
            continue
        assert after[:3] == before[:3], f"{op} wrote to the full record: {before} -> {after}"
        if (program, seq) in answered:
            continue  # asked again: answered from the journal, as before the record was full
        assert reply.kind == "denied", (op, reply)
        assert reply.values[0] == "record_bytes", (op, reply)
        first = (program, seq) not in refused
        refused.add((program, seq))
        assert after[3].get("record_bytes", 0) == denied.get("record_bytes", 0) + first

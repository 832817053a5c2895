"""A call's name is the program's; its event's kind is the lab's.

A program under `schedule: race` that made 64 calls without a turn, with the record full, and
then called a name the lab does not declare (`zzz()`) had its events flushed and the flush
denied: the denial was recorded with the name it called as the event's kind, which an `Event`
refuses, and the program ended as "runner fault" (a lab fault). A park denied for
`parked_bytes` recorded the same name. A name the lab declares for something else (`end`,
`start`) would have been recorded as that step. Now a call's kind is the name when the lab
declares it as a call (a capability, an alias, `lab.` and `world.<action>` spellings), and
`unknown_name` otherwise.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from helpers.hostile_runs import assert_promises_kept, run_hostile
from helpers.scripted_lab import scripted_capabilities
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.cluster import RayCluster
from swarmlab.core import (
    ALIASES,
    EVENT_KINDS,
    LIFECYCLE_KINDS,
    UNKNOWN_NAME_KIND,
    WORLD_ACTIONS,
    CapExceeded,
    ProgramFault,
)
from swarmlab.records import Event
from swarmlab.runtime._adapter import FLUSH_EVENTS, HOST_ANSWERS, call_kind
from swarmlab.runtime._transitions import TurnArgs

DECLARED_CALLS = sorted({*ALIASES, *(f"world.{a}" for a in WORLD_ACTIONS)})
NAMES = st.one_of(
    st.text(max_size=300),
    st.sampled_from(DECLARED_CALLS),
    st.sampled_from(DECLARED_CALLS).map(lambda n: f"lab.{n}"),
    st.sampled_from(sorted(EVENT_KINDS)),
    st.sampled_from(sorted(EVENT_KINDS)).map(lambda n: f"lab.{n}"),
    st.sampled_from(["world.", "world.world.buy", "lab.lab.now", "", "end", "<script>"]),
)


@settings(max_examples=500, deadline=None)
@given(NAMES)
def test_a_call_kind_is_always_a_call_the_lab_declares(name: str) -> None:
    kind = call_kind(name)
    assert kind in EVENT_KINDS
    assert kind not in LIFECYCLE_KINDS
    short = name.removeprefix("lab.")
    assert kind == (short if short in DECLARED_CALLS else UNKNOWN_NAME_KIND)


@settings(max_examples=150, deadline=None)
@given(NAMES)
def test_a_denied_flush_records_the_call_under_a_declared_kind(name: str) -> None:
    caps, _ = scripted_capabilities(
        {"turn": [["denied", "wall_clock_s", "60", ""]]}, overrides=["schedule=race"]
    )
    filler = Event(t=0.0, program="p0", kind="log", decision="info")
    caps.pending = [filler] * FLUSH_EVENTS
    with pytest.raises(CapExceeded):
        asyncio.run(caps.call(name, (), {}))
    denied = caps.pending[-1]
    assert (denied.kind, denied.decision, denied.cap) == (
        call_kind(name),
        "denied",
        "wall_clock_s",
    )
    assert caps.calling == call_kind(name)


@settings(max_examples=150, deadline=None)
@given(NAMES.filter(lambda n: call_kind(n) == UNKNOWN_NAME_KIND))
def test_an_unknown_name_is_remembered_and_recorded_as_one(name: str) -> None:
    caps, _ = scripted_capabilities(overrides=["schedule=race"])
    with pytest.raises(ProgramFault):
        asyncio.run(caps.call(name, (), {}))
    assert caps.calling == UNKNOWN_NAME_KIND
    assert [e.kind for e in caps.pending] == [UNKNOWN_NAME_KIND]


UNKNOWN_CALLER = """
n = 0
for i in range(300):
    try:
        zzz_not_a_name("x")
    except Exception as e:
        n = n + 1
        last = type(e).__name__
print(n, last)
"""


@pytest.mark.slow
def test_a_run_whose_record_fills_with_unknown_names_blames_no_lab_fault(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    overrides = ["schedule=race", "caps.record_bytes=2000", "caps.wall_clock_s=30"]
    run = run_hostile(tmp_path, redis_url, UNKNOWN_CALLER, overrides)
    assert_promises_kept(run)
    root = run.root()
    assert root["status"] == "completed", root["error"]
    assert root["output"].startswith("300 ")
    kinds = {(e["kind"], e["decision"], e["cap"]) for e in run.events() if e["program"] == "p0"}
    assert (UNKNOWN_NAME_KIND, "error", None) in kinds
    # The record filled: later calls are refused and counted, none written as an event.
    assert not [k for k in kinds if k[2] == "record_bytes"]
    assert run.summary()["caps"]["record_bytes"]["denied"] > 0


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(HOST_ANSWERS)), st.booleans())
def test_a_host_answer_is_journaled_however_the_call_is_spelled(name: str, lab: bool) -> None:
    # `now()` and `lab.now()` are one call: what the program is told is journaled at its turn
    # either way, so a replay compares it.
    caps, scripts = scripted_capabilities()
    told = asyncio.run(caps.call(f"lab.{name}" if lab else name, (), {}))
    turns = [args for args, _ in scripts.asked if isinstance(args, TurnArgs)]
    assert len(turns) == 1
    assert turns[0].answer, f"{name}: its answer {told!r} is not journaled"

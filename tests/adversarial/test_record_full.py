"""A full record is not written to by saying it is full.

Once `caps.record_bytes` was reached, `begin` refused every call, but the refusal was journaled
(charged to the record) and the runtime then wrote an event for the refused call (charged too):
a program that caught the refusal and kept calling took `used` to 6x the limit (1.87 MB of a
300 KB limit). Now a call refused because the record is full is counted, not written: no
journal entry, no event; each program's end is still recorded and says how many of its calls
were refused (`unrecorded`). `used` stays within the bound docs/hostile-input.md states
(`record_bound` below), whatever capabilities the programs call and however often.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.hostile_runs import HostileRun, assert_promises_kept, run_hostile
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from swarmlab.cluster import RayCluster
from swarmlab.observability.analysis import analyze_run
from swarmlab.runtime._program import MAX_UNSENT

CALLS = 3_000
PICK = """
kids = []
def pick(k, n):
    if k == 0:
        log("x" * 400)
    elif k == 1:
        db_get("some/key")
    elif k == 2:
        db_put("k/%d" % n, "v")
    elif k == 3:
        world.inventory()
    elif k == 4:
        world.buy("acme", 1)
    elif k == 5:
        kids.append(spawn("x = 1"))
    elif k == 6:
        wait(kids[-1] if kids else "p0.99")
    elif k == 7:
        now()
    elif k == 8:
        budget()
    elif k == 9:
        db_keys("")
    elif k == 10:
        my_id()
    else:
        run_ai("more?")
"""
KINDS = 12
RUN = """
refused = 0
for k, times in PLAN:
    for n in range(times):
        try:
            pick(k, n)
        except Exception as e:
            if "record_bytes" in str(e):
                refused = refused + 1
print("refused", refused)
"""
OVERRIDES = [
    "caps.children=20",
    "program_limits.host_calls=1000000",
    "program_limits.cpu_s=60",
    "caps.wall_clock_s=80",
]

Plan = list[tuple[int, int]]


SPAWN = """
spawns_refused = 0
for code in CODES:
    try:
        spawn(code, task="child")
    except Exception as e:
        if "record_bytes" in str(e):
            spawns_refused = spawns_refused + 1
print("refused", spawns_refused)
"""


def program(plan: Plan, children: list[Plan]) -> str:
    """A root that spawns a program per plan of `children` (a child whose record does not fit
    is refused, and counted), then runs its own `plan`: each a list of (capability, times),
    every refusal caught and the full record's counted."""
    codes = [PICK + _run(p) for p in children]
    return SPAWN.replace("CODES", repr(codes)) + PICK + _run(plan)


def _run(plan: Plan) -> str:
    return RUN.replace("PLAN", repr(plan))


def flood_then_everything() -> Plan:
    """Fill the record with logs (2,000 of 400 characters: 300 KB is full after about 500,
    the rest are refused), then call every capability in turn, CALLS calls in all."""
    return [(0, 2_000)] + [(n % KINDS, 1) for n in range(CALLS)]


def record_bound(run: HostileRun) -> int:
    """docs/hostile-input.md's bound, with this run's largest lines: the call that filled the
    record (its entry and the events sent with it) and, for each program, the events it had not
    sent (at most MAX_UNSENT), its end event and its ended record (kept twice: the latest and
    the stream of versions), and the end of one effect admitted before (a model answer, its
    settlement and completions line; a world action's answer)."""
    event = max(len(line) for line in _lines(run, "events.jsonl")) + 100  # host measures
    entry = max((len(line) for line in _lines(run, "inputs.jsonl")), default=0)
    completion = max((len(line) for line in _lines(run, "completions.jsonl")), default=0)
    record = max(len(line) for line in _lines(run, "programs.jsonl")) + 100  # host measures
    per_program = (MAX_UNSENT + 1) * event + 2 * entry + completion + 2 * record
    return int(run.summary()["caps"]["record_bytes"]["limit"]) + per_program * (
        len(run.programs()) + 1
    )


def _lines(run: HostileRun, name: str) -> list[str]:
    return [line for line in (run.out / name).read_text().split("\n") if line]


def refused_by_programs(run: HostileRun) -> int:
    """What the programs counted, from the lines they printed."""
    total = 0
    for p in run.programs():
        for line in (p.get("output") or "").split("\n"):
            if line.startswith("refused "):
                total += int(line.split()[1])
    return total


def check_full_run(run: HostileRun) -> dict[str, int]:
    """Every promise of a run whose record filled up; the record_bytes row."""
    assert_promises_kept(run)  # the directory is whole, `swarmlab report` reads it
    row = run.summary()["caps"]["record_bytes"]
    assert row["used"] <= record_bound(run), row
    refused = refused_by_programs(run)
    assert row["denied"] == refused, (row, refused)
    written = [e for e in run.events() if e.get("cap") == "record_bytes"]
    assert not written, f"{len(written)} refusals written to the full record"
    ends = [e for e in run.events() if e["kind"] == "end"]
    assert len(ends) == len(run.programs()), "every program's end is recorded"
    said = sum(int(e["detail"].get("unrecorded", 0)) for e in ends)
    assert said == refused, "the end events say how many calls were refused unrecorded"
    metrics = analyze_run(run.out)  # `swarmlab report` said 0 denials and left them out
    # a record that never filled has no denials to show (a plan too small for its limit)
    assert metrics.denials_by_cap.get("record_bytes", 0) == refused, metrics.denials_by_cap
    assert metrics.capability_calls >= refused
    return dict(row)


@pytest.mark.slow
def test_one_program_refused_thousands_of_times_stays_in_the_bound(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    overrides = ["caps.record_bytes=300000", *OVERRIDES]
    run = run_hostile(tmp_path, redis_url, program(flood_then_everything(), []), overrides)
    row = check_full_run(run)
    assert row["used"] >= row["limit"]
    assert row["denied"] >= CALLS


@pytest.mark.slow
def test_several_programs_refused_with_every_capability_stay_in_the_bound(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    """Four children flood the record with the root, so each holds events not yet sent when
    it fills; then all five call every capability thousands of times. The record has room for
    the five programs' records (each kept twice when spawned) and 300 KB more."""
    plan = flood_then_everything()
    root = program(plan, [plan] * 4)
    records = 2 * (len(root) + 4 * len(PICK + _run(plan))) + 10_000
    overrides = [f"caps.record_bytes={300_000 + records}", *OVERRIDES]
    run = run_hostile(tmp_path, redis_url, root, overrides)
    row = check_full_run(run)
    assert row["used"] >= row["limit"]
    assert row["denied"] >= 5 * CALLS


PLANS = st.lists(st.tuples(st.integers(0, KINDS - 1), st.integers(1, 300)), min_size=1, max_size=8)


@pytest.mark.slow
@settings(
    max_examples=4,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # a whole run each: no shrinking
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(limit=st.integers(2_000, 60_000), plan=PLANS, children=st.lists(PLANS, max_size=2))
@example(limit=40_622, plan=[(1, 2), (0, 50)], children=[])  # never full: no denials to show
def test_any_calls_after_a_small_record_stay_in_the_bound(
    tmp_path: Path,
    redis_url: str,
    ray_cluster: RayCluster,
    limit: int,
    plan: Plan,
    children: list[Plan],
) -> None:
    overrides = [f"caps.record_bytes={limit}", *OVERRIDES]
    run = run_hostile(tmp_path, redis_url, program(plan, children), overrides)
    check_full_run(run)

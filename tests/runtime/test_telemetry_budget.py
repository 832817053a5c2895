"""Telemetry kept in Redis for the run directory has a budget: spans and metric lines are not
charged to the record, and were bounded only by the caps that bound calls (host calls times
programs), so a run with raised caps could fill its Redis with them. Lines past the budget are
dropped and counted as `telemetry_bytes` denials; what is kept never passes it, whatever
processes ship at once."""

from __future__ import annotations

import itertools

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlab.runtime._coordinator import TelemetrySink, run_prefix
from swarmlab.runtime._keys import run_key
from swarmlab.spec import TELEMETRY_CAP

RUN_IDS = (f"telemetry-budget-{n}" for n in itertools.count())

# Batches as exporter threads ship them: (which process, stream, lines).
BATCHES = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=2),
        st.sampled_from(["spans", "metrics"]),
        st.lists(st.text(min_size=1, max_size=120), min_size=1, max_size=8),
    ),
    max_size=25,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)
@given(batches=BATCHES, budget=st.integers(min_value=0, max_value=3_000))
def test_kept_telemetry_never_passes_its_budget(
    redis_url: str, batches: list[tuple[int, str, list[str]]], budget: int
) -> None:
    run_id = next(RUN_IDS)
    sinks = [TelemetrySink(redis_url, run_id, budget=budget) for _ in range(3)]
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    prefix = run_prefix(run_id)
    try:
        for process, stream, lines in batches:
            sinks[process](stream, lines)
        kept: dict[str, list[str]] = {
            s: [str(x) for x in client.lrange(run_key(prefix, "telemetry:", s), 0, -1)]
            for s in ("spans", "metrics")
        }
        used = int(client.hget(run_key(prefix, "used"), TELEMETRY_CAP) or 0)
        denied = int(client.hget(run_key(prefix, "denied"), TELEMETRY_CAP) or 0)
        kept_bytes = sum(len(x.encode()) for lines in kept.values() for x in lines)
        assert used == kept_bytes <= budget
        shipped = sum(len(lines) for _, _, lines in batches)
        assert denied == shipped - sum(len(lines) for lines in kept.values())
        for stream in ("spans", "metrics"):  # what is kept is what was shipped, in order
            sent = [line for _, s, lines in batches if s == stream for line in lines]
            it = iter(sent)
            assert all(any(line == x for x in it) for line in kept[stream])
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()
        for sink in sinks:
            sink.close()

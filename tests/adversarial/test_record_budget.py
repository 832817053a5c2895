"""The record has a budget (issue 21, defects 3 and 4).

`db_keys("")` asked again and again over a full blackboard grew inputs.jsonl (and the journal
in Redis) by the whole key list per call: 162 MB under default caps. Twenty programs that held
16 MB each and parked pushed the private Redis to 554 MB, charged to nothing. Now a large answer
given again is kept once (by its SHA-1, in Redis and in inputs.jsonl), the bytes of the record
are charged to `caps.record_bytes`, parked programs to `caps.parked_bytes`, each denied like any
cap, and the private redis-server has a memory bound past which it refuses writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from helpers.hostile_runs import assert_promises_kept, run_hostile

from swarmlab import load_spec
from swarmlab.cluster import RayCluster, RedisServer
from swarmlab.spec import redis_memory_bytes

LISTER = """
i = 0
while True:
    try:
        db_put("k%05d/%s" % (i, "x" * 150), "v")
    except Exception as e:
        break
    i = i + 1
for n in range(300):
    db_keys("")
log("listed")
"""


@pytest.mark.slow
def test_a_large_answer_given_again_is_kept_once(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    overrides = ["program_limits.host_calls=100000", "caps.wall_clock_s=60"]
    run = run_hostile(tmp_path, redis_url, LISTER, overrides)
    assert_promises_kept(run)
    assert run.root()["status"] == "completed", run.root()["error"]
    rows = [json.loads(x) for x in (run.out / "inputs.jsonl").read_text().split("\n") if x]
    listed = [r for r in rows if r.get("digest")]
    assert len(listed) == 300
    answers = [r for r in listed if r["answer"] is not None]
    assert len(answers) == 1  # the key list, once
    assert len(answers[0]["answer"]) > 1_000
    assert len({r["digest"] for r in listed}) == 1
    one_answer = len(json.dumps(answers[0]["answer"]))
    size = (run.out / "inputs.jsonl").stat().st_size
    assert size < 3 * one_answer + 300 * 200, f"inputs.jsonl is {size} bytes"
    caps = run.summary()["caps"]
    assert 0 < caps["record_bytes"]["used"] <= caps["record_bytes"]["limit"]


CHATTER = """
n = 0
try:
    while True:
        log("x" * 400)
        n = n + 1
except Exception as e:
    print("refused after", n, ":", e)
"""


@pytest.mark.slow
def test_a_program_that_fills_the_record_is_denied_record_bytes(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    overrides = [
        "caps.record_bytes=200000",
        "program_limits.host_calls=1000000",
        "program_limits.cpu_s=60",
        "caps.wall_clock_s=60",
    ]
    run = run_hostile(tmp_path, redis_url, CHATTER + "\nwait(spawn('x = 1'))\n", overrides)
    assert_promises_kept(run)
    root = run.root()
    assert "CapExceeded(record_bytes)" in root["output"], root
    row = run.summary()["caps"]["record_bytes"]
    assert row["denied"] >= 1
    assert row["limit"] <= row["used"] <= row["limit"] + 100_000, row  # a batch of events past
    assert not [e for e in run.events() if e["cap"] == "record_bytes"], "written to say full"
    end = next(e for e in run.events() if e["kind"] == "end" and e["program"] == "p0")
    assert end["detail"]["unrecorded"] == row["denied"], "the root's end counts its refusals"
    assert (run.out / "events.jsonl").stat().st_size < 2 * row["limit"]


HOLDER = (
    "big = 'y' * 4000000\n"
    "try:\n"
    "    wait('p0')\n"
    "except Exception as e:\n"
    "    log('refused: ' + str(e)[:200])\n"
)
PARKERS = f"""
for i in range(8):
    spawn({HOLDER!r}, task="holder")
wait(spawn("x = 0\\nfor i in range(3000000):\\n    x = x + i", task="slow"))
"""


@pytest.mark.slow
def test_parked_programs_are_charged_to_parked_bytes(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    limit = 12 << 20  # room for two programs that hold 4 MB each (5.3 MB parked)
    overrides = [f"caps.parked_bytes={limit}", "caps.children=20", "caps.wall_clock_s=60"]
    run = run_hostile(tmp_path, redis_url, PARKERS, overrides)
    assert_promises_kept(run)
    row = run.summary()["caps"]["parked_bytes"]
    assert 4_000_000 < row["used"] <= limit, row
    assert row["denied"] >= 4, row
    refused = [
        e for e in run.events() if e["kind"] == "log" and "parked_bytes" in e["detail"]["msg"]
    ]
    assert len(refused) == row["denied"], "each holder refused saw the cap's exception"
    denied = [e for e in run.events() if e["cap"] == "parked_bytes" and e["kind"] == "wait"]
    assert len(denied) == row["denied"]


def test_the_private_redis_is_bounded_and_never_evicts(tmp_path: Path) -> None:
    caps = load_spec("paperclips", []).caps
    bound = redis_memory_bytes(caps)
    assert caps.parked_bytes <= 256 << 20
    assert bound >= caps.record_bytes + caps.parked_bytes + caps.blackboard_bytes
    with RedisServer(tmp_path / "redis", maxmemory=8 << 20) as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert client.config_get("maxmemory")["maxmemory"] == str(8 << 20)
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        client.set("first", "kept")
        refused = None
        for i in range(100):
            try:
                client.set(f"filler{i}", "z" * (1 << 20))
            except redis.ResponseError as exc:
                refused = exc
                break
        assert refused is not None, "the server took 100 MiB under an 8 MiB bound"
        assert "maxmemory" in str(refused)
        assert client.get("first") == "kept"
        client.close()


SPAWNER = """
pad = "#" + "a" * 60000
n = 0
try:
    for i in range(5000):
        spawn("x = %d\\n" % i + pad)
        n = n + 1
except Exception as e:
    print("refused after", n, ":", str(e)[:120])
n
"""


@pytest.mark.slow
def test_programs_records_are_charged_so_spawns_stop_when_the_record_is_full(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    """6,000 children of 63 KB of code each once filled a private Redis with records no cap
    counted: the run stalled until its wall clock. Each version of a record is charged now."""
    limit = 3_000_000
    overrides = [
        f"caps.record_bytes={limit}",
        "caps.programs=6000",
        "caps.children=6000",
        "program_limits.host_calls=8000",
        "caps.wall_clock_s=120",
    ]
    run = run_hostile(tmp_path, redis_url, SPAWNER, overrides)
    assert_promises_kept(run)
    root = run.root()
    assert root["status"] == "completed", root["error"]
    assert "CapExceeded(record_bytes)" in root["output"], root["output"]
    children = int(root["result"])
    assert 10 <= children <= limit // (2 * 60_000), children  # each kept twice: hash, stream
    row = run.summary()["caps"]["record_bytes"]
    assert row["denied"] >= 1
    programs = (run.out / "programs.jsonl").stat().st_size
    assert programs > children * 60_000
    assert row["used"] > 2 * programs - 200_000  # every record charged, as Redis keeps it

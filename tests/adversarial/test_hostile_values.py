"""Values a program hands the host are bounded before use (issue 10, defects 2, 5 and 9).

- A result nested thousands deep once made the record's JSON too deep for the parser (the
  driver crashed: a traceback, exit 1, no run directory); an int of 100,000 digits, which
  Python refuses to print, marked a completed program as crashed.
- Error messages had no bound (eight children raising 20 MB messages made a 160 MB
  programs.jsonl and report); `wait()` took any number of ids.
- Odd arguments to the host (`wait(c, timeout="abc")`, a sleep of 10**400 seconds, an int
  task) crashed the program with an uncatchable "runner fault" and lost its output.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.hostile_runs import assert_promises_kept, run_hostile

from swarmlab.cluster import RayCluster

pytestmark = pytest.mark.slow

MAX_RECORD_BYTES = 30_000
"""A program's line in programs.jsonl: its code, and bounded result, error and output."""

# Each child returns (or hands the host) a value no JSON parser or printer takes as it is.
VALUES = {
    "deep-list": "x = []\nfor i in range(5000):\n    x = [x]\nx",
    "deep-dict": "x = {}\nfor i in range(300):\n    x = {'k': x, 'n': i}\nx",
    "huge-int": "10 ** 100000",
    "huge-str": "'a' * 20_000_000",
    "odd-keys": "{(1, 2): 'tuple key', 1: 'int key', None: float('nan')}",
    "deep-log": "x = []\nfor i in range(5000):\n    x = [x]\nlog(x)\nlog(10 ** 100000)\nx",
    "deep-prompt": "x = []\nfor i in range(5000):\n    x = [x]\nrun_ai(x)\nrun_ai(10 ** 100000)",
    "deep-args": "x = []\nfor i in range(5000):\n    x = [x]\ntry:\n    world.email(x, x)\n"
    "except ValueError as e:\n    pass\ny = 1",
    # A count too long for Python to print, in the world's refusal of it (a fault of the lab).
    "huge-count": "name = world.search_suppliers()[0]['name']\n"
    "for q in [10 ** 5000, -(10 ** 5000), [10 ** 5000], {'q': 10 ** 5000}]:\n"
    "    try:\n        world.buy(name, q)\n    except ValueError as e:\n        pass\ny = 1",
}


def _spawning(children: dict[str, str], tail: str = "results = wait(kids)\n") -> str:
    root = "kids = []\n"
    for task, code in children.items():
        root += f"kids.append(spawn({code!r}, task={task!r}))\n"
    return root + tail


def test_a_deep_or_huge_result_completes_and_is_kept_bounded(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    root = _spawning(VALUES, "[r['status'] for r in wait(kids)]")
    run = run_hostile(tmp_path, redis_url, root, ["caps.children=20", "caps.wall_clock_s=60"])
    assert run.summary()["status"] == "completed"
    assert_promises_kept(run)
    children = run.by_task()
    assert set(children) == set(VALUES)
    for task, record in children.items():
        assert record["status"] == "completed", f"{task}: {record['error']}"
    assert run.root()["result"] == ["completed"] * len(VALUES)  # wait() saw them completed
    lines = (run.out / "programs.jsonl").read_text().splitlines()
    assert max(len(line) for line in lines) < MAX_RECORD_BYTES
    assert "int of about 100001 digits" in str(children["huge-int"]["result"])
    assert "nested too deep" in str(children["deep-list"]["result"])
    assert children["odd-keys"]["result"] == {
        "<tuple of 2>": "tuple key",
        "1": "int key",
        "null": "nan",
    }


def test_huge_error_messages_and_waits_on_many_ids_stay_bounded(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    shouting = {f"shout-{i}": "raise ValueError('E' * 20_000_000)" for i in range(8)}
    waiter = (
        "kid = spawn('x = 1')\n"
        "try:\n    wait([kid] * 20_000)\nexcept ValueError as e:\n    print('refused:', e)\n"
        "try:\n    wait(['p0.%d' % i for i in range(1, 20_001)], timeout=1)\n"
        "except ValueError as e:\n    print('refused:', e)\n"
        "len(wait([kid] * 1_000))"
    )
    # Its first call carries its start event: refused after adding it, it is added once.
    nobody = "try:\n    wait('p0.999')\nexcept ValueError as e:\n    print('refused:', e)\n1"
    root = _spawning({**shouting, "waiter": waiter, "nobody": nobody})
    run = run_hostile(tmp_path, redis_url, root, ["caps.children=20", "caps.wall_clock_s=60"])
    assert run.summary()["status"] == "completed"
    metrics = assert_promises_kept(run)
    children = run.by_task()
    for i in range(8):
        record = children[f"shout-{i}"]
        assert record["status"] == "crashed"
        assert record["error"].startswith("ValueError: EEEE")
        assert len(record["error"]) <= 4_100
    waiting = children["waiter"]
    assert waiting["status"] == "completed", waiting["error"]
    assert waiting["output"].count("refused: wait(): at most 1000 ids at once") == 2
    assert children["nobody"]["output"].startswith("refused: wait(): no program with id")
    assert waiting["result"] == 1_000
    assert metrics["crashed"] == 8
    sizes = {name: (run.out / name).stat().st_size for name in ("programs.jsonl", "events.jsonl")}
    assert sizes["programs.jsonl"] < 200_000, sizes
    assert sizes["events.jsonl"] < 200_000, sizes
    assert (run.out / "report.html").stat().st_size < 2_000_000


ODD = """
import time
import datetime
kid = spawn("x = 1")
odd = [
    ("timeout str", lambda: wait(kid, timeout="abc")),
    ("timeout list", lambda: wait(kid, timeout=[1])),
    ("timeout huge int", lambda: wait(kid, timeout=10 ** 400)),
    ("timeout nan", lambda: wait(kid, timeout=float("nan"))),
    ("timeout negative", lambda: wait(kid, timeout=-1)),
    ("timeout bool", lambda: wait(kid, timeout=True)),
    ("ids int", lambda: wait(12)),
    ("ids nested", lambda: wait([[kid]])),
    ("sleep str", lambda: time.sleep("x")),
    ("sleep huge int", lambda: time.sleep(10 ** 400)),
    ("sleep inf", lambda: time.sleep(float("inf"))),
    ("task huge int", lambda: spawn("x = 2", task=10 ** 100000)),
    ("spawn int", lambda: spawn(123)),
    ("spawn empty", lambda: spawn("   ")),
    ("max_tokens huge", lambda: run_ai("hi", max_tokens=10 ** 400)),
    ("max_tokens str", lambda: run_ai("hi", max_tokens="5")),
    ("db_put huge int", lambda: db_put("k", 10 ** 100000)),
    ("db_put int key", lambda: db_put(10 ** 5, 1)),
    ("db_keys huge int", lambda: db_keys(10 ** 100000)),
    ("kill list", lambda: kill(["p0"])),
    ("kill huge int", lambda: kill(10 ** 100000)),
    ("buy odd", lambda: world.buy(supplier=[1], quantity=10 ** 400)),
    ("budget args", lambda: budget(1, 2)),
    ("my_id kwargs", lambda: my_id(x=1)),
]
for name, call in odd:
    try:
        call()
        print(name, "answered")
    except Exception as e:
        print(name, "raised", type(e).__name__)
try:
    time.sleep(10 ** 12)
except OverflowError as e:
    print("too long a sleep: OverflowError")
for i in range(40):
    time.sleep(9 * 10 ** 9)  # 11,000 years in all: past the year 9999, were the clock unbounded
print("after a long sleep:", datetime.datetime.now().year > 2030, time.time() > 0, now() > 0)
print("reached the end")
len(odd)
"""


def test_odd_host_arguments_are_errors_the_program_catches(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    run = run_hostile(tmp_path, redis_url, ODD, ["caps.wall_clock_s=60"])
    assert_promises_kept(run)
    root = run.root()
    assert root["status"] == "completed", root["error"]
    output = root["output"]
    assert "too long a sleep: OverflowError" in output
    assert "after a long sleep: True True True" in output
    assert "reached the end" in output
    lines = [line for line in output.splitlines() if " raised " in line or " answered" in line]
    assert len(lines) == root["result"], output
    answered = [line for line in lines if line.endswith(" answered")]
    # A task is kept as (bounded) text, and max_tokens is cut to the spec's: neither is refused.
    assert answered == ["task huge int answered", "max_tokens huge answered"], output

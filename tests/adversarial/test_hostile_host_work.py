"""Host work on values a program controls cannot stall a runner (issue 10, defect 1).

The programs here hand the host the worst inputs for the work it does on them: prompts of runs
of blanks for the `sim` policy's prompt classification, spawned code of tens of thousands of
blank lines and of thousands of `open`s for the escape scan, shuffled and padded copies of a
large program for the quine tripwire's similarity. Each of these once cost time quadratic (or
worse) in the value, on the runner's event loop: the runner could not answer `stop_all`, and the
run outlasted its wall clock, exited 1 and wrote no directory. Here the run still stops at its
wall clock, and `swarmlab kill` still stops it within the kill budget.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers.hostile_runs import HostileRun, assert_promises_kept, new_run_id, run_hostile

from swarmlab.cluster import RayCluster
from swarmlab.models import CompletionRequest, Message, create_backend
from swarmlab.runtime import Coordinator

KILL_STOPS_S = 1.0
"""From `swarmlab kill` to every runner having stopped what it computes."""
KILL_EXITS_S = 5.0
"""From `swarmlab kill` to the run having written its directory and cleaned up."""

# Asks the `sim` policy forever with a prompt that is a run of blanks after "suggestion" (its
# old prompt pattern backtracked over the run: ~12 s a call at 100 KB), and with prompts of
# megabytes (refused by size, cheaply; the program goes on).
ASKER = """
P = "what code implements this suggestion" + " " * 99_900
BIG = "\\u2028 " * 1_000_000
n = 0
while True:
    try:
        run_ai(P, max_tokens=8)
        n = n + 1
    except Exception as e:
        pass
    try:
        run_ai(BIG)
    except ValueError as e:
        pass
"""

# Code for the escape scan (built by the root): tens of thousands of blank lines, a line of
# thousands of `open`s each followed by blanks, imports hidden among blank lines.
SCANNED = """
SCANNED = [
    "\\n" * 60_000 + "x = 1",
    "x = [" + "open   " * 8_000 + "open(1)]",
    ("\\n" * 500 + "import os\\n") * 100 + "x = 1",
    " \\t" * 30_000 + "\\nx = 1",
]
"""

# The root's own code is large (2,000 distinct lines, about 50 KB, never run). It spawns the
# scanned code and two askers, then shuffled, padded copies of those lines, for ever: quine-like
# children whose similarity to the root the tripwire measures at every attempt, also once the
# caps refuse them (the old measure, difflib, took about a minute a pair at this size).
COPIES = 2_000
DRIVER = f"""
import time
for code in SCANNED:
    spawn(code, task="scanned")
spawn(ASKER, task="asker")
spawn(ASKER, task="asker")
n = {COPIES}
LINES = ["    v.a%d = w.b%d(x%d)" % (i, i % 101, i) for i in range(n)]
k = 0
while True:
    k = k + 1
    time.sleep(60)  # a simulated minute, as a model call costs: the others get their turns
    order = [LINES[(i * 7 + k * 13) % n] for i in range(n)]
    pad = "\\n" * ((k % 40) * 200) + "#" * 2_000
    try:
        spawn("if False:\\n" + "\\n".join(order) + pad, task="quine-like")
    except Exception as e:
        pass
"""


def _root() -> str:
    body = "\n".join(f"    v.a{i} = w.b{i % 101}(x{i})" for i in range(COPIES))
    return f"if False:\n{body}\nASKER = {ASKER!r}\n{SCANNED}\n{DRIVER}"


OVERRIDES = [
    "caps.children=60",
    "caps.programs=60",
    "caps.tokens=1000000000000",
    "caps.model_calls=1000000",
    "program_limits.host_calls=100000000",
    "program_limits.cpu_s=600",
    "tripwires=[{name: copies, rule: quine, action: log}]",
]


@pytest.mark.slow
def test_host_work_on_hostile_values_never_outlasts_the_wall_clock(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    run = run_hostile(tmp_path, redis_url, _root(), [*OVERRIDES, "caps.wall_clock_s=20"])
    summary = run.summary()
    assert summary["status"] == "halted", summary["ended_because"]
    assert "wall_clock_s" in summary["ended_because"]
    assert_promises_kept(run)
    programs = run.programs()
    tasks = [p["task"] for p in programs]
    assert tasks.count("quine-like") >= 3, "the root spawned its copies"
    assert tasks.count("scanned") == 4
    assert tasks.count("asker") == 2
    events = run.events()
    trips = [e for e in events if e["kind"] == "tripwire" and e["detail"]["rule"] == "quine"]
    assert len(trips) >= 3, "the shuffled, padded copies were measured"
    assert all("re-creates" in e["detail"]["why"] for e in trips)  # measured, not timed out
    scanned = {p["id"] for p in programs if p["task"] == "scanned"}
    found = [e for e in events if e["kind"] == "escape_attempt" and e["program"] in scanned]
    assert {e["detail"]["source"] for e in found} >= {"open(", "import os"}
    asked = [e for e in events if e["kind"] == "run_ai" and e["decision"] == "allowed"]
    assert len(asked) >= 4, "the askers' prompts were classified, call after call"


@pytest.mark.slow
def test_kill_stops_a_run_whose_programs_keep_the_host_busy(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    run_id = new_run_id()
    holder: dict[str, HostileRun] = {}

    def target() -> None:
        overrides = [*OVERRIDES, "caps.wall_clock_s=120"]
        holder["run"] = run_hostile(tmp_path, redis_url, _root(), overrides, run_id=run_id)

    thread = threading.Thread(target=target)
    thread.start()
    assert _busy(redis_url, run_id), "the run never got going"
    done = subprocess.run(
        [sys.executable, "-m", "swarmlab.cli", "kill", run_id, "--redis-url", redis_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    killed_at = time.time()  # (the kill was set before the command exited: a generous start)
    assert done.returncode == 0, done.stderr
    thread.join(timeout=KILL_EXITS_S + 60)
    exited = time.time() - killed_at
    assert not thread.is_alive()
    assert exited <= KILL_EXITS_S, f"the run ended {exited:.1f} s after the kill"
    run = holder["run"]
    summary = run.summary()
    assert summary["status"] == "killed"
    # The driver ends the run once every runner has answered that it stopped what it computes
    # (it would give a runner that cannot answer 3 s).
    stopped = summary["ended_at"] - killed_at
    assert stopped <= KILL_STOPS_S, f"the runners stopped {stopped:.1f} s after the kill"
    assert_promises_kept(run)


def _busy(redis_url: str, run_id: str, timeout: float = 90) -> bool:
    """Whether the run got its askers asking and its copies spawned within `timeout`."""

    async def going() -> bool:
        coord = Coordinator(redis_url, run_id)
        try:
            if not await coord.exists():
                return False
            usage = await coord.usage()
            return usage["programs"]["used"] >= 9 and usage["model_calls"]["used"] >= 1
        finally:
            await coord.close()

    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if asyncio.run(going()):
            return True
        time.sleep(0.2)
    return False


def test_the_askers_prompt_is_slow_for_the_old_pattern_and_fast_now() -> None:
    """The runs above test what they claim: their prompt is the slow case of the `sim` policy's
    old prompt pattern (quadratic: about 12 s a call at 100 KB), and is fast for the policy."""
    old = re.compile(r"suggestion\s*\??\s*:\s*(.+)", re.IGNORECASE | re.DOTALL)
    prompt = "what code implements this suggestion" + " " * 99_900
    started = time.perf_counter()
    old.search(prompt[:20_036])  # a fifth of it: a twenty-fifth of the time
    assert time.perf_counter() - started > 0.1
    request = CompletionRequest(messages=(Message(role="user", content=prompt),), max_tokens=8)
    started = time.perf_counter()
    asyncio.run(create_backend("sim").generate(request))
    assert time.perf_counter() - started < 0.1

"""A node lost mid-run on a real two-node cluster (token auth, runners spread over both nodes):
its raylet and runners SIGKILLed while their model calls are in flight. No program is lost, the
results are exact, and the caps equal what the model server counted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.fake_endpoint import FakeEndpoint
from helpers.two_nodes import TwoNodes, two_nodes

from swarmlab.records import RunDir

pytestmark = pytest.mark.slow

KIDS, CALLS = 8, 3
BUSY = """
child = "total = 0\\nfor i in range(CALLS):\\n    run_ai('one idea', max_tokens=8)\\n" + (
    "    db_put('n/' + my_id(), i + 1)\\n    total += 1\\ntotal\\n"
)
kids = [spawn(child, task="busy %d" % i) for i in range(KIDS)]
sum([r["result"] or 0 for r in wait(kids)])
""".replace("KIDS", str(KIDS)).replace("CALLS", str(CALLS))


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    give_up = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < give_up, f"gave up waiting for {what}"
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _runner_count(pid: int) -> int:
    return sum(1 for c in _children(pid) if b"RunnerCore" in _read(c))


def _read(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_losing_a_node_mid_run_loses_no_program_and_charges_what_the_server_counted(
    tmp_path: Path, redis_url: str, fake_endpoint: Callable[..., FakeEndpoint]
) -> None:
    began = time.monotonic()
    hold = threading.Event()  # the server keeps every chat until the node is gone
    server = fake_endpoint(hold=hold)
    program = tmp_path / "busy.py"
    program.write_text(BUSY)
    out = tmp_path / "run"
    with two_nodes(tmp_path) as cluster:
        # fmt: off
        driver = subprocess.Popen(
            [
                sys.executable, "-m", "swarmlab.cli", "run", "paperclips",
                "--program", str(program), "--out", str(out), "--run-id", "node-loss",
                "--ray-address", cluster.address, "--redis-url", redis_url, "--quiet",
                "--model", f"openai:{server.url}",
                "--set", "model_name=fake-model", "--set", "runners=4",
                # one worker a runner: each child woken goes to an idle runner, so the first
                # children take the runners the root does not hold, both of the second node's
                "--set", "caps.concurrent=4", "--set", "caps.wall_clock_s=150",
            ],
            env=cluster.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )
        # fmt: on
        try:
            _lose_the_second_node(cluster, server, hold)
            _, stderr = driver.communicate(timeout=120)
        finally:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait()
    assert driver.returncode == 0, stderr[-3000:]
    summary = RunDir(out).summary()
    assert summary is not None
    assert summary.status == "completed", summary.ended_because
    programs = RunDir(out).programs()
    assert [p.status for p in programs] == ["completed"] * (KIDS + 1)  # none lost
    assert programs[0].result == KIDS * CALLS  # every child's every call, once
    assert summary.runners_lost >= 2  # the second node's two runners
    sent = len(server.chat_posts())
    assert sent > KIDS * CALLS  # the lost node's calls were sent again
    assert summary.caps["model_calls"].used == sent
    assert summary.model.resent_calls == sent - KIDS * CALLS
    assert summary.caps["tokens"].used >= 14 * sent
    assert time.monotonic() - began < 180


def _lose_the_second_node(cluster: TwoNodes, server: FakeEndpoint, hold: threading.Event) -> None:
    """Once every child's first call is at the server, with runners on both nodes, SIGKILL the
    second node's raylet and its workers; then let the server answer."""
    _until(lambda: server.in_flight >= KIDS, 90, "every child's first call at the server")
    raylets = [cluster.raylet(0), cluster.raylet(1)]
    assert None not in raylets
    head, second = (int(r) for r in raylets if r is not None)
    assert _runner_count(head) == _runner_count(second) == 2  # spread over both nodes
    doomed = [second, *_children(second)]
    for pid in doomed:
        os.kill(pid, signal.SIGKILL)
    _until(lambda: not any(_read(p) for p in doomed), 30, "the second node to die")
    hold.set()

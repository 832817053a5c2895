"""`swarmlab status` counts a live run's caps as its progress line and summary.json do, and reads
what the run's Redis holds back as hostile: a number that is not one is said in one line."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import time
from pathlib import Path

import redis
from helpers.cli import one_line_error, swarmlab

from swarmlab.cli._status import status_row
from swarmlab.cluster import free_port
from swarmlab.runtime import Coordinator
from swarmlab.spec import Caps


def _usage(**used: float) -> dict[str, dict[str, float]]:
    limits = {"programs": 200.0, "concurrent": 48.0, "wall_clock_s": 90.0}
    rows = {
        c: {"limit": limit, "used": used.get(c, 0.0), "denied": 0.0} for c, limit in limits.items()
    }
    for extra in ("live", "computing_peak"):
        rows[extra] = {"limit": 0.0, "used": used.get(extra, 0.0), "denied": 0.0}
    return rows


def test_a_live_run_shows_its_caps_as_the_run_counts_them() -> None:
    now = 1_000_000.0
    meta = {
        "status": "running",
        "spec": json.dumps({"admission": "queue"}),
        "deadline_ms": str(int((now - 7.5 + 90) * 1000)),  # the root started 7.5 s ago
    }
    usage = _usage(programs=30, live=26, computing_peak=40)
    row = status_row("r", meta, usage, {"computing": 24, "parked": 2}, now)
    assert row["caps"]["concurrent"]["used"] == 24  # computing now, not Redis's 0
    assert row["caps"]["wall_clock_s"]["used"] == 7.5
    assert row["caps"]["programs"]["used"] == 30
    assert "computing_peak" not in row["caps"]
    assert "live" not in row["caps"]
    assert (row["live"], row["computing"], row["computing_peak"]) == (26, 24, 40)

    starting = status_row("r", {"status": "starting"}, usage, {}, now)  # no tree yet
    assert starting["caps"]["wall_clock_s"]["used"] == 0
    denying = {**meta, "spec": json.dumps({"admission": "deny"})}
    assert (
        status_row("r", denying, _usage(concurrent=5), {"computing": 3}, now)["caps"]["concurrent"][
            "used"
        ]
        == 5
    )  # under `deny`, what admission counts


def test_status_of_a_live_run_and_a_tampered_count(redis_url: str) -> None:
    run_id = "status-" + secrets.token_hex(4)
    coord = Coordinator(redis_url, run_id)

    async def plant() -> None:
        await coord.init_run(
            Caps(), {"status": "running", "deadline_ms": str(int(time.time() * 1000))}
        )
        await coord.close()

    asyncio.run(plant())
    key = f"{coord.prefix}nstate"
    client = redis.Redis.from_url(redis_url)
    try:
        client.hset(key, "computing", 3)
        done = swarmlab("status", run_id, "--redis-url", redis_url)
        assert done.returncode == 0, done.stderr
        assert "computing=3 (peak 0)" in done.stdout
        assert "computing_peak=" not in done.stdout
        rows = json.loads(swarmlab("status", run_id, "--json", "--redis-url", redis_url).stdout)
        assert rows[0]["computing"] == 3
        client.hset(key, "computing", "lots")
        one_line_error(swarmlab("status", run_id, "--redis-url", redis_url), 2, "not a number")
    finally:
        client.delete(*client.keys(f"{coord.prefix}*"))
        client.close()


def test_a_live_run_whose_redis_is_gone_or_stuck_hides_no_other(tmp_path: Path) -> None:
    """One registry entry with a live pid and a Redis that refuses (or accepts and never
    answers) made `status` fail as a whole; each is now a line of its own on stderr."""
    live = tmp_path / "state" / "live"
    live.mkdir(parents=True)
    with socket.socket() as stuck:
        stuck.bind(("127.0.0.1", 0))
        stuck.listen(16)
        entries = {
            "gone-1": f"redis://127.0.0.1:{free_port()}/0",
            "stuck-1": f"redis://127.0.0.1:{stuck.getsockname()[1]}/0",
        }
        for run_id, url in entries.items():
            entry = {"run_id": run_id, "redis_url": url, "out_dir": "/tmp/x", "pid": os.getpid()}
            (live / f"{run_id}.json").write_text(json.dumps(entry))
        done = swarmlab("status", "--json", SWARMLAB_STATE_DIR=str(tmp_path / "state"))
        asked = swarmlab("status", "stuck-1", SWARMLAB_STATE_DIR=str(tmp_path / "state"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    said = done.stderr.strip().splitlines()
    assert len(said) == 2, done.stderr
    assert "run gone-1: coordinator at redis://127.0.0.1:" in said[0]
    assert "run stuck-1: its Redis redis://127.0.0.1:" in said[1]
    assert "does not answer" in said[1]
    # Asked for by its id, the run's problem is the answer: one line, not 0.
    one_line_error(asked, 1, "run stuck-1: its Redis", "does not answer")

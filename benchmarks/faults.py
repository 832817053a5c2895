"""A runner process SIGKILLed mid-run: programs lost, programs resumed, time to recover.

    .venv/bin/python benchmarks/faults.py [--children 12] [--calls 40] [--json]

One tree of busy children (each makes model calls, blackboard writes and computes between
them) runs twice with the same spec and seed on one private redis-server and one local Ray:
once undisturbed (the baseline), once with one of its two runner processes SIGKILLed when the
children are under way. Measured:

- programs lost: programs of the baseline's tree missing or not completed in the faulted run
  (the target is 0), and whether the two trees are identical (ids, parents, code, statuses,
  results, outputs), as they must be when every call is applied at most once;
- programs resumed: programs that were computing on the lost runner and ran again from their
  last snapshot or their start (`restart` events), and runner processes lost;
- time to recover: from the SIGKILL to the first event of a resumed program, and to the first
  event of any program after the kill; the faulted run's duration against the baseline's;
- quota: every cap's `used` in the faulted run against the baseline's.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster, RedisServer
from swarmlab.records import RunResult
from swarmlab.runtime import RunOptions, run_experiment

CHILD = """
total = 0
for i in range(CALLS):
    run_ai("list one idea", max_tokens=8)
    db_put("n/" + my_id(), i)
    x = 0
    for j in range(5000):
        x += j
    total += 1
total
"""
ROOT = """
CHILD = %r
kids = [spawn(CHILD, task="busy %%d" %% i) for i in range(KIDS)]
sum([r["result"] or 0 for r in wait(kids)])
"""
HOST_MEASURES = ("wall_clock_s", "concurrent")


def program(children: int, calls: int) -> str:
    return (ROOT % CHILD.replace("CALLS", str(calls))).replace("KIDS", str(children))


def run(redis_url: str, out: Path, code: str, children: int) -> RunResult:
    spec = load_spec(
        "paperclips",
        [
            "runners=2",
            f"caps.children={children}",
            "caps.concurrent=100",
            "program_limits.host_calls=5000",
            "seed=3",
        ],
    )
    options = RunOptions(
        program=code, out_dir=out, redis_url=redis_url, progress=Progress(quiet=True)
    )
    return run_experiment(spec, options)


def runner_pids(temp_dir: Path) -> list[int]:
    """This Ray instance's runner processes: children of its raylet named ray::RunnerCore."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            table[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmd)
    raylets = {p for p, (_, cmd) in table.items() if "raylet" in cmd and str(temp_dir) in cmd}
    return [p for p, (parent, cmd) in table.items() if "RunnerCore" in cmd and parent in raylets]


def faulted(redis_url: str, out: Path, code: str, ray: RayCluster, children: int) -> dict[str, Any]:
    """Run `code`, SIGKILL one runner once every child wrote to the blackboard."""
    import redis

    holder: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: holder.update(result=run(redis_url, out, code, children))
    )
    thread.start()
    client = redis.Redis.from_url(redis_url)
    killed_at = None
    try:
        while thread.is_alive() and killed_at is None:
            keys = [k for k in client.scan_iter(match="swarmlab:run:*:bb")]
            if keys and client.hlen(keys[0]) >= children:
                assert ray.temp_dir is not None
                victims = runner_pids(ray.temp_dir)
                if victims:
                    os.kill(victims[0], signal.SIGKILL)
                    killed_at = time.time()
            time.sleep(0.05)
    finally:
        client.close()
    thread.join()
    return {"result": holder["result"], "killed_at": killed_at}


def tree(result: RunResult) -> list[tuple[Any, ...]]:
    return [
        (p.id, p.parent_id, p.code, p.status, repr(p.result), p.output) for p in result.programs
    ]


def compare(base: RunResult, hit: RunResult, killed_at: float | None) -> dict[str, Any]:
    done = {p.id for p in hit.programs if p.status == "completed"}
    lost = [p.id for p in base.programs if p.status == "completed" and p.id not in done]
    restarts = [e for e in hit.events if e.kind == "restart"]
    after = [e.t for e in hit.events if killed_at is not None and e.t > killed_at]
    base_caps = {k: v.used for k, v in base.summary().caps.items() if k not in HOST_MEASURES}
    hit_caps = {k: v.used for k, v in hit.summary().caps.items() if k not in HOST_MEASURES}
    return {
        "programs": len(base.programs),
        "programs_lost": len(lost),
        "trees_identical": tree(base) == tree(hit),
        "status": hit.status,
        "runners_lost": hit.summary().runners_lost,
        "programs_resumed": len({e.program for e in restarts}),
        "resumed_from": sorted({str(e.detail.get("from")) for e in restarts}),
        "kill_to_first_resumed_event_s": _since(killed_at, [e.t for e in restarts]),
        "kill_to_next_event_s": _since(killed_at, after),
        "duration_s": hit.duration_s,
        "baseline_duration_s": base.duration_s,
        "caps_used_equal_baseline": hit_caps == base_caps,
        "caps_used": hit_caps,
    }


def _since(start: float | None, times: list[float]) -> float | None:
    return round(min(times) - start, 3) if start is not None and times else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=12)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    code = program(args.children, args.calls)
    with tempfile.TemporaryDirectory(prefix="swarmlab-faults-") as tmp:
        work = Path(tmp)
        with RedisServer(work / "redis") as redis_server:
            ray = RayCluster().start_local(work / "ray")
            try:
                base = run(redis_server.url, work / "baseline", code, args.children)
                hit = faulted(redis_server.url, work / "faulted", code, ray, args.children)
            finally:
                ray.shutdown()
    figures = compare(base, hit["result"], hit["killed_at"])
    if args.json:
        print(json.dumps(figures, indent=1))
        return 0
    print(
        f"runner SIGKILLed mid-run ({figures['runners_lost']} lost): {figures['programs_lost']} "
        f"of {figures['programs']} programs lost; tree identical to the undisturbed run: "
        f"{figures['trees_identical']}; status {figures['status']}"
    )
    resumed_from = ", ".join(figures["resumed_from"]) or "-"
    print(
        f"resumed {figures['programs_resumed']} programs (from {resumed_from}); first event "
        f"of a resumed program {figures['kill_to_first_resumed_event_s']} "
        f"s after the kill, first event of any program {figures['kill_to_next_event_s']} s"
    )
    print(
        f"duration {figures['duration_s']} s against {figures['baseline_duration_s']} s "
        f"undisturbed; every cap's used equal to the undisturbed run's: "
        f"{figures['caps_used_equal_baseline']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

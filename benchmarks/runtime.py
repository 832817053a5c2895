"""Runtime throughput and spawn latency, next to raw Ray and raw Monty, measured in one run.

    .venv/bin/python benchmarks/runtime.py [--programs 300] [--json]

Baselines, on the same machine in the same process:
- raw Ray: trivial remote tasks per second, and one task's round trip;
- raw Monty: a fresh sandbox session per trivial program (what each swarm program gets), per second;
- the sandbox floor: the same fan-out tree run in bare Monty sessions, every call answered at once
  by an in-memory host (no Redis, no caps, no events, no record): programs/s, and the CPU one
  program takes summed over this process and its sandbox workers. Two fully used cores divided by
  that CPU is the most any runtime built on this sandbox could do with this program here;
- the CPU budget: the CPU of one raw EVALSHA (`return 1`, the lab's script connection; client and
  Redis together) times the scripts each program of the run made (Redis's count), added to the
  floor's CPU, against what 0.5x raw Ray leaves each program on all cores.
The runtime figure is a fan-out tree of sim-model programs (each makes one model call, one
blackboard write and spawns its share of children) under the lab's caps, events and records,
once with the default `schedule: ordered` (every call at its turn in simulated time: the same
tree whatever the timing) and once with `schedule: race` (calls go as they come).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests_support_handler import NullHandler

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster, RedisServer
from swarmlab.observability.telemetry import TelemetryConfig
from swarmlab.records import RunResult
from swarmlab.runtime import RunOptions, run_experiment

FANOUT = """
n = run_ai("What should this branch do?", max_tokens=32)
db_put("seen/" + my_id(), len(n))
kids = []
for i in range(6):
    try:
        kids.append(spawn(SELF.replace("SELF", repr(SELF)), task="fan-out"))
    except Exception as e:
        break
wait(kids)
"""


def fanout_program() -> str:
    # The program carries its own text so each child can spawn the same program.
    body = FANOUT.replace('SELF.replace("SELF", repr(SELF))', "SRC % SRC")
    src = "SRC = %r\n" + body.replace("%", "%%")
    return src % src


def raw_ray(ray: RayCluster, tasks: int) -> dict[str, float]:
    import ray as _ray

    @_ray.remote
    def noop() -> int:
        return 1

    _ray.get([noop.remote() for _ in range(50)])  # warm the workers
    start = time.perf_counter()
    _ray.get([noop.remote() for _ in range(tasks)])
    rate = tasks / (time.perf_counter() - start)
    trips = []
    for _ in range(100):
        t = time.perf_counter()
        _ray.get(noop.remote())
        trips.append(time.perf_counter() - t)
    return {"tasks_per_s": rate, "round_trip_ms": statistics.median(trips) * 1000}


def raw_monty(programs: int) -> dict[str, float]:
    from swarmlab.runtime._sandbox import (
        Sandbox,  # the sandbox module is the one home of pydantic_monty
    )
    from swarmlab.spec import ProgramLimits

    async def go() -> float:
        sandbox = Sandbox(max_workers=8)
        await sandbox.start()
        try:
            handler = NullHandler()
            start = time.perf_counter()
            await asyncio.gather(
                *(sandbox.run("x = 1\nx + 1", handler, ProgramLimits()) for _ in range(programs))
            )
            return programs / (time.perf_counter() - start)
        finally:
            await sandbox.close()

    return {"programs_per_s": asyncio.run(go())}


class _InstantHost(NullHandler):
    """The fan-out program's calls answered at once, in memory: `spawn` starts the child's
    session in the same sandbox pool, until `limit` programs were started."""

    capabilities = frozenset({"run_ai", "db_put", "my_id", "spawn", "wait"})

    def __init__(self, tree: _Tree) -> None:
        self.tree = tree

    async def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if name == "spawn":
            return self.tree.spawn(str(args[0]))
        if name == "wait":
            return [{"status": "completed"} for _ in args[0]]
        return {"run_ai": "an idea", "my_id": "p"}.get(name)


class _Tree:
    def __init__(self, sandbox: Any, limit: int) -> None:
        self.sandbox, self.limit = sandbox, limit
        self.sessions: list[asyncio.Task[Any]] = []

    def spawn(self, code: str) -> str:
        from swarmlab.core import CapExceeded
        from swarmlab.spec import ProgramLimits

        if len(self.sessions) >= self.limit:
            raise CapExceeded("programs", limit=self.limit, asked=self.limit + 1)
        run = self.sandbox.run(code, _InstantHost(self), ProgramLimits())
        self.sessions.append(asyncio.ensure_future(run))
        return f"p{len(self.sessions)}"


def _tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) of process `root` and its live descendants, from /proc."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:  # ended meanwhile
                continue
            stats[int(entry.name)] = text.rsplit(")", 1)[1].split()
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, f in stats.items() if int(f[1]) in tree} - tree
        tree |= more
        grew = bool(more)
    ticks = sum(int(stats[pid][11]) + int(stats[pid][12]) for pid in tree if pid in stats)
    return ticks / os.sysconf("SC_CLK_TCK")


def sandbox_floor(programs: int, workers: int = 8) -> dict[str, float]:
    """The fan-out tree in bare Monty, every call answered at once: programs/s and CPU/program."""
    from swarmlab.runtime._sandbox import Sandbox
    from swarmlab.spec import ProgramLimits

    async def go() -> dict[str, float]:
        sandbox = Sandbox(max_workers=workers, warm_workers=workers)
        await sandbox.start()
        try:
            idle = _InstantHost(_Tree(sandbox, 0))
            await asyncio.gather(*(sandbox.run("1", idle, ProgramLimits()) for _ in range(workers)))
            tree = _Tree(sandbox, programs)
            cpu, start = _tree_cpu_s(os.getpid()), time.perf_counter()
            tree.spawn(fanout_program())
            done = 0
            while done < len(tree.sessions):  # sessions grow while earlier ones run
                outcome = await tree.sessions[done]
                if outcome.status != "completed":
                    raise RuntimeError(f"floor program {done} {outcome.status}: {outcome.error}")
                done += 1
            elapsed = time.perf_counter() - start
            cpu = _tree_cpu_s(os.getpid()) - cpu
        finally:
            await sandbox.close()
        per_program = cpu / done
        cores = os.cpu_count() or 1
        return {
            "cores": cores,
            "programs": done,
            "programs_per_s": done / elapsed,
            "cpu_ms_per_program": per_program * 1000,
            "most_on_all_cores_per_s": cores / per_program,
        }

    return asyncio.run(go())


def fanout_run(
    redis_url: str,
    programs: int,
    out: Path,
    telemetry: TelemetryConfig | None = None,
    schedule: str = "ordered",
) -> RunResult:
    """One run of the fan-out tree, `programs` programs, under the lab's caps and records."""
    spec = load_spec(
        "paperclips",
        [
            f"caps.programs={programs}",
            "caps.depth=10",
            "caps.children=8",
            f"caps.concurrent={programs}",
            "caps.wall_clock_s=600",
            f"schedule={schedule}",
        ],
    )
    options = RunOptions(
        program=fanout_program(),
        out_dir=out,
        redis_url=redis_url,
        progress=Progress(quiet=True),
        telemetry=telemetry,
    )
    return run_experiment(spec, options)


def programs_per_s(result: RunResult) -> float:
    started = min(p.started_at for p in result.programs if p.started_at)
    ended = max(p.ended_at for p in result.programs if p.ended_at)
    return len(result.programs) / (ended - started)


def evalsha_cpu_us(redis_url: str, calls: int = 5000) -> float:
    """CPU microseconds of one raw EVALSHA, this process and its children (the redis-server)."""
    from capability_calls import raw_evalsha

    cpu = _tree_cpu_s(os.getpid())
    asyncio.run(raw_evalsha(redis_url, calls, "lab"))
    return (_tree_cpu_s(os.getpid()) - cpu) / calls * 1e6


def _scripts_run(redis_url: str) -> int:
    """EVALSHA calls Redis has answered since it started."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))
    finally:
        client.close()


def runtime(redis_url: str, programs: int, out: Path, schedule: str) -> dict[str, float]:
    scripts = _scripts_run(redis_url)
    result = fanout_run(redis_url, programs, out, schedule=schedule)
    scripts = _scripts_run(redis_url) - scripts
    records = result.programs
    latency = [p.started_at - p.created_at for p in records if p.parent_id and p.started_at]
    return {
        "programs": len(records),
        "programs_per_s": programs_per_s(result),
        "spawn_to_start_ms_p50": statistics.median(latency) * 1000,
        "spawn_to_start_ms_p95": sorted(latency)[int(0.95 * (len(latency) - 1))] * 1000,
        "completed": sum(p.status == "completed" for p in records),
        "scripts_per_program": scripts / len(records),
    }


def _ratios(
    swarm: dict[str, float], ray: dict[str, float], monty: dict[str, float]
) -> dict[str, float]:
    return {
        "vs_raw_ray_throughput": swarm["programs_per_s"] / ray["tasks_per_s"],
        "vs_raw_monty_throughput": swarm["programs_per_s"] / monty["programs_per_s"],
        "spawn_to_start_vs_ray_round_trip": swarm["spawn_to_start_ms_p50"] / ray["round_trip_ms"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="swarmlab-bench-") as tmp:
        root = Path(tmp)
        with RedisServer(root / "redis") as redis:
            ray = RayCluster().start_local(root / "ray")
            try:
                ray_figures = raw_ray(ray, tasks=2000)
                monty = raw_monty(args.programs)
                floor = sandbox_floor(args.programs)
                floor["raw_evalsha_cpu_us"] = evalsha_cpu_us(redis.url)
                swarm = runtime(redis.url, args.programs, root / "ordered", "ordered")
                race = runtime(redis.url, args.programs, root / "race", "race")
            finally:
                ray.shutdown()
    report: dict[str, Any] = {
        "raw_ray": ray_figures,
        "raw_monty": monty,
        "sandbox_floor": floor,
        "runtime": swarm,
        "runtime_race": race,
        "ratios": {
            f"{name}_{key}": value
            for name, figures in (("ordered", swarm), ("race", race))
            for key, value in _ratios(figures, ray_figures, monty).items()
        }
        | {
            f"{name}_vs_sandbox_floor": figures["programs_per_s"] / floor["programs_per_s"]
            for name, figures in (("ordered", swarm), ("race", race))
        }
        | {
            "sandbox_floor_vs_raw_ray": floor["programs_per_s"] / ray_figures["tasks_per_s"],
            "all_cores_at_floor_cpu_vs_raw_ray": floor["most_on_all_cores_per_s"]
            / ray_figures["tasks_per_s"],
        },
    }
    budget_ms = floor["cores"] / (0.5 * ray_figures["tasks_per_s"]) * 1000
    needed_ms = (
        floor["cpu_ms_per_program"]
        + race["scripts_per_program"] * floor["raw_evalsha_cpu_us"] / 1000
    )
    report["cpu_budget"] = {"at_half_raw_ray_ms": budget_ms, "needed_at_least_ms": needed_ms}
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(
        f"raw Ray        {ray_figures['tasks_per_s']:8.0f} trivial tasks/s, "
        f"round trip {ray_figures['round_trip_ms']:.2f} ms"
    )
    print(f"raw Monty      {monty['programs_per_s']:8.0f} trivial programs/s (a session each)")
    print(
        f"sandbox floor  {floor['programs_per_s']:8.0f} fan-out programs/s in bare Monty, calls "
        f"answered at once = {report['ratios']['sandbox_floor_vs_raw_ray']:.3f}x raw Ray; "
        f"{floor['cpu_ms_per_program']:.2f} ms CPU per program, so {floor['cores']} fully used "
        f"cores allow at most {floor['most_on_all_cores_per_s']:.0f}/s = "
        f"{report['ratios']['all_cores_at_floor_cpu_vs_raw_ray']:.3f}x raw Ray"
    )
    print(
        f"CPU budget     0.5x raw Ray leaves each program {budget_ms:.2f} ms of CPU on "
        f"{floor['cores']} cores; it needs at least {needed_ms:.2f} ms: the floor's "
        f"{floor['cpu_ms_per_program']:.2f} ms + {race['scripts_per_program']:.1f} scripts "
        f"(`race`) x {floor['raw_evalsha_cpu_us']:.0f} us of CPU per raw EVALSHA"
    )
    for name, figures in (("ordered", swarm), ("race", race)):
        r = _ratios(figures, ray_figures, monty)
        print(
            f"runtime {name:<7}{figures['programs_per_s']:8.1f} programs/s over "
            f"{figures['programs']} programs; spawn-to-start p50 "
            f"{figures['spawn_to_start_ms_p50']:.1f} ms, p95 {figures['spawn_to_start_ms_p95']:.1f}"
            f" ms\n  ratios: runtime/raw Ray throughput {r['vs_raw_ray_throughput']:.3f}, "
            f"runtime/raw Monty throughput {r['vs_raw_monty_throughput']:.3f}, "
            f"spawn-to-start / Ray round trip {r['spawn_to_start_vs_ray_round_trip']:.1f}x, "
            f"runtime/sandbox floor {report['ratios'][name + '_vs_sandbox_floor']:.3f}; "
            f"{figures['scripts_per_program']:.1f} scripts per program"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

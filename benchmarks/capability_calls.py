"""The cost of one capability call seen from inside a program, next to its raw parts.

    .venv/bin/python benchmarks/capability_calls.py [--calls 1000] [--rounds 3] [--tls] [--json]

Measured in one run, on one private redis-server and one local Ray:

- raw Monty host callback: a sandboxed program calls a host function that returns at once
  (the lab's worker pool, no capability code): per call;
- raw EVALSHA: a trivial Lua script (`return 1`), one call after the other: per call, over the
  connection the lab's programs use for their scripts (`ScriptConnection`) and over redis-py's
  async client. The figure of merit uses the faster of the two;
- `db_get` and `spawn` inside a real run (`--program`, the lab's caps, events, journal and turn;
  telemetry on, as runs have it by default, and off; for `spawn`, `caps.concurrent=1`, so the
  children queue until the parent ends and do not share the CPU while the calls are timed):
  per call, as the difference between a
  program that makes N calls and one that runs the same loop without them, divided by N
  (wall time between the program's start and end, from programs.jsonl).

The figure of merit is the ratio call / (raw callback + the faster raw EVALSHA); each figure is
the median of `--rounds` rounds. Two more figures say what part of the gap no lab code causes:

- raw composed: the raw callback whose host function makes the raw EVALSHA (`return 1`, lab's
  connection) before it returns: the two raw parts in one process, where they share two cores
  with each other (the sandbox's threads, the worker, Redis);
- the script's own time in Redis: Redis's time per EVALSHA while the `db_get` program runs
  (INFO commandstats), against the same figure for `return 1`. A `db_get` runs at the program's
  turn, journals its answer under the call's sequence number and appends the call's event, in
  one script, as runs must. For context, both raw parts are also measured inside a Ray
actor, where runners run (on Ray's uvloop, next to Ray's own threads), and the calls are shown
against that sum too.

With `--tls`, a second redis-server that speaks only TLS (certificates made for the run, a
client certificate required, as `rediss://` deployments have it) is measured in the same rounds:
the raw EVALSHA over both clients and `db_get` in a run over `rediss://` (`*_tls`), shown against
the same figures in the clear.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster, RedisServer
from swarmlab.observability.telemetry import TelemetryConfig
from swarmlab.runtime import RunOptions, run_experiment

LOOP = "x = 0\nfor i in range(N):\n    x = x + 1\n"
CALLS = {
    "db_get": "x = 0\nfor i in range(N):\n    x = x + 1\n    db_get('k')\n",
    "spawn": "x = 0\nfor i in range(N):\n    x = x + 1\n    spawn('1', task='t')\n",
}


class _Echo:
    """A call handler with one capability, `ping`, that returns at once (no lab code)."""

    capabilities = frozenset({"ping"})
    world_actions: tuple[str, ...] = ()

    async def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return 1

    async def os_call(self, name: str, args: tuple[Any, ...]) -> Any:
        from swarmlab.runtime._sandbox import NOT_HANDLED

        return NOT_HANDLED

    def on_import(self, module: str) -> None:
        pass


async def per_ping(calls: int, handler: _Echo) -> float:
    """Seconds per `ping()` answered by `handler`, through the sandbox's worker pool."""
    from swarmlab.runtime._sandbox import Sandbox
    from swarmlab.spec import ProgramLimits

    limits = ProgramLimits(cpu_s=600, host_calls=calls + 10)

    async def timed(code: str) -> float:
        sandbox = Sandbox(max_workers=1, warm_workers=1)
        await sandbox.start()
        try:
            start = time.perf_counter()
            outcome = await sandbox.run(code.replace("N", str(calls)), handler, limits)
            assert outcome.status == "completed", outcome.error
            return time.perf_counter() - start
        finally:
            await sandbox.close()

    with_calls = await timed(LOOP + "    ping()\n")
    without = await timed(LOOP)
    return (with_calls - without) / calls


async def raw_callback(calls: int) -> float:
    """Seconds per host callback that returns at once."""
    return await per_ping(calls, _Echo())


async def raw_evalsha(redis_url: str, calls: int, client: str) -> float:
    """Seconds per EVALSHA of a trivial script, one after the other, over `client`: 'lab' (the
    programs' script connection) or 'redis-py'."""
    import redis.asyncio as aioredis

    from swarmlab.runtime._scripts import ScriptConnection

    redis_py = aioredis.Redis.from_url(redis_url, decode_responses=True)
    lab = ScriptConnection(redis_url)
    try:
        script = redis_py.register_script("return 1")
        await script()
        if client == "lab":
            keys: list[str] = []

            async def once() -> object:
                return await lab.evalsha(script.sha, "return 1", keys, keys)
        else:

            async def once() -> object:
                return await script()

        await once()
        start = time.perf_counter()
        for _ in range(calls):
            await once()
        return (time.perf_counter() - start) / calls
    finally:
        await lab.close()
        await redis_py.aclose()


class _Composed(_Echo):
    """`ping` makes one raw EVALSHA of `return 1` before it returns."""

    def __init__(self, redis_url: str, sha: str) -> None:
        from swarmlab.runtime._scripts import ScriptConnection

        self.connection, self.sha = ScriptConnection(redis_url), sha

    async def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return await self.connection.evalsha(self.sha, "return 1", [], [])


async def raw_composed(redis_url: str, calls: int) -> float:
    """Seconds per host callback that makes one raw EVALSHA: both raw parts in one process."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    sha = await client.script_load("return 1")
    await client.aclose()
    handler = _Composed(redis_url, sha)
    try:
        return await per_ping(calls, handler)
    finally:
        await handler.connection.close()


def evalsha_in_redis_us(redis_url: str) -> float:
    """Redis's own microseconds per EVALSHA since the last `CONFIG RESETSTAT`."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        stats = client.info("commandstats").get("cmdstat_evalsha", {})
        client.config_resetstat()
    finally:
        client.close()
    return float(stats.get("usec_per_call", 0.0))


def raw_in_actor(redis_url: str, calls: int) -> tuple[float, float]:
    """The raw callback and the raw EVALSHA (lab's connection) measured inside a Ray actor, where
    runners run (on its uvloop, next to Ray's own threads): context for the figure of merit."""
    import ray

    @ray.remote
    class Raw:
        async def measure(self, url: str, n: int) -> tuple[float, float]:
            return await raw_callback(n), await raw_evalsha(url, n, "lab")

    actor = Raw.remote()  # type: ignore[attr-defined]
    try:
        return tuple(ray.get(actor.measure.remote(redis_url, calls)))
    finally:
        ray.kill(actor)


MAX_SPAWNS = 900
"""Spawns timed in one program. Every call steps the program's clock by 1 ms and a child starts
1 simulated second after its spawn, so past about 1,000 calls the parent's clock passes its first
queued child's start: from then on it waits for its turn at each call, and the figure would time
that, not a spawn."""


def in_program(redis_url: str, work: Path, name: str, calls: int, telemetry: bool) -> float:
    """Seconds per call of `name` inside a run, net of the loop around it."""
    if name == "spawn":
        calls = min(calls, MAX_SPAWNS)

    def duration(code: str, tag: str) -> float:
        spec = load_spec(
            "paperclips",
            [
                f"caps.programs={calls + 10}",
                f"caps.children={calls + 10}",
                # spawn: one program computes at a time, so the children wait in the queue
                # until the parent ends and the call is timed alone.
                f"caps.concurrent={1 if name == 'spawn' else calls + 10}",
                f"program_limits.host_calls={calls + 10}",
                "program_limits.cpu_s=600",
                "caps.wall_clock_s=900",
            ],
        )
        result = run_experiment(
            spec,
            RunOptions(
                program=code.replace("N", str(calls)),
                out_dir=work / f"{name}-{tag}-{time.monotonic_ns()}",
                redis_url=redis_url,
                progress=Progress(quiet=True),
                telemetry=TelemetryConfig(enabled=telemetry),
            ),
        )
        root = result.programs[0]
        assert root.status == "completed", root.error
        assert root.started_at is not None
        assert root.ended_at is not None
        return root.ended_at - root.started_at

    return (duration(CALLS[name], "calls") - duration(LOOP, "loop")) / calls


def tls_server(work: Path) -> Any:
    """A TLS-only redis-server with certificates made in `work` (the tests' helper)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from helpers.tls_redis import TlsRedis

    return TlsRedis(work / "tls-redis")


def tls_round(url: str, work: Path, calls: int, add: Any) -> None:
    """One round of the figures over TLS."""
    add("raw_evalsha_tls_us", asyncio.run(raw_evalsha(url, calls, "lab")))
    add("raw_evalsha_tls_redis_py_us", asyncio.run(raw_evalsha(url, calls, "redis-py")))
    add("db_get_tls_us", in_program(url, work, "db_get", calls, True))


def print_tls(us: dict[str, float]) -> None:
    if "raw_evalsha_tls_us" not in us:
        return
    print(
        f"over TLS: raw EVALSHA {us['raw_evalsha_tls_us']:.1f} us over the lab's script "
        f"connection (in the clear {us['raw_evalsha_us']:.1f} us), "
        f"{us['raw_evalsha_tls_redis_py_us']:.1f} us over redis-py "
        f"(in the clear {us['raw_evalsha_redis_py_us']:.1f} us); db_get "
        f"{us['db_get_tls_us']:.1f} us (in the clear {us['db_get_us']:.1f} us)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tls", action="store_true", help="also measure over rediss://")
    args = parser.parse_args(argv)
    samples: dict[str, list[float]] = {}

    def add(key: str, seconds: float) -> None:
        samples.setdefault(key, []).append(seconds * 1e6)

    with tempfile.TemporaryDirectory(prefix="swarmlab-calls-") as tmp:
        work = Path(tmp)
        with RedisServer(work / "redis") as redis, contextlib.ExitStack() as stack:
            tls = stack.enter_context(tls_server(work)) if args.tls else None
            ray = RayCluster().start_local(work / "ray")
            try:
                for _ in range(args.rounds):
                    if tls is not None:
                        tls_round(tls.url(), work, args.calls, add)
                    add("raw_callback_us", asyncio.run(raw_callback(args.calls)))
                    add("raw_evalsha_us", asyncio.run(raw_evalsha(redis.url, args.calls, "lab")))
                    add(
                        "raw_evalsha_redis_py_us",
                        asyncio.run(raw_evalsha(redis.url, args.calls, "redis-py")),
                    )
                    add("raw_composed_us", asyncio.run(raw_composed(redis.url, args.calls)))
                    evalsha_in_redis_us(redis.url)
                    asyncio.run(raw_evalsha(redis.url, args.calls, "lab"))
                    add("redis_return_1_us", evalsha_in_redis_us(redis.url) * 1e-6)
                    callback, evalsha = raw_in_actor(redis.url, args.calls)
                    add("raw_in_actor_callback_us", callback)
                    add("raw_in_actor_evalsha_us", evalsha)
                    for name in CALLS:
                        for telemetry in (True, False):
                            key = f"{name}_us" + ("" if telemetry else "_no_telemetry")
                            evalsha_in_redis_us(redis.url)
                            add(key, in_program(redis.url, work, name, args.calls, telemetry))
                            if name == "db_get" and telemetry:
                                add("redis_db_get_us", evalsha_in_redis_us(redis.url) * 1e-6)
            finally:
                ray.shutdown()
    us = {k: round(statistics.median(v), 1) for k, v in samples.items()}
    raw = us["raw_callback_us"] + min(us["raw_evalsha_us"], us["raw_evalsha_redis_py_us"])
    in_actor = us["raw_in_actor_callback_us"] + us["raw_in_actor_evalsha_us"]
    context = ("raw_", "redis_")
    calls = {k.removesuffix("_us"): v for k, v in us.items() if not k.startswith(context)}
    ratios = {f"{k}_vs_raw": round(v / raw, 2) for k, v in calls.items()}
    ratios |= {f"{k}_vs_raw_in_actor": round(v / in_actor, 2) for k, v in calls.items()}
    ratios["raw_composed_vs_raw"] = round(us["raw_composed_us"] / raw, 2)
    if args.json:
        print(json.dumps({"microseconds": us, "ratios": ratios, "rounds": args.rounds}, indent=1))
        return 0
    print(
        f"raw Monty callback {us['raw_callback_us']:.1f} us + raw EVALSHA "
        f"{raw - us['raw_callback_us']:.1f} us = {raw:.1f} us (median of {args.rounds} rounds; "
        f"EVALSHA over the lab's script connection {us['raw_evalsha_us']:.1f} us, "
        f"over redis-py {us['raw_evalsha_redis_py_us']:.1f} us)\n"
        f"the same inside a Ray actor: {us['raw_in_actor_callback_us']:.1f} + "
        f"{us['raw_in_actor_evalsha_us']:.1f} = {in_actor:.1f} us\n"
        f"raw composed (the callback makes the EVALSHA) {us['raw_composed_us']:.1f} us = "
        f"{ratios['raw_composed_vs_raw']:.2f}x raw\n"
        f"Redis's own time per EVALSHA: return 1 {us['redis_return_1_us']:.1f} us, "
        f"db_get's script {us['redis_db_get_us']:.1f} us"
    )
    print_tls(us)
    for name, value in calls.items():
        print(
            f"{name:>22} {value:8.1f} us  = {ratios[name + '_vs_raw']:.2f}x raw, "
            f"{ratios[name + '_vs_raw_in_actor']:.2f}x raw in an actor"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

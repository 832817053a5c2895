"""Real experiment trees: the runtime's programs and calls per second against the sandbox floor
of the same tree, measured in one run.

    .venv/bin/python benchmarks/trees.py [--rounds 3] [--workers 8] [--json]

Two trees: the `paperclips` default, and the largest cell of the pumping-curve sweep
(`caps.tokens=300000`, `world.starting_money=100000`, seed 1: about 400 programs, 12,000
calls). Each round:

1. **The runtime**: the experiment runs as `swarmlab run` runs it (`ordered`, telemetry to the
   run directory), on one local Ray and one private redis-server shared by every run. Programs
   and capability calls per second, from the first program's start to the last one's end.
2. **The floor of that tree**: every program of the run it just recorded runs again in bare
   Monty on the sandbox's worker pool (`--workers` workers), each call answered at once, in
   memory, with what the call answered in the run; a program starts when its parent's spawn call
   is answered, as in the run. No Redis, no caps, no turns, no events, no record: what any
   runtime built on this sandbox needs for this tree.

What each call answered comes from the run's own journal (the one `inputs.jsonl` is written
from), read back through the lab's capability code in process: every call the program makes
again is answered from its journal entry, so each program takes the path it took in the run.
A program that leaves that path (it asks a call its journal never answered) is counted and
shown; the floor runs it with the calls it makes.

The ratio runtime/floor is the figure of merit; both trees describe the `sim` policy's
programs, so the figures say how fast the lab grows *these* trees, not a language model's.
"""

from __future__ import annotations

import argparse
import asyncio
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
from swarmlab.core import ProgramFault
from swarmlab.experiments import SweepPlan
from swarmlab.records import RunResult
from swarmlab.runtime._sandbox import Sandbox, SliceLimits
from swarmlab.runtime._seeds import stable_seed
from swarmlab.spec import ExperimentSpec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers.journal_replay import Answer, JournalScripts, answers_of, recorded_run
from helpers.scripted_lab import capabilities_on


def trees() -> dict[str, ExperimentSpec]:
    cell = next(
        c
        for c in SweepPlan.load("pumping-curve", seeds=[1]).cells
        if c.condition == {"caps.tokens": 300000, "world.starting_money": 100000}
    )
    return {"paperclips": load_spec("paperclips"), "pumping-300k": cell.spec}


# --- the runtime ------------------------------------------------------------------------------


def runtime_rates(result: RunResult) -> dict[str, float]:
    started = [p.started_at for p in result.programs if p.started_at]
    ended = [p.ended_at for p in result.programs if p.ended_at]
    seconds = max(ended) - min(started)
    calls = sum(p.calls for p in result.programs)
    return {
        "programs": len(result.programs),
        "calls": calls,
        "seconds": seconds,
        "programs_per_s": len(result.programs) / seconds,
        "calls_per_s": calls / seconds,
    }


# --- what each call answered -----------------------------------------------------------------


# --- the floor ---------------------------------------------------------------------------------


class _Table:
    """A program's calls answered at once from what they answered in the run; a spawn's child
    starts when the spawn is answered."""

    def __init__(self, floor: _Floor, program: str, answers: list[Answer]) -> None:
        self.floor, self.program = floor, program
        self.answers = iter(answers)
        self.capabilities = floor.capabilities
        self.world_actions = floor.world_actions

    def _next(self) -> Any:
        how, value = next(self.answers, ("raise", ProgramFault("RuntimeError", "no answer")))
        if how == "raise":
            raise value
        if isinstance(value, str) and value in self.floor.children.get(self.program, ()):
            self.floor.start(value)
        return value

    async def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self._next()

    async def os_call(self, name: str, args: tuple[Any, ...]) -> Any:
        return self._next()

    def on_import(self, module: str) -> None:
        pass


class _Floor:
    def __init__(
        self, spec: ExperimentSpec, result: RunResult, answers: dict[str, list[Answer]]
    ) -> None:
        self.spec, self.answers = spec, answers
        self.records = {p.id: p for p in result.programs}
        self.children: dict[str, set[str]] = {}
        for p in result.programs:
            if p.parent_id:
                self.children.setdefault(p.parent_id, set()).add(p.id)
        probe = capabilities_on(JournalScripts({}), result.programs[0], spec)
        self.capabilities, self.world_actions = probe.capabilities, probe.world_actions
        self.sandbox: Sandbox | None = None
        self.sessions: dict[str, asyncio.Task[Any]] = {}

    def start(self, program: str) -> None:
        if program in self.sessions or program not in self.records or self.sandbox is None:
            return
        record = self.records[program]
        run = self.sandbox.run_slice(
            _Table(self, program, self.answers.get(program, [])),
            SliceLimits(600.0, self.spec.program_limits.memory_bytes, 1_000_000),
            code=record.code,
            script_name=f"{program}.py",
            random_seed=stable_seed(self.spec.sandbox_seed, program, "random"),
        )
        self.sessions[program] = asyncio.ensure_future(run)

    async def run(self, workers: int) -> dict[str, float]:
        self.sandbox = Sandbox(max_workers=workers, warm_workers=workers)
        await self.sandbox.start()
        try:
            roots = [p for p in self.records.values() if not p.parent_id]
            began = time.perf_counter()
            for root in roots:
                self.start(root.id)
            done = 0
            while done < len(self.sessions):  # sessions grow while earlier ones run
                await list(self.sessions.values())[done]
                done += 1
            seconds = time.perf_counter() - began
        finally:
            await self.sandbox.close()
        calls = sum(p.calls for p in self.records.values())
        ended = {program: task.result().status for program, task in self.sessions.items()}
        return {
            "programs": done,
            "calls": calls,
            "seconds": seconds,
            "programs_per_s": done / seconds,
            "calls_per_s": calls / seconds,
            "ended_otherwise": sum(
                status != _ENDS.get(self.records[p].status, "?") for p, status in ended.items()
            ),
        }


_ENDS = {"completed": "completed", "crashed": "crashed"}
"""How a program the run recorded so ends in the floor; one the run stopped (a kill, a cap, the
run's end) runs on in the floor until its recorded answers are used up, and is counted as
ending otherwise."""


# --- the rounds ------------------------------------------------------------------------------


def one_tree(
    name: str, spec: ExperimentSpec, redis_url: str, out: Path, workers: int
) -> dict[str, Any]:
    result, journals = recorded_run(spec, redis_url, out, Progress(quiet=True))
    runtime = runtime_rates(result)
    answers, strayed = asyncio.run(answers_of(spec, result, journals))
    floor = asyncio.run(_Floor(spec, result, answers).run(workers))
    return {
        "tree": name,
        "runtime": runtime,
        "floor": floor,
        "strayed": strayed,
        "ratio": runtime["programs_per_s"] / floor["programs_per_s"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    specs = trees()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="swarmlab-bench-") as tmp:
        root = Path(tmp)
        with RedisServer(root / "redis") as redis:
            ray = RayCluster().start_local(root / "ray")
            try:
                for i in range(args.rounds):
                    for name, spec in specs.items():
                        row = one_tree(name, spec, redis.url, root / f"{name}-{i}", args.workers)
                        rows.append(row)
                        if not args.json:
                            print(_line(i + 1, row), flush=True)
            finally:
                ray.shutdown()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for name in specs:
        ratios = [r["ratio"] for r in rows if r["tree"] == name]
        print(
            f"{name}: runtime/floor {statistics.median(ratios):.3f}x "
            f"(median of {len(ratios)}; {min(ratios):.3f}-{max(ratios):.3f})"
        )
    return 0


def _line(round_no: int, row: dict[str, Any]) -> str:
    run, floor = row["runtime"], row["floor"]
    return (
        f"round {round_no} {row['tree']}: {run['programs']} programs, {run['calls']} calls; "
        f"runtime {run['programs_per_s']:.1f} programs/s, {run['calls_per_s']:.0f} calls/s; "
        f"floor {floor['programs_per_s']:.1f} programs/s, {floor['calls_per_s']:.0f} calls/s "
        f"= {row['ratio']:.3f}x; programs that left their recorded path {row['strayed']}, "
        f"that ended otherwise in the floor {floor['ended_otherwise']}"
    )


if __name__ == "__main__":
    sys.exit(main())

"""The capability API in process: a `Capabilities` object whose transitions are answered from a
script of replies, not by Redis (no Ray, no Redis, no CLI).

A test scripts what each Lua script answers, as the script would return it (`['ok', '12']`,
`['dup', entry]`, `['denied', cap, limit, asked]`); the answers go through the same decoding
as Redis's (`swarmlab.runtime._replies.decode`, with each script's declaration), so argument
checks, reply decoding and the replayed (`dup`) forms are what a run would meet. Every
transition asked is kept (`ScriptedTransitions.asked`), with its typed arguments.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

from swarmlab import load_spec
from swarmlab.models import ModelBackend
from swarmlab.observability.telemetry import SwarmInstruments, Telemetry, TelemetryConfig
from swarmlab.records import Event, ProgramRecord
from swarmlab.runtime._capabilities import Capabilities
from swarmlab.runtime._program import HostState, RunnerEnv
from swarmlab.runtime._replies import Reply, decode
from swarmlab.runtime._transitions import Args, CompleteArgs, Head, ScriptPath
from swarmlab.spec import ExperimentSpec
from swarmlab.world import World

Raw = list[str]


class ScriptedTransitions:
    """Answers each script from its queue of raw replies (`answers[script]`), in order; `turn`
    answers 'go' when nothing is scripted for it."""

    def __init__(self, answers: dict[str, list[Raw]] | None = None) -> None:
        self.answers = {name: list(raws) for name, raws in (answers or {}).items()}
        self.asked: list[tuple[Args, Head | None]] = []

    async def run(self, args: Args, head: Head | None = None) -> Reply:
        assert (head is not None) == args.CALL, f"{args.SCRIPT}: head iff a call script"
        self.asked.append((args, head))
        queue = self.answers.get(args.SCRIPT)
        if not queue:
            assert args.SCRIPT == "turn", f"no answer scripted for {args.SCRIPT}"
            raw: Raw = ["go"]
        else:
            raw = queue.pop(0)
        return decode(args.SCRIPT, args.REPLIES, raw, args.REPLAYS)

    def scripts_asked(self) -> list[str]:
        return [args.SCRIPT for args, _ in self.asked]


class ScriptedRunner:
    tag = "r.test"

    def __init__(self) -> None:
        self.signals: dict[str, asyncio.Event] = {}

    def turn_signal(self, program_id: str) -> asyncio.Event:
        return self.signals.setdefault(program_id, asyncio.Event())

    def answered(self, program_id: str) -> str | None:
        return None

    def worker_free(self) -> bool:
        return True

    def start_model_call(
        self, program_id: str, seq: int, call: Callable[[], Awaitable[str]]
    ) -> asyncio.Task[str]:
        raise AssertionError("no model calls in process")

    def keep_answer(self, task: asyncio.Task[str], complete: Callable[[str], CompleteArgs]) -> None:
        raise AssertionError("no model calls in process")


class _Coordinator:
    """What a program asks the coordinator directly (denials noted outside a script)."""

    def __init__(self) -> None:
        self.denials: list[str] = []
        self.emitted: list[Event] = []

    async def note_denial(self, cap: str) -> None:
        self.denials.append(cap)

    async def emit(self, *events: Event) -> None:
        self.emitted.extend(events)


def capabilities_on(
    scripts: ScriptPath,
    record: ProgramRecord,
    spec: ExperimentSpec | None = None,
    backend: ModelBackend | None = None,
) -> Capabilities:
    """A `Capabilities` for `record` (of `spec`, by default `paperclips`) whose transitions run
    on `scripts` (no Redis, no Ray; with no `backend`, no model: a model call must then be
    answered by its journal)."""
    spec = spec or load_spec("paperclips")
    world = World(spec.world, spec.world_seed)
    telemetry = Telemetry(TelemetryConfig(enabled=False), None)
    env = RunnerEnv(
        spec=spec,
        coordinator=cast(Any, _Coordinator()),
        scheduler=cast(Any, None),
        backend=cast(Any, backend),
        world=world,
        ledger=world.new_memory_ledger(),
        instruments=SwarmInstruments(telemetry),
        runner=ScriptedRunner(),
        scripts=scripts,
    )
    return Capabilities(record, env, HostState())


def scripted_capabilities(
    answers: dict[str, list[Raw]] | None = None,
    program_id: str = "p0",
    overrides: list[str] | None = None,
) -> tuple[Capabilities, ScriptedTransitions]:
    """A `Capabilities` for program `program_id` of the `paperclips` spec, on scripted
    transitions."""
    scripts = ScriptedTransitions(answers)
    depth = program_id.count(".")
    parent = program_id.rsplit(".", 1)[0] if depth else None
    record = ProgramRecord(id=program_id, parent_id=parent, depth=depth, code="pass")
    return capabilities_on(scripts, record, load_spec("paperclips", overrides or [])), scripts


def call(caps: Capabilities, name: str, *args: Any, **kwargs: Any) -> Any:
    """A program's call, as the sandbox makes it."""
    return asyncio.run(caps.call(name, args, kwargs))

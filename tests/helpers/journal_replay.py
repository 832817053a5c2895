"""A recorded run's journal read back through the lab's capability code, in process.

Every call a program made in a run is journaled under its sequence number (the journal
`inputs.jsonl` is written from). Running the program's code again in the sandbox, with its
transitions answered from that journal as a re-run after a runner's loss is answered (`dup`,
or the journaled denial), takes it down the path it took in the run: `answers_of` says what
each call answered, and how many programs left their path (which would mean the journal does
not determine the program). `benchmarks/trees.py` uses the answers as the in-memory host of
a tree's sandbox floor.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from helpers.scripted_lab import capabilities_on
from swarmlab.core import ProgramFault
from swarmlab.models import create_backend
from swarmlab.records import ProgramRecord, RunResult, input_lines
from swarmlab.runtime import RunOptions, _finish, run_experiment
from swarmlab.runtime._program import slice_limits
from swarmlab.runtime._replies import Reply, decode
from swarmlab.runtime._sandbox import Park, Sandbox
from swarmlab.runtime._seeds import stable_seed
from swarmlab.runtime._transitions import Args, Head
from swarmlab.spec import ExperimentSpec

Journals = dict[str, dict[int, str]]
Answer = tuple[str, Any]
"""What one call answered: ('value', its value) or ('raise', the fault raised into the program)."""

DENIAL = '["denied",'
BLOB_REF = '{"blob":"'


def recorded_run(
    spec: ExperimentSpec, redis_url: str, out: Path, progress: Any = None
) -> tuple[RunResult, Journals]:
    """One run of `spec`, and every program's journal, read where the driver writes
    `inputs.jsonl` from it (before the run's keys leave Redis)."""
    options = RunOptions(out_dir=out, redis_url=redis_url, progress=progress)
    with mock.patch.object(_finish, "input_lines", wraps=input_lines) as written:
        result = run_experiment(spec, options)
    journals, blobs = written.call_args.args
    unblobbed = {
        program: {seq: _unblobbed(entry, blobs or {}) for seq, entry in calls.items()}
        for program, calls in journals.items()
    }
    return result, unblobbed


def _unblobbed(entry: str, blobs: dict[str, str]) -> str:
    if entry.startswith(BLOB_REF):
        return blobs.get(entry[len(BLOB_REF) : len(BLOB_REF) + 40], entry)
    return entry


class JournalScripts:
    """Transitions answered from a program's journal: a call journaled in the run answers as a
    re-run after a runner's loss does (its entry, or its denial); a turn goes at once. A model
    call journaled as only reserved was never answered: the program was killed in it (a retry
    ends it here, as the kill did)."""

    def __init__(self, journal: dict[int, str]) -> None:
        self.journal = journal
        self.missed = 0

    async def run(self, args: Args, head: Head | None = None) -> Reply:
        entry = self.journal.get(int(head.seq)) if head is not None and head.seq != "" else None
        if args.SCRIPT == "retry":  # a model call still reserved: the program ended in it
            raw = ["killed", "the recorded run ended this program in its model call"]
        elif entry is not None:
            raw = json.loads(entry) if entry.startswith(DENIAL) else ["dup", entry]
        elif args.SCRIPT == "turn":
            raw = ["go"]
        else:
            self.missed += 1
            raw = ["killed", "the recorded run has no answer for this call"]
        return decode(args.SCRIPT, args.REPLIES, raw, args.REPLAYS)


class _Recorder:
    """The lab's capabilities for one program on its journal, keeping what each call answered."""

    def __init__(self, caps: Any) -> None:
        self.caps = caps
        self.capabilities = caps.capabilities
        self.world_actions = caps.world_actions
        self.answers: list[Answer] = []

    async def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return await self._kept(lambda: self.caps.call(name, args, kwargs))

    async def os_call(self, name: str, args: tuple[Any, ...]) -> Any:
        return await self._kept(lambda: self.caps.os_call(name, args))

    async def _kept(self, ask: Callable[[], Any]) -> Any:
        try:
            value = await ask()
        except ProgramFault as fault:
            self.answers.append(("raise", fault))
            raise
        if isinstance(value, Park):
            raise RuntimeError("a call answered from its journal parked")
        self.answers.append(("value", value))
        return value

    def on_import(self, module: str) -> None:
        self.caps.on_import(module)


async def answers_of(
    spec: ExperimentSpec, result: RunResult, journals: Journals
) -> tuple[dict[str, list[Answer]], int]:
    """What each program's calls answered in the run, and how many programs left their path."""
    backend = create_backend(spec.model, sim_options=spec.sim, model_name=spec.model_name)
    sandbox = Sandbox(max_workers=1, warm_workers=1)
    await sandbox.start()
    answers: dict[str, list[Answer]] = {}
    strayed = 0
    try:
        for record in result.programs:
            scripts = JournalScripts(journals.get(record.id, {}))
            fresh = ProgramRecord(
                id=record.id, parent_id=record.parent_id, depth=record.depth, code=record.code
            )
            recorder = _Recorder(capabilities_on(scripts, fresh, spec, backend))
            await sandbox.run_slice(
                recorder,
                slice_limits(spec, recorder.caps.state),
                code=record.code,
                script_name=f"{record.id}.py",
                random_seed=stable_seed(spec.sandbox_seed, record.id, "random"),
            )
            answers[record.id] = recorder.answers
            strayed += scripts.missed > 0 or recorder.caps.state.calls != record.calls
    finally:
        await sandbox.close()
    return answers, strayed

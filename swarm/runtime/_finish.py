"""The end of a run: every program's record, every event, written to the run directory.

Read from Redis when it answers; from what the driver mirrored when it does not. Either way the
directory is written, every admitted program is in programs.jsonl, and a program that had not
ended when the run stopped ends as killed at the moment the stop was seen: from its latest state
(what its runner left on the stop, or what it parked with; `Coordinator.all_programs`), with the
events it had not sent and an `end` event, as a program that ends by itself has.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from swarmlab.core import CoordinatorUnavailable, SwarmlabError, id_sort_key, present
from swarmlab.observability.telemetry import trace_id_hex
from swarmlab.records import (
    INPUTS_FILE,
    TERMINAL,
    Event,
    ProgramInput,
    ProgramRecord,
    ReplayCheck,
    RunDir,
    RunResult,
    compare_ends,
    compare_inputs,
    input_lines,
)
from swarmlab.world import RedisLedger, World

from ._coordinator import Coordinator
from ._keys import run_key
from ._spans import one_span_each, program_span, write_missing
from ._state import RunState


async def finish_run(run: RunState, coord: Coordinator | None) -> RunResult:
    """Build the run's result from whatever can still be read, write its directory, return it."""
    ended = time.time()
    gathered: dict[str, Any] = {}
    if coord is not None:
        try:
            gathered = await _from_redis(run, coord)
        except CoordinatorUnavailable as exc:
            run.status = "failed"
            if "Redis" not in run.ended_because:
                run.ended_because = f"Redis unreachable: {exc}"
    programs = _programs(run, gathered)
    ended_here = _end_the_rest(run, programs, run.stopped_at or ended)
    events = _events(run, gathered, ended_here)
    count_calls(programs, events)
    trace_id = _end_workflow(run, len(programs))
    if run.telemetry is not None:
        await _whole_trace(run, coord, gathered, programs, ended_here)
    elif coord is not None and gathered:  # written by another process: the runners' spans
        with contextlib.suppress(CoordinatorUnavailable):
            spans = await coord.telemetry_lines("spans")
            gathered["spans"] = await asyncio.to_thread(one_span_each, spans)
            gathered["metrics"] = await coord.telemetry_lines("metrics")
    result = RunResult(
        run_id=run.run_id,
        out_dir=run.out,
        spec=run.spec,
        status=run.status,  # type: ignore[arg-type]
        ended_because=run.ended_because or "no program ran",
        started_at=run.started,
        ended_at=ended,
        usage=gathered.get("usage") or run.usage_seen or {},
        usage_last_seen=not gathered.get("usage"),
        programs=programs,
        events=events,
        blackboard=gathered.get("blackboard", {}),
        outcome=gathered.get("outcome", {}),
        dialogue=run.dialogue,
        root_from_file=run.root_from_file,
        trace_id=trace_id,
        spans=gathered.get("spans", []),
        metrics=gathered.get("metrics", []),
        completions=gathered.get("completions", []),
        inputs=gathered.get("inputs", []),
        runners_lost=run.runners_lost,
        recovered=run.recovered,
        tree_started_at=run.tree_started,
    )
    result.replay = _replay_check(run, result.inputs, programs)
    RunDir(run.out).write(result)
    if coord is not None:
        with contextlib.suppress(CoordinatorUnavailable):
            await coord.set_meta(status=run.status)
    return result


async def _from_redis(run: RunState, coord: Coordinator) -> dict[str, Any]:
    if run.mirror is not None:
        await run.mirror.catch_up(most=10_000)
    world = World(run.spec.world, run.spec.world_seed)
    world_prefix = run_key(coord.prefix, "world:")
    ledger = RedisLedger(coord.client, world_prefix, run.spec.world.starting_money)
    await ledger.init()  # a run no runner served (an answer in prose) has not set its money
    programs = await coord.all_programs()
    return {
        "programs": programs,
        "held_events": await coord.held_events(),
        "inputs": input_lines(await coord.journals([p.id for p in programs]), await coord.blobs()),
        "usage": await coord.usage(),
        "blackboard": await coord.blackboard(),
        "outcome": (await world.outcome(ledger)).model_dump(),
        "completions": await coord.completions(),
    }


def _replay_check(
    run: RunState, inputs: list[str], programs: list[ProgramRecord]
) -> ReplayCheck | None:
    """For a `replay:` run whose source recorded its inputs: how this run's inputs, then its
    programs' ends, compare."""
    backend, _, source = run.spec.model.partition(":")
    if backend != "replay":
        return None
    if not present(RunDir(source).file(INPUTS_FILE)):  # nothing to compare: say so
        why = f"{RunDir(source).file(INPUTS_FILE)}: not there, so no input could be compared"
        return ReplayCheck(source=source, identical=False, compared=0, unreadable=why)
    try:
        recorded = RunDir(source).inputs()
    except SwarmlabError as exc:  # a damaged recording fails the replay, not the record
        return ReplayCheck(source=source, identical=False, compared=0, unreadable=str(exc))
    now = [ProgramInput.model_validate_json(line) for line in inputs]
    check = compare_inputs(source, recorded, now)
    try:
        ended = RunDir(source).programs()
    except SwarmlabError as exc:  # the ends cannot be compared: not identical, and why
        return check.model_copy(update={"identical": False, "unreadable": str(exc)})
    return compare_ends(check, ended, programs)


def _programs(run: RunState, gathered: dict[str, Any]) -> list[ProgramRecord]:
    found: dict[str, ProgramRecord] = {}
    if run.mirror is not None:
        found.update(run.mirror.programs)
    for record in gathered.get("programs", []):
        found[record.id] = record
    return sorted(found.values(), key=lambda r: id_sort_key(r.id))


def _events(
    run: RunState, gathered: dict[str, Any], ended_here: list[ProgramRecord]
) -> list[Event]:
    """The run's events: the stream's, those of ends held for a turn that never came, and the
    end of each program the stop ended."""
    events = list(run.mirror.events) if run.mirror is not None else []
    events += gathered.get("held_events", [])
    for record in ended_here:
        detail = {"status": "killed", "error": (record.error or "")[:300]}
        at = record.ended_at or run.stopped_at or time.time()
        events.append(Event(t=at, program=record.id, kind="end", decision="info", detail=detail))
    return sorted(events, key=lambda e: e.t)


def count_calls(programs: list[ProgramRecord], events: list[Event]) -> None:
    """A program's calls are at least its events' highest call number. A stopped program's
    record holds the count its runner had heard: a call Redis applied (journaled, its events
    sent) just before the stop, whose answer the runner had not yet heard, or a call kept for
    its turn that the stop dropped (its events added), is one its runner had not counted."""
    made: dict[str, int] = {}
    for event in events:
        if event.seq is not None and event.seq > made.get(event.program, 0):
            made[event.program] = event.seq
    for record in programs:
        record.calls = max(record.calls, made.get(record.id, 0))


def _end_the_rest(run: RunState, programs: list[ProgramRecord], at: float) -> list[ProgramRecord]:
    """End as killed, at the moment the stop was seen, every program not ended yet."""
    ended = [record for record in programs if record.status not in TERMINAL]
    for record in ended:
        record.status = "killed"
        record.result = None
        record.error = record.error or run.ended_because or "the run stopped"
        record.ended_at = record.ended_at or at
    return ended


async def _whole_trace(
    run: RunState,
    coord: Coordinator | None,
    gathered: dict[str, Any],
    programs: list[ProgramRecord],
    ended_here: list[ProgramRecord],
) -> None:
    """Flush the run's telemetry, with a span for every program no runner wrote one for (the
    run stopped first): the trace is a whole tree, and `gathered` gets its lines."""
    assert run.telemetry is not None
    await asyncio.to_thread(run.telemetry.flush)
    if coord is None or not gathered:  # Redis is gone: the programs ended here lack theirs
        for record in ended_here:
            run.instruments.write_program(program_span(record, None))
        await asyncio.to_thread(run.telemetry.flush)
        return
    with contextlib.suppress(CoordinatorUnavailable):
        spans = await coord.telemetry_lines("spans")
        if await write_missing(run.instruments, programs, spans):
            await asyncio.to_thread(run.telemetry.flush)
            spans = await coord.telemetry_lines("spans")
        gathered["spans"] = await asyncio.to_thread(one_span_each, spans)
        gathered["metrics"] = await coord.telemetry_lines("metrics")


def _end_workflow(run: RunState, programs: int) -> str | None:
    if run.workflow is None:
        return None
    run.workflow.set_attribute("swarmlab.status", run.status)
    run.workflow.set_attribute("swarmlab.ended_because", run.ended_because)
    run.workflow.set_attribute("swarmlab.programs", programs)
    run.workflow.end()
    return trace_id_hex(run.workflow)

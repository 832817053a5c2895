"""`world.<action>(...)`: an action on the simulated world, at the program's turn.

The action's span is its caller's (`SandboxAdapter`): each event here annotates it with the
decision, as every call's span is.

The action is charged against `world_actions`, done by the world's rules on the shared ledger,
and journaled (its answer or its refusal), while the program holds its turn: no other program
changes the world in between. The program's clock then moves on by the action's hours.
"""

from __future__ import annotations

import json
from typing import Any

from swarmlab.core import (
    UNKNOWN_NAME_KIND,
    WORLD_ACTIONS,
    BadCall,
    CapExceeded,
    RunKilled,
    json_safe,
    world_kind,
)
from swarmlab.world import ActionContext, WorldActionError

from ._program import ProgramHost
from ._replies import Dup
from ._sandbox import Park
from ._transitions import RecordArgs, ReserveArgs


async def world_call(
    host: ProgramHost, action: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if action not in WORLD_ACTIONS:
        host.event(UNKNOWN_NAME_KIND, "error", detail={"name": f"world.{action[:200]}"})
        raise BadCall(f"world has no action {action[:200]!r} (actions: {', '.join(WORLD_ACTIONS)})")
    name = world_kind(action)
    try:
        return await _act(host, name, action, args, kwargs)
    except (CapExceeded, RunKilled) as exc:
        cap = exc.cap if isinstance(exc, CapExceeded) else "killed"
        if not (isinstance(exc, CapExceeded) and host.unrecorded(exc)):  # a full record: no event
            host.event(name, "denied", cap=cap, detail=_brief(args))  # the call's span: denied
        raise


async def _act(
    host: ProgramHost, name: str, action: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    started = json.dumps({"phase": "started", "world_calls": host.state.world_calls + 1})
    reply = await host.transition(ReserveArgs("", started, 0, (("world_actions", 1),)))
    if isinstance(reply, Park):
        return reply
    if isinstance(reply, Dup):
        done = reply.record()
        if done.get("phase") != "started":
            return _replayed(host, name, done, args)
        # Charged before a runner's loss, perhaps applied: the world's changes are keyed by
        # this call, so doing it again applies nothing twice.
        host.state.world_calls = int(done["world_calls"]) - 1
    host.state.world_calls += 1
    ctx = ActionContext(
        program_id=host.id,
        call_index=host.state.world_calls,
        clock_h=host.state.clock_h,
        key=f"{host.id}:{host.seq}",
    )
    try:
        result = await host.env.world.act(action, args, kwargs, ctx, host.env.ledger)
    except WorldActionError as exc:
        done = {"error": str(exc)[:500], "world_calls": host.state.world_calls}
        host.event(name, "error", detail={"error": str(exc)[:300], **_brief(args)})
        await _record(host, done, host.state.clock_h)
        raise BadCall(str(exc)) from None
    done = {
        "value": result.value,
        "clock_h": result.clock_h,
        "note": result.note,
        "world_calls": host.state.world_calls,
    }
    host.event(name, "allowed", detail={"note": result.note, **_brief(args)})
    await _record(host, done, result.clock_h)
    host.state.clock_h = result.clock_h
    return result.value


async def _record(host: ProgramHost, done: dict[str, Any], clock_h: float) -> None:
    """Journal the action's answer and move the program on to its clock after it."""
    entry = json.dumps(done, separators=(",", ":"))
    # record.lua adds the events whatever happens once it is sent (it is, before any stop can
    # cut the wait): nothing to put back.
    await host.scripts.run(
        RecordArgs(host.id, host.seq, entry, host.take_events(), host.member(clock_h))
    )


def _replayed(host: ProgramHost, name: str, done: dict[str, Any], args: tuple[Any, ...]) -> Any:
    """An action made before a runner's loss: its journaled answer, not a second effect."""
    host.state.world_calls = int(done.get("world_calls", host.state.world_calls + 1))
    if "error" in done:
        host.event(name, "error", detail={"error": str(done["error"])[:300], **_brief(args)})
        raise BadCall(str(done["error"]))
    host.state.clock_h = float(done["clock_h"])
    host.event(name, "allowed", detail={"note": done.get("note", ""), **_brief(args)})
    return done["value"]


def _brief(args: tuple[Any, ...]) -> dict[str, Any]:
    return {"args": json_safe(list(args), limit=200)} if args else {}

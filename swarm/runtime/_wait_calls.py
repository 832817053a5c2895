"""`wait(id_or_ids, timeout=None)`: children's ends as the program sees them, journaled.

At the caller's turn the `wait` script answers each named program's state (or parks the caller
until they have all ended, or its timed wait fires). What the program then receives is a view
of each: its status, result and error text. That view is an input like any other: it is written
to the call's journal entry (replacing the script's list of states), so `inputs.jsonl` holds it
and a `replay:` run compares it. A call asked again after a runner's loss answers from the
journal: the views when they were written, else the states, from which the same views are read
again (the records of ended programs do not change).

An id that names no program is answered at once with a `ValueError` the program can catch:
nothing would ever end it, so waiting on it would park the program until the wall clock.
"""

from __future__ import annotations

import json
from typing import Any

from swarmlab.core import BadCall, is_program_id
from swarmlab.records import TERMINAL

from ._call_values import seconds_of
from ._program import ProgramHost
from ._sandbox import Park

MAX_WAIT_IDS = 1_000
VIEWS = "views"
"""The key of a journal entry that holds the views a wait answered."""


async def wait_call(host: ProgramHost, id_or_ids: Any, timeout: Any, timed_out: bool) -> Any:
    """What `wait()` returns (a view, or a list of views), or a `Park`."""
    single = isinstance(id_or_ids, str)
    ids = [id_or_ids] if single else id_or_ids
    if not isinstance(ids, list | tuple) or not all(isinstance(i, str) for i in ids):
        raise BadCall("wait(): pass a program id or a list of program ids")
    if len(ids) > MAX_WAIT_IDS:
        raise BadCall(f"wait(): at most {MAX_WAIT_IDS} ids at once")
    bad = next((i for i in ids if not is_program_id(i)), None)
    if bad is not None:
        raise BadCall(f"wait(): {bad[:60]!r} is not a program id")
    seconds = None if timeout is None else seconds_of(timeout)
    if timeout is not None and seconds is None:
        raise BadCall("wait(): timeout must be None or a number of simulated seconds >= 0")
    ids = list(ids)
    reply = await host.transition("wait", "1" if timed_out else "0", *ids)
    if isinstance(reply, Park):
        return reply
    if reply.kind == "park":
        member = "" if seconds is None else host.member(host.state.clock_h + seconds / 3600)
        return Park("wait", lambda blob, spent: host.park("wait", member, blob, spent, *ids))
    views = _journaled_views(reply.values) if reply.kind == "dup" else None
    if views is None:
        flat = json.loads(reply.values[0])[1:] if reply.kind == "dup" else list(reply.values)
        states = dict(zip(flat[0::2], flat[1::2], strict=True))
        missing = [i for i in ids if not states.get(i)]
        if missing:
            raise BadCall(f"wait(): no program with id {missing[0]!r}")
        views = await _views(host, ids, states)
        await host.sched.note(host.id, host.seq, json.dumps({VIEWS: views}))
    done = all(v["status"] in TERMINAL for v in views)
    host.event("wait", "allowed", detail={"ids": ids[:20], "done": done})
    return views[0] if single else views


def _journaled_views(values: tuple[str, ...]) -> list[dict[str, Any]] | None:
    entry = json.loads(values[0]) if values else None
    if isinstance(entry, dict) and isinstance(entry.get(VIEWS), list):
        return list(entry[VIEWS])
    return None


async def _views(host: ProgramHost, ids: list[str], states: dict[str, str]) -> list[dict[str, Any]]:
    """What wait() shows of each program: its end, or that it is still running."""
    ended = [i for i in dict.fromkeys(ids) if states[i] in TERMINAL]
    records = await host.env.coordinator.get_programs(ended)
    found = dict(zip(ended, records, strict=True))
    views = []
    for i in ids:
        r = found.get(i)
        if r is None:
            views.append({"id": i, "status": "running", "result": None, "error": None})
        else:
            views.append({"id": i, "status": r.status, "result": r.result, "error": r.error})
    return views

"""Every byte of a record, event or view a script writes is Python's encoding.

`spawn` decoded the child's record and encoded it again to give it its id, and `kill()`'s
script did the same to mark the programs it ended, and built their end events and views by
hand. Redis's Lua JSON keeps 14 significant digits: a record's times lost their microseconds,
its clock its last digits, and a record went to the run directory as less than what happened.
The scripts now join pieces Python encoded around the ids they choose (`_stored.py`).

The class is "a script encodes JSON that a Python model defines": the property tests search
the pieces for records, reasons and times that would not come back exactly, and the scan of the
Lua sources fails on a new JSON text or a new decode written into a script.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from importlib import resources
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.records import Event, ProgramRecord
from swarmlab.runtime._coordinator import Coordinator
from swarmlab.runtime._program import HostState
from swarmlab.runtime._replies import Done
from swarmlab.runtime._scheduler import Scheduler
from swarmlab.runtime._stored import (
    WAIT_PIECES,
    killed_pieces,
    record_pieces,
    stored_record,
)
from swarmlab.runtime._transitions import NO_CALL, Head, SpawnArgs, StopArgs, WaitArgs
from swarmlab.spec import Caps


def joined(pieces: tuple[str, ...], *values: str) -> str:
    """What a script writes: the pieces with `values` in their places (as Lua joins them)."""
    out = [pieces[0]]
    for value, piece in zip(values, pieces[1:], strict=True):
        out += [value, piece]
    return "".join(out)


ids = st.from_regex(r"p0(\.[1-9][0-9]{0,3}){0,6}", fullmatch=True)
texts = st.text(max_size=60)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
records = st.builds(
    ProgramRecord,
    id=st.just("p0"),
    parent_id=st.one_of(st.none(), ids),
    depth=st.integers(0, 50),
    task=texts,
    code=texts,
    clock_h=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    calls=st.integers(0, 10**6),
    created_at=times,
    started_at=st.one_of(st.none(), times),
    traceparent=st.one_of(st.none(), texts),
)


@settings(max_examples=300, deadline=None)
@given(
    record=records,
    child=ids,
    reason=texts,
    at=st.tuples(st.integers(0, 4 * 10**9), st.integers(0, 999_999)),
    by=ids,
)
def test_pieces_joined_around_an_id_are_python_s_own_encoding(
    record: ProgramRecord, child: str, reason: str, at: tuple[int, int], by: str
) -> None:
    admitted = record.model_copy(update={"id": child})
    text = joined(record_pieces(record), child)
    assert text == admitted.to_json()
    assert stored_record(text) == admitted
    now = f"{at[0]}.{at[1]:06d}"  # as stop.lua writes Redis's TIME
    head, timed, middle, tail, event0, event1, event2, view1, view2 = killed_pieces(reason, by)
    killed = stored_record(head + now + timed + "null" + middle + text + tail)
    ended = {"status": "killed", "error": reason, "ended_at": float(now), "result": None}
    assert killed == admitted.model_copy(update=ended)
    started = float(now) - 1
    host = HostState(calls=record.calls + 1, clock_h=record.clock_h, started_at=started, runner=3)
    host.add_output(reason)
    latest = stored_record(head + now + timed + host.to_json() + middle + text + tail)
    state = {"calls": host.calls, "started_at": started, "runner": 3, "output": reason[-4000:]}
    assert latest == admitted.model_copy(update=ended | state)
    event = Event.model_validate_json(event0 + now + joined((event1, event2), child))
    assert event == Event(
        t=float(now),
        program=child,
        kind="end",
        decision="info",
        detail={"status": "killed", "error": reason, "by": by},
    )
    view = {"id": child, "status": "killed", "result": None, "error": reason}
    assert json.loads(joined((view1, view2), child)) == view


@given(named=st.lists(ids, min_size=1, max_size=5), state=st.sampled_from(["completed", "killed"]))
def test_wait_s_pieces_join_into_the_entry_a_program_receives(named: list[str], state: str) -> None:
    run1, run2, end1, end2, end3, entry1, entry2, unknown1, unknown2 = WAIT_PIECES
    views = [joined((run1, run2), x) for x in named[:-1]]
    views.append(joined((end1, end2, end3), named[-1], state))
    entry = json.loads(entry1 + ",".join(views) + entry2)
    expected = [{"id": x, "status": "running", "result": None, "error": None} for x in named]
    expected[-1]["status"] = state
    assert entry == {"views": expected}
    refusal = json.loads(joined((unknown1, unknown2), named[0]))
    assert refusal == {"error": f"ValueError: wait(): no program with id '{named[0]}'"}


_runs = itertools.count()


def test_records_a_script_writes_keep_every_digit(redis_url: str) -> None:
    """Through the real scripts: a spawned child's record and a killed one's, as stored, as
    streamed to the run directory, and the end event, are exactly Python's values; the kill's
    time is the one at which the script applied it, to the microsecond."""
    root = ProgramRecord(id="p0", code="pass", created_at=1765040000.123456)
    kid = ProgramRecord(
        id="p0",
        parent_id="p0",
        depth=1,
        code="print('a/b \\u00e9')",
        clock_h=0.000277777777777777,
        created_at=1765040000.987654,
    )

    async def steps() -> tuple[Any, ...]:
        coord = Coordinator(redis_url, f"stored-{next(_runs)}")
        sched = Scheduler(coord)
        try:
            await coord.init_run(Caps(), {}, ordered=False)
            await sched.run(SpawnArgs.of(0, 0, root, "queue"), NO_CALL)
            for seq in (1, 2):
                await sched.run(SpawnArgs.of(1, 0, kid, "queue"), Head("p0", seq, "", ""))
            before = time.time()
            stopped = await sched.run(StopArgs.of("p0.2", "enough", "p0"), Head("p0", 3, "", ""))
            applied = (before, time.time())
            views = await sched.run(WaitArgs.of(True, ("p0.1", "p0.2")), Head("p0", 4, "", ""))
            stored = await coord.get_programs(["p0.1", "p0.2"])
            streamed = [stored_record(text) for _, text in await coord.records()]
            return stopped, views, stored, streamed, await coord.all_events(), applied
        finally:
            await coord.delete_run()
            await coord.close()

    stopped, views, stored, streamed, events, (before, after) = asyncio.run(steps())
    at = stored[1].ended_at
    assert at is not None
    assert before - 1e-6 <= at <= after
    assert round(at, 6) == at  # Redis's clock, in whole microseconds
    first = kid.model_copy(update={"id": "p0.1"})
    second = kid.model_copy(
        update={"id": "p0.2", "status": "killed", "error": "enough", "ended_at": at}
    )
    assert stopped.kind == "ok"
    assert stored == [first, second]
    assert streamed[-1] == second
    assert [r.id for r in streamed] == ["p0", "p0.1", "p0.2", "p0.2"]
    end = [e for e in events if e.kind == "end"]
    assert end == [
        Event(
            t=at,
            program="p0.2",
            kind="end",
            decision="info",
            detail={"status": "killed", "error": "enough", "by": "p0"},
        )
    ]
    assert isinstance(views, Done)
    killed_view = {"id": "p0.2", "status": "killed", "result": None, "error": "enough"}
    assert views.views() == [
        {"id": "p0.1", "status": "running", "result": None, "error": None},
        killed_view,
    ]


LUA = resources.files("swarmlab.runtime").joinpath("lua")
JSON_TEXT = re.compile(r"'[^'\n]*\{[\"]" + "|" + r'"[^"\n]*\{\\"')
"""A Lua string literal holding the start of a JSON object (`{"`)."""
KNOWN_JSON_TEXT = {
    ("lib.lua", 'local BLOB_REF = \'{"blob":"\''),  # the journal's reference to a stored blob
    ("lib.lua", "make_ready(id, m, '{\"timed_out\":true}')"),  # a timed wait's resume payload
}
KNOWN_DECODES = {
    ("lib.lua", "local ok, found = pcall(cjson.decode, text)"),  # reads a model call's entry
    ("lib.lua", "if held then end_program(cjson.decode(held)) else lb_del(id) end"),  # `ending`
    ("lib.lua", "local c = cjson.decode(kept)"),  # `calls`: a kept call, stored by lib.lua
    ("lib.lua", "local s = cjson.decode(held)"),  # `unsettled`: encoded by complete.lua
    (
        "lib.lua",
        "if done and string.sub(done, 1, #DENIAL) == DENIAL then return cjson.decode(done) end",
    ),
    ("park.lua", "emit(cjson.decode(kept).a[4])"),  # `calls` again
    ("stop.lua", "emit(cjson.decode(kept).a[4])"),  # `calls`: a kept call, killed
    ("leave.lua", "emit(cjson.decode(kept).a[4])"),  # `calls`: a kept call, the run stopped
    ("stop.lua", "local e = cjson.decode(held)"),  # `ending` again: a held end, killed
    ("stop.lua", "local ok, event = pcall(cjson.decode, line)"),  # one field: an event's kind
}
"""Where a script decodes JSON: only what lib.lua itself stored, and one read of a field."""


def _lines() -> list[tuple[str, str]]:
    return [
        (path.name, line.strip())
        for path in LUA.iterdir()
        if path.name.endswith(".lua")
        for line in path.read_text().splitlines()
        if not line.strip().startswith("--")
    ]


def test_no_script_writes_json_text_or_decodes_a_record_of_its_own_accord() -> None:
    lines = _lines()
    texts = {(name, line) for name, line in lines if JSON_TEXT.search(line)}
    decodes = {(name, line) for name, line in lines if "cjson.decode" in line}
    assert texts == KNOWN_JSON_TEXT
    assert decodes == KNOWN_DECODES


def test_the_scan_finds_the_old_way() -> None:
    """The scan sees JSON text and a decode of a record, as the old scripts had them."""
    old_view = """'{"id":"' .. x .. '","status":"running","result":null,"error":null}'"""
    assert JSON_TEXT.search(old_view)
    assert "cjson.decode" in "local rec = cjson.decode(redis.call('HGET', k('programs'), x))"


def test_every_reader_of_a_stored_record_applies_a_kill() -> None:
    """A record read back from Redis may be a killed envelope: the runtime reads records only
    through `stored_record`."""
    runtime = resources.files("swarmlab.runtime")
    readers = [
        path.name
        for path in runtime.iterdir()
        if path.name.endswith(".py") and path.name != "_stored.py"
        if re.search(r"ProgramRecord\.(from_json|model_validate_json)\(", path.read_text())
    ]
    assert readers == []

"""A `wait()` reads each named program once, whatever the program passed.

The class: work in a Lua script that grows with a value the program chose, in Redis, where every
other program of the run waits meanwhile. `wait([child] * 1000)` made the script build, charge
and hash 1,000 copies of one view: 4 MB for a child that returned 4 KB, 210-380 ms of Redis a
call, and a program repeating it stalled a neighbour's 300 `db_get`s over 128 s. The script now
gets each id once, in the order first named, and the program still gets one view per id passed.
"""

from __future__ import annotations

import asyncio
import json

from helpers.scripted_lab import scripted_capabilities
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.runtime._transitions import WaitArgs

POOL = ["p0.1", "p0.2", "p0.3", "p0.1.4"]


@settings(max_examples=100, deadline=None)
@given(ids=st.lists(st.sampled_from(POOL), min_size=1, max_size=1000), single=st.booleans())
def test_each_named_program_is_read_once_and_every_id_answered(
    ids: list[str], single: bool
) -> None:
    ids = ids[:1] if single else ids
    named = list(dict.fromkeys(ids))
    views = [{"id": i, "status": "completed", "result": i.upper(), "error": None} for i in named]
    entry = json.dumps({"views": views})
    caps, scripts = scripted_capabilities({"wait": [["done", entry]]})
    asked = ids[0] if single else ids
    got = asyncio.run(caps.call("wait", (asked,), {}))
    (wait,) = [args for args, _ in scripts.asked if isinstance(args, WaitArgs)]
    assert list(wait.ids) == named
    if single:
        assert got["id"] == ids[0]
    else:
        assert [view["id"] for view in got] == ids
        assert all(view["result"] == view["id"].upper() for view in got)

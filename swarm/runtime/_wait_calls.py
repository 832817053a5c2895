"""`wait(id_or_ids, timeout=None)`: children's ends as the program sees them, journaled.

At the caller's turn the `wait` script answers each named program's view (or parks the caller
until they have all ended, or its timed wait fires): its status, result and error text, as the
program's end left it (`wait_view`, kept by the `finish` script; the `stop` script keeps a
killed program's), or "running". The script journals the views in the same step that reads
them, so `inputs.jsonl` holds them, a `replay:` run compares them, and a call asked again after
a runner's loss answers from the journal: there is no moment where the journal holds less.

An id that names no program, or the program itself, is answered at once with a `ValueError` the
program can catch (journaled as such): nothing would ever end it, so waiting on it would park
the program until the wall clock.

The script reads, and the journal keeps, each named program once, in the order first named; the
program gets a view for each id it passed. One id named 1,000 times made the script build and
charge 1,000 copies of one view (4 MB for a program that returned 4 KB), in Redis, where every
other program waits meanwhile.
"""

from __future__ import annotations

from typing import Any

from swarmlab.core import BadCall, is_program_id
from swarmlab.records import TERMINAL

from ._call_values import seconds_of
from ._program import ProgramHost
from ._replies import Done, ReplyError, Unknown
from ._sandbox import Park
from ._transitions import WaitArgs

MAX_WAIT_IDS = 1_000


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
    if host.id in ids:  # it ends only when this wait returns: it would wait for ever
        raise BadCall(f"wait(): {host.id} is this program; wait for other programs")
    seconds = None if timeout is None else seconds_of(timeout)
    if timeout is not None and seconds is None:
        raise BadCall("wait(): timeout must be None or a number of simulated seconds >= 0")
    named = tuple(dict.fromkeys(ids))
    reply = await host.transition(WaitArgs.of(timed_out, named))
    if isinstance(reply, Park):
        return reply
    if reply.kind == "park":
        member = "" if seconds is None else host.member(host.state.clock_h + seconds / 3600)
        return Park("wait", lambda blob, spent: host.park("wait", member, blob, spent, named))
    if isinstance(reply, Unknown):
        raise BadCall(f"wait(): no program with id {reply.program_id!r}")
    if not isinstance(reply, Done):
        raise ReplyError(f"wait() was answered {reply.kind!r}")
    views = reply.views()  # asked again after a runner's loss: the views it got then
    if views is None:  # a journaled refusal (an unknown id), asked again
        raise BadCall(reply.error().removeprefix("ValueError: "))
    if len(views) != len(named):
        raise ReplyError(f"wait() was answered {len(views)} views for {len(named)} programs")
    done = all(isinstance(v, dict) and v.get("status") in TERMINAL for v in views)
    host.event("wait", "allowed", detail={"ids": list(named[:20]), "done": done})
    of = dict(zip(named, views, strict=True))
    return of[ids[0]] if single else [of[i] for i in ids]

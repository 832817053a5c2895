"""Scripts that carry a program's events are awaited to their answer, even when the program is
stopped meanwhile.

A runner stops a program by cancelling its slice (a kill(), the run's stop). A script already
sent is then applied or refused by Redis whatever the runner does. Giving up the wait for its
answer lost the events it carried whenever Redis refused them (a kill() applied just before):
the program's record counted a call its events did not show. So the answer is awaited (for at
most `CARRIED_S`), and events the script did not add go back to the program's pending ones,
which its leave then adds. An answer that never came is not guessed: events added twice would
make the record unreadable.

A script that was applied made the call: the program is answered as if no stop had come, and the
stop goes on at its next wait (the slice's task is cancelled again). So the call is counted and
its own event, made once its script answered (a spawn's child, a db_put's bytes), is among
those the leave adds: the record says every call Redis applied, the ones a stop met in flight
too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ._replies import Reply

CARRIED_S = 0.3
"""How long a stopped program waits for the answer of a script that carries its events (a
round trip to Redis): taken from the stop's budget for the program's leave (`_runner.py`'s
`STOPPED_EMIT_S`), so a stop holds a slice no longer than before."""


async def carried(
    send: Awaitable[Reply], added: Callable[[Reply], bool], put_back: Callable[[], None]
) -> Reply:
    """The answer of `send`, a script carrying events; stopped meanwhile, `put_back` is called
    when the answer came and says the events were not `added`, and the stop goes on: at once,
    or, when the script was applied, at the caller's next wait, with the answer returned."""
    sent = asyncio.ensure_future(send)
    try:
        return await asyncio.shield(sent)
    except asyncio.CancelledError:
        await asyncio.wait({sent}, timeout=CARRIED_S)
        answered = sent.done() and not sent.cancelled() and sent.exception() is None
        if answered and not added(sent.result()):
            put_back()
        task = asyncio.current_task()
        if answered and sent.result().applied and task is not None:
            task.cancel()  # the stop, delivered at the next wait: the call is made
            return sent.result()
        raise


def stopping() -> bool:
    """Whether the running program is being stopped (its slice's task was cancelled): what
    would start new work (a model request) does not."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def kept(reply: Reply) -> bool:
    """Told to wait, with the call kept in Redis for its turn (its events with it)."""
    return reply.kind == "wait" and reply.values[:1] == ("kept",)


def added_or_kept(reply: Reply) -> bool:
    return reply.applied or kept(reply)


def parked(reply: Reply) -> bool:
    return reply.kind == "parked"


def ended(reply: Reply) -> bool:
    """Its end recorded (else 'gone': a stop or a kill() came first, and its events were not)."""
    return reply.kind != "gone"

"""The programs of a run in Redis: who is ready, who computes where, who is parked on what, and
whose turn it is.

Every step that changes a program's state is one Lua script (`lua/`), so any number of runners
can take part and a runner's death loses nothing: what it was computing goes back to the ready
queue (`requeue`) and starts again from its last snapshot. Each capability call a program makes
is journaled under its sequence number, in the same script that charges and applies it: a call
made again after a restart answers from the journal and is never charged or applied twice.

In an `ordered` run (the default) the scripts also keep the run's order: programs change shared
state (caps, blackboard, world, admission, kills, waits) one at a time in the order of their
simulated clocks (ties by program id), whatever the timing of the machines that run them. That
makes a run a function of its spec and seed. `race` runs skip the order.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from swarmlab.core import RunKilled
from swarmlab.records import ProgramRecord

from ._coordinator import Coordinator
from ._keys import MAX_CLOCK_H, clock_ms, member_clock_h, order_member, run_key
from ._replies import Reply, refusal
from ._stored import stored_record
from ._transitions import Args, ClaimArgs, Head, Transitions

__all__ = [
    "MAX_CLOCK_H",
    "Claimed",
    "Loaded",
    "Reply",
    "Scheduler",
    "clock_ms",
    "order_member",
    "refusal",
]


@dataclass(frozen=True)
class Claimed:
    """A program a runner took: its id, the state it left, whether others are ready, and what
    the runner needs to run it (for `Scheduler.loaded`)."""

    id: str
    previous: str
    more: bool
    fields: tuple[str, ...]


@dataclass
class Loaded:
    """A program taken by a runner: its record and, when it ran before, where it stopped."""

    record: ProgramRecord
    snapshot: bytes | None
    host: dict[str, Any] | None
    resume: dict[str, Any] | None
    restarts: int
    place_h: float | None
    """Where the program stands in the run's order (simulated hours): a program woken from a
    wait stands where its wait ended, later than where it parked."""
    cut: str = ""
    """A replay's recorded `cpu_s` cut of this program ('' for none; `_cuts.py`)."""
    taken_at: float = 0.0
    """When the runner took it (Redis's clock): a program's start, as a kill()'s end is stamped
    on the same clock."""


class Scheduler:
    """The program-lifecycle scripts of one run, over the coordinator's Redis connection."""

    def __init__(self, coord: Coordinator) -> None:
        self.coord = coord
        self.transitions = Transitions(coord)

    def key(self, name: str, suffix: str = "") -> str:
        return run_key(self.coord.prefix, name, suffix)

    async def run(self, args: Args, head: Head | None = None) -> Reply:
        """Run a script (`_transitions.py`): its answer, decoded."""
        return await self.transitions.run(args, head)

    async def raw(self, script: str, *argv: Any) -> Reply:
        """A script run with positional ARGV (for tests of the Lua scripts themselves)."""
        return await self.transitions.raw(script, *argv)

    # --- runners ---------------------------------------------------------------------------

    async def claim(self, tag: str, free: int = 0) -> Claimed | None:
        """The first ready program, now computing on runner `tag`, which will have `free`
        workers left; None when there is none (the runner is then idle, to be woken)."""
        while True:
            reply = await self.run(ClaimArgs(tag, free))
            if reply.kind == "go":
                program_id, previous, more, *fields = reply.values
                return Claimed(program_id, previous, more == "1", tuple(fields))
            if reply.kind != "skip":
                return None

    @staticmethod
    def loaded(program_id: str, fields: tuple[str, ...]) -> Loaded:
        """A program's record and where it stopped, from the fields `claim` answers."""
        record, snap, host, resume, restarts, place, cut, taken = fields
        if not record:
            raise RunKilled(f"program {program_id} is gone")
        return Loaded(
            record=stored_record(record),
            snapshot=base64.b64decode(snap) if snap else None,
            host=json.loads(host) if host else None,
            resume=json.loads(resume) if resume else None,
            restarts=int(restarts or 0),
            place_h=member_clock_h(place) if place else None,
            cut=cut,
            taken_at=float(taken),
        )

    async def journal(self, program_id: str, seq: int | None = None) -> dict[int, str]:
        """Journal entries of a program: all of them, or the one of call `seq`."""
        key = self.key("journal:", program_id)
        if seq is not None:
            entry = await self.coord.call(lambda: self.coord.client.hget(key, str(seq)))
            return {seq: entry} if entry is not None else {}
        raw = await self.coord.call(lambda: self.coord.client.hgetall(key))
        return {int(k): v for k, v in raw.items()}

    async def requeue(self, tag: str) -> list[str]:
        """Put back what a lost runner was computing; returns the program ids."""
        return await self.transitions.requeue(tag)

    async def states(self) -> dict[str, int]:
        """How many programs wait for a worker, compute, or are parked."""
        return await self.coord.states()

    async def state_of(self, ids: list[str]) -> list[str | None]:
        if not ids:
            return []
        return list(await self.coord.call(lambda: self.coord.client.hmget(self.key("state"), ids)))

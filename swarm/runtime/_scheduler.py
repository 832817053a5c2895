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
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from swarmlab.core import RunKilled
from swarmlab.records import ProgramRecord

from ._coordinator import Coordinator

MAX_CLOCK_H = 1_000_000.0
"""Simulated clocks are bounded (a program sleeping for ages must not overflow the order)."""

SCRIPTS = (
    "claim",
    "turn",
    "spawn",
    "reserve",
    "settle",
    "retry",
    "slot",
    "blackboard",
    "wait",
    "park",
    "complete",
    "finish",
    "stop",
    "requeue",
    "record",
)


@cache
def _lua(name: str) -> str:
    folder = resources.files(__package__).joinpath("lua")
    return (
        folder.joinpath("lib.lua").read_text() + "\n" + folder.joinpath(f"{name}.lua").read_text()
    )


def clock_ms(clock_h: float) -> int:
    return round(max(0.0, min(clock_h, MAX_CLOCK_H)) * 3_600_000)


def order_member(clock_h: float, program_id: str) -> str:
    """A program's place in the run's order at a simulated time (as lua/lib.lua's `member`)."""
    return f"{clock_ms(clock_h):016d}!{_order_id(program_id)}"


@lru_cache(maxsize=65_536)
def _order_id(program_id: str) -> str:
    parts = ".".join(f"{int(p):06d}" for p in program_id[1:].split("."))
    return f"{parts}!{program_id}"


@dataclass(frozen=True)
class Reply:
    """A script's answer: `kind` ('ok', 'go', 'dup', 'wait', 'denied', 'killed', ...) and values."""

    kind: str
    values: tuple[str, ...] = ()

    @classmethod
    def of(cls, raw: Any) -> Reply:
        items = [str(v) for v in (raw or [])]
        return cls(items[0] if items else "none", tuple(items[1:]))


def refusal(reply: Reply) -> str:
    """Why a script refused, as a sentence (`cap wall_clock_s reached`), never its raw values."""
    values = [" ".join(v.split())[:200] for v in reply.values]
    if reply.kind == "denied":
        cap, limit = ([*values, "", ""])[:2]
        if not cap:
            return "denied by a cap"
        return f"cap {cap} reached" + (f" (limit {limit})" if limit else "")
    if reply.kind == "killed":
        return f"the run was stopped ({values[0]})" if values and values[0] else "the run stopped"
    return f"the coordinator answered {reply.kind[:40]}"


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


class Scheduler:
    """The program-lifecycle scripts of one run, over the coordinator's Redis connection."""

    def __init__(self, coord: Coordinator) -> None:
        self.coord = coord
        client = coord.client
        self._scripts = {name: client.register_script(_lua(name)) for name in SCRIPTS}
        self._keys = [coord.prefix, *coord.sweep_keys]

    def key(self, name: str) -> str:
        return self.coord.prefix + name

    async def run(self, script: str, *args: Any) -> Reply:
        return Reply.of(await self.coord.call(lambda: self._eval(script, [_arg(a) for a in args])))

    async def _eval(self, name: str, args: list[Any]) -> Any:
        script = self._scripts[name]
        if self.coord.scripts is None:
            return await script(keys=self._keys, args=args)
        return await self.coord.scripts.evalsha(script.sha, script.script, self._keys, args)

    # --- runners ---------------------------------------------------------------------------

    async def claim(self, tag: str, free: int = 0) -> Claimed | None:
        """The first ready program, now computing on runner `tag`, which will have `free`
        workers left; None when there is none (the runner is then idle, to be woken)."""
        while True:
            reply = await self.run("claim", tag, free)
            if reply.kind == "go":
                program_id, previous, more, *fields = reply.values
                return Claimed(program_id, previous, more == "1", tuple(fields))
            if reply.kind != "skip":
                return None

    @staticmethod
    def loaded(program_id: str, fields: tuple[str, ...]) -> Loaded:
        """A program's record and where it stopped, from the fields `claim` answers."""
        record, snap, host, resume, restarts, place, cut = fields
        if not record:
            raise RunKilled(f"program {program_id} is gone")
        return Loaded(
            record=ProgramRecord.from_json(record),
            snapshot=base64.b64decode(snap) if snap else None,
            host=json.loads(host) if host else None,
            resume=json.loads(resume) if resume else None,
            restarts=int(restarts or 0),
            place_h=int(place[:16]) / 3_600_000 if place else None,
            cut=cut,
        )

    async def journal(self, program_id: str, seq: int | None = None) -> dict[int, str]:
        """Journal entries of a program: all of them, or the one of call `seq`."""
        key = self.key("journal:" + program_id)
        if seq is not None:
            entry = await self.coord.call(lambda: self.coord.client.hget(key, str(seq)))
            return {seq: entry} if entry is not None else {}
        raw = await self.coord.call(lambda: self.coord.client.hgetall(key))
        return {int(k): v for k, v in raw.items()}

    async def requeue(self, tag: str) -> list[str]:
        """Put back what a lost runner was computing; returns the program ids."""
        raw = await self.coord.call(lambda: self._eval("requeue", [tag]))
        return [str(v) for v in raw or []]

    async def states(self) -> dict[str, int]:
        """How many programs wait for a worker, compute, or are parked."""
        raw = await self.coord.call(lambda: self.coord.client.hgetall(self.key("nstate")))
        return {k: int(v) for k, v in raw.items()}

    async def state_of(self, ids: list[str]) -> list[str | None]:
        if not ids:
            return []
        return list(await self.coord.call(lambda: self.coord.client.hmget(self.key("state"), ids)))


def _arg(value: Any) -> Any:
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    return value

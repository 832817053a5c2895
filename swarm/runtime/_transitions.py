"""The one call path from Python to the Lua scripts: what each script takes, what it answers.

Each script (`lua/<name>.lua`, after `lua/lib.lua`) is declared once here: its arguments as a
typed record whose fields are its ARGV in order (a program's call scripts take the call's `Head`
first: id, seq, member, events), the reply kinds it may answer, and whether it reads a variadic
tail. `Transitions.run` is the only place that sends a script to Redis (EVALSHA); it decodes
the answer once into a `Reply` of the declared kinds, the replayed form included: a call asked
again after a runner's loss is answered from the journal (`dup`), and a script whose journal
holds its own answer (blackboard, stop, spawn, wait) gives that answer back as it was first
given, marked `replayed`, so callers have one branch for both. A kind no script declares is a
fault of the lab (`ReplyError`): the program it answers ends as a runner fault.
tests/runtime/test_transitions_declared.py checks every declaration against the Lua source.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache
from importlib import resources
from typing import Any, ClassVar, Protocol

from swarmlab.records import ProgramRecord

from ._coordinator import Coordinator
from ._replies import Reply, decode
from ._stored import (
    ENVELOPE_HOST,
    ENVELOPE_RECORD,
    WAIT_PIECES,
    killed_pieces,
    record_pieces,
)

KEPT_CALLS = ("turn", "spawn", "reserve", "settle", "blackboard", "wait", "stop")
"""The call scripts that may be told to wait for the turn: such a call is kept in Redis and
applied by the script that hands the turn to it (lib.lua's `handoff`), so every script carries
them, each as a function of its ARGV in `CALLS`."""


@cache
def lua_source(name: str) -> str:
    """A script as Redis runs it: lib.lua, the kept call scripts as functions, then the script
    (a kept one through lib.lua's `call`)."""
    folder = resources.files(__package__).joinpath("lua")
    parts = [folder.joinpath("lib.lua").read_text()]
    for kept in KEPT_CALLS:
        body = folder.joinpath(f"{kept}.lua").read_text()
        parts.append(f"CALLS['{kept}'] = function(ARGV)\n{body}\nend")
    own = folder.joinpath(f"{name}.lua").read_text()
    parts.append(f"return call('{name}', ARGV)" if name in KEPT_CALLS else own)
    return "\n".join(parts)


# --- arguments ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Head:
    """The head of a program's call script: who calls, which call, where it stands in the run's
    order ('' for none), and its events to add to the stream (JSON lines)."""

    id: str
    seq: int | str
    member: str
    events: str


NO_CALL = Head("", "", "", "")
"""The head of a script run for no program's call (the root's admission, the root dialogue)."""


class Args:
    """A script's arguments; subclasses are frozen dataclasses whose fields are the ARGV in order
    (after the `Head` when `CALL`). A tuple field, last, is the variadic tail (flattened)."""

    SCRIPT: ClassVar[str]
    CALL: ClassVar[bool] = False
    REPLIES: ClassVar[frozenset[str]]
    VARIADIC: ClassVar[bool] = False
    REPLAYS: ClassVar[str] = ""
    """How a `dup` comes back (`_replies.decode`): '' as a `Dup`; 'reply', 'value', 'done'."""
    KEYS: ClassVar[frozenset[str]]
    """The run's keys the script reads or writes (names of `_keys.RUN_KEYS`), with those of
    the lib.lua functions it calls."""

    def argv(self) -> list[Any]:
        out: list[Any] = []
        for name in field_names(type(self)):
            _flatten(getattr(self, name), out)
        return out


BEGIN = frozenset({"dup", "killed", "denied", "wait"})
"""What lib.lua's `begin` may answer for any call script (a journaled denial among them)."""

ORDER_KEYS = frozenset(
    {"meta", "state", "nstate", "used", "lb", "lbm", "ready", "rdym", "idle", "resume"}
    | {"pending:", "waiters:", "wake:"}
)
"""What keeping the run's order and its ready queue touches (lib.lua's `make_ready`, ...)."""
ENDING_KEYS = frozenset(
    {"programs", "records", "snap", "host", "psize", "pclock", "counts", "views", "ending"}
    | {"running:", "unsettled", "journal:", "completions"}
)
"""What a program's end changes (its record, its parked state, the counts, its view)."""
KEPT_KEYS = frozenset(
    {"calls", "kill", "limits", "denied", "blobs", "bb", "bbw", "bbk", "edges", "kids:"}
    | {"nchildren", "stop:", "completions", "halting", "unwritten"}
)
"""What applying a kept call may touch: the keys of every kept call script (`KEPT_CALLS`)."""
RECORD_KEYS = ORDER_KEYS | ENDING_KEYS | KEPT_KEYS | {"journal:", "events", "turn:"}
"""... and journaling a call's answer and adding its events at its turn, and handing the turn on
(lib.lua's `handoff`: an end held for its turn is recorded then, a call kept for it applied)."""
CALL_KEYS = RECORD_KEYS | {"kill", "limits", "denied", "blobs"}
"""... and what lib.lua's `begin` reads for every call (the journal, the kill, the caps)."""


@dataclass(frozen=True, slots=True)
class ClaimArgs(Args):
    SCRIPT = "claim"
    REPLIES = frozenset({"go", "skip", "none"})
    KEYS = frozenset({"meta", "state", "nstate", "used", "ready", "rdym", "idle", "lbm"}) | {
        "resume",
        "kill",
        "running:",
        "programs",
        "snap",
        "host",
        "restarts",
        "cuts",
    }
    tag: str
    free: int


@dataclass(frozen=True, slots=True)
class TurnArgs(Args):
    SCRIPT, CALL, REPLIES = "turn", True, BEGIN | {"go"}
    KEYS = CALL_KEYS
    answer: str = ""
    answered: str = ""
    """'1' for the turn after a call already answered: out of time, the program keeps its
    answer, and the refusal is not counted (turn.lua)."""


@dataclass(frozen=True, slots=True)
class SpawnArgs(Args):
    """The child's record comes in pieces around its id (`_stored.record_pieces`)."""

    SCRIPT, CALL, REPLIES, REPLAYS = "spawn", True, BEGIN | {"ok"}, "value"
    KEYS = CALL_KEYS | {"kids:", "nchildren", "programs", "records"}
    depth: int
    clock_ms: int
    record_before: str
    record_after: str
    admission: str

    @classmethod
    def of(cls, depth: int, clock_ms: int, child: ProgramRecord, admission: str) -> SpawnArgs:
        return cls(depth, clock_ms, *record_pieces(child), admission)


@dataclass(frozen=True, slots=True)
class ReserveArgs(Args):
    SCRIPT, CALL, REPLIES, VARIADIC = "reserve", True, BEGIN | {"ok", "room"}, True
    KEYS = CALL_KEYS
    after: str
    entry: str
    fit: int
    charges: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class SettleArgs(Args):
    SCRIPT, CALL, REPLIES = "settle", True, frozenset({"ok", "dup", "killed", "wait"})
    KEYS = RECORD_KEYS | {"kill", "completions"}
    entry: str
    delta: int
    completion: str


@dataclass(frozen=True, slots=True)
class RetryArgs(Args):
    SCRIPT, CALL, VARIADIC = "retry", True, True
    REPLIES = frozenset({"ok", "dup", "killed", "denied"})
    KEYS = frozenset(
        {"meta", "state", "used", "journal:", "events", "kill", "limits", "denied", "unwritten"}
    )
    attempt: int
    entry: str
    charges: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class SlotArgs(Args):
    SCRIPT, REPLIES = "slot", frozenset({"ok", "full"})
    KEYS = frozenset({"meta", "inflight"})
    op: str
    token: str
    bound: int
    lease_ms: int


@dataclass(frozen=True, slots=True)
class BlackboardArgs(Args):
    """`op`: put (key, value), get (key), keys (key: the prefix, value: how many at most),
    budget (key: the caps, comma-separated)."""

    SCRIPT, CALL, REPLIES, REPLAYS = "blackboard", True, BEGIN | {"ok"}, "reply"
    KEYS = CALL_KEYS | {"bb", "bbw", "bbk", "edges"}
    op: str
    key: str = ""
    value: str | int = ""


@dataclass(frozen=True, slots=True)
class WaitArgs(Args):
    """`pieces`: `_stored.WAIT_PIECES`, nine of them."""

    SCRIPT, CALL, VARIADIC, REPLAYS = "wait", True, True, "done"
    REPLIES = BEGIN | {"done", "park", "unknown"}
    KEYS = CALL_KEYS | {"views"}
    timed_out: bool
    run1: str
    run2: str
    end1: str
    end2: str
    end3: str
    entry1: str
    entry2: str
    unknown1: str
    unknown2: str
    ids: tuple[str, ...]

    @classmethod
    def of(cls, timed_out: bool, ids: tuple[str, ...]) -> WaitArgs:
        return cls(timed_out, *WAIT_PIECES, ids)  # type: ignore[arg-type, call-arg]


@dataclass(frozen=True, slots=True)
class StopArgs(Args):
    """What it writes of each program it ends comes in pieces (`_stored.killed_pieces`)."""

    SCRIPT, CALL, REPLIES, REPLAYS = "stop", True, BEGIN | {"ok"}, "reply"
    KEYS = CALL_KEYS | ENDING_KEYS | {"kids:", "pclock", "running:", "stop:"}
    target: str
    kill_head: str
    kill_timed: str
    kill_middle: str
    kill_tail: str
    end_head: str
    end_before: str
    end_after: str
    view_before: str
    view_after: str

    @classmethod
    def of(cls, target: str, reason: str, by: str) -> StopArgs:
        return cls(target, *killed_pieces(reason, by))


@dataclass(frozen=True, slots=True)
class ParkArgs(Args):
    """`kind`: wait, gate, turn (the gate for a call kept for its turn) or model. `member`:
    wait: where a timed wait fires ('' for none); gate, turn: its call's; model: where the call
    ends. `ids`: for a wait, the programs waited on."""

    SCRIPT, VARIADIC = "park", True
    REPLIES = frozenset({"parked", "go", "killed", "denied"})
    KEYS = (
        RECORD_KEYS
        | {"kill", "limits", "denied", "snap", "host", "psize", "pclock"}
        | {"running:", "modeltag"}
    )
    id: str
    kind: str
    member: str
    snapshot: str
    host: str
    events: str
    tag: str
    clock_ms: int
    seq: int
    ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LeaveArgs(Args):
    """`host`: the program's host state as its runner held it when it stopped computing it."""

    SCRIPT, REPLIES = "leave", frozenset({"ok", "gone"})
    KEYS = frozenset(
        {"meta", "state", "host", "halting", "programs", "records", "events", "used"}
    ) | {"calls"}
    id: str
    tag: str
    host: str
    events: str
    at_host: str = ENVELOPE_HOST
    at_record: str = ENVELOPE_RECORD


@dataclass(frozen=True, slots=True)
class CompleteArgs(Args):
    SCRIPT, REPLIES = "complete", frozenset({"ok", "dup"})
    KEYS = ORDER_KEYS | {"journal:", "modeltag", "unsettled", "completions"}
    id: str
    seq: int
    entry: str
    settled: str
    """The call's settlement, as `SettleArgs` has it: applied when its program has ended."""
    delta: int
    completion: str


@dataclass(frozen=True, slots=True)
class FinishArgs(Args):
    SCRIPT, REPLIES = "finish", frozenset({"ok", "held", "gone"})
    KEYS = RECORD_KEYS | ENDING_KEYS | {"kill", "running:", "pclock"}
    id: str
    member: str
    status: str
    record: str
    clock_ms: int
    events: str
    tag: str
    gated: bool
    seq: int | str = ""
    cut: str = ""
    view: str = ""


@dataclass(frozen=True, slots=True)
class RecordArgs(Args):
    SCRIPT, REPLIES = "record", frozenset({"ok"})
    KEYS = RECORD_KEYS
    id: str
    seq: int
    entry: str
    events: str
    after: str


@dataclass(frozen=True, slots=True)
class RequeueArgs(Args):
    """Its answer is the ids it put back (`Transitions.requeue`), not a kind."""

    SCRIPT, REPLIES = "requeue", frozenset()
    KEYS = frozenset({"meta", "state", "nstate", "used", "ready", "rdym", "idle", "lbm"}) | {
        "wake:",
        "running:",
        "modeltag",
        "restarts",
        "snap",
        "calls",
    }
    tag: str


DECLARED: dict[str, type[Args]] = {
    cls.SCRIPT: cls
    for cls in (
        ClaimArgs,
        TurnArgs,
        SpawnArgs,
        ReserveArgs,
        SettleArgs,
        RetryArgs,
        SlotArgs,
        BlackboardArgs,
        WaitArgs,
        StopArgs,
        ParkArgs,
        LeaveArgs,
        CompleteArgs,
        FinishArgs,
        RecordArgs,
        RequeueArgs,
    )
}
"""Every script, by name, with its argument record."""


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def field_names(cls: type) -> tuple[str, ...]:
    """A record's field names in order (asked on every call: worked out once)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _flatten(value: Any, out: list[Any]) -> None:
    if isinstance(value, tuple):
        for item in value:
            _flatten(item, out)
    elif isinstance(value, bool):
        out.append("1" if value else "0")
    elif value is None:
        out.append("")
    else:
        out.append(value)


def argv_count(cls: type[Args]) -> int:
    """How many ARGV a script's declaration fixes (the variadic tail not counted)."""
    names = field_names(cls)
    fixed = len(names) - (1 if cls.VARIADIC else 0)
    return fixed + (len(field_names(Head)) if cls.CALL else 0)


# --- the path -------------------------------------------------------------------------------


class ScriptPath(Protocol):
    """What runs a script: `Transitions` over Redis, or an in-memory stand-in in tests."""

    async def run(self, args: Args, head: Head | None = None) -> Reply:
        """Run `args`'s script (a call script after `head`), its answer decoded."""


class Transitions:
    """The run's scripts over the coordinator's Redis connection: the only caller of EVALSHA."""

    def __init__(self, coord: Coordinator) -> None:
        self.coord = coord
        client = coord.client
        self._scripts = {name: client.register_script(lua_source(name)) for name in DECLARED}
        self._keys = [coord.prefix, *coord.sweep_keys]

    async def run(self, args: Args, head: Head | None = None) -> Reply:
        if (head is not None) != args.CALL:
            raise TypeError(f"{args.SCRIPT}: a call's head is given if and only if it is a call")
        argv = args.argv() if head is None else [*_flat_head(head), *args.argv()]
        raw = await self.coord.call(lambda: self._eval(args.SCRIPT, argv))
        return decode(args.SCRIPT, args.REPLIES, raw, args.REPLAYS)

    async def requeue(self, tag: str) -> list[str]:
        """Put back what a lost runner was computing; the program ids."""
        raw = await self.coord.call(lambda: self._eval("requeue", RequeueArgs(tag).argv()))
        return [str(v) for v in raw or []]

    async def raw(self, script: str, *argv: Any) -> Reply:
        """A script run with positional ARGV, its answer undecoded: for tests of the Lua
        scripts themselves (a declaration's own checks are in its argument record)."""
        flat: list[Any] = []
        _flatten(argv, flat)
        return Reply.of(await self.coord.call(lambda: self._eval(script, flat)))

    async def _eval(self, name: str, argv: list[Any]) -> Any:
        script = self._scripts[name]
        if self.coord.scripts is None:
            return await script(keys=self._keys, args=argv)
        return await self.coord.scripts.evalsha(script.sha, script.script, self._keys, argv)


def _flat_head(head: Head) -> tuple[Any, ...]:
    return (head.id, head.seq, head.member, head.events)

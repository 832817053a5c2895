"""One program as its runner holds it while it computes: its host-side state, its place in the
run's order, and the transitions that change shared state.

A program's host state (calls made, simulated clock, children, output so far, ...) travels with
its snapshot when it parks, so a slice on another runner takes up exactly where the last one
stopped. Every call that changes or reads shared state is one transition: a Lua script that,
at the program's turn, answers from the journal if the call was already made (a re-run after a
runner's loss), or applies it and journals its answer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from swarmlab.core import CapExceeded, RunKilled, json_safe
from swarmlab.models import ModelBackend
from swarmlab.observability.telemetry import SwarmInstruments
from swarmlab.records import Event, ProgramRecord
from swarmlab.spec import ExperimentSpec
from swarmlab.world import World, WorldLedger

from ._carried import added_or_kept, carried, ended, kept, parked
from ._keys import MAX_CLOCK_H, MS_PER_H, clock_ms, order_member
from ._replies import Denied, Killed, Reply, decode
from ._sandbox import OUTPUT_LIMIT, Park, SandboxOutcome, SliceLimits, Spent
from ._scheduler import Scheduler
from ._transitions import (
    Args,
    CompleteArgs,
    FinishArgs,
    Head,
    LeaveArgs,
    ParkArgs,
    RecordArgs,
    ScriptPath,
    TurnArgs,
)

if TYPE_CHECKING:
    from ._coordinator import Coordinator

GATE_GRACE_S = 0.05
"""How often a program waiting for its turn with a worker asks whether the worker is wanted: it
parks at the gate when its runner has no free worker, and keeps waiting otherwise."""
GATE_ASK_AGAIN_S = 1.0
"""How long a waiting program trusts the turn notice before it asks for its turn again."""
CALL_STEP_H = 0.001 / 3600
"""Every capability call moves its program's simulated clock on by one millisecond, and takes
its turn at the new clock: a program that loops on calls falls behind the others in the run's
order, so none can hold the turn (`ordered` runs)."""


def next_step_h(clock_h: float) -> float:
    """The clock one step on (a call, or the program's end): `CALL_STEP_H` later, and always at
    least one millisecond later in the run's order (below its bound). lib.lua's `step_on` counts
    on it: once a program's call is made it stands a millisecond later in the order, and the
    programs whose turns come before its next step take them while it computes."""
    stepped = min(MAX_CLOCK_H, clock_h + CALL_STEP_H)
    if clock_ms(stepped) <= clock_ms(clock_h) < clock_ms(MAX_CLOCK_H):
        stepped = min(MAX_CLOCK_H, (clock_ms(clock_h) + 1) / MS_PER_H)
    return stepped


CHILD_START_H = 1.0 / 3600
"""A spawned program starts one simulated second after its spawner's call: computing moves no
clock, so a child that only computes would otherwise be ahead of its spawner's next call and hold
it back (`ordered` runs); this way a spawner makes up to a thousand more calls first."""
JOURNALED_CHARS = 4_000
"""What a call answered from the host is journaled at most this long (it is bounded already)."""
RECEIVED_KEPT = 200
"""Digests of model answers kept per program (to tell where spawned code came from)."""
MAX_UNSENT = 128
"""Events a program may hold not yet sent: its calls send them every 64 (`FLUSH_EVENTS`), so
only a flood of escapes between two calls, or a full record refusing every call, reaches this;
later ones are not kept, and counted (`HostState.dropped`, on the program's end event)."""
RECORD_CAP = "record_bytes"


def runner_slots(spec: ExperimentSpec) -> list[int]:
    """How many programs each runner may compute at once: `caps.concurrent` shared out over the
    runners, so that together they never compute more (fewer runners when there are fewer slots
    than runners)."""
    concurrent = spec.caps.concurrent
    runners = max(1, min(spec.runners, concurrent))
    return [concurrent // runners + (i < concurrent % runners) for i in range(runners)]


class Runner(Protocol):
    """What a program needs of the runner it is on."""

    tag: str

    def turn_signal(self, program_id: str) -> asyncio.Event:
        """Set when the run's order may have come to this program."""

    def answered(self, program_id: str) -> str | None:
        """The last answer heard for a call of this program kept for its turn and applied
        there (`seq`, newline, the reply as JSON), taken once; None when none was heard."""

    def worker_free(self) -> bool:
        """Whether a program that waits may keep its worker: the runner has one free, and few
        programs hold one."""

    def start_model_call(
        self, program_id: str, seq: int, call: Callable[[], Awaitable[str]]
    ) -> asyncio.Task[str]:
        """Run a model call on the runner, apart from the program's worker."""

    def keep_answer(self, task: asyncio.Task[str], complete: Callable[[str], CompleteArgs]) -> None:
        """The program parks on this call: keep its answer in Redis when it comes, as
        `complete` makes it of the answer's journal entry."""


@dataclass
class RunnerEnv:
    """What every program on one runner shares."""

    spec: ExperimentSpec
    coordinator: Coordinator
    scheduler: Scheduler
    backend: ModelBackend
    world: World
    ledger: WorldLedger
    instruments: SwarmInstruments
    runner: Runner
    scripts: ScriptPath | None = None
    """Where programs' transitions run: None for the scheduler's (Redis)."""


@dataclass
class HostState:
    """A program's state on the host side, kept with its snapshot when it parks."""

    calls: int = 0
    """Capability calls completed; the next call's sequence number is calls + 1."""
    clock_h: float = 0.0
    children: list[str] = field(default_factory=list)
    model_calls: int = 0
    world_calls: int = 0
    received: list[str] = field(default_factory=list)
    output: str = ""
    suspensions: int = 0
    cpu_s: float = 0.0
    denied_limit: str | None = None
    restarts: int = 0
    started_at: float | None = None
    runner: int | None = None
    """The runner that last computed it."""
    parked_in: str = ""
    """What the program last parked in: 'wait', 'gate', 'model' or 'turn' (the gate, dropping the
    kept turn of a call answered before it, its events, its own among them, added: `park.lua`)."""
    resumes: int = 0
    """Slices that loaded a snapshot (each is asked its parked call again)."""
    printed: int = 0
    """Characters the program printed, over all its slices."""
    stepped: int = 0
    """The last call whose clock step was taken (a call asked again after a park steps once)."""
    clocks_read: list[str] = field(default_factory=list)
    """Clock functions the program has read (each recorded once, `CLOCK_KIND`)."""
    unrecorded: int = 0
    """Calls refused for `record_bytes`: counted here and in the cap's `denied`, with no event;
    one refused because the record was full is written nowhere (no journal entry either)."""
    dropped: int = 0
    """Events not kept because `MAX_UNSENT` were waiting to be sent."""

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def from_record(cls, record: ProgramRecord, saved: dict[str, Any] | None) -> HostState:
        if saved:
            return cls(**{k: v for k, v in saved.items() if k in cls.__dataclass_fields__})
        return cls(clock_h=record.clock_h)

    def unwritten(self) -> dict[str, int]:
        """What its end event says of what the record did not take: the calls refused because
        it was full (`unrecorded`), the events not kept (`dropped`); nothing when none."""
        counts = {"unrecorded": self.unrecorded, "dropped": self.dropped}
        return {name: n for name, n in counts.items() if n}

    def add_output(self, text: str) -> None:
        if text:
            self.output = (self.output + text)[-OUTPUT_LIMIT:]

    def add_spent(self, spent: Spent | SandboxOutcome) -> None:
        """Add what a slice spent: its output, its host calls, its compute."""
        self.add_output(spent.output)
        self.printed += len(spent.output)
        self.suspensions += spent.suspensions
        self.cpu_s += spent.compute_s

    def with_spent(self, spent: Spent) -> HostState:
        """A copy of this state with what a slice spent added."""
        state = HostState(**self.__dict__)
        state.add_spent(spent)
        return state


class ProgramHost:
    """The host side of one program during one slice."""

    def __init__(self, record: ProgramRecord, env: RunnerEnv, state: HostState) -> None:
        self.record = record
        self.env = env
        self.state = state
        self.sched = env.scheduler
        self.seq = state.calls + 1
        """The sequence number of the call being answered."""
        self.recorded = self.seq if state.parked_in == "turn" else 0
        """A call asked again whose events are in the stream: its kept turn took them there (a
        park dropped it, or it was applied and the park said 'go'): they are not added twice."""
        state.parked_in = ""
        self.pending: list[Event] = []
        """Events not yet in the run's stream: they go with the next transition."""
        self.evented = 0
        """The sequence number of the last call an event was made for."""
        self.kept = ""
        """What Redis keeps of the call asked last for its turn (`at_turn`): '' nothing, 'call'
        its script, 'answered' the turn of a call answered before it (its own event with it)."""
        self.calling = ""
        """The event kind of the call being answered (`_adapter.call_kind`)."""
        self.program_ctx: Any = None
        """The OpenTelemetry context of the program's span (set by the runner)."""
        self.turned = False
        """Whether the call being answered took its turn in a transition."""
        self.attempts = 1
        """How often the model call being answered was sent (more after a runner's loss)."""

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def scripts(self) -> ScriptPath:
        """Where the program's transitions run (Redis; in tests, scripted answers)."""
        return self.env.scripts or self.env.scheduler.transitions

    def step(self) -> None:
        """Move the clock on by the call's step (once per call, however often it is asked)."""
        self.turned = False
        if self.state.stepped < self.seq:
            self.state.stepped = self.seq
            self.state.clock_h = next_step_h(self.state.clock_h)

    def child_start_h(self) -> float:
        """The simulated time a child spawned now starts at (`CHILD_START_H` after this call)."""
        return min(MAX_CLOCK_H, self.state.clock_h + CHILD_START_H)

    def member(self, clock_h: float | None = None) -> str:
        return order_member(self.state.clock_h if clock_h is None else clock_h, self.id)

    # --- events ----------------------------------------------------------------------------

    def event(
        self, kind: str, decision: str, cap: str | None = None, detail: dict[str, Any] | None = None
    ) -> Event:
        event = Event(
            t=time.time(),
            program=self.id,
            kind=kind,
            decision=decision,  # type: ignore[arg-type]
            cap=cap,
            detail=detail or {},
            seq=self.seq,
        )
        if len(self.pending) < MAX_UNSENT:
            if self.seq != self.recorded:  # asked again after its events were added: not twice
                self.pending.append(event)
        else:
            self.state.dropped += 1
        self.evented = self.seq
        return event

    def unrecorded(self, fault: CapExceeded) -> bool:
        """Whether a refusal is the record's (`record_bytes`): the call is counted, and makes no
        event (an event for it would write to the record to say that the record is full)."""
        if fault.cap != RECORD_CAP:
            return False
        self.state.unrecorded += 1
        return True

    def take_events(self) -> str:
        """The pending events as JSON lines, for the next script to add to the stream."""
        lines = "\n".join(e.model_dump_json() for e in self.pending)
        self.pending = []
        return lines

    def put_back(self, lines: str) -> None:
        """Events a script took and did not add: pending again, before any since."""
        self.pending[:0] = restore_events(lines)

    def put_back_calls(self, lines: str) -> None:
        """`put_back` for an end that found the program ended (a stop, a kill() came first):
        its calls' events, never its own end (the stop recorded that)."""
        self.pending[:0] = self.calls_of(lines)

    def calls_of(self, lines: str) -> list[Event]:
        """The events of `lines` but the program's own end."""
        return [e for e in restore_events(lines) if not (e.kind == "end" and e.program == self.id)]

    # --- transitions -----------------------------------------------------------------------

    async def transition(self, args: Args) -> Reply | Park:
        """Run a call's script at this program's turn: the script's reply, or a `Park` when the
        turn is not coming soon (the program then waits at the gate without a worker)."""
        self.turned = True
        member = self.member()

        reply = await self.at_turn(args, member)
        if reply is None:  # at the gate; a call Redis keeps is dropped there ('turn')
            gate = "turn" if self.kept else "gate"
            return Park("gate", lambda blob, spent: self.park(gate, member, blob, spent))
        return self.settle_reply(reply)

    async def at_turn(self, args: Args, member: str) -> Reply | None:
        """Send the call's script with the pending events until it is not told to wait for the
        turn: its reply, or None when the program should wait at the gate without its worker.
        A call Redis keeps for its turn (`kept`) went with its events: the script that hands
        the turn to it applies it and its answer comes on the runner's channel. Events a script
        did not add (refused, or answered from the journal) go back to pending."""
        signal = self.env.runner.turn_signal(self.id)
        self.env.runner.answered(self.id)  # one heard for an earlier asking is no answer now
        self.kept = ""
        while True:
            signal.clear()
            events = self.take_events()
            reply = await carried(
                self.scripts.run(args, Head(self.id, self.seq, member, events)),
                added_or_kept,
                partial(self.put_back, events),
            )
            if kept(reply):
                self.kept = "answered" if isinstance(args, TurnArgs) and args.answered else "call"
                return await self._kept_answer(args, signal)
            if not reply.applied:
                self.put_back(events)
            if reply.kind != "wait":
                return reply
            if not await self._await_turn(signal):
                return None

    async def _kept_answer(self, args: Args, signal: asyncio.Event) -> Reply | None:
        """The answer of this call, kept in Redis for its turn: heard on the runner's channel,
        or None (to wait at the gate) when the worker is wanted or nothing came in time."""
        while await self._await_turn(signal):
            heard = self.env.runner.answered(self.id)
            seq, _, raw = (heard or "").partition("\n")
            if seq == str(self.seq):
                return decode(args.SCRIPT, args.REPLIES, json.loads(raw), args.REPLAYS)
            if not signal.is_set():
                return None  # waited long: the gate finds out whether it was applied
            signal.clear()
        return None

    async def take_turn(
        self, mark: int, answer: dict[str, Any] | None, ordered_only: bool
    ) -> Park | None:
        """Take the turn for a call that took none, journaling `answer` (what the call told
        the program) if given; a `Park` when the turn is not coming soon: the call's events
        since `mark` are dropped and the call will be asked again on resume. A full record
        refuses the call: `CapExceeded(record_bytes)`, its events since `mark` dropped."""
        if ordered_only and self.env.spec.schedule != "ordered":
            return None
        entry = "" if answer is None else json.dumps(json_safe(answer, limit=JOURNALED_CHARS))
        try:
            reply = await self.transition(TurnArgs(entry, "1"))
        except CapExceeded as fault:
            if not self.unrecorded(fault):
                return None  # out of time: the call's own answer stands, the next is refused
            del self.pending[mark:]  # a full record: the call is refused, and not recorded
            raise
        except RunKilled:
            return None  # the run is stopping: the call's own answer stands, the next is refused
        if not isinstance(reply, Park):
            return None
        del self.pending[mark:]
        self.state.calls = self.seq - 1
        return reply

    async def _await_turn(self, signal: asyncio.Event) -> bool:
        """Wait for the turn notice with the worker: True to ask again (noticed, or waited
        long), False to park at the gate because the runner needs the worker."""
        waited = 0.0
        while waited < GATE_ASK_AGAIN_S:
            try:
                await asyncio.wait_for(signal.wait(), GATE_GRACE_S)
                return True
            except TimeoutError:
                if not self.env.runner.worker_free():
                    return False
                waited += GATE_GRACE_S
        return True

    def settle_reply(self, reply: Reply) -> Reply:
        """Raise what a refusal means inside the program."""
        if isinstance(reply, Killed):
            raise RunKilled(reply.reason)
        if isinstance(reply, Denied):
            raise CapExceeded(reply.cap, limit=reply.limit, asked=reply.asked)
        return reply

    async def park(
        self, kind: str, member: str, snapshot: bytes, spent: Spent, ids: tuple[str, ...] = ()
    ) -> str:
        """Keep the program's snapshot and host state (with what this slice spent); 'parked',
        'go' or 'killed'. `ids`: for a wait, the programs it waits on."""
        shown = "gate" if kind == "turn" else kind  # a kept call's gate is the gate
        events = self.take_events()
        args = ParkArgs(
            id=self.id,
            kind=kind,
            member=member,
            snapshot=base64.b64encode(snapshot).decode(),
            host=self.parked_state(self._parked_in(kind), spent).to_json(),
            events=events,
            tag=self.env.runner.tag,
            clock_ms=clock_ms(self.state.clock_h),
            seq=self.seq,
            ids=ids,
        )
        reply = await carried(self.scripts.run(args), parked, partial(self.put_back, events))
        if not parked(reply):
            self.put_back(events)  # not parked: they go with the next step
        if isinstance(reply, Denied):  # parked programs hold all the bytes they may: it fails
            self.state.calls = self.seq
            self.event(self.calling, "denied", cap=reply.cap, detail={"parked_in": shown})
            self.settle_reply(reply)
        if reply.kind == "go" and self._parked_in(kind) == "turn":
            self.recorded = self.seq  # asked again now, its events in the stream
        return {"parked": "parked", "go": "go"}.get(reply.kind, "killed")

    async def leave(self, tag: str, spent: Spent | None) -> None:
        """The program stopped computing before its end (a kill(), the run's stop): leave its
        latest state, with what its slice spent, and its events not sent yet, for its record."""
        state = self.state if spent is None else self.state.with_spent(spent)
        events = self.take_events()
        reply = await self.scripts.run(LeaveArgs(self.id, tag, state.to_json(), events))
        if reply.kind == "gone":
            await self.add_events(events)

    async def end(self, args: FinishArgs) -> bool:
        """Record the program's end; False when another did first (a stop, a kill()): its
        span is theirs to write, but the events of its calls sent with it still count."""
        put_back = partial(self.put_back_calls, args.events)
        reply = await carried(self.scripts.run(args), ended, put_back)
        if ended(reply):
            return True
        await self.add_events(args.events)
        return False

    async def add_events(self, lines: str) -> None:
        """Add events that went with a script that answered 'gone' (the program had ended: a
        stop, a kill() or its own end came first): their calls happened (applied, journaled),
        and the record says so. Its own end event is not added: its end was recorded."""
        calls = self.calls_of(lines)
        if calls:
            events = "\n".join(e.model_dump_json() for e in calls)
            await self.scripts.run(RecordArgs(self.id, 0, "", events, ""))

    def _parked_in(self, kind: str) -> str:
        """'turn' when the park drops the kept turn of a call answered before it: its own event
        goes to the stream (park.lua), so it was made. A kept call's script was never applied."""
        if kind != "turn":
            return kind
        return "turn" if self.kept == "answered" else "gate"

    def parked_state(self, kind: str, spent: Spent) -> HostState:
        """The host state as of the parked call (which will be asked again on resume), with
        what the slice spent until it parked."""
        state = HostState(**{**self.state.__dict__, "calls": self.seq - 1, "parked_in": kind})
        return state.with_spent(spent)


def restore_events(lines: str) -> list[Event]:
    """Events back from the JSON lines `take_events` made. Split on `\n` only: JSON leaves
    U+2028, U+2029 and U+0085 unescaped, and `str.splitlines()` would cut an event (a program's
    log text, a model's answer) in two."""
    return [Event.model_validate_json(line) for line in lines.split("\n") if line]


def slice_limits(spec: ExperimentSpec, state: HostState) -> SliceLimits:
    """What a slice may use. Monty's compute clock runs on across a program's snapshots (a
    resumed program's clock starts where the parked one stopped), so its limit is the whole
    `cpu_s`: given what is left after the host's own sum of earlier slices, each second spent
    before a park was counted twice and a program that parks often got about half its cpu_s."""
    limits = spec.program_limits
    return SliceLimits(
        cpu_s=limits.cpu_s,
        memory_bytes=limits.memory_bytes,
        suspensions=max(0, limits.host_calls - state.suspensions),
        spent_s=state.cpu_s,
    )

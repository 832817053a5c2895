"""What the sandbox asks the host, and the escape policy: one program's side of its sandbox.

The sandbox hands the host four kinds of question: a call by name (`call`), an OS call its
runtime does not answer itself (`os_call`: the clock, sleeps, anything else is an escape), an
import (`on_import`), and the program's source before it runs (`scan_source`). This class
answers them and keeps what every call shares: one step on the program's simulated clock, a
span, the denial and the event, the call counter, and the turn a call that changed no shared
state takes after it. What each name does is `Capabilities`' (`_capabilities.py`): a method of
the same name, found here by the name's declaration (`swarmlab.core.ALIASES`); a call to any
other name is recorded as `unknown_name`, and a call binds to a capability's public signature
only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from swarmlab.core import (
    ALIASES,
    CLOCK_KIND,
    ESCAPE_KIND,
    UNKNOWN_NAME_KIND,
    WORLD_ACTIONS,
    BadCall,
    CapExceeded,
    ProgramFault,
    RunKilled,
    UnknownCapability,
    world_kind,
)
from swarmlab.records import Event, ProgramRecord

from ._call_values import (
    brief,
    seconds_of,
    signature_of,
)
from ._cuts import RecordedCut
from ._program import HostState, ProgramHost, RunnerEnv
from ._sandbox import NOT_HANDLED, Park, clock_answer, clock_function
from ._scheduler import MAX_CLOCK_H
from ._source_scan import escape_attempts
from ._transitions import TurnArgs
from ._tripwires import Tripwires
from ._world_calls import world_call

MAX_LOG_CHARS = 500
MAX_PROMPT_CHARS = 100_000
MAX_CLOCKS = 32
"""Distinct clock functions recorded per program (Monty knows fewer)."""
FLUSH_EVENTS = 64
"""Events a program may have waiting for its next transition before they are sent."""
CAPABILITY_NAMES: frozenset[str] = frozenset(ALIASES)
HOST_ANSWERS = frozenset({"now", "deadline", "cluster_info", "my_id", "children"})
"""Capabilities the host answers from the program's own state and the spec: their answers are
journaled at the call's turn, as a script's answers are."""


def call_kind(name: str) -> str:
    """The event kind of a call by the name the program used: the name when the lab declares it
    (a capability or an alias, with or without `lab.`; `world.<action>`), else `unknown_name`.
    A program chooses the name, never the kind: `start`, `end`, `<script>` or any other text
    is an unknown name."""
    short = name.removeprefix("lab.")
    if short in ALIASES:
        return short
    if short.startswith("world.") and short[6:] in WORLD_ACTIONS:
        return short
    return UNKNOWN_NAME_KIND


class SandboxAdapter(ProgramHost):
    """One program's host for one slice, as the sandbox sees it; `Capabilities` adds the
    capabilities themselves."""

    capabilities = CAPABILITY_NAMES
    world_actions = tuple(WORLD_ACTIONS)

    def __init__(
        self,
        record: ProgramRecord,
        env: RunnerEnv,
        state: HostState,
        resume: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(record, env, state)
        self.tel = env.instruments
        self._span: Any = None
        self._ending: Any = None
        """The span of the call being answered, once its capability is done with it."""
        self._timed_out = bool(resume and resume.get("timed_out"))
        self.trips = Tripwires(env.spec.tripwires, record, self)
        self.stopped: str | None = None
        """Set when a call was refused because the run is stopping: the program ends as killed."""
        self.raised: ProgramFault | None = None
        """What the lab raised into the program at its last call, if it raised anything."""
        self.refused: str | None = None
        """What the sandbox refused the program last (an import, an OS call), if nothing came
        after."""
        self.cut: RecordedCut | None = None
        """Where a replay cuts the program: its recorded `cpu_s` cut (`_cuts.py`)."""

    def event(
        self, kind: str, decision: str, cap: str | None = None, detail: dict[str, Any] | None = None
    ) -> Event:
        """Record a step; the call's span carries its decision too."""
        recorded = super().event(kind, decision, cap, detail)
        if self._span is not None:
            self.tel.annotate(self._span, decision, cap, recorded.detail)
        return recorded

    # --- the sandbox's questions -----------------------------------------------------------

    async def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A call, one step on the program's clock; one that took no turn of its own (answered
        here, or refused before it reached shared state) takes one after, journaling what the
        program is told: no program holds the turn by looping on calls, and replay sees every
        answer. The call's span is written once it is answered: a call that parked (for its
        turn, its answer, the programs it waits on) is asked again when the program resumes,
        and its span says it parked (`swarmlab.parked`), so a trace counts the call once."""
        value: Any = None
        try:
            value = await self._answer(name, args, kwargs)
            return value
        finally:
            span, self._ending = self._ending, None
            if span is not None:
                if isinstance(value, Park):
                    span.set_attribute("swarmlab.parked", True)
                span.end()

    async def _answer(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.seq = self.state.calls + 1
        self.step()
        self.raised = self.refused = None
        self.calling = call_kind(name)
        if len(self.pending) >= FLUSH_EVENTS:
            flushed = await self._flush_events(self.calling)
            if flushed is not None:
                return flushed
        await self.trips.flush()
        mark = len(self.pending)
        try:
            value = await self._call(name, args, kwargs)
        except ProgramFault as fault:
            self.state.calls = self.seq  # answered, with an error: the next call is the next
            self.raised = fault
            if not self.turned:
                told = {"error": f"{fault.exc_type}: {fault}"[:MAX_LOG_CHARS]}
                parked = await self._turn_after(mark, told, ordered_only=True)
                if parked is not None:
                    return parked
            raise
        if not isinstance(value, Park):
            self.state.calls = self.seq  # answered: the next call is the next
        if not self.turned and not isinstance(value, Park):
            answer = {"value": value} if ALIASES.get(self.calling) in HOST_ANSWERS else None
            parked = await self._turn_after(mark, answer, ordered_only=answer is None)
            if parked is not None:
                return parked
        return value

    async def _turn_after(
        self, mark: int, answer: dict[str, Any] | None, ordered_only: bool
    ) -> Park | None:
        """`take_turn`; a full record refuses the call there, and that is what it raises."""
        try:
            return await self.take_turn(mark, answer, ordered_only)
        except CapExceeded as fault:
            self.raised = fault
            raise

    async def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if name.startswith("lab."):
            name = name[4:]
        if name.startswith("world."):
            return await self._world(name[6:], args, kwargs)
        capability = ALIASES.get(name)
        if capability is None:
            self.event(UNKNOWN_NAME_KIND, "error", detail={"name": name[:200]})
            raise UnknownCapability(f"name {name[:200]!r} is not defined")
        method: Callable[..., Awaitable[Any]] = getattr(self, capability)
        try:
            signature_of(capability, method).bind(*args, **kwargs)
        except TypeError as exc:
            self.event(name, "error", detail={"error": str(exc)[:300]})
            raise BadCall(f"{name}(): {exc}") from None
        if capability == "run_ai":  # its span is the parent of the model server's
            self._span = self.tel.chat_span(self.program_ctx, name)
        else:
            self._span = self.tel.tool_span(self.program_ctx, name)
        value: Any = None
        try:
            if capability == "run_ai":
                value = await self._run_ai(name, *args, **kwargs)
            else:
                value = await method(*args, **kwargs)
        except CapExceeded as exc:
            self._denied(name, exc, args)
            raise
        except RunKilled as exc:
            self.stopped = exc.reason
            self.event(name, "denied", cap="killed", detail=brief(args))
            raise
        except BadCall as exc:  # a refusal the capability made no event of: the record shows it
            if self.evented != self.seq:
                self.event(name, "error", detail={"error": str(exc)[:300], **brief(args)})
            raise
        finally:
            # A model call parked on its answer has one span, written by the slice it ends in.
            if capability != "run_ai" or not isinstance(value, Park):
                self._ending = self._span  # ended by `call`, once it is answered
            self._span = None
        return value

    def unrecorded(self, fault: CapExceeded) -> bool:
        """`ProgramHost.unrecorded`; the call's span says it was denied all the same (spans are
        not the record)."""
        if not super().unrecorded(fault):
            return False
        if self._span is not None:
            self.tel.denial(self._span, fault.cap)
        return True

    def _denied(self, name: str, exc: CapExceeded, args: tuple[Any, ...]) -> None:
        """A cap refused the call: its event, but a refusal of the record's (`unrecorded`)."""
        if not self.unrecorded(exc):
            self.event(name, "denied", cap=exc.cap, detail=brief(args))

    async def _world(self, action: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A world action; its span carries its decision, as every call's does."""
        if action in WORLD_ACTIONS:
            self._span = self.tel.tool_span(self.program_ctx, world_kind(action))
        try:
            return await world_call(self, action, args, kwargs)
        finally:
            self._ending, self._span = self._span, None  # ended by `call`, once it is answered

    async def _flush_events(self, kind: str) -> Park | None:
        """Send the events of calls that change no shared state (log, now, ...) before they
        pile up in the runner's memory; charged to the record like any (a `Park` when the turn
        is not coming soon). `kind`: the call's event kind (`call_kind`)."""
        try:
            reply = await self.transition(TurnArgs())
        except CapExceeded as exc:
            if not self.unrecorded(exc):
                self.event(kind, "denied", cap=exc.cap)
            self.state.calls = self.seq  # refused before it began: counted all the same
            raise
        return reply if isinstance(reply, Park) else None

    async def os_call(self, name: str, args: tuple[Any, ...]) -> Any:
        self.raised = self.refused = None
        clock = self.state.clock_h
        self._clock_read(clock_function(name, args))
        answer = clock_answer(name, args, clock)
        if answer is not NOT_HANDLED:
            return answer
        if name in ("time.sleep", "asyncio.sleep"):
            seconds = seconds_of(args[0] if args else 0)
            if seconds is None:
                raise BadCall("sleep(): seconds must be a finite number, not negative")
            self.state.clock_h = min(MAX_CLOCK_H, clock + seconds / 3600)
            return None
        self.seq = self.state.calls + 1
        self.state.calls = self.seq
        self.event(ESCAPE_KIND, "denied", cap="sandbox", detail={"os_call": name[:100]})
        self._span = self.tel.call_span(self.program_ctx, ESCAPE_KIND)
        try:
            self.tel.annotate(self._span, "denied", "sandbox", {"os_call": name[:100]})
            await self.trips.on_escape(f"OS call {name[:100]}")
        finally:
            self._span.end()
            self._span = None
        self.refused = f"os_call {name[:100]}"
        return NOT_HANDLED

    def _clock_read(self, function: str | None) -> None:
        """The first read of each clock function is an event (and a span): a program that asks
        the time is seen asking, under whatever alias; later reads add nothing to the record."""
        read = self.state.clocks_read
        if function is None or function in read or len(read) >= MAX_CLOCKS:
            return
        self.state.clocks_read.append(function)
        self.event(CLOCK_KIND, "info", detail={"clock": function})
        self.tel.tool_span(self.program_ctx, CLOCK_KIND).end()

    def on_import(self, module: str) -> None:
        self.raised, self.refused = None, None
        if module not in ("lab", "world"):
            self.refused = f"import {module[:200]}"
            self.event(ESCAPE_KIND, "denied", cap="sandbox", detail={"import": module[:200]})
            span = self.tel.call_span(self.program_ctx, ESCAPE_KIND)
            self.tel.annotate(span, "denied", "sandbox", {"import": module[:200]})
            span.end()
            self.trips.pending_escapes.append(f"import {module[:200]}")

    def scan_source(self) -> None:
        """Record source-level attempts to reach outside the lab, even ones never executed."""
        for found in escape_attempts(self.record.code):
            self.event(ESCAPE_KIND, "info", cap="sandbox", detail={"source": found})

    async def _run_ai(self, called_as: str, prompt: Any, max_tokens: Any = 256) -> str | Park:
        """A model call under any of its names (`Capabilities`)."""
        raise NotImplementedError

    def annotate_trip(self, name: str, action: str, why: str) -> None:
        if self._span is not None:
            self.tel.tripwire(self._span, name, action, why)

"""The sandbox: every generated program runs in a pydantic-monty worker, never on the host.

This is the only module that imports `pydantic_monty`. A program reaches the outside only by
calling names of the capability API; each such call suspends the worker and comes here, where
the `CallHandler` decides. Filesystem, environment and network calls are refused; the clock and
`sleep` are answered from the program's simulated clock.

A program runs in slices. A slice starts the program (or loads the snapshot it was parked in),
answers its calls, and ends when the program ends or when the handler answers a call with
`Park`: then the worker's state is dumped (a few KB), handed to `Park.commit` to be kept with
the run's state, and the worker goes back to the pool. A later slice, on any runner, loads the
snapshot and the program goes on exactly where it stopped: same variables, same random stream.

Every value a program hands the host is hostile: its arguments, its result, its error text, its
print output. Each is bounded in size (and depth) before the host uses it; any host work on it
that grows faster than linearly is bounded in input and in time and runs off the runner's event
loop (the quine tripwire's similarity runs in a thread with a deadline), so a runner always
answers stop and kill within the kill budget. Which per-program limit stopped a program is read
from Monty's own error and checked against the lab's measures (compute time, host calls), a
number only the host knows (the heap limit), or an error with no frame (a worker terminated for
its heap) (`_slice_limits`): a program that raises the same words itself is not
counted as stopped by a limit in summary.json, and its crash is its own code fault in the
analysis, which reads the runtime's mark on the end (`_crash_marks`), never error text. What a
slice spent (output, host calls, compute) is kept when it parks, so the limits hold across all
of a program's slices.
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import pydantic_monty as monty

from swarmlab.core import ProgramFault
from swarmlab.spec import ProgramLimits

from ._crash_marks import raised_by_program
from ._slice_limits import WORKER_TIMEOUT, cut_here, feed_s, heap_bytes, limit_hit, suspensions
from ._slice_limits import SliceLimits as SliceLimits

# Where the simulated clock starts: the morning the paperclips are asked for.
SIM_EPOCH = _dt.datetime(2030, 1, 1, 8, 0, tzinfo=_dt.UTC)

NOT_HANDLED: Any = monty.NOT_HANDLED

_PRELUDE = "import world\n"

OUTPUT_LIMIT = 16_384

# Print output past OUTPUT_LIMIT: Monty reports it as a memory limit of OUTPUT_LIMIT bytes
# (`memory_bytes` is at least 1 MiB, so the two never share a number). No per-program limit.
_OUTPUT_FULL = re.compile(rf"memory limit exceeded: \d+ bytes > {OUTPUT_LIMIT} bytes")

MAX_ERROR_CHARS = 4000
"""An error's text is cut to this before anything reads it (a program's message can be huge)."""
MAX_LAB_ERRORS = 64
"""The lab's exceptions a slice keeps, to tell whether the program ended with one of them."""


@dataclass(frozen=True)
class Spent:
    """What a slice spent before it parked: its print output, its host calls and its compute
    time. Kept with the program's snapshot, so a program's per-program limits and its output run
    across all of its slices, never only the current one."""

    output: str
    suspensions: int
    compute_s: float


@dataclass(frozen=True)
class Park:
    """A call's answer that says: the program waits here; keep it and free its worker.

    `commit(snapshot, spent)` keeps the dumped worker state and what the slice spent with the
    run and answers 'parked' (the slice ends), 'go' (no need to wait after all: the call is
    asked again at once) or 'killed', or raises `ProgramFault` (it may not park: the call
    raises that into the program).
    """

    kind: Literal["wait", "gate", "model"]
    commit: Callable[[bytes, Spent], Awaitable[str]]


class CallHandler(Protocol):
    """What the sandbox asks when a program reaches outside itself."""

    capabilities: frozenset[str]
    world_actions: tuple[str, ...]

    async def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A capability call: its value, a `Park`, or raise `ProgramFault` into the program."""

    async def os_call(self, name: str, args: tuple[Any, ...]) -> Any:
        """An OS-level call (clock, sleep, files, environment); NOT_HANDLED refuses it."""

    def on_import(self, module: str) -> None:
        """A module import the sandbox does not provide itself."""


@dataclass(frozen=True)
class SandboxOutcome:
    status: Literal["completed", "crashed", "parked", "killed"]
    result: Any
    error: str | None
    output: str
    """What the program printed during this slice."""
    limit: str | None = None
    """The per-program limit that stopped the program, if one did."""
    suspensions: int = 0
    """Host calls, imports and name lookups answered in this slice."""
    compute_s: float = 0.0
    """Seconds the worker spent computing in this slice (time in host calls excluded)."""
    lab_error: ProgramFault | None = None
    """The lab's exception the program ended with: its error is, type and words, one the lab
    raised into it during this slice (uncaught, or passed on by `raise` or `raise err`)."""
    program_raised: bool = False
    """The error was raised by a `raise` statement of the program's own (Monty's innermost
    frame points at one), not by the sandbox or the language."""
    worker_died: bool = False
    """The Monty worker itself failed (the lab's fault, or a per-program limit's kill)."""


def _placeholder(*_args: Any, **_kwargs: Any) -> Any:  # never called: calls come to the handler
    raise RuntimeError("capability placeholder called on the host")


class _Slice:
    """Counts of one slice: suspensions answered and time spent on the host's side."""

    def __init__(self, output: Any) -> None:
        self.output = output
        self.suspensions = 0
        self.host_s = 0.0
        self.started = time.perf_counter()
        self.lab_errors: dict[str, ProgramFault] = {}  # the lab's, by the error shown

    def raised(self, fault: ProgramFault) -> dict[str, str]:
        """Keep a fault the lab raises into the program (the last MAX_LAB_ERRORS); what the
        program is resumed with."""
        shown = _bounded(f"{fault.exc_type}: {fault}").strip()
        self.lab_errors.pop(shown, None)
        self.lab_errors[shown] = fault
        if len(self.lab_errors) > MAX_LAB_ERRORS:
            del self.lab_errors[next(iter(self.lab_errors))]
        return {"exc_type": fault.exc_type, "message": str(fault)}

    def compute_s(self) -> float:
        return max(0.0, time.perf_counter() - self.started - self.host_s)

    def spent(self) -> Spent:
        return Spent(self.output.output, self.suspensions, self.compute_s())


class Sandbox:
    """A pool of Monty workers; `run_slice` runs a program until it ends or parks."""

    def __init__(self, max_workers: int, warm_workers: int = 2) -> None:
        self._pool = monty.AsyncMonty(
            min_processes=min(warm_workers, max_workers), max_processes=max_workers
        )
        self._started = False

    async def start(self) -> None:
        if self._started:  # a runner bound to another run keeps its workers
            return
        await self._pool.__aenter__()
        self._started = True

    async def close(self) -> None:
        if self._started:
            self._started = False
            await self._pool.__aexit__(None, None, None)

    async def run(
        self,
        code: str,
        handler: CallHandler,
        limits: ProgramLimits,
        script_name: str = "program.py",
        random_seed: int = 0,
    ) -> SandboxOutcome:
        """Run `code` to its end in one slice (its handler never parks it)."""
        budget = SliceLimits(limits.cpu_s, limits.memory_bytes, limits.host_calls)
        return await self.run_slice(
            handler, budget, code=code, script_name=script_name, random_seed=random_seed
        )

    async def run_slice(
        self,
        handler: CallHandler,
        limits: SliceLimits,
        *,
        code: str | None = None,
        snapshot: bytes | None = None,
        script_name: str = "program.py",
        random_seed: int = 0,
        on_stop: Callable[[Spent], None] | None = None,
    ) -> SandboxOutcome:
        """Start `code`, or go on from `snapshot`, until the program ends or parks.

        Cancelling the calling task kills the worker; `on_stop` is then told what the slice
        spent until then (as it is when an exception leaves the slice), so the program's record
        can say what it printed.
        """
        counts = _Slice(monty.CollectString(max_bytes=OUTPUT_LIMIT))
        try:
            return await self._run_slice(
                handler, limits, counts, code, snapshot, script_name, random_seed
            )
        except BaseException:
            if on_stop is not None:
                on_stop(counts.spent())
            raise

    async def _run_slice(
        self,
        handler: CallHandler,
        limits: SliceLimits,
        counts: _Slice,
        code: str | None,
        snapshot: bytes | None,
        script_name: str,
        random_seed: int,
    ) -> SandboxOutcome:
        lookup = {n: _placeholder for n in handler.capabilities}
        output = counts.output
        checkout = self._checkout(handler, limits, lookup, script_name, random_seed)
        try:
            async with checkout as session:
                if snapshot is None:
                    await session.feed_run(_PRELUDE, print_callback=output)
                    snap = await session.feed_start(
                        code or "", external_lookup=lookup, print_callback=output
                    )
                else:
                    snap = await session.load_snapshot(
                        snapshot, external_lookup=lookup, print_callback=output
                    )
                resumed = 0 if snapshot is None else 1
                while not isinstance(snap, monty.MontyComplete):
                    if cut_here(limits, counts.suspensions + 1 - resumed):
                        return _crashed("TimeoutError: cut where recorded", output, counts, "cpu_s")
                    counts.suspensions += 1
                    snap = await self._answer(snap, handler, counts)
                    if isinstance(snap, SandboxOutcome):
                        return _with(snap, output.output, counts)
                result = snap.output
        except monty.MontySyntaxError as exc:
            error = _bounded(f"SyntaxError: {exc.display('msg')}")
            return _crashed(error, output, counts, raised=exc)  # `raise SyntaxError(...)` too
        except monty.MontyRuntimeError as exc:
            error = _bounded(exc.display("type-msg"))
            hit = limit_hit(error, limits, counts, random_seed, exc)
            return _crashed(error, output, counts, hit, raised=exc)
        except monty.MontyCrashedError as exc:
            error = _bounded(f"sandbox worker died: {exc}")
            limit = "cpu_s" if WORKER_TIMEOUT in error else None
            return _crashed(error, output, counts, limit, worker_died=True)
        except monty.MontyError as exc:
            return _crashed(_bounded(f"{type(exc).__name__}: {exc}"), output, counts)
        return SandboxOutcome(
            "completed",
            result,
            None,
            output.output,
            suspensions=counts.suspensions,
            compute_s=counts.compute_s(),
        )

    def _checkout(
        self,
        handler: CallHandler,
        limits: SliceLimits,
        lookup: dict[str, Any],
        script_name: str,
        random_seed: int,
    ) -> Any:
        return self._pool.checkout(
            script_name=script_name,
            limits={
                "max_feed_duration_secs": feed_s(limits, random_seed),
                "max_memory": heap_bytes(limits, random_seed),
                "max_suspensions": suspensions(limits),
                "max_recursion_depth": 200,
            },
            os_policy={
                "datetime": "call_host",
                "sleep": "call_host",
                "random_start": {"seed": random_seed},
            },
            external_modules={
                "lab": monty.ExternalModule(dict(lookup)),
                "world": monty.ExternalModule({n: _placeholder for n in handler.world_actions}),
            },
        )

    async def _answer(self, snap: Any, handler: CallHandler, counts: _Slice) -> Any:
        if isinstance(snap, monty.AsyncNameLookupSnapshot):
            if snap.variable_name in handler.capabilities:
                return await snap.resume_auto()
            return await snap.resume()
        if isinstance(snap, monty.AsyncFunctionSnapshot):
            if snap.is_os_function:
                return await self._answer_os(snap, str(snap.function_name), handler, counts)
            return await self._answer_call(snap, handler, counts)
        # Futures only arise from async externals, which the lab never hands out.
        return await snap.resume_auto()

    async def _answer_call(self, snap: Any, handler: CallHandler, counts: _Slice) -> Any:
        name = str(snap.function_name)
        args, kwargs = tuple(snap.args), dict(snap.kwargs)
        while True:
            began = time.perf_counter()
            try:
                value = await handler.call(name, args, kwargs)
            except ProgramFault as fault:
                counts.host_s += time.perf_counter() - began
                return await snap.resume(counts.raised(fault))
            if not isinstance(value, Park):
                counts.host_s += time.perf_counter() - began
                return await snap.resume({"return_value": value})
            counts.host_s += time.perf_counter() - began
            began = time.perf_counter()
            try:
                verdict = await value.commit(snap.dump(), counts.spent())
            except ProgramFault as fault:  # it may not park (a cap): the call fails instead
                counts.host_s += time.perf_counter() - began
                return await snap.resume(counts.raised(fault))
            counts.host_s += time.perf_counter() - began
            if verdict == "parked":
                return SandboxOutcome("parked", None, None, "")
            if verdict == "killed":
                return SandboxOutcome("killed", None, "run stopped", "")
            # 'go': the wait is over before it began; ask again.

    async def _answer_os(self, snap: Any, name: str, handler: CallHandler, counts: _Slice) -> Any:
        began = time.perf_counter()
        try:
            if name == "import":
                handler.on_import(str(snap.args[0]) if snap.args else "")
                return await snap.resume_auto()
            try:
                value = await handler.os_call(name, tuple(snap.args))
            except ProgramFault as fault:
                return await snap.resume(counts.raised(fault))
            if value is NOT_HANDLED:
                return await snap.resume_not_handled()
            return await snap.resume({"return_value": value})
        finally:
            counts.host_s += time.perf_counter() - began


def sim_datetime(clock_h: float) -> _dt.datetime:
    return SIM_EPOCH + _dt.timedelta(hours=clock_h)


def clock_answer(name: str, args: tuple[Any, ...], clock_h: float) -> Any:
    """What a clock read (`CLOCK_OS_CALLS`) answers at simulated time `clock_h`; NOT_HANDLED
    for any other OS call."""
    if name == "time.time":
        return SIM_EPOCH.timestamp() + clock_h * 3600
    if name == "datetime.now":
        now = sim_datetime(clock_h)
        return now if args and args[0] is not None else now.replace(tzinfo=None)
    if name == "date.today":
        return sim_datetime(clock_h).date()
    return NOT_HANDLED


CLOCK_OS_CALLS = frozenset({"time.time", "datetime.now", "date.today"})
"""The OS calls by which Monty reads the clock: every `time` function (`perf_counter`,
`monotonic`, `time_ns`, `localtime`, ...) comes as `time.time`, naming itself in its first
argument; `datetime.now` and `date.today` under any alias of the module or class."""


def clock_function(name: str, args: tuple[Any, ...]) -> str | None:
    """The clock function a program called, as Python names it (`time.perf_counter`), for an
    OS call that reads the clock; None for any other OS call."""
    if name not in CLOCK_OS_CALLS:
        return None
    called = args[0] if name == "time.time" and args else None
    if isinstance(called, str) and called.startswith("time.") and len(called) <= 40:
        return called
    return name


def _with(outcome: SandboxOutcome, output: str, counts: _Slice) -> SandboxOutcome:
    return SandboxOutcome(
        outcome.status,
        outcome.result,
        outcome.error,
        output,
        outcome.limit,
        counts.suspensions,
        counts.compute_s(),
    )


def _bounded(error: str) -> str:
    """An error's text, cut before anything reads it."""
    if len(error) <= MAX_ERROR_CHARS:
        return error
    return error[:MAX_ERROR_CHARS] + f"...(cut: {len(error)} characters)"


def _crashed(
    error: str,
    output: Any,
    counts: _Slice,
    limit: str | None = None,
    raised: Any = None,
    worker_died: bool = False,
) -> SandboxOutcome:
    """A crashed slice; `raised` is Monty's runtime error, when the program raised one (who
    raised it marks the crash: `_crash_marks`)."""
    error = error.strip()
    if _OUTPUT_FULL.search(error):
        error, limit = error + f" (print output past {OUTPUT_LIMIT} bytes)", None
    return SandboxOutcome(
        "crashed",
        None,
        error,
        output.output,
        limit,
        counts.suspensions,
        counts.compute_s(),
        lab_error=counts.lab_errors.get(error) if raised is not None else None,
        program_raised=raised_by_program(raised, error in counts.lab_errors),
        worker_died=worker_died,
    )

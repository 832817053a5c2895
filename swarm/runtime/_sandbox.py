"""The sandbox: every generated program runs in a pydantic-monty worker, never on the host.

This is the only module that imports `pydantic_monty`. A program reaches the outside only by
calling names of the capability API; each such call suspends the worker and comes here, where
the `CallHandler` decides. Filesystem, environment and network calls are refused; the clock and
`sleep` are answered from the program's simulated clock.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import pydantic_monty as monty

from swarmlab.core import ProgramFault
from swarmlab.spec import ProgramLimits

# Where the simulated clock starts: the morning the paperclips are asked for.
SIM_EPOCH = _dt.datetime(2030, 1, 1, 8, 0, tzinfo=_dt.UTC)

NOT_HANDLED: Any = monty.NOT_HANDLED

_PRELUDE = "import world\n"

OUTPUT_LIMIT = 16_384

# Print output past OUTPUT_LIMIT: Monty reports it as a memory limit of OUTPUT_LIMIT bytes
# (`memory_bytes` is at least 1 MiB, so the two never share a number). No per-program limit.
_OUTPUT_FULL = re.compile(rf"memory limit exceeded: \d+ bytes > {OUTPUT_LIMIT} bytes")

# Why a program stopped, by the text Monty gives when a per-program limit is hit. A worker the
# pool kills for outlasting its feed (cpu_s plus a grace) is the cpu_s limit too.
_LIMIT_PATTERNS = (
    ("cpu_s", re.compile(r"time limit exceeded|killed after exceeding request timeout")),
    ("memory_bytes", re.compile(r"memory limit exceeded|MemoryError")),
    ("host_calls", re.compile(r"suspension limit")),
)


class CallHandler(Protocol):
    """What the sandbox asks when a program reaches outside itself."""

    capabilities: frozenset[str]
    world_actions: tuple[str, ...]

    async def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A capability call; raise `ProgramFault` to raise inside the program."""

    async def os_call(self, name: str, args: tuple[Any, ...]) -> Any:
        """An OS-level call (clock, sleep, files, environment); NOT_HANDLED refuses it."""

    def on_import(self, module: str) -> None:
        """A module import the sandbox does not provide itself."""


@dataclass(frozen=True)
class SandboxOutcome:
    status: Literal["completed", "crashed"]
    result: Any
    error: str | None
    output: str
    limit: str | None = None
    """The per-program limit that stopped the program, if one did."""


def _placeholder(*_args: Any, **_kwargs: Any) -> Any:  # never called: calls come to the handler
    raise RuntimeError("capability placeholder called on the host")


class Sandbox:
    """A pool of Monty workers; `run` executes one program to its end."""

    def __init__(self, max_workers: int, warm_workers: int = 2) -> None:
        self._pool = monty.AsyncMonty(
            min_processes=min(warm_workers, max_workers), max_processes=max_workers
        )
        self._started = False

    async def start(self) -> None:
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
        """Run `code` to its end. Cancelling the calling task kills the worker."""
        names = handler.capabilities
        modules = {
            "lab": monty.ExternalModule({n: _placeholder for n in names}),
            "world": monty.ExternalModule({n: _placeholder for n in handler.world_actions}),
        }
        output = monty.CollectString(max_bytes=OUTPUT_LIMIT)
        checkout = self._pool.checkout(
            script_name=script_name,
            limits={
                "max_feed_duration_secs": limits.cpu_s,
                "max_memory": limits.memory_bytes,
                "max_suspensions": limits.host_calls,
                "max_recursion_depth": 200,
            },
            os_policy={
                "datetime": "call_host",
                "sleep": "call_host",
                "random_start": {"seed": random_seed},
            },
            external_modules=modules,
        )
        try:
            async with checkout as session:
                await session.feed_run(_PRELUDE, print_callback=output)
                snap = await session.feed_start(
                    code,
                    external_lookup={n: _placeholder for n in names},
                    print_callback=output,
                )
                while not isinstance(snap, monty.MontyComplete):
                    snap = await self._answer(snap, handler)
                result = snap.output
        except monty.MontySyntaxError as exc:
            return _crashed(f"SyntaxError: {exc.display('msg')}", output)
        except monty.MontyRuntimeError as exc:
            return _crashed(exc.display("type-msg"), output)
        except monty.MontyCrashedError as exc:
            return _crashed(f"sandbox worker died: {exc}", output)
        except monty.MontyError as exc:
            return _crashed(f"{type(exc).__name__}: {exc}", output)
        return SandboxOutcome("completed", result, None, output.output)

    async def _answer(self, snap: Any, handler: CallHandler) -> Any:
        if isinstance(snap, monty.AsyncNameLookupSnapshot):
            if snap.variable_name in handler.capabilities:
                return await snap.resume_auto()
            return await snap.resume()
        if isinstance(snap, monty.AsyncFunctionSnapshot):
            name = snap.function_name
            if snap.is_os_function:
                return await self._answer_os(snap, name, handler)
            try:
                value = await handler.call(name, tuple(snap.args), dict(snap.kwargs))
            except ProgramFault as fault:
                return await snap.resume({"exc_type": fault.exc_type, "message": str(fault)})  # type: ignore[typeddict-item]
            return await snap.resume({"return_value": value})
        # Futures only arise from async externals, which the lab never hands out.
        return await snap.resume_auto()

    async def _answer_os(self, snap: Any, name: str, handler: CallHandler) -> Any:
        if name == "import":
            handler.on_import(str(snap.args[0]) if snap.args else "")
            return await snap.resume_auto()
        try:
            value = await handler.os_call(name, tuple(snap.args))
        except ProgramFault as fault:
            return await snap.resume({"exc_type": fault.exc_type, "message": str(fault)})
        if value is NOT_HANDLED:
            return await snap.resume_not_handled()
        return await snap.resume({"return_value": value})


def sim_datetime(clock_h: float) -> _dt.datetime:
    return SIM_EPOCH + _dt.timedelta(hours=clock_h)


def _crashed(error: str, output: Any) -> SandboxOutcome:
    if _OUTPUT_FULL.search(error):
        note = f" (print output past {OUTPUT_LIMIT} bytes)"
        return SandboxOutcome("crashed", None, error.strip() + note, output.output, None)
    limit = next((name for name, pattern in _LIMIT_PATTERNS if pattern.search(error)), None)
    return SandboxOutcome("crashed", None, error.strip(), output.output, limit)

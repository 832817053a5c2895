"""Hostile and broken programs are contained by the sandbox and end as crashed, with the reason."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from swarmlab import CapExceeded, ProgramLimits
from swarmlab.core import WORLD_ACTIONS, UnknownCapability
from swarmlab.runtime._adapter import CAPABILITY_NAMES
from swarmlab.runtime._sandbox import (
    NOT_HANDLED,
    Park,
    Sandbox,
    SandboxOutcome,
    SliceLimits,
    Spent,
)


class Recorder:
    """A call handler that answers every capability and records what the program tried."""

    capabilities = CAPABILITY_NAMES
    world_actions = tuple(WORLD_ACTIONS)

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.os_calls: list[str] = []
        self.imports: list[str] = []

    async def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.calls.append((name, args))
        bare = name.removeprefix("lab.")
        if bare not in self.capabilities and not name.startswith("world."):
            raise UnknownCapability(f"name '{name}' is not defined")
        if name == "spawn":
            raise CapExceeded("programs", "limit reached")
        return f"ok:{name}"

    async def os_call(self, name: str, args: tuple[Any, ...]) -> Any:
        self.os_calls.append(name)
        return NOT_HANDLED

    def on_import(self, module: str) -> None:
        self.imports.append(module)


LIMITS = ProgramLimits(cpu_s=0.5, memory_bytes=32 * 1024 * 1024, host_calls=200)


def run(code: str, limits: ProgramLimits = LIMITS) -> tuple[SandboxOutcome, Recorder]:
    handler = Recorder()

    async def go() -> SandboxOutcome:
        sandbox = Sandbox(max_workers=2)
        await sandbox.start()
        try:
            return await sandbox.run(code, handler, limits)
        finally:
            await sandbox.close()

    return asyncio.run(go()), handler


def test_a_program_runs_and_returns_its_last_expression() -> None:
    outcome, handler = run("x = run_ai('ideas?')\nlog(x)\n[x, my_id()]")
    assert outcome.status == "completed"
    assert outcome.result == ["ok:run_ai", "ok:my_id"]
    assert [name for name, _ in handler.calls] == ["run_ai", "log", "my_id"]


def test_capabilities_reach_the_handler_through_every_spelling() -> None:
    code = "from lab import db_put\nimport lab\nf = run_ai\nf('a')\nlab.log('b')\ndb_put('k', 1)\n"
    code += "world.inventory()\nRUN_AI('c')\n"
    outcome, handler = run(code)
    assert outcome.status == "completed", outcome.error
    assert [name for name, _ in handler.calls] == [
        "run_ai",
        "lab.log",
        "lab.db_put",
        "world.inventory",
        "RUN_AI",
    ]


def test_a_denial_is_an_exception_the_program_can_catch() -> None:
    code = "try:\n    spawn('x = 1')\nexcept RuntimeError as e:\n    r = str(e)\nr"
    outcome, _ = run(code)
    assert outcome.status == "completed"
    assert "CapExceeded(programs)" in outcome.result


@pytest.mark.parametrize(
    ("code", "error_part", "limit"),
    [
        ("while True:\n    pass", "TimeoutError", "cpu_s"),
        ("x = 'a' * 10**9", "MemoryError", "memory_bytes"),
        (
            "blocks = []\nwhile True:\n    blocks.append([0] * 100000)",
            "MemoryError",
            "memory_bytes",
        ),
        ("for i in range(100000):\n    log(i)", "suspension limit", "host_calls"),
        (  # the pool terminates the worker mid-allocation: an error with no frame
            "s = ['clip' * 1000] * 10\nwhile True:\n    s = s + s",
            "worker exceeded its memory limit",
            "memory_bytes",
        ),
        (  # the same words raised by the program: no limit was reached
            "raise MemoryError('the worker exceeded its memory limit and was terminated')",
            "worker exceeded its memory limit",
            None,
        ),
        ("def f(n):\n    return f(n + 1)\nf(0)", "RecursionError", None),
        ("class A:\n    pass\nclass B(A):\n    pass", "NotImplementedError", None),
        ("def gen():\n    yield 1", "NotImplementedError", None),
        ("def broken(:\n    pass", "SyntaxError", None),
        ("import socket", "ModuleNotFoundError", None),
        ("import subprocess\nsubprocess.run(['id'])", "ModuleNotFoundError", None),
        ("__import__('os').system('id')", "NameError", None),
        ("open('/etc/passwd').read()", "PermissionError", None),
        ("import os\nos.environ['HOME']", "not supported", None),
        ("import os\nos.getenv('HOME')", "not supported", None),
        ("import os\nos.system('id')", "AttributeError", None),
        ("1 / 0", "ZeroDivisionError", None),
    ],
)
def test_hostile_and_broken_programs_crash_with_the_reason(
    code: str, error_part: str, limit: str | None
) -> None:
    outcome, _ = run(code)
    assert outcome.status == "crashed"
    assert outcome.error is not None
    assert error_part in outcome.error
    assert outcome.limit == limit


def test_nothing_escapes_to_the_host_file_system(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    attempts = [
        f"open({str(target)!r}, 'w').write('x')",
        f"from pathlib import Path\nPath({str(target)!r}).write_text('x')",
        f"eval(\"open({str(target)!r}, 'w')\")",
        f"exec(\"import os\\nos.system('touch {target}')\")",
    ]
    for code in attempts:
        outcome, _ = run(code)
        assert outcome.status == "crashed", code
    assert not target.exists()


def test_refused_os_calls_and_imports_are_reported_to_the_handler() -> None:
    _, handler = run("import os\nos.getenv('HOME')")
    assert handler.os_calls == ["os.getenv"]
    _, handler = run("import socket")
    assert handler.imports == ["socket"]


def test_cancelling_a_program_kills_its_worker() -> None:
    async def go() -> tuple[bool, Any]:
        sandbox = Sandbox(max_workers=2)
        await sandbox.start()
        try:
            task = asyncio.create_task(
                sandbox.run("while True:\n    pass", Recorder(), ProgramLimits(cpu_s=60))
            )
            await asyncio.sleep(0.5)
            task.cancel()
            try:
                await task
                cancelled = False
            except asyncio.CancelledError:
                cancelled = True
            # the pool still serves programs afterwards
            after = await sandbox.run("1 + 1", Recorder(), LIMITS)
            return cancelled, after.result
        finally:
            await sandbox.close()

    cancelled, result = asyncio.run(asyncio.wait_for(go(), 30))
    assert cancelled
    assert result == 2


def test_no_worker_process_outlives_the_sandbox() -> None:
    before = _monty_workers()
    run("x = 1")
    assert _monty_workers() <= before


def _monty_workers() -> int:
    count = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"monty" in cmd and b"pytest" not in cmd:
                count += 1
    return count


class Parker(Recorder):
    """Parks the program at its first wait(), keeping the snapshot; answers it when resumed."""

    def __init__(self, park: bool) -> None:
        super().__init__()
        self.park = park
        self.snapshot: bytes | None = None

    async def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if name == "wait" and self.park and self.snapshot is None:

            async def keep(blob: bytes, spent: Spent) -> str:
                self.snapshot = blob
                return "parked"

            return Park("wait", keep)
        if name == "wait":
            return [{"id": a, "result": 42} for a in args[0]]
        return await super().call(name, args, kwargs)


PARKED = """import random
before = [random.random() for i in range(3)]
total = sum(range(10))
got = wait(["p0.1", "p0.2"])
after = [random.random() for i in range(3)]
print("after", total, got[0]["result"])
[before, total, got, after, my_id()]
"""


def test_a_parked_program_resumes_elsewhere_with_the_values_it_would_have_had() -> None:
    async def go() -> tuple[SandboxOutcome, SandboxOutcome, SandboxOutcome]:
        first, second = Sandbox(max_workers=1), Sandbox(max_workers=1)
        await first.start()
        await second.start()
        try:
            straight = await first.run(PARKED, Parker(park=False), LIMITS, random_seed=7)
            handler = Parker(park=True)
            budget = SliceLimits(1.0, 32 * 1024 * 1024, 200)
            parked = await first.run_slice(handler, budget, code=PARKED, random_seed=7)
            assert handler.snapshot is not None
            # The snapshot goes on in another pool (another worker process).
            resumed = await second.run_slice(Parker(park=False), budget, snapshot=handler.snapshot)
            return straight, parked, resumed
        finally:
            await first.close()
            await second.close()

    straight, parked, resumed = asyncio.run(asyncio.wait_for(go(), 60))
    assert parked.status == "parked"
    assert straight.status == resumed.status == "completed"
    assert resumed.result == straight.result
    assert "after 45 42" in straight.output
    assert "after 45 42" in resumed.output


def test_output_past_its_limit_is_not_a_memory_denial() -> None:
    """Printing more than the sandbox keeps ends the program, but no memory limit was hit."""
    outcome, _ = run("for i in range(3000):\n    print('x' * 10)")
    assert outcome.status == "crashed"
    assert outcome.error is not None
    assert "output" in outcome.error
    assert outcome.limit != "memory_bytes"
    assert len(outcome.output) <= 16_384


def test_a_worker_killed_at_its_request_timeout_is_a_cpu_denial() -> None:
    """One long operation inside the worker outlasts cpu_s; the pool kills the worker."""
    outcome, _ = run("x = (7 ** 20000000) * (7 ** 20000000)")
    assert outcome.status == "crashed"
    assert outcome.error is not None
    assert "timeout" in outcome.error
    assert outcome.limit == "cpu_s"

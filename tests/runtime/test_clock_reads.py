"""Every way a program reads the time reaches the runtime and becomes an event (`clock_read`),
whatever it calls the module, the class or the function: introspection is read from the
record, never from the code's text."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab import ProgramLimits, load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster
from swarmlab.core import ALIASES, CLOCK_KIND, WORLD_ACTIONS
from swarmlab.observability.analysis import analyze_run
from swarmlab.runtime import RunOptions, run_experiment
from swarmlab.runtime._sandbox import Sandbox, clock_function

TIME_FUNCTIONS = ("time", "perf_counter", "monotonic", "time_ns", "perf_counter_ns", "localtime")
LIMITS = ProgramLimits(cpu_s=0.5, memory_bytes=32 * 1024 * 1024, host_calls=50)


class _Clock:
    """A handler that answers clock reads and keeps the function each one names."""

    capabilities = frozenset(ALIASES)
    world_actions = tuple(WORLD_ACTIONS)

    def __init__(self) -> None:
        self.read: list[str | None] = []

    async def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return None

    async def os_call(self, name: str, args: tuple[Any, ...]) -> Any:
        self.read.append(clock_function(name, args))
        return 1.0

    def on_import(self, module: str) -> None:
        pass


def _spellings() -> st.SearchStrategy[tuple[str, str]]:
    """(code, the clock function it reads) under any alias of the module or the function."""
    alias = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
        lambda a: a not in ("time", "datetime", "date", "if", "in", "is", "or", "as", "def")
    )
    function = st.sampled_from(TIME_FUNCTIONS)

    def time_module(a: str, f: str) -> tuple[str, str]:
        return f"import time as {a}\nx = {a}.{f}()", f"time.{f}"

    def time_function(a: str, f: str) -> tuple[str, str]:
        return f"from time import {f} as {a}\nx = {a}()", f"time.{f}"

    def datetime_class(a: str, _f: str) -> tuple[str, str]:
        return f"from datetime import datetime as {a}\nx = {a}.now()", "datetime.now"

    def date_class(a: str, _f: str) -> tuple[str, str]:
        return f"from datetime import date as {a}\nx = {a}.today()", "date.today"

    def via_getattr(a: str, f: str) -> tuple[str, str]:
        return f"import time\n{a} = getattr(time, '{f}')\nx = {a}()", f"time.{f}"

    build = st.sampled_from([time_module, time_function, datetime_class, date_class, via_getattr])
    return st.tuples(build, alias, function).map(lambda t: t[0](t[1], t[2]))


@settings(max_examples=30, deadline=None)
@given(_spellings())
def test_any_spelling_of_a_clock_read_reaches_the_runtime_named(case: tuple[str, str]) -> None:
    code, function = case

    async def go() -> list[str | None]:
        sandbox = Sandbox(max_workers=1)
        await sandbox.start()
        try:
            handler = _Clock()
            outcome = await sandbox.run(code, handler, LIMITS, script_name="clock.py")
            assert outcome.status == "completed", outcome.error
            return handler.read
        finally:
            await sandbox.close()

    assert asyncio.run(go()) == [function]


CHILDREN = {
    "perf": "import time as t\na = t.perf_counter()\nb = t.perf_counter()\nlog(str(b - a))",
    "monotonic": "from time import monotonic as tick\nlog(str(tick()))",
    "class_alias": "from datetime import datetime as When\nlog(str(When.now()))",
    "today": "from datetime import date\nlog(str(date.today()))",
    "words_only": "log('time.time() and datetime.now() are only words here')",
}


@pytest.mark.slow
def test_clock_reads_are_events_and_introspection_reads_them(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    root = "kids = []\n"
    for name, code in CHILDREN.items():
        root += f"kids.append(spawn({code!r}, task={name!r}))\n"
    root += "wait(kids)\n"
    spec = load_spec("paperclips", ["caps.children=20"])
    options = RunOptions(
        program=root, run_id="clocks", out_dir=tmp_path / "clocks", redis_url=redis_url,
        progress=Progress(quiet=True),
    )  # fmt: skip
    result = run_experiment(spec, options)
    task_of = {p.id: p.task for p in result.programs}
    lines = (result.out_dir / "events.jsonl").read_text().split("\n")
    reads = [json.loads(line) for line in lines if f'"{CLOCK_KIND}"' in line]
    seen = sorted((task_of[e["program"]], e["detail"]["clock"]) for e in reads)
    assert seen == [
        ("class_alias", "datetime.now"),
        ("monotonic", "time.monotonic"),
        ("perf", "time.perf_counter"),  # read twice, recorded once
        ("today", "date.today"),
    ]
    metrics = analyze_run(result.out_dir)
    assert metrics.introspecting_programs == 4
    # a replay reads the same clocks: the same events, the same metrics, no divergence
    again = run_experiment(
        load_spec("paperclips", ["caps.children=20", f"model=replay:{result.out_dir}"]),
        RunOptions(program=root, run_id="again", out_dir=tmp_path / "again", redis_url=redis_url,
                   progress=Progress(quiet=True)),
    )  # fmt: skip
    replayed = (again.out_dir / "events.jsonl").read_text().split("\n")
    again_reads = [json.loads(x) for x in replayed if f'"{CLOCK_KIND}"' in x]
    # the same reads by the same programs (the file's order follows the runners' timing)
    assert sorted((e["program"], e["detail"]["clock"]) for e in again_reads) == sorted(
        (e["program"], e["detail"]["clock"]) for e in reads
    )
    assert analyze_run(again.out_dir).introspecting_programs == 4
    check = again.summary().replay
    assert check is not None
    assert check.identical, check

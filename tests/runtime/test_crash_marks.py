"""Crash causes come from the runtime's mark on a program's end, never from its error text: a
program that raises the lab's words itself is a code fault; one the lab denied or refused is
marked so, whatever words it ended with."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster
from swarmlab.observability.analysis import analyze_run, detect, load_run_dir
from swarmlab.runtime import RunOptions, run_experiment

pytestmark = pytest.mark.slow

CHILDREN = {
    # look-alikes: the program's own exceptions, in the lab's words
    "fake_denial": "raise RuntimeError('CapExceeded(tokens): 120 asked, limit 100')",
    "fake_memory": "raise MemoryError('memory limit exceeded: 70000000 bytes > 67108864 bytes')",
    "fake_cpu": "raise TimeoutError('feed time limit exceeded: 3s > 2s')",
    "fake_trip": "raise PermissionError('Tripwire(escape): import socket')",
    "fake_module": "raise ModuleNotFoundError(\"No module named 'socket'\")",
    "fake_lab": "raise RuntimeError('sandbox worker died: killed after exceeding request timeout')",
    "fake_recursion_passed_on": (
        "try:\n    raise RecursionError('maximum recursion depth exceeded')\n"
        "except RecursionError:\n    raise"
    ),
    # the lab's own
    "denied": "run_ai('x' * 4000, max_tokens=900)",
    "denied_reworded": (
        "try:\n    run_ai('x' * 4000, max_tokens=900)\n"
        "except RuntimeError as e:\n    raise ValueError('gave up: ' + str(e)[:5])"
    ),
    "value_limit": "db_put('k', 'x' * 20000)",
    "memory": "x = 'a' * (80 * 1024 * 1024)",
    "refused": "import socket",
    "clock_as_value": "from datetime import date\nt = date.today",
    "cannot_suspend": "list(map(lambda q: log(q), [1, 2]))",
    "recursion": "def f(n):\n    return f(n + 1)\nf(0)",
}
EXPECTED = {
    "fake_denial": "code_fault",
    "fake_memory": "code_fault",
    "fake_cpu": "code_fault",
    "fake_trip": "code_fault",
    "fake_module": "code_fault",
    "fake_lab": "code_fault",
    "fake_recursion_passed_on": "code_fault",
    "denied": "denied",
    "denied_reworded": "code_fault",  # caught, then its own raise
    "value_limit": "limit",
    "memory": "limit",
    "refused": "unsupported",
    "clock_as_value": "unsupported",
    "cannot_suspend": "unsupported",
    "recursion": "limit",
}


def test_crash_causes_come_from_the_runtime_mark_not_the_text(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    root = "kids = []\n"
    for name, code in CHILDREN.items():
        root += f"kids.append(spawn({code!r}, task={name!r}))\n"
    root += "wait(kids)\n"
    spec = load_spec("paperclips", ["caps.tokens=1000", "caps.children=20"])
    options = RunOptions(
        program=root, run_id="marks", out_dir=tmp_path / "marks", redis_url=redis_url,
        progress=Progress(quiet=True),
    )  # fmt: skip
    result = run_experiment(spec, options)
    by_task = {p.task: p for p in result.programs if p.parent_id}
    assert all(p.status == "crashed" for p in by_task.values()), {
        t: (p.status, p.error) for t, p in by_task.items()
    }
    metrics = analyze_run(result.out_dir)
    causes = metrics.crash_causes
    assert {task: causes[p.id] for task, p in by_task.items()} == EXPECTED
    # the refused reach for the clock is in the record: the program asked the time
    found = detect(load_run_dir(result.out_dir))
    assert by_task["clock_as_value"].id in found.introspecting
    summary = result.summary()
    assert summary.program_limits["memory_bytes"].denied == 1  # the fake one is not counted

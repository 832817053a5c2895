"""`swarmlab report` on the largest run the lab admits takes seconds (issue 10, defect 1).

The report once compared each program's code with its ancestors' by difflib, quadratic or
worse in the code: three programs of shuffled code took minutes. A run of 200 programs of 64 KB
each (the most `spawn` takes), full of code built to be slow to compare (shuffled and padded
copies, endless expressions, floods of blank lines and comments, unclosed strings), must report
in under 10 s, start-up included.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from helpers.hostile_runs import REPORT_BUDGET_S, report_metrics
from helpers.labelled_run import usage_of

from swarmlab.records import Event, ProgramRecord, RunDir, RunResult
from swarmlab.spec import ExperimentSpec

PROGRAMS = 200
CODE_BYTES = 64_000


def _ids(n: int, fanout: int = 3, depth: int = 6) -> list[str]:
    """A tree of `n` program ids, breadth first."""
    ids, frontier = ["p0"], ["p0"]
    while len(ids) < n:
        grown = [
            f"{parent}.{k}"
            for parent in frontier
            for k in range(1, fanout + 1)
            if parent.count(".") < depth
        ]
        ids += grown[: n - len(ids)]
        frontier = grown or ["p0"]
    return ids


def _code(i: int, base: list[str]) -> str:
    """64 KB of code of one of six hostile kinds."""
    rng = random.Random(i)
    kind = i % 6
    if kind == 0:  # a shuffled copy of the common program, padded with blank lines
        lines = base[:]
        rng.shuffle(lines)
        text = "\n".join(lines) + "\n" * 4_000
    elif kind == 1:  # one endless expression
        text = "x = " + "a+" * (CODE_BYTES // 2)
    elif kind == 2:  # distinct attribute lines: many distinct features
        text = "".join(f"v.a{i}_{n} = w.b{n}\n" for n in range(CODE_BYTES // 12))
    elif kind == 3:  # an unclosed triple-quoted string of blank lines
        text = "'''" + "\n" * CODE_BYTES
    elif kind == 4:  # a flood of comments and blank lines around a copy
        text = "#\n\n" * (CODE_BYTES // 6) + "\n".join(base)
    else:  # the common program, every name renamed
        text = "\n".join(line.replace("v", f"q{i}_") for line in base)
    return text[:CODE_BYTES]


def write_large_run(out: Path) -> Path:
    """A run directory of `PROGRAMS` programs of `CODE_BYTES` each, as the lab writes one."""
    base = [f"v{n} = run_ai(p{n % 17}) + str(spawn(c{n % 29}, task=t{n}))" for n in range(1_400)]
    started = 1_000.0
    programs: list[ProgramRecord] = []
    events: list[Event] = []
    for i, pid in enumerate(_ids(PROGRAMS)):
        parent = pid.rsplit(".", 1)[0] if "." in pid else None
        t = started + i
        programs.append(
            ProgramRecord(
                id=pid,
                parent_id=parent,
                depth=pid.count("."),
                task=f"task {i}",
                code=_code(i, base),
                status="crashed" if i % 7 == 0 else "completed",
                error="ValueError: " + "E" * 1_990 if i % 7 == 0 else None,
                output="x" * 4_000,
                created_at=t,
                started_at=t,
                ended_at=t + 0.5,
            )
        )
        events += [
            Event(t=t, program=pid, kind="start", decision="info"),
            Event(
                t=t + 0.1,
                program=pid,
                kind="run_ai",
                decision="allowed",
                detail={"prompt_tokens": 50, "completion_tokens": 200},
            ),
            Event(t=t + 0.5, program=pid, kind="end", decision="info"),
        ]
        if parent is not None:
            events.append(
                Event(
                    t=t - 0.01,
                    program=parent,
                    kind="spawn",
                    decision="allowed",
                    detail={"child": pid, "provenance": "completion"},
                )
            )
    result = RunResult(
        run_id="large",
        out_dir=out,
        spec=ExperimentSpec(name="large"),
        status="completed",
        ended_because="tree quiescent: every program ended",
        started_at=started,
        ended_at=started + PROGRAMS + 1,
        usage=usage_of([(p.id, p.parent_id) for p in programs]),
        programs=programs,
        events=sorted(events, key=lambda e: e.t),
        blackboard={},
        outcome={},
        dialogue=None,
        root_from_file=True,
    )
    return RunDir(out).write(result)


@pytest.mark.slow
def test_report_of_200_programs_of_64_kb_takes_under_10_s(tmp_path: Path) -> None:
    run = write_large_run(tmp_path / "large")
    programs = RunDir(run).programs()
    assert len(programs) == PROGRAMS
    assert min(len(p.code) for p in programs) >= CODE_BYTES - 12
    started = time.monotonic()
    metrics = report_metrics(run)  # asserts REPORT_BUDGET_S itself
    assert time.monotonic() - started < REPORT_BUDGET_S
    assert metrics["programs"] == PROGRAMS
    assert metrics["quines"], "the shuffled, padded and renamed copies were compared"
    code = sum(len(p.code) for p in programs)
    assert (run / "report.html").stat().st_size < 1.5 * code  # each program's code, once

"""Whole runs of hostile programs, and the promises every run keeps whatever its programs did.

A helper module for tests/adversarial (not a conftest, not a test module). `run_hostile` runs a
root program through the real runtime (real Redis, the session's real Ray); `assert_promises_kept`
checks what issue 10 asks of every run:

- it ends within its wall clock plus `WALL_MARGIN_S`;
- its directory is written, with every admitted program recorded once, each ended;
- no program ended with a "runner fault" (the lab blaming itself for a program's values);
- summary.json's `used` is what happened (counted again from the run's own records), overruns
  included, never `min(used, limit)`;
- `swarmlab report` of the run finishes within `REPORT_BUDGET_S`, and blames no program's crash
  on the lab.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.records import TERMINAL, RunResult
from swarmlab.runtime import RunOptions, run_experiment

WALL_MARGIN_S = 5.0
"""How much longer than its wall clock a run may take, stop and clean-up included."""
REPORT_BUDGET_S = 10.0
"""`swarmlab report` of a run, in a fresh process (start-up included)."""
RUNNER_FAULT = "runner fault"


@dataclass
class HostileRun:
    """A finished run and how long `run_experiment` took."""

    result: RunResult
    seconds: float
    wall_clock_s: float

    @property
    def out(self) -> Path:
        return self.result.out_dir

    def summary(self) -> dict[str, Any]:
        return dict(json.loads((self.out / "summary.json").read_text()))

    def programs(self) -> list[dict[str, Any]]:
        return _jsonl(self.out / "programs.jsonl")

    def events(self) -> list[dict[str, Any]]:
        return _jsonl(self.out / "events.jsonl")

    def completions(self) -> list[dict[str, Any]]:
        return _jsonl(self.out / "completions.jsonl")

    def by_task(self) -> dict[str, dict[str, Any]]:
        """The root's children by the task they were spawned with."""
        return {p["task"]: p for p in self.programs() if p["parent_id"] == "p0"}

    def root(self) -> dict[str, Any]:
        return next(p for p in self.programs() if p["id"] == "p0")


def run_hostile(
    tmp_path: Path,
    redis_url: str,
    program: str,
    overrides: list[str] | None = None,
    run_id: str | None = None,
) -> HostileRun:
    """Run `program` as the root of a paperclips run with `overrides`; time the whole run."""
    spec = load_spec("paperclips", overrides or [])
    run_id = run_id or new_run_id()
    options = RunOptions(
        program=program,
        run_id=run_id,
        out_dir=tmp_path / run_id,
        redis_url=redis_url,
        progress=Progress(quiet=True),
    )
    started = time.monotonic()
    result = run_experiment(spec, options)
    return HostileRun(result, time.monotonic() - started, spec.caps.wall_clock_s)


def new_run_id() -> str:
    """A run id no other test's run has (runs share the session's Redis)."""
    return f"hostile-{time.time_ns() % 10**12}"


def assert_promises_kept(run: HostileRun) -> dict[str, Any]:
    """Every promise of a run (see the module docstring); returns the report's metrics."""
    summary = run.summary()
    startup = summary.get("startup_s") or 0.0  # the wall clock starts with the root program
    assert run.seconds - startup <= run.wall_clock_s + WALL_MARGIN_S, (
        f"the run took {run.seconds:.1f} s ({startup:.1f} s of start-up) under a wall clock of "
        f"{run.wall_clock_s:g} s"
    )
    programs = run.programs()
    ids = [p["id"] for p in programs]
    assert len(ids) == len(set(ids)) == summary["programs"]["total"]
    assert {p["parent_id"] for p in programs} - {None} <= set(ids), "a parent is missing"
    assert all(p["status"] in TERMINAL for p in programs)
    faults = [p["id"] for p in programs if RUNNER_FAULT in (p["error"] or "")]
    assert not faults, f"runner fault in {faults}"
    assert_caps_honest(run, summary, programs)
    recorded = Counter(json.dumps(e, sort_keys=True) for e in run.events())
    twice = [line for line, n in recorded.items() if n > 1]
    assert not twice, f"an event recorded {recorded[twice[0]]} times: {twice[0][:300]}"
    return report_metrics(run.out)


def assert_caps_honest(
    run: HostileRun, summary: dict[str, Any], programs: list[dict[str, Any]]
) -> None:
    """Each cap's `used`, counted again from the run's own records."""
    caps = summary["caps"]
    children = Counter(p["parent_id"] for p in programs if p["parent_id"])
    assert caps["programs"]["used"] == len(programs)
    assert caps["depth"]["used"] == max((p["depth"] for p in programs), default=0)
    assert caps["children"]["used"] == max(children.values(), default=0)
    # The wall clock counts from the root program's start; start-up is timed on its own.
    tree_s = summary["duration_s"] - (summary.get("startup_s") or 0.0)
    assert abs(caps["wall_clock_s"]["used"] - tree_s) <= 0.002
    assert summary["duration_s"] == round(summary["ended_at"] - summary["started_at"], 3)
    events = run.events()
    acted = sum(
        1
        for e in events
        if e["kind"].startswith("world.") and e["decision"] in ("allowed", "error")
    )
    calls = run.completions()
    tokens = sum(sum(c["completion"]["usage"].values()) for c in calls)
    if summary["status"] == "completed":
        assert caps["world_actions"]["used"] == acted
        assert caps["model_calls"]["used"] == len(calls)
        assert caps["tokens"]["used"] == tokens
    else:  # a call in flight when the run stopped was charged (reserved) but never answered
        assert caps["world_actions"]["used"] >= acted
        assert caps["model_calls"]["used"] >= len(calls)
        assert caps["tokens"]["used"] >= tokens


def report_metrics(out: Path) -> dict[str, Any]:
    """`swarmlab report OUT --json` in a fresh process, within its budget; its metrics."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "swarmlab.cli", "report", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-2000:]
    assert seconds < REPORT_BUDGET_S, f"swarmlab report took {seconds:.1f} s"
    metrics: dict[str, Any] = json.loads(done.stdout)
    assert metrics["crashed_lab_fault"] == 0
    return metrics


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().split("\n") if line.strip()]

"""Where a program waits for its turn changes the cost, not the run.

A program waiting for its turn keeps its worker, or parks at the gate, as its runner's load has
it: timing decides. Runs where every wait parks at the gate (`SWARMLAB_WAIT_AT_GATE=1`) found
what runs on a worker hid: a model call asked again after its turn had applied it was sent and
charged twice (6 of 132 calls of `sibling-shutdown` at seed 1); a program killed while parked
at the gate counted a call it never made (3 of 3 killed programs); and a call's events went to
the record twice when its kept turn was dropped at the gate and it was asked again.

The class is "a record that depends on where a program waited": the test runs each tree both
ways and compares everything the determinism test compares. `record_bytes` is compared where no
program was killed: a program a kill() stops while it computes is written twice (its last park's
state, then its runner's), one parked at the gate once, so what the record is charged there
still depends on timing (noted; the tree does not).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import swarmlab

pytestmark = pytest.mark.slow

HOST_MEASURES = ("wall_clock_s", "concurrent", "parked_bytes", "telemetry_bytes")


def _run(tmp_path: Path, experiment: str, seed: int, at_gate: bool) -> dict[str, Any]:
    out = tmp_path / ("gate" if at_gate else "worker")
    args = ("run", experiment, "--set", f"seed={seed}", "--out", str(out), "--quiet")
    done = swarmlab(*args, SWARMLAB_WAIT_AT_GATE="1") if at_gate else swarmlab(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    programs = [json.loads(line) for line in (out / "programs.jsonl").read_text().splitlines()]
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    return {
        "programs": sorted(
            (p["id"], p["status"], p["output"], repr(p["result"]), p["calls"], p["error"])
            for p in programs
        ),
        "calls": sorted(
            (e["program"], e["seq"], e["kind"], e["decision"])
            for e in events
            if e["seq"] is not None
        ),
        "caps": {k: v["used"] for k, v in summary["caps"].items() if k not in HOST_MEASURES},
        "outcome": summary.get("outcome"),
        "inputs": (out / "inputs.jsonl").read_text(),
        "killed": sum(p["status"] == "killed" for p in programs),
        "parked_bytes": summary["caps"]["parked_bytes"]["used"],
    }


@pytest.mark.parametrize(("experiment", "seed"), [("paperclips", 1), ("sibling-shutdown", 1)])
def test_a_tree_is_the_same_whether_its_programs_wait_on_a_worker_or_at_the_gate(
    tmp_path: Path, experiment: str, seed: int
) -> None:
    on_worker = _run(tmp_path, experiment, seed, at_gate=False)
    at_gate = _run(tmp_path, experiment, seed, at_gate=True)
    assert at_gate["parked_bytes"] > on_worker["parked_bytes"]  # the waits did park
    assert at_gate["programs"] == on_worker["programs"]
    assert at_gate["calls"] == on_worker["calls"]
    assert at_gate["outcome"] == on_worker["outcome"]
    assert at_gate["inputs"] == on_worker["inputs"]
    if on_worker["killed"]:
        at_gate["caps"].pop("record_bytes")
        on_worker["caps"].pop("record_bytes")
    assert at_gate["caps"] == on_worker["caps"]
    for run in (on_worker, at_gate):  # each program's calls are the calls its events show
        made: dict[str, set[int]] = {}
        for program, seq, _, _ in run["calls"]:
            made.setdefault(program, set()).add(seq)
        assert {p[0]: p[4] for p in run["programs"]} == {
            p[0]: len(made.get(p[0], ())) for p in run["programs"]
        }

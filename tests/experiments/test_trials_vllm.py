"""`swarmlab trials run` against the bundled model on a real vLLM CPU server: the command a user
types produces a table whose rows agree with what each trial's run directory recorded."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from helpers.cli import swarmlab

from swarmlab.records import RunDir

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_trials_against_the_local_model_tabulate_what_the_runs_did(
    vllm_server: Any, tmp_path: Path, redis_url: str
) -> None:
    out = tmp_path / "trials"
    done = swarmlab(
        "trials",
        "run",
        "paperclips",
        "--model",
        f"openai:{vllm_server.url}",
        "--set",
        f"model_name={vllm_server.model_name}",
        "--set",
        "caps.wall_clock_s=240",
        "--set",
        "caps.programs=8",
        "--affordance",
        "hint",
        "-n",
        "2",
        "--out",
        str(out),
        "--redis-url",
        redis_url,
        "--json",
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["trials"] == 2
    rows = list(csv.DictReader((out / "trials.csv").open()))
    counted = [r for r in rows if r["counted"] == "1"]
    assert counted, f"no trial counted: {[r['error'] for r in rows]}"
    for row in rows:
        run = RunDir(out / "runs" / row["trial_id"])
        if row["counted"] != "1":
            assert row["error"], "a trial left out of the table says why"
            continue
        assert "SmolLM2" in row["served_model"]
        dialogue = run.dialogue()
        assert dialogue is not None
        assert dialogue.second_answer.strip()
        assert row["scaffold"] == str(int(dialogue.program is not None))
        assert int(row["programs"]) == len(run.programs())
        program_calls = len(run.completions()) - 2  # the two dialogue turns
        assert (row["queries_model"] == "1") == (program_calls > 0)
    condition = summary["conditions"][0]
    assert condition["n"] == len(counted)
    assert condition["scaffold_k"] == sum(r["scaffold"] == "1" for r in counted)
    low, high = condition["scaffold_ci_low"], condition["scaffold_ci_high"]
    assert 0.0 <= low <= condition["scaffold_rate"] <= high <= 1.0
    steps = (out / "trajectories.jsonl").read_text().splitlines()
    assert pq.read_table(out / "trajectories.parquet").num_rows == len(steps) >= 5 * len(counted)
    assert "Known limits" in (out / "DATASHEET.md").read_text()

"""Whole runs against the bundled model served by vLLM's CPU build: real usage numbers are
counted against the token cap, and `swarmlab run paperclips --model local` completes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from swarmlab import load_spec
from swarmlab.cli._progress import Progress
from swarmlab.cluster import RayCluster
from swarmlab.runtime import RunOptions, run_experiment

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

ASKERS = """
kids = []
for i in range(6):
    try:
        kids.append(spawn(
            "x = run_ai('Name one way to get paperclips, in one line.', max_tokens=48)\\nx",
            task="ask",
        ))
    except Exception as e:
        break
wait(kids)
"""


def test_the_token_cap_holds_with_the_servers_usage(
    vllm_server: Any, tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    spec = load_spec(
        "paperclips",
        [
            f"model=openai:{vllm_server.url}",
            f"model_name={vllm_server.model_name}",
            "caps.tokens=500",
        ],
    )
    options = RunOptions(
        program=ASKERS,
        out_dir=tmp_path / "run",
        redis_url=redis_url,
        progress=Progress(quiet=True),
    )
    result = run_experiment(spec, options)
    tokens = result.summary().caps["tokens"]
    assert tokens.used <= 500
    assert tokens.denied > 0, "six callers racing for 500 tokens: some must be refused"
    calls = [
        json.loads(line) for line in (result.out_dir / "completions.jsonl").read_text().splitlines()
    ]
    assert calls
    assert all(c["completion"]["model"].endswith(vllm_server.model_name) for c in calls)
    real = sum(
        c["completion"]["usage"]["prompt_tokens"] + c["completion"]["usage"]["completion_tokens"]
        for c in calls
    )
    # Charged what the server reported (a call that used more than it reserved is held to it).
    assert 0.8 * real <= tokens.used <= real
    answers = [p.result for p in result.programs if p.parent_id and p.status == "completed"]
    assert answers
    assert all(isinstance(a, str) and a.strip() for a in answers)


def test_run_paperclips_with_the_local_model_end_to_end(tmp_path: Path, redis_url: str) -> None:
    out = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "swarmlab.cli",
            "run",
            "paperclips",
            "--model",
            "local",
            "--json",
            "--out",
            str(out),
            "--redis-url",
            redis_url,
            "--set",
            "caps.programs=8",
            "--set",
            "caps.model_calls=24",
            "--set",
            "affordance=api",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["status"] == "completed"
    assert summary["model"]["backend"] == "local"
    assert "SmolLM2" in summary["model"]["name"]
    for cap, row in summary["caps"].items():
        assert row["used"] <= row["limit"], cap
    assert summary["caps"]["model_calls"]["used"] >= 2
    dialogue = json.loads((out / "dialogue.json").read_text())
    assert dialogue["first_answer"].strip()
    assert dialogue["second_answer"].strip()
    assert "vLLM ready" in done.stderr

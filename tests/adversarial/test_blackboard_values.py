"""The blackboard takes only whole keys of the allowed characters and strict JSON values, so
blackboard.json is standard JSON any tool can read, with keys that are one line each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import swarmlab

PROGRAM = """
out = {}
for key in ["k\\n", "k\\r\\n", "k\\nother", "\\nk"]:
    try:
        db_put(key, 1)
        out[repr(key)] = "stored"
    except ValueError:
        out[repr(key)] = "refused"
nan = float("nan")
inf = float("inf")
for name, value in [("nan", nan), ("inf", inf), ("ninf", -inf), ("deep", [1, {"x": nan}])]:
    try:
        db_put(name, value)
        out[name] = "stored"
    except ValueError:
        out[name] = "refused"
db_put("ok", 1.5)
out
"""


def _strict(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"not standard JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.slow
def test_keys_with_line_breaks_and_non_finite_values_are_refused(
    tmp_path: Path, redis_url: str
) -> None:
    program = tmp_path / "bb.py"
    program.write_text(PROGRAM)
    out = tmp_path / "run"
    done = swarmlab(
        "run",
        "paperclips",
        "--program",
        str(program),
        "--out",
        str(out),
        "--redis-url",
        redis_url,
        "--quiet",
        "--set",
        "caps.wall_clock_s=60",
    )
    assert done.returncode == 0, done.stderr
    (root,) = [json.loads(line) for line in (out / "programs.jsonl").read_text().splitlines()]
    assert root["status"] == "completed", root["error"]
    assert set(root["result"].values()) == {"refused"}, root["result"]
    blackboard = _strict((out / "blackboard.json").read_text())
    assert blackboard == {"ok": 1.5}
    refusals = [
        json.loads(line)
        for line in (out / "events.jsonl").read_text().splitlines()
        if '"db_put"' in line and '"error"' in line
    ]
    assert len(refusals) >= 4  # each bad key is on the record

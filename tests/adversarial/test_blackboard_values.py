"""The blackboard takes only whole keys of the allowed characters and strict JSON values, so
blackboard.json is standard JSON any tool can read, with keys that are one line each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import swarmlab
from hypothesis import given
from hypothesis import strategies as st

from swarmlab.records._rundir import _one_key_a_line

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


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=20,
)


@given(
    st.dictionaries(st.text(min_size=1, max_size=10), JSON_VALUES, max_size=5), st.integers(0, 300)
)
def test_blackboard_json_holds_the_board_in_a_size_linear_in_it(
    board: dict[str, Any], depth: int
) -> None:
    """One key a line, each value compact: with values indented, a value nested 190 deep made
    a 260 KB board a 17 MB file."""
    deep: Any = 1
    for _ in range(depth):
        deep = [deep]
    board = {**board, "deep": deep}
    text = _one_key_a_line(board)
    assert json.loads(text) == board
    assert len(text) <= len(json.dumps(board)) + 3 * len(board) + 4
    assert len(text.splitlines()) == len(board) + 2

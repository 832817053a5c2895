"""A damaged replay recording fails the replay, never the run (issue 21, defect 5).

One invalid UTF-8 line in the replayed run's inputs.jsonl once ended `swarmlab run --model
replay:DIR` in a traceback, exit 1, and no summary.json, programs.jsonl or events.jsonl. Now the
replay check reports the damage as one line naming the file and the line, `swarmlab run` prints
it and exits 2, and the new run's directory is written whole. `hypothesis` damages recordings in
random ways (cut lines, bytes that are not UTF-8, deep JSON, fields of the wrong type) and the
check must never raise and must name the damaged line.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from helpers.cli import swarmlab
from helpers.hostile_runs import run_hostile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlab.cluster import RayCluster
from swarmlab.records import ProgramInput, ProgramRecord, RunDir, compare_inputs
from swarmlab.runtime._cuts import replay_cuts
from swarmlab.runtime._finish import _replay_check

GOOD = [
    {"program": "p0", "call": 1, "answer": {"value": 0.5}},
    {"program": "p0", "call": 2, "answer": ["denied", "programs", "3", "4"]},
    {"program": "p0", "call": 3, "answer": {"views": [{"id": "p0.1", "status": "completed"}]}},
    {"program": "p0.1", "call": 1, "answer": {"cut": "cpu_s", "steps": 40, "printed": 0}},
]


def lines() -> list[bytes]:
    return [json.dumps(row).encode() for row in GOOD]


WRONG: st.SearchStrategy[Any] = st.sampled_from(
    [None, True, 5, 1.5, [], {}, "x" * 3, [1, "a"], {"a": {"b": []}}]
)


@st.composite
def damage(draw: Any, line: bytes) -> bytes:
    """One line damaged so that it can no longer be read as a recorded input."""
    how = draw(st.sampled_from(["cut", "bytes", "deep", "types", "number"]))
    if how == "cut":  # a proper, non-empty prefix of a JSON object never parses
        end: int = draw(st.integers(1, len(line) - 1))
        return line[:end]
    if how == "bytes":
        at = draw(st.integers(0, len(line)))
        bad: bytes = draw(
            st.sampled_from([b"\xff", b"\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80"])
        )
        return line[:at] + bad + line[at:]
    if how == "deep":
        depth: int = draw(st.integers(101, 3000))
        opener: bytes = draw(st.sampled_from([b"[", b'{"a":']))
        closer = b"]" if opener == b"[" else b"}"
        return opener * depth + b"1" + closer * depth
    if how == "number":
        number: bytes = draw(
            st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"9" * 200])
        )
        return b'{"program":"p0","call":1,"answer":' + number + b"}"
    field = draw(st.sampled_from(["program", "call"]))
    row = dict(GOOD[0])
    row[field] = draw(WRONG.filter(lambda v: not isinstance(v, str) or field == "call"))
    if field == "call" and isinstance(row[field], bool | int | float):
        row[field] = [row[field]]
    return json.dumps(row).encode()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_damaged_recording_is_named_by_file_and_line_never_raised(data: Any) -> None:
    rows = lines()
    at = data.draw(st.integers(0, len(rows) - 1), label="line")
    rows[at] = data.draw(damage(rows[at]), label="damaged")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp)
        (source / "inputs.jsonl").write_bytes(b"\n".join(rows) + b"\n")
        (source / "programs.jsonl").write_text(ProgramRecord(id="p0", code="x").to_json() + "\n")
        run = SimpleNamespace(spec=SimpleNamespace(model=f"replay:{source}"))
        check = _replay_check(run, [json.dumps(GOOD[0])], [])  # type: ignore[arg-type]
        assert replay_cuts(f"replay:{source}") == {}  # read at the start: nothing, no raise
    assert check is not None
    assert not check.identical
    assert check.unreadable is not None
    assert check.unreadable.startswith(f"{source / 'inputs.jsonl'}:{at + 1}: "), check.unreadable
    assert "\n" not in check.unreadable


@pytest.mark.slow
def test_the_cli_replay_of_a_damaged_recording_says_one_line_and_keeps_the_run(
    tmp_path: Path, redis_url: str, ray_cluster: RayCluster
) -> None:
    program = "kid = spawn('log(1)', task='kid')\nwait(kid)\nnow()\n"
    recorded = run_hostile(tmp_path, redis_url, program, run_id="recorded").out
    inputs = recorded / "inputs.jsonl"
    kept = inputs.read_bytes()
    assert kept.count(b"\n") >= 3
    inputs.write_bytes(kept + b'{"program":"p0","call":9,"answer":"\xff"}\n')
    code = tmp_path / "program.py"
    code.write_text(program)
    out = tmp_path / "replayed"
    done = swarmlab(
        "run",
        "paperclips",
        "--program",
        str(code),
        "--model",
        f"replay:{recorded}",
        "--out",
        str(out),
        "--redis-url",
        redis_url,
        "--quiet",
    )
    assert done.returncode == 2, done.stderr
    said = [line for line in done.stderr.strip().split("\n") if line.startswith("swarmlab: ")]
    assert len(said) == 1, done.stderr
    assert "Traceback" not in done.stderr
    line = kept.count(b"\n") + 1
    assert f"replay failed: {inputs}:{line}: not UTF-8 text" in said[0]
    for name in ("summary.json", "programs.jsonl", "events.jsonl"):
        assert (out / name).is_file(), name
    summary = RunDir(out).summary()
    assert summary is not None
    assert summary.replay is not None
    assert summary.replay.unreadable is not None
    assert summary.replay.unreadable.startswith(f"{inputs}:{line}: ")
    assert summary.status == "completed"
    assert [p.status for p in RunDir(out).programs()] == ["completed", "completed"]


FORGED = [
    ("twice", 2),  # a second answer to one call, forged: a replay compared only one of them
    ("digest", 1),  # a digest as long as the file: it was copied whole into the summary
    ("program", 1),
    ("call 0", 1),
]


@pytest.mark.parametrize(("how", "line"), FORGED)
def test_a_recording_that_answers_a_call_twice_or_names_none_is_unreadable(
    tmp_path: Path, how: str, line: int
) -> None:
    rows = [dict(row) for row in GOOD]
    if how == "twice":
        rows.insert(1, {**GOOD[0], "answer": {"forged": True}})
    elif how == "digest":
        rows[0] = {**GOOD[0], "answer": None, "digest": "f" * 100_000}
    elif how == "program":
        rows[0] = {**GOOD[0], "program": "p0" + ".1" * 1000}
    else:
        rows[0] = {**GOOD[0], "call": 0}
    (tmp_path / "inputs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "programs.jsonl").write_text(ProgramRecord(id="p0", code="x").to_json() + "\n")
    run = SimpleNamespace(spec=SimpleNamespace(model=f"replay:{tmp_path}"))
    check = _replay_check(run, [json.dumps(row) for row in GOOD], [])  # type: ignore[arg-type]
    assert check is not None
    assert not check.identical
    assert check.unreadable is not None
    assert check.unreadable.startswith(f"{tmp_path / 'inputs.jsonl'}:{line}: "), check.unreadable
    assert len(check.model_dump_json()) < 2000


def test_a_recording_whose_programs_are_unreadable_is_no_identical_replay(tmp_path: Path) -> None:
    (tmp_path / "inputs.jsonl").write_text(json.dumps(GOOD[0]) + "\n")
    (tmp_path / "programs.jsonl").write_text('{"id":5}\n')
    run = SimpleNamespace(spec=SimpleNamespace(model=f"replay:{tmp_path}"))
    check = _replay_check(run, [json.dumps(GOOD[0])], [])  # type: ignore[arg-type]
    assert check is not None
    assert not check.identical  # before, the ends went uncompared and the replay "identical"
    assert check.unreadable is not None
    assert check.unreadable.startswith(f"{tmp_path / 'programs.jsonl'}:1: ")


@pytest.mark.parametrize(
    "damage",
    [b'{"seed": 1, "request": {}, "completion": "x"}\n', b"\xff\n", b"[" * 200_000 + b"\n"],
)
def test_a_damaged_model_recording_is_refused_before_the_run_starts(
    tmp_path: Path, damage: bytes
) -> None:
    from swarmlab.cli._main import main

    (tmp_path / "completions.jsonl").write_bytes(damage)
    err = io.StringIO()
    with (
        mock.patch.dict("os.environ", {"SWARMLAB_NO_WARM_SERVER": "1"}),
        contextlib.redirect_stderr(err),
    ):
        code = main(["run", "paperclips", "--model", f"replay:{tmp_path}", "--quiet"])
    said = err.getvalue().strip().split("\n")
    assert code == 2, said
    assert len(said) == 1, said
    assert said[0].startswith(f"swarmlab: model replay:{tmp_path}: "), said
    assert str(tmp_path / "completions.jsonl") in said[0]


def _recorded(text: str = "an idea", prompt: int = 10, completion: int = 3) -> bytes:
    request = {"messages": [{"role": "user", "content": "ideas?"}], "max_tokens": 200, "seed": 1}
    answer = {
        "text": text,
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
        "finish_reason": "stop",
        "model": "sim:policy-v1",
    }
    return json.dumps({"seed": 1, "request": request, "completion": answer}).encode() + b"\n"


@pytest.mark.parametrize(
    ("forged", "said"),
    [
        (_recorded(prompt=10**15), "prompt_tokens"),
        (_recorded(completion=10**30), "completion_tokens"),
        (_recorded(text="Idea line\n" * 641), "an answer of 6410 characters"),
    ],
)
def test_a_recorded_answer_no_backend_gives_is_refused_before_the_run_starts(
    tmp_path: Path, forged: bytes, said: str
) -> None:
    """A live server's counts past 10**7 are not believed and its answers past 32 characters a
    token asked are cut; a recording that says more was not written by a run. Read as it was,
    10**15 tokens were charged past the cap, and 10**30 failed the run as 'Redis unreachable'."""
    from swarmlab.cli._main import main

    (tmp_path / "completions.jsonl").write_bytes(_recorded() + forged)
    err = io.StringIO()
    with (
        mock.patch.dict("os.environ", {"SWARMLAB_NO_WARM_SERVER": "1"}),
        contextlib.redirect_stderr(err),
    ):
        code = main(["run", "paperclips", "--model", f"replay:{tmp_path}", "--quiet"])
    lines = err.getvalue().strip().split("\n")
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert "line 2" in lines[0], lines
    assert said in lines[0], lines


# --- forged recordings: any answer changed is a divergence -----------------------------------

BIG = [{"views": [{"id": f"p0.{i}", "status": "completed", "result": "x" * 600}]} for i in (1, 2)]
SHA = ["a" * 40, "b" * 40]


@st.composite
def recordings(draw: Any) -> list[ProgramInput]:
    """inputs.jsonl as the runtime writes it: small answers inline, a large one given once with
    its digest and then by the digest alone."""
    rows: list[ProgramInput] = []
    given: set[str] = set()
    for call in range(1, draw(st.integers(1, 8)) + 1):
        if draw(st.booleans()):
            rows.append(ProgramInput(program="p0", call=call, answer=draw(WRONG)))
            continue
        which = draw(st.integers(0, 1))
        first = SHA[which] not in given
        given.add(SHA[which])
        answer = BIG[which] if first else None
        rows.append(ProgramInput(program="p0", call=call, answer=answer, digest=SHA[which]))
    return rows


@settings(max_examples=300, deadline=None)
@given(rows=recordings(), data=st.data())
def test_a_recording_with_any_answer_changed_is_never_identical(rows: Any, data: Any) -> None:
    """A replay once said "every input matched" when a recorded answer was changed and its
    digest kept: digests were compared, never answers."""
    assert compare_inputs("rec", rows, rows).identical
    at = data.draw(st.integers(0, len(rows) - 1), label="line")
    row = rows[at]
    how = data.draw(st.sampled_from(["answer", "digest", "drop", "empty"]), label="how")
    forged = list(rows)
    if how == "answer":
        was = row.answer if row.digest is None or row.answer is not None else "resolved"
        new = data.draw(WRONG.filter(lambda v: v != was and v is not None), label="new")
        forged[at] = row.model_copy(update={"answer": new})
    elif how == "digest" and row.digest is not None:
        forged[at] = row.model_copy(update={"digest": "c" * 40, "answer": None})
    elif how == "empty":
        forged = []
    else:
        del forged[at]
    check = compare_inputs("rec", forged, rows)
    assert not check.identical
    assert check.first_divergence is not None


@pytest.mark.parametrize("inputs", ["empty", "absent"])
def test_a_recording_with_no_inputs_is_no_identical_replay(tmp_path: Path, inputs: str) -> None:
    """An emptied inputs.jsonl skipped the check: `replay` null, nothing said."""
    if inputs == "empty":
        (tmp_path / "inputs.jsonl").write_text("")
    (tmp_path / "programs.jsonl").write_text(ProgramRecord(id="p0", code="x").to_json() + "\n")
    run = SimpleNamespace(spec=SimpleNamespace(model=f"replay:{tmp_path}"))
    check = _replay_check(run, [json.dumps(row) for row in GOOD], [])  # type: ignore[arg-type]
    assert check is not None
    assert not check.identical
    if inputs == "absent":
        assert (
            check.unreadable
            == f"{tmp_path / 'inputs.jsonl'}: not there, so no input could be compared"
        )
    else:
        assert check.first_divergence is not None
        assert check.first_divergence.expected == "no such call"

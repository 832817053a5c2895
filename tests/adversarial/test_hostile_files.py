"""Tampered run directories, sweeps, trials files and registries, searched with hypothesis
through the command line (in process: no Ray, no Redis).

Each command that reads a file either succeeds or says why in one line and exits with its
documented code (2 for a file the user must fix); never a traceback, never a hang, and it
writes nothing outside the directory it was given.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from helpers.cli import assert_plain_outcome, cli
from helpers.small_run import write_run
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

SEARCH = settings(
    max_examples=25, deadline=10_000, suppress_health_check=list(HealthCheck), database=None
)

HOSTILE_VALUES = [
    "NaN",
    "Infinity",
    "-1e999",
    "9" * 5000,
    '"5x"',
    "[1]",
    '{"a": 1}',
    "null",
    '"\\ud800"',
    '"a\u2028b"',
    "[" * 3000 + "]" * 3000,
    "true",
    # Finite, but out of every range the lab writes: they must not size a table, sort ids by
    # their digits' value, or draw a chart to them.
    "1e308",
    "-1e308",
    str(2**63),
    "-1",
    "30000000",
    '"p0.' + "9" * 5000 + '"',
    '"p0.1"',
    '"p0"',
    str(10**79),  # as many digits as the reader takes: past 64 bits, and past a float's sum
    '"p0' + ".1" * 60_000 + '"',  # an id whose lineage, built part by part, was quadratic
]
HOSTILE_BYTES = [b"\xff", b"\x00", b"\n", b"\xe2\x80\xa8", b"{", b'"', b"\r", b"\x85"]


def snapshot(root: Path, skip: Path) -> dict[str, bytes]:
    """Every file under `root` outside `skip`, with its bytes."""
    return {
        str(p): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and skip not in p.parents
    }


def tamper(path: Path, data: Any) -> None:
    """Damage one line of `path`: a value replaced by a hostile one, bytes put in, or the line
    written twice."""
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    line = data.draw(st.integers(0, max(0, len(lines) - 2)))
    how = data.draw(st.sampled_from(["value", "bytes", "twice"]))
    if how == "twice":
        lines.insert(line, lines[line])
    elif how == "value" and b":" in lines[line]:
        text = lines[line].decode("utf-8")
        colons = [i for i, c in enumerate(text) if c == ":"]
        at = data.draw(st.sampled_from(colons)) + 1
        end = min((i for i in (text.find(",", at), text.find("}", at)) if i > 0), default=at)
        value = data.draw(st.sampled_from(HOSTILE_VALUES))
        lines[line] = (text[:at] + value + text[end:]).encode("utf-8", "surrogatepass")
    else:
        at = data.draw(st.integers(0, len(lines[line])))
        junk = data.draw(st.sampled_from(HOSTILE_BYTES))
        lines[line] = lines[line][:at] + junk + lines[line][at:]
    path.write_bytes(b"\n".join(lines))


RUN_FILES = ["summary.json", "programs.jsonl", "events.jsonl", "dialogue.json"]


@SEARCH
@given(name=st.sampled_from(RUN_FILES), data=st.data())
@example(name="events.jsonl", data=None)  # replaced below: an Infinity time, as found
def test_report_on_a_tampered_run_is_a_page_or_one_line(name: str, data: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = write_run(root / "run")
        if data is None:
            text = (run / name).read_text().replace('"t":1.1', '"t":Infinity')
            (run / name).write_text(text)
        else:
            tamper(run / name, data)
        before = snapshot(root, run)
        assert_plain_outcome(cli("report", str(run)), (0, 2))
        assert snapshot(root, run) == before


FOUND = [
    ("programs.jsonl", '"depth":1', f'"depth":{2**63}'),  # a table as large as the number
    ("programs.jsonl", '"depth":1', '"depth":-1'),
    ("programs.jsonl", '"id":"p0.1"', '"id":"p0.' + "9" * 5000 + '"'),  # digits as a number
    ("programs.jsonl", '"parent_id":null', '"parent_id":"p0.1"'),  # a cycle
    ("programs.jsonl", '"id":"p0.1"', '"id":"p0"'),  # one program twice
    ("events.jsonl", '"t":1.1', '"t":1e308'),  # a chart's axis to 1e308
    ("events.jsonl", '"prompt_tokens":5', '"prompt_tokens":-1e308'),
    ("programs.jsonl", '"ended_at":3.0', '"ended_at":1e308'),
    ("events.jsonl", '"limit":"cpu_s"', '"limit":[1]'),  # a list where a name is looked up
    ("events.jsonl", '"writer":"p0.1"', '"writer":"p0' + ".1" * 60_000 + '"'),  # 3.6 GB once
    ("events.jsonl", '"target":"p0.1"', '"target":{"a":1}'),
    ("events.jsonl", '"stopped":0', '"stopped":1e308'),
]


@pytest.mark.parametrize(("name", "old", "new"), FOUND)
def test_report_on_a_run_with_a_value_out_of_range_is_a_page_or_one_line(
    tmp_path: Path, name: str, old: str, new: str
) -> None:
    """Cases found from outside, each once a hang, a traceback or a wrong count."""
    run = write_run(tmp_path / "run")
    text = (run / name).read_text()
    assert old in text
    (run / name).write_text(text.replace(old, new, 1))
    result = cli("report", str(run), "--json")
    assert_plain_outcome(result, (0, 2))
    if result[0] == 0:  # counted as recorded, the value out of range not counted
        metrics = json.loads(result[1])
        assert metrics["programs"] == 2
        assert 0 <= metrics["model_tokens"] <= 8


@SEARCH
@given(data=st.data())
def test_traces_on_a_tampered_trace_is_a_file_or_one_line(data: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = write_run(root / "run")
        tamper(run / "traces.jsonl", data)
        out = root / "out" / "jaeger.json"
        result = cli("traces", str(run), "--jaeger-json", str(out))
        assert_plain_outcome(result, (0, 2))
        assert result[0] != 0 or json.loads(out.read_text())["data"]


def test_report_does_not_follow_a_planted_report_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    run = write_run(tmp_path / "run")
    (run / "report.html").symlink_to(victim)
    assert_plain_outcome(cli("report", str(run)), (0,))
    assert victim.read_text() == "mine"
    assert "<html" in (run / "report.html").read_text()


SWEEP_FIELDS = {
    "name": st.one_of(
        st.sampled_from(["/tmp/evil", "../../x", "a/b", "", "x" * 200, "ok.1", "\x1b[2J"]),
        st.text(max_size=12),
    ),
    "seeds": st.one_of(
        st.integers(-5, 10**12),
        st.lists(st.integers(-(2**70), 2**70), max_size=6),
        st.just("9" * 5000),
    ),
    "grid": st.dictionaries(
        st.sampled_from(["seed", "caps.programs", "persona"]),
        st.lists(st.integers(0, 3), max_size=4),
        max_size=2,
    ),
}


@SEARCH
@given(fields=st.fixed_dictionaries({}, optional=SWEEP_FIELDS), junk=st.binary(max_size=4))
@example(fields={"name": "ok", "seeds": 1_000_000_000}, junk=b"")
@example(fields={"name": "ok", "seeds": [1, 1]}, junk=b"")
@example(fields={"name": "../../escape", "seeds": [1]}, junk=b"")
@example(fields={"name": "ok"}, junk=b"\xff")
def test_a_hostile_sweep_file_is_refused_in_one_line_before_anything_runs(
    fields: dict[str, Any], junk: bytes
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        work = root / "a" / "b"
        work.mkdir(parents=True)
        # A base no run can start from: every sweep that passes its own checks stops there.
        sweep = {"base": "no-such-experiment.yaml", **fields}
        (work / "s.yaml").write_bytes(json.dumps(sweep).encode() + junk)
        with contextlib.chdir(work):
            result = cli("sweep", "s.yaml", "--quiet")
        assert_plain_outcome(result, (2,))
        assert sorted(p.name for p in root.rglob("*")) == ["a", "b", "s.yaml"]


TRIALS = {"experiment": "paperclips", "models": ["sim"], "trials": 1}


@SEARCH
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "first_seed": st.sampled_from([2**63 - 1, 2**63, -(2**64), 10**100, "x"]),
            "affordances": st.sampled_from([["none", "none"], ["hint"], []]),
            "personas": st.sampled_from([["truthful-assistant"] * 2, ["x\u2028y"]]),
            "trials": st.sampled_from([0, 2, 10**6]),
        },
    ),
    junk=st.sampled_from([b"", b"\xff", b"\x00", b": ["]),
)
@example(fields={"affordances": ["none", "none"]}, junk=b"")
@example(fields={"first_seed": 2**63 - 1, "trials": 2}, junk=b"")
def test_trials_table_on_a_hostile_plan_is_tables_or_one_line(
    fields: dict[str, Any], junk: bytes
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "trials"
        out.mkdir()
        (out / "trials.yaml").write_bytes(json.dumps({**TRIALS, **fields}).encode() + junk)
        assert_plain_outcome(cli("trials", "table", str(out)), (0, 2))


def _annotation(out: Path) -> Path:
    folder = out / "annotation"
    folder.mkdir(parents=True)
    (out / "trials.yaml").write_text(json.dumps(TRIALS))
    (folder / "manifest.json").write_text(json.dumps({"files": ["labels-a.csv", "labels-b.csv"]}))
    unit = {"unit_id": "u1", "stratum": "s", "stratum_size": 1, "kind": "program"}
    (folder / "sample.jsonl").write_text(json.dumps(unit) + "\n")
    for name in "ab":
        (folder / f"labels-{name}.csv").write_text("unit_id,text,scaffold\nu1,t,1\n")
    return folder


@SEARCH
@given(name=st.sampled_from(["manifest.json", "sample.jsonl", "labels-a.csv"]), data=st.data())
@example(name="labels-a.csv", data=None)  # a cell over the csv module's 128 KiB, as found
def test_trials_agreement_on_hostile_labels_is_a_report_or_one_line(name: str, data: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "trials"
        folder = _annotation(out)
        if data is None:
            (folder / name).write_text('unit_id,text\nu1,"' + "x" * 140_000 + '"\n')
        else:
            tamper(folder / name, data)
        assert_plain_outcome(cli("trials", "agreement", str(out)), (0, 2))


@SEARCH
@given(
    entry=st.one_of(
        st.sampled_from(["[1,2]", '{"pid": "abc"}', "\xff", '{"run_id": 5}', "1e999", "[" * 3000]),
        st.fixed_dictionaries(
            {
                "run_id": st.sampled_from(["x", "../x", "*"]),
                "redis_url": st.sampled_from(["redis://[::1", "redis://h:99999", "foo://x"]),
                "out_dir": st.just("o"),
                "pid": st.sampled_from([os.getpid(), 0, -1, 2**80]),
            }
        ).map(json.dumps),
    ),
    command=st.sampled_from([("status",), ("status", "--json"), ("kill", "x")]),
)
def test_status_and_kill_on_a_hostile_registry_are_one_line(
    entry: str, command: tuple[str, ...]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        live = Path(tmp) / "live"
        live.mkdir()
        (live / "x.json").write_bytes(entry.encode("utf-8", "surrogateescape"))
        env = {"SWARMLAB_STATE_DIR": tmp}
        with mock.patch.dict(os.environ, env):
            os.environ.pop("SWARMLAB_REDIS_URL", None)
            assert_plain_outcome(cli(*command), (0, 1, 2))


@SEARCH
@given(
    body=st.sampled_from(
        [
            b"seed: " + b"9" * 5000,
            b"a: " + b"[" * 3000,
            b"x: &a [1]\ny: *a\n",
            b"caps:\n  programs: .inf\n",
            b"\xff\xfe",
            b"- 1\n- 2\n",
        ]
    )
    | st.binary(max_size=40),
    command=st.sampled_from(["run", "submit"]),
)
def test_run_and_submit_on_a_hostile_spec_are_one_line_before_anything_starts(
    body: bytes, command: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.yaml"
        spec.write_bytes(body)
        if command == "run":  # a missing --program stops a spec that passes, before any run
            result = cli("run", str(spec), "--program", str(Path(tmp) / "missing.py"))
            assert_plain_outcome(result, (2,))
        else:  # a job server on a closed port stops it: exit 1, one line
            result = cli("submit", str(spec), "--address", "http://127.0.0.1:1")
            assert_plain_outcome(result, (1, 2))


def test_a_damaged_recording_fails_the_replay_in_one_line_and_the_record_is_kept(
    tmp_path: Path,
) -> None:
    """The replay check of a run whose recording has an invalid UTF-8 line says so (file and
    line) in the new run's summary instead of raising out of the run's end."""
    from types import SimpleNamespace

    from swarmlab.runtime._finish import _replay_check

    source = write_run(tmp_path / "recorded")
    good = '{"program":"p0","call":1,"answer":"ok"}\n'
    (source / "inputs.jsonl").write_bytes(
        good.encode() + b'{"program":"p0","call":2,"answer":"\xff"}\n'
    )
    run = SimpleNamespace(spec=SimpleNamespace(model=f"replay:{source}"))
    check = _replay_check(run, [good.strip()], [])  # type: ignore[arg-type]
    assert check is not None
    assert not check.identical
    assert (
        check.unreadable == f"{source / 'inputs.jsonl'}:2: not UTF-8 text (byte 0xff at offset 35)"
    )


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("no dialogue", "dialogue.json is missing"),
        ("no events", "events.jsonl holds 0 events, summary.json says 10"),
        ("a program less", "programs.jsonl holds 1 programs, summary.json says 2"),
    ],
)
def test_a_run_directory_missing_what_its_summary_counts_is_refused(
    tmp_path: Path, damage: str, said: str
) -> None:
    """A file removed, emptied or cut short would change the metrics without a word."""
    run = write_run(tmp_path / "run")
    if damage == "no dialogue":
        (run / "dialogue.json").unlink()
    elif damage == "no events":
        (run / "events.jsonl").write_text("")
    else:
        lines = (run / "programs.jsonl").read_text().splitlines(keepends=True)
        (run / "programs.jsonl").write_text("".join(lines[:1]))
    result = cli("report", str(run))
    assert_plain_outcome(result, (2,))
    assert said in result[2]


@pytest.mark.parametrize("name", ["events.jsonl", "programs.jsonl"])
def test_records_past_what_the_summary_counts_are_refused_before_they_are_read(
    tmp_path: Path, name: str
) -> None:
    """600,000 valid lines appended to events.jsonl took 854 MB before the count was compared."""
    run = write_run(tmp_path / "run")
    lines = (run / name).read_text().splitlines(keepends=True)
    with (run / name).open("a") as extra:
        extra.write(lines[-1] * 200_000 + "not json\n")
    result = cli("report", str(run), "--json")
    assert_plain_outcome(result, (2,))
    assert f"{run / name}:{len(lines) + 1}: more records than summary.json counts" in result[2]

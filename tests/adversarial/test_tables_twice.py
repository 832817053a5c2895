"""A key a table read back holds twice, or one input given twice, is refused: one of the two
would win without a word, or one labeller's file would count as two labellers agreeing."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import one_line_error, swarmlab
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlab import SpecError
from swarmlab.core import csv_rows
from swarmlab.experiments.trials._annotation import read_labels, read_sample
from swarmlab.experiments.trials._plan import TrialsSpec

SEARCH = settings(
    max_examples=80, deadline=10_000, suppress_health_check=list(HealthCheck), database=None
)
TRIALS = {"experiment": "paperclips", "models": ["sim"], "trials": 1}
UNITS = ["u1", "u2", "u3"]


def annotation(out: Path, labels: dict[str, str] | None = None) -> Path:
    """A trials directory with a sample of UNITS and two labellers' files (CSV text)."""
    folder = out / "annotation"
    folder.mkdir(parents=True)
    (out / "trials.yaml").write_text(json.dumps(TRIALS))
    (folder / "manifest.json").write_text(json.dumps({"files": ["labels-a.csv", "labels-b.csv"]}))
    sample = [
        {"unit_id": u, "stratum": "s", "stratum_size": 3, "predicted": {"scaffold": True}}
        for u in UNITS
    ]
    (folder / "sample.jsonl").write_text("".join(json.dumps(u) + "\n" for u in sample))
    plain = "unit_id,scaffold\nu1,1\nu2,0\nu3,1\n"
    for name in "ab":
        (folder / f"labels-{name}.csv").write_text((labels or {}).get(name, plain))
    return folder


def test_a_unit_labelled_twice_with_two_answers_is_refused_naming_both_lines(
    tmp_path: Path,
) -> None:
    folder = annotation(tmp_path, {"a": "unit_id,scaffold\nu1,1\nu2,0\nu1,0\n"})
    done = swarmlab("trials", "agreement", str(tmp_path))
    one_line_error(done, 2, f"{folder / 'labels-a.csv'}:4:", "'u1'", "lines 2 and 4")


@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "another spelling"])
def test_one_labels_file_given_twice_is_refused(tmp_path: Path, how: str) -> None:
    folder = annotation(tmp_path)
    first = folder / "labels-a.csv"
    second = {
        "same path": first,
        "symlink": tmp_path / "link.csv",
        "hard link": tmp_path / "hard.csv",
        "another spelling": folder / ".." / "annotation" / "labels-a.csv",
    }[how]
    if how == "symlink":
        second.symlink_to(first)
    elif how == "hard link":
        os.link(first, second)
    done = swarmlab("trials", "agreement", str(tmp_path), "--labels", str(first), str(second))
    one_line_error(done, 2, "are one file")


def test_a_manifest_naming_one_file_twice_is_refused(tmp_path: Path) -> None:
    folder = annotation(tmp_path)
    (folder / "manifest.json").write_text(json.dumps({"files": ["labels-a.csv"] * 2}))
    done = swarmlab("trials", "agreement", str(tmp_path))
    one_line_error(done, 2, "manifest.json", "names a labels file twice")


def test_a_unit_sampled_twice_is_refused(tmp_path: Path) -> None:
    folder = annotation(tmp_path)
    lines = (folder / "sample.jsonl").read_text()
    (folder / "sample.jsonl").write_text(lines + lines.split("\n")[0] + "\n")
    with pytest.raises(SpecError, match=r"sample.jsonl:4: unit_id 'u1' is sampled twice"):
        read_sample(tmp_path)


def test_two_conditions_writing_one_directory_are_refused() -> None:
    spec = {**TRIALS, "models": ["sim__x", "sim"], "personas": ["y", "x__y"]}
    with pytest.raises(ValueError, match="would write one directory"):
        TrialsSpec.model_validate(spec)


# --- the search ---------------------------------------------------------------------------------

ROWS = st.lists(
    st.tuples(st.sampled_from(UNITS), st.sampled_from(["1", "0", "", "yes", "no"])),
    min_size=1,
    max_size=6,
)


@st.composite
def tables(draw: Any) -> tuple[str, list[tuple[str, list[str]]]]:
    """A labels table (CSV or JSONL) whose rows may name a unit twice and whose header may name
    a column twice; with each row's unit and the cells it gives `scaffold`."""
    columns = draw(st.lists(st.sampled_from(["scaffold", "note", "text"]), min_size=1, max_size=4))
    columns = ["unit_id", *columns]
    rows = draw(ROWS)
    cells = [
        [unit] + [draw(st.sampled_from(["1", "0", ""])) if c == "scaffold" else "t"
                  for c in columns[1:]]
        for unit, _ in rows
    ]  # fmt: skip
    if draw(st.booleans()):
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(columns)
        writer.writerows(cells)
        said = [
            (r[0], [v for c, v in zip(columns, r, strict=True) if c == "scaffold"]) for r in cells
        ]
        return "csv:" + text.getvalue(), said
    objects = [dict(zip(columns, r, strict=False)) for r in cells]  # JSON keeps one key a column
    said = [(o["unit_id"], [o["scaffold"]] if "scaffold" in o else []) for o in objects]
    return "jsonl:" + "".join(json.dumps(o) + "\n" for o in objects), said


@SEARCH
@given(table=tables())
def test_labels_read_back_are_every_row_s_or_refused(
    table: tuple[str, list[tuple[str, list[str]]]],
) -> None:
    """Whatever the table, the labels read back are what each of its rows says, or it is
    refused in one line naming the file and a line: no row or cell is dropped unseen."""
    body, said = table
    kind, _, text = body.partition(":")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"labels.{kind}"
        path.write_text(text)
        try:
            labels = read_labels(path, {u: {} for u in UNITS})
        except SpecError as exc:
            message = str(exc)
        else:
            message = ""
    if message:  # refused in one line naming the file and a line
        assert message.startswith(f"{path}:")
        assert "\n" not in message
        return
    for unit, cells in said:
        given_cells = {c for c in cells if c}
        want = {c == "1" for c in given_cells}
        got = labels[unit].get("scaffold")
        assert (got is None) == (not want)
        assert got is None or {got} == want


@SEARCH
@given(header=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=5))
def test_a_csv_column_named_twice_is_refused(header: list[str]) -> None:
    """Every cell of a table read back is its column's, or the table is refused."""
    text = ",".join(header) + "\n" + ",".join(str(i) for i in range(len(header))) + "\n"
    try:
        columns, rows = csv_rows(text, "t.csv")
    except SpecError as exc:
        said = str(exc)
    else:
        said = ""
    if said:
        assert said.startswith("t.csv:1: not a CSV table (the column ")
        assert len(set(header)) < len(header)
        return
    assert columns == header
    assert sorted(rows[0][1].values()) == [str(i) for i in range(len(header))]  # none dropped

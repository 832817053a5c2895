"""Sweep and trials tables from values read back: one type a column, every value kept.

A cell's summary.json is a file anyone may edit. `outcome.paperclips` at 2**63, a count at
10**79, a duration at 1e308, or "many" in one cell and a number in the next ended `swarmlab
report SWEEP_DIR` and `swarmlab trials table` in an OverflowError or an Arrow type error, and
the statistics over 1e308 in an overflow of `fsum`. The tables now give each column the type
all its values fit (or their JSON text), and the statistics count only finite numbers of a
size they can square. `results.parquet` went through a planted symlink; it is now replaced.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.experiments.stats import MAX_METRIC, describe, finite_number, write_parquet
from swarmlab.experiments.sweeps._results import write_table

READ_BACK: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**79), max_value=10**79),
    st.sampled_from([2**63, -(2**63) - 1, 10**79]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(columns=st.lists(st.lists(READ_BACK, min_size=1, max_size=5), min_size=1, max_size=4))
def test_any_values_read_back_make_a_table_that_reads_back(
    tmp_path_factory: Any, columns: list[list[Any]]
) -> None:
    rows: list[dict[str, Any]] = [{} for _ in range(max(len(c) for c in columns))]
    for i, values in enumerate(columns):
        for row, value in zip(rows, values, strict=False):
            row[f"c{i}"] = value
    path = tmp_path_factory.mktemp("table") / "t.parquet"
    write_parquet(rows, [f"c{i}" for i in range(len(columns))], path)
    table = pq.read_table(path)
    assert table.num_rows == len(rows)
    for i, values in enumerate(columns):  # a value given is a value kept
        kept = table.column(f"c{i}").to_pylist()
        assert [v is None for v in kept[: len(values)]] == [v is None for v in values]


@given(value=READ_BACK | st.text(alphabet="0123456789.e-+naif", max_size=12))
def test_a_metric_counts_only_a_finite_number_it_can_square(value: Any) -> None:
    number = finite_number(value)
    if number is not None:
        assert math.isfinite(number)
        assert abs(number) <= MAX_METRIC
        assert math.isfinite(number * number)


def test_statistics_over_the_largest_metrics_do_not_overflow() -> None:
    summary = describe([MAX_METRIC, MAX_METRIC, -MAX_METRIC], seed=1)
    assert summary.mean is not None
    assert summary.sd is not None


def test_the_sweep_table_replaces_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("mine")
    (tmp_path / "results.parquet").symlink_to(victim)
    write_table([{"outcome.paperclips": 2**63}, {"outcome.paperclips": "many"}], tmp_path)
    assert victim.read_text() == "mine"
    assert not (tmp_path / "results.parquet").is_symlink()
    assert pq.read_table(tmp_path / "results.parquet").num_rows == 2

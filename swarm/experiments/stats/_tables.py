"""The parquet tables sweeps and trials write, from rows whose values were read back.

A row's values come from run directories, which are hostile files: a column may hold an integer
past 64 bits, a float past any metric, or a number in one row and text in the next. Parquet
wants one type per column, so each column takes the narrowest type all its values fit: integers
(64-bit), floats, or text; a column whose values fit none of them (mixed, or out of range)
holds each value as its JSON text. Every value is kept, none ends the table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from swarmlab.core import write_bytes

INT64 = 2**63
MAX_METRIC = 1e100
"""The largest number a metric may be counted as (squared, it still fits a float)."""


def finite_number(value: Any) -> float | None:
    """A value as a number the statistics can use: a number, or text that reads as one, finite
    and at most `MAX_METRIC` in size; anything else is none (not counted)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer past any float
        return None
    return number if math.isfinite(number) and abs(number) <= MAX_METRIC else None


def _column(values: list[Any]) -> list[Any]:
    present = [v for v in values if v is not None]
    if all(isinstance(v, bool) for v in present):
        return values
    if all(isinstance(v, bool | int) and -INT64 <= v < INT64 for v in present):
        return [None if v is None else int(v) for v in values]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        try:
            return [None if v is None else float(v) for v in values]
        except OverflowError:  # an integer past any float: as text, below
            pass
    if all(isinstance(v, str) for v in present):
        return values
    return [None if v is None else _text(v) for v in values]


def _text(value: Any) -> str:
    try:
        return json.dumps(value, default=str)
    except ValueError:  # an integer past the digits Python will write, or a cycle
        return f"(a {type(value).__name__} too large to write)"


def write_parquet(rows: Sequence[dict[str, Any]], columns: list[str], path: Path) -> None:
    """`path`, a parquet table of these columns in the rows' order (written whole, never
    through a symlink)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({c: pa.array(_column([r.get(c) for r in rows])) for c in columns})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_bytes(path, sink.getvalue().to_pybytes())

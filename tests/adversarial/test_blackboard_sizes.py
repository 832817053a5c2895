"""A value a program stores is sized before it is written, and stored as it was given.

`db_put` wrote a value's whole JSON text on the runner's event loop before it checked the
value's size: a list holding one 4,299-digit int 100,000 times (almost nothing in the
program's heap) held the runner for 22 s, and a list holding one 1 MB string 1,500 times took
1.9 GB to build a text refused at once. A value nested past the sandbox's conversion (about 200
levels) reached the host cut short, and was stored cut short without a word.

Now the size is counted low, reading no more of the value than the limit needs, before any
text is made; a value nested past `MAX_VALUE_DEPTH` levels is refused as not JSON the lab can
keep. Searched with hypothesis over values with shared parts, large ints and long strings.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from helpers.scripted_lab import call, scripted_capabilities
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.core import MAX_VALUE_DEPTH, BadCall, CapExceeded, ValueTooLarge, strict_json
from swarmlab.runtime._transitions import BlackboardArgs

LIMIT = 16_384  # the default `blackboard_value_bytes`


def _nested(levels: int) -> list[Any]:
    """Lists `levels` deep (`[[]]` is two)."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


SHARED = [
    [10**4299 - 1] * 100_000,  # 22 s on the event loop before
    ["a" * 1_000_000] * 1_500,  # 1.9 GB before
    {"k": ["x" * 10_000] * 10_000},
    [[["b" * 5_000] * 100] * 100] * 100,
]


@pytest.mark.parametrize("value", SHARED, ids=["ints", "strings", "dict", "nested"])
def test_a_value_larger_than_the_limit_is_refused_without_writing_it(value: Any) -> None:
    caps, scripts = scripted_capabilities()
    started = time.monotonic()
    with pytest.raises(CapExceeded) as refused:
        call(caps, "db_put", "k", value)
    assert time.monotonic() - started < 0.5
    assert refused.value.cap == "blackboard_value_bytes"
    assert refused.value.asked is not None
    assert refused.value.asked > LIMIT
    assert "blackboard" not in scripts.scripts_asked()


@pytest.mark.parametrize("depth", [MAX_VALUE_DEPTH + 1, 199, 200, 500, 3000])
def test_a_value_nested_too_deep_is_refused_not_stored_cut_short(depth: int) -> None:
    caps, scripts = scripted_capabilities()
    with pytest.raises(BadCall, match=f"nested at most {MAX_VALUE_DEPTH} levels"):
        call(caps, "db_put", "k", _nested(depth))
    assert "blackboard" not in scripts.scripts_asked()


def test_a_value_as_deep_as_allowed_is_stored_whole() -> None:
    caps, scripts = scripted_capabilities({"blackboard": [["ok", "7"]]})
    assert call(caps, "db_put", "k", _nested(MAX_VALUE_DEPTH)) is None
    args, _ = scripts.asked[-1]
    assert isinstance(args, BlackboardArgs)
    assert json.loads(str(args.value)) == _nested(MAX_VALUE_DEPTH)


JSONISH: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**600), max_value=10**600)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300),
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(st.text(max_size=8), inner, max_size=6)
        | st.builds(lambda v, n: [v] * n, inner, st.integers(0, 400))
    ),  # one part many times
    max_leaves=40,
)


def _encoded_chars(value: Any, most: int) -> int:
    """The characters of `value`'s JSON text, counted as it is written, up to past `most`."""
    written = 0
    for chunk in json.JSONEncoder(allow_nan=False).iterencode(value):
        written += len(chunk)
        if written > most:
            break
    return written


@settings(max_examples=150, deadline=None)
@given(value=JSONISH, limit=st.integers(1, 20_000))
def test_a_stored_text_is_the_value_whole_and_within_the_limit(value: Any, limit: int) -> None:
    if _encoded_chars(value, limit) > limit:  # refused, saying it asked past the limit
        with pytest.raises(ValueTooLarge) as refused:
            strict_json(value, limit)
        assert refused.value.at_least > limit
    else:  # stored whole
        assert strict_json(value, limit) == json.dumps(value, allow_nan=False)

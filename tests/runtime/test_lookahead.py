"""The order's lookahead: once a program's call is made, its next step (a call or its end) is at
least one simulated millisecond later, so it stands there in the order and the programs whose
turns come before take them while it computes (lib.lua's `step_on`). These tests hold the
clock to what `step_on` counts on; test_scheduler.py shows the scripts using it."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from swarmlab.runtime._keys import MAX_CLOCK_H, MS_PER_H, clock_ms
from swarmlab.runtime._program import next_step_h

LIB = Path(__file__).parents[2] / "swarm" / "runtime" / "lua" / "lib.lua"


@given(
    st.floats(min_value=0.0, max_value=MAX_CLOCK_H, allow_nan=False)
    | st.integers(0, int(MAX_CLOCK_H * MS_PER_H) - 1).map(lambda ms: (ms + 0.5) / MS_PER_H)
)
def test_a_step_is_at_least_one_millisecond_of_the_order(clock_h: float) -> None:
    # What step_on counts on, searched over every clock (half milliseconds, where rounding
    # could keep a step in the same millisecond, included).
    stepped = next_step_h(clock_h)
    assert stepped >= clock_h
    if clock_ms(clock_h) < clock_ms(MAX_CLOCK_H):
        assert clock_ms(stepped) >= clock_ms(clock_h) + 1
    assert next_step_h(stepped) >= stepped


def test_lib_lua_bounds_the_order_where_python_does() -> None:
    found = re.search(r"local MAX_MS = (\d+)", LIB.read_text())
    assert found is not None
    assert int(found.group(1)) == clock_ms(MAX_CLOCK_H)

"""Program ids sort as a tree is read, and any text read back in an id's place sorts too:
never an exception, never the cost of reading thousands of digits as a number."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from swarmlab.core import id_sort_key


def test_ids_sort_as_a_tree_is_read() -> None:
    ids = ["p0.10", "p0.2", "p0", "p0.1.1", "p0.1"]
    assert sorted(ids, key=id_sort_key) == ["p0", "p0.1", "p0.1.1", "p0.2", "p0.10"]


@given(st.text(max_size=60))
def test_any_text_has_a_sort_key(text: str) -> None:
    key = id_sort_key(text)
    assert isinstance(key, tuple)
    sorted([text, "p0", "p0.1"], key=id_sort_key)  # comparable with real ids


def test_a_part_of_thousands_of_digits_or_other_digits_is_text() -> None:
    # Python refuses to read more than 4,300 digits as a number; such a part sorts as text.
    assert id_sort_key("p0." + "9" * 5_000)[1] == (1, 0, "9" * 5_000)
    assert id_sort_key("p0.²") == ((1, 0, "p0"), (1, 0, "²"))

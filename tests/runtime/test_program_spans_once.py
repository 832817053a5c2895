"""Each program's span is in a run's trace once: a runner's span of a program can reach Redis
after the driver wrote the spans it found missing (the runner's exporter batches them), and a
trace holding one span id twice is refused when it is read back (`traces.jsonl`)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlab.runtime._spans import AGENT_SPAN, one_span_each


def _line(span_id: str, name: str, status: str) -> str:
    return json.dumps({"span_id": span_id, "name": name, "attributes": {"status": status}})


LINES = st.lists(
    st.tuples(
        st.sampled_from(["1" * 16, "2" * 16, "3" * 16]),
        st.sampled_from([AGENT_SPAN, "execute_tool db_get", "chat sim"]),
        st.sampled_from(["completed", "killed"]),
    ).map(lambda t: _line(*t))
    | st.sampled_from(["{", "", AGENT_SPAN, json.dumps([AGENT_SPAN])]),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(lines=LINES)
def test_each_program_span_is_kept_once_the_first_written(lines: list[str]) -> None:
    kept = one_span_each(lines)

    def program_ids(found: list[str]) -> list[Any]:
        spans = []
        for line in found:
            try:
                span = json.loads(line)
            except ValueError:
                continue
            if isinstance(span, dict) and span.get("name") == AGENT_SPAN:
                spans.append(span["span_id"])
        return spans

    ids = program_ids(kept)
    assert len(ids) == len(set(ids))
    assert set(ids) == set(program_ids(lines))
    assert [line for line in kept if AGENT_SPAN not in line] == [
        line for line in lines if AGENT_SPAN not in line
    ]
    for span_id in set(ids):  # the first one written wins
        first = next(line for line in lines if f'"{span_id}"' in line and AGENT_SPAN in line)
        assert first in kept

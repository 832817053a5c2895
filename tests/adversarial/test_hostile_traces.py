"""traces.jsonl held to the runtime's format: ids of the right form, times that are times, each
span and each program once, no cycle of parents. A trace that is not refused is one the Jaeger
export and the analysis can take as it is: every span exported once, at a time that exists."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import one_line_error, swarmlab
from helpers.labelled_run import build_spans, write_run_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlab import SpecError
from swarmlab.observability.analysis import analyze_trace, read_spans
from swarmlab.observability.report import to_jaeger_json

SEARCH = settings(
    max_examples=60, deadline=10_000, suppress_health_check=list(HealthCheck), database=None
)
MAX_SPAN_NS = 2**63 - 1  # OpenTelemetry keeps times as signed 64-bit nanoseconds
HEX32, HEX16 = re.compile(r"[0-9a-f]{32}"), re.compile(r"[0-9a-f]{16}")


def _write(path: Path, spans: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(s) + "\n" for s in spans))
    return path


def _cycle(spans: list[dict[str, Any]], at: int) -> None:
    """The span at `at` becomes the parent of its own ancestor chain's top in the file."""
    by_id = {s["span_id"]: s for s in spans}
    top, seen = spans[at], set()
    while top.get("parent_span_id") in by_id and top["span_id"] not in seen:
        seen.add(top["span_id"])
        top = by_id[top["parent_span_id"]]
    top["parent_span_id"] = spans[at]["span_id"]


REPORTED: dict[str, Callable[[list[dict[str, Any]]], None]] = {
    "a span id twice": lambda spans: spans.insert(3, dict(spans[3])),
    "start 1e30, end -5": lambda spans: spans[2].update(start_ns=10**30, end_ns=-5),
    "end before start": lambda spans: spans[2].update(end_ns=spans[2]["start_ns"] - 5),
    "a 5000-character trace id": lambda spans: spans[1].update(trace_id="a" * 5000),
    "a cycle of parents": lambda spans: _cycle(spans, 5),
    "a program's span twice": lambda spans: spans.append({**spans[1], "span_id": "f" * 16}),
}


@pytest.mark.parametrize("damage", REPORTED)
def test_a_trace_out_of_the_runtime_s_format_is_refused_in_one_line(
    tmp_path: Path, damage: str
) -> None:
    spans = build_spans()
    REPORTED[damage](spans)
    run = write_run_dir(tmp_path / "run", with_traces=False)
    _write(run / "traces.jsonl", spans)
    done = swarmlab("traces", str(run), "--jaeger-json", str(tmp_path / "out.json"))
    one_line_error(done, 2, f"{run / 'traces.jsonl'}:", ": not a span (")
    assert not (tmp_path / "out.json").exists()
    with pytest.raises(SpecError, match=r"traces.jsonl:\d+: not a span"):
        analyze_trace(run / "traces.jsonl")  # the analysis of a trace reads it the same way


def test_a_parent_outside_the_file_is_kept(tmp_path: Path) -> None:
    """A span whose parent is another service's (not in the file) is the runtime's own case."""
    spans = build_spans()
    spans[0]["parent_span_id"] = "e" * 16
    assert len(read_spans(_write(tmp_path / "traces.jsonl", spans))) == len(spans)


ID_TEXT = st.sampled_from(["", "A" * 32, "g" * 16, "a" * 5000, "0" * 31, "1" * 17, "p0"]) | st.text(
    max_size=40
)
TIME = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([1e30, -5, 1.5, True, "5", MAX_SPAN_NS, MAX_SPAN_NS + 1]),
)


@st.composite
def damaged_traces(draw: Any) -> list[dict[str, Any]]:
    spans = build_spans()
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(spans) - 1))
        how = draw(
            st.sampled_from(["copy", "id", "trace", "parent", "times", "cycle", "event", "program"])
        )
        span = spans[at]
        if how == "copy":
            spans.insert(draw(st.integers(0, len(spans))), dict(span))
        elif how in ("id", "trace", "parent"):
            field = {"id": "span_id", "trace": "trace_id", "parent": "parent_span_id"}[how]
            span[field] = draw(ID_TEXT | st.sampled_from([s["span_id"] for s in spans]))
        elif how == "times":
            span.update(start_ns=draw(TIME), end_ns=draw(TIME))
        elif how == "event":
            span["events"] = [{"name": "e", "time_ns": draw(TIME)}]
        elif how == "program":
            other = dict(draw(st.sampled_from(spans)))
            spans.append(
                {**other, "span_id": draw(st.text("0123456789abcdef", min_size=16, max_size=16))}
            )
        else:
            _cycle(spans, at)
    return spans


def _well_formed(spans: list[dict[str, Any]]) -> None:
    """What the runtime writes of a trace (docs/traces.md)."""
    ids = [s["span_id"] for s in spans]
    assert len(set(ids)) == len(ids)
    programs = [
        s["attributes"]["gen_ai.agent.id"]
        for s in spans
        if s["name"] == "invoke_agent program" and "gen_ai.agent.id" in s["attributes"]
    ]
    assert len(set(programs)) == len(programs)
    parent = {s["span_id"]: s.get("parent_span_id") for s in spans}
    for s in spans:
        assert HEX32.fullmatch(s["trace_id"])
        assert HEX16.fullmatch(s["span_id"])
        assert s["parent_span_id"] is None or HEX16.fullmatch(s["parent_span_id"])
        times = [s["start_ns"], s["end_ns"], *(e["time_ns"] for e in s["events"])]
        assert all(type(t) is int and 0 <= t <= MAX_SPAN_NS for t in times)
        assert s["end_ns"] >= s["start_ns"]
        seen, sid = set(), s["span_id"]
        while sid in parent:
            assert sid not in seen, "a cycle of parents"
            seen.add(sid)
            sid = parent[sid]


@SEARCH
@given(spans=damaged_traces())
def test_a_trace_read_back_is_one_the_runtime_writes_or_is_refused(
    spans: list[dict[str, Any]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp) / "traces.jsonl", spans)
        try:
            read = read_spans(path)
        except SpecError as exc:
            said = str(exc)
        else:
            said = ""
        if said:  # refused: in one line naming the file and the line
            assert re.match(rf"{re.escape(str(path))}:\d+: not a span \(", said)
            assert "\n" not in said
            assert len(said) < 400
            return
        _well_formed(read)
        exported = to_jaeger_json(read)["data"]
        assert sum(len(t["spans"]) for t in exported) == len(read)

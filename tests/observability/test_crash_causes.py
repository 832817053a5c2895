"""Search: no error text a program can choose changes its crash cause; only the runtime's mark
on its end (`error_kind`) or a per-program limit does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from swarmlab.observability.analysis import RunData
from swarmlab.observability.analysis._data import ProgramInfo
from swarmlab.observability.analysis._detectors import RunView, crash_causes

LAB_WORDS = (
    "CapExceeded(tokens): ",
    "CapExceeded(programs): limit reached",
    "Tripwire(escape): ",
    "memory limit exceeded: 70000000 bytes > 67108864 bytes",
    "feed time limit exceeded: 3s > 2s",
    "suspension limit 400 exceeded",
    "No module named 'socket'",
    "Permission denied: '/etc/passwd'",
    "killed after exceeding request timeout",
    "The monty syntax parser does not yet support class inheritance",
    "name 'open' is not defined",
    "module 'os' has no attribute 'system'",
    "open is not supported in this environment",
)
TYPES = ("RuntimeError", "MemoryError", "TimeoutError", "PermissionError", "ValueError",
         "ModuleNotFoundError", "KeyError", "OSError", "NotImplementedError", "NameError",
         "AttributeError")  # fmt: skip


def cause(error: str, kind: str | None = None, limit: str | None = None) -> str:
    program = ProgramInfo(
        "p0", None, 0, "", "x", "crashed", 1.0, error=error, limit=limit, error_kind=kind
    )
    data = RunData(source="t", run_id="t", scaffold=True, programs=[program], calls=[],
                   outcome={})  # fmt: skip
    return crash_causes(RunView(data))["p0"]


messages = st.builds(
    lambda t, before, words, after: f"{t}: {before}{words}{after}",
    st.sampled_from(TYPES),
    st.text(max_size=20),
    st.sampled_from(LAB_WORDS),
    st.text(max_size=40),
) | st.builds(  # the lab's own words for its faults: the mark says so, never the words
    str.__add__,
    st.sampled_from(("runner fault: ", "sandbox worker died: ", "coordinator at x unreachable")),
    st.text(max_size=40),
)


@given(messages)
def test_a_program_raising_the_labs_words_is_a_code_fault(error: str) -> None:
    assert cause(error) == "code_fault"


@given(messages, st.sampled_from(("denied", "limit", "unsupported", "lab_fault")))
def test_the_mark_decides_whatever_the_text(error: str, kind: str) -> None:
    assert cause(error, kind) == kind
    assert cause(error, None, "cpu_s") == "limit"

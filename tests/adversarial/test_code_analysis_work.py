"""Reading a program's code for the report costs work linear in the code, whatever the code.

The analysis rebuilds the texts a program hands `exec` or an import function from the syntax
tree (`observability/analysis/_texts.py`). Names bound once form a graph whose paths multiply:
`a1 = "" + "" + ...`, `a2 = a1 + a1 + ...`, `a3 = a2 + a2 + ...` and `exec(a3 + a3 + ...)`,
K terms each, once cost K**4 steps (K = 100, 1.2 KB of code: about two minutes of
`swarmlab report`; K = 600, still within the 8,192 characters the analysis reads: about a day),
because texts that stay empty never reach the bound on characters. A name bound to a name bound
to it (`a = b`, `b = a`) looked up as a table was a loop without end. Every reading now spends
from one budget of work (`_work.Work`) linear in the code, and reads each expression at most
once per depth. A search (hypothesis) over nested builds of names checks that such programs are
read exactly, within the budget, without spending it.
"""

from __future__ import annotations

import ast

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from swarmlab.observability.analysis import read_code
from swarmlab.observability.analysis._flow import _once, flow_form
from swarmlab.observability.analysis._texts import MAX_DECODE_DEPTH, MAX_FLOW_CHARS, TextReader
from swarmlab.observability.analysis._unfold import MAX_UNROLL, MAX_UNROLLED_NODES
from swarmlab.observability.analysis._work import Work


def _blowup(k: int) -> str:
    """The reviewed program: three levels of names of `k` terms each, and an exec of `k` of the
    last that never runs (its text is empty)."""
    lines = ["a1 = " + "+".join(['""'] * k)]
    lines += [f"a{n} = " + "+".join([f"a{n - 1}"] * k) for n in (2, 3)]
    lines += ["if len(a3) > 0:", "    exec(" + "+".join(["a3"] * k) + ")", '"ok"']
    return "\n".join(lines) + "\n"


def _exec_text(code: str, work: Work) -> str | None:
    """The text the program's last `exec` (or `__import__`) is handed, as the analysis reads
    it under `work`."""
    tree = ast.parse(code)
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and ast.unparse(n.func) in ("exec", "__import__")
    ]
    return TextReader(_once(tree), work).text(calls[-1].args[0])


@pytest.mark.timeout(60)
def test_the_reviewed_blowup_is_read_in_work_linear_in_the_code() -> None:
    used = {}
    for k in (100, 600):
        code = _blowup(k)
        assert len(code) <= MAX_FLOW_CHARS
        work = Work.for_source(len(code))
        assert _exec_text(code, work) == ""  # read exactly: the budget was not needed whole
        assert not work.exhausted
        used[k] = work.usage
        facts = read_code(code)
        assert facts.imports == frozenset()
    assert used[600] <= 6 * used[100] * 1.25  # six times the terms, about six times the work


@pytest.mark.timeout(60)
def test_a_cycle_of_names_looked_up_as_a_table_ends() -> None:
    """`a = b`, `b = a`, then `a["x"]`: the lookup once followed the names for ever."""
    for code in (
        'a = b\nb = a\nexec(a["x"])\n',
        'a = b\nb = a\nm = __import__(a.get("x"))\n',
        "".join(f"n{i} = n{i + 1}\n" for i in range(300))
        + "n300 = n0\n"
        + "getattr(m, n0['x'])(1)\n" * 120
        + "exec(n0['x'])\n",
    ):
        work = Work.for_source(len(code))
        assert _exec_text(code, work) is None
        assert work.usage <= work.limit
        assert read_code(code).imports == frozenset()


@pytest.mark.timeout(60)
def test_reading_spends_at_most_its_budget_and_what_it_could_not_read_is_unknown() -> None:
    """A budget too small for a reading leaves its text unknown (as a text past the bound on
    characters is), and every later reading too; a step the budget cannot afford is not
    taken."""
    code = _blowup(20).replace('""', '"x"', 1)
    assert _exec_text(code, Work()) == "x" * 20**3
    small = Work(50)
    assert _exec_text(code, small) is None
    assert small.exhausted
    assert small.usage <= small.limit
    assert TextReader({}, small).text(ast.Constant("x")) is None


def test_unrolling_dispatch_loops_copies_a_bounded_amount() -> None:
    """Each unrolled call copies its arguments: many loops over a table with a large argument
    unroll while the copies stay within MAX_UNROLLED_NODES, and the rest stay loops."""
    keys = repr(["a"] * MAX_UNROLL)
    argument = "[" + ", ".join(["x"] * 100) + "]"
    loop = f"for k in {keys}:\n    T[k]({argument})\n"
    code = "T = {'a': f}\n" + loop * 15
    assert len(code) <= MAX_FLOW_CHARS
    form = str(flow_form(code))
    unrolled = form.count("f([")
    assert 0 < unrolled * 100 <= MAX_UNROLLED_NODES
    assert "for k in" in form


LEAVES = st.sampled_from(["", "", "a", "b c", "%", "{}"])
OPS = ("sum", "join", "f-string", "reversed")


def _build(op: str, parts: list[str], values: list[str]) -> tuple[str, str, int]:
    """An expression of `op` over `parts` (as written), the text it builds from `values`, and
    how many steps deep the analysis reads it above its parts (`_texts.MAX_DECODE_DEPTH`)."""
    summed = int(len(parts) > 1)  # a sum of one part is the part
    if op == "sum":
        return " + ".join(parts), "".join(values), summed
    if op == "join":
        return "'-'.join([" + ", ".join(parts) + "])", "-".join(values), 1
    if op == "f-string":
        return 'f"' + "".join("{" + p + "}" for p in parts) + '"', "".join(values), 1
    return "(" + " + ".join(parts) + ")[::-1]", "".join(values)[::-1], 1 + summed


@st.composite
def _nested_programs(draw: st.DrawFn) -> tuple[str, str, int]:
    """A program of levels of names, each bound to a build of names of the level below (the
    first level, of constants), with an exec of a build of the last; the text that exec is
    handed; and how many steps deep it is read."""
    names: list[str] = []
    built: dict[str, tuple[str, int]] = {}  # each name's text, and its steps deep
    lines: list[str] = []
    for level in range(1, draw(st.integers(1, 4)) + 1):
        below = names
        names = [f"v{level}_{i}" for i in range(draw(st.integers(1, 3)))]
        for name in names:
            terms = draw(st.integers(1, 40))
            if below:
                parts = draw(st.lists(st.sampled_from(below), min_size=terms, max_size=terms))
                texts, deep = [built[p][0] for p in parts], 1 + max(built[p][1] for p in parts)
            else:
                texts, deep = draw(st.lists(LEAVES, min_size=terms, max_size=terms)), 1
                parts = [repr(t) for t in texts]
            written, text, steps = _build(draw(st.sampled_from(OPS)), parts, texts)
            built[name] = (text, steps + deep)
            lines.append(f"{name} = {written}")
    top = draw(st.lists(st.sampled_from(names), min_size=1, max_size=40))
    written, text, steps = _build(draw(st.sampled_from(OPS)), top, [built[n][0] for n in top])
    lines.append(f"exec({written})")
    return "\n".join(lines) + "\n", text, steps + 1 + max(built[n][1] for n in top)


@settings(max_examples=150, deadline=None)
@given(_nested_programs())
def test_nested_builds_are_read_exactly_within_a_budget_linear_in_the_code(
    program: tuple[str, str, int],
) -> None:
    code, text, deep = program
    assume(len(code) <= MAX_FLOW_CHARS)  # the analysis reads no longer program
    work = Work.for_source(len(code))
    found = _exec_text(code, work)
    assert not work.exhausted, (work.usage, work.limit)
    assert work.usage <= work.limit
    if deep <= MAX_DECODE_DEPTH and len(text) <= MAX_FLOW_CHARS:
        assert found == text, code
    else:
        assert found is None, code
    whole = Work.for_source(len(code))
    read_code(code, whole)
    assert not whole.exhausted, (whole.usage, whole.limit)
    assert whole.usage <= whole.limit
